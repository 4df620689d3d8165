-- evacuate.lua — drain the source hosts completely.
--
-- Every running VM moves; vmmigrate places it (the target with the most free
-- memory left, never overcommitted, largest and most important VMs first).
-- A VM is network-critical when it is tagged so
-- (<vmm:tags xmlns:vmm="urn:vmmigrate:1"><network-critical/></vmm:tags>) or
-- has an 802.1Qbg (VDP) virtualport — then its VDP association must come up
-- on the target before the guest resumes there; everything else is urgent
-- (finish fast). Larger VMs go first within a class, network-critical first.
-- A migration that does not converge climbs a ladder: raise the allowed
-- downtime, then switch to post-copy where allowed, then give up (the guest
-- stays on its source).
local vmm = require("vmm")

local function network_critical(vm)
    return vmm.has_tag(vm, "network-critical") or vmm.has_vdp(vm)
end

function decide(vm, run)
    if vm.state ~= "running" then
        return nil -- nothing to live-migrate
    end
    local nc = network_critical(vm)
    local features = {}
    if vmm.has_vdp(vm) then
        features[#features + 1] = { name = "vdp", required = true, timeout_ms = 5 * vmm.s }
    end
    if vmm.has_spice(vm) then
        features[#features + 1] = { name = "spice", required = false, timeout_ms = 3 * vmm.s }
    end
    return vmm.migrate {
        class = nc and vmm.NETWORK_CRITICAL or vmm.URGENT,
        -- network-critical first, then by size (MiB)
        priority = (nc and 1000000 or 0) + vm.memory_bytes // vmm.MiB,
        params = {
            max_downtime_ms = nc and 300 or 500,
            auto_converge = not nc,
            postcopy = not nc,
            timeout_s = 600,
            timeout_action = "abort",
        },
        features = features,
        reason = nc and "evacuate (network-critical)" or "evacuate",
    }
end

on_progress = vmm.ladder {
    { iteration = 4, downtime_ms = 1000 },
    { iteration = 8, downtime_ms = 2000 },
    { elapsed_ms = 3 * vmm.min, action = "postcopy" },
    { elapsed_ms = 8 * vmm.min, action = "abort", reason = "did not converge in 8 minutes" },
}
