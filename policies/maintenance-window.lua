-- maintenance-window.lua — a gentle drain for a planned maintenance window.
--
-- Moves running VMs one class at a time with a bandwidth cap, so the
-- migration network stays usable for everyone else; VMs tagged
-- <vmm:tags xmlns:vmm="urn:vmmigrate:1"><pinned/></vmm:tags> stay where they are;
-- VMs with local writable disks are left alone (they would need storage
-- migration). A migration that has not converged after 10 iterations has its
-- downtime raised once, then is abandoned after 15 minutes.
local vmm = require("vmm")

local BANDWIDTH_MIBS = 200

function decide(vm, run)
    if vm.state ~= "running" then
        return nil
    end
    if vmm.has_tag(vm, "pinned") then
        vmm.log.info("%s is pinned", vm.name)
        return nil
    end
    if vmm.has_local_disks(vm) then
        vmm.log.warn("%s has local disks: left alone", vm.name)
        return nil
    end
    local tier = vmm.tag(vm, "tier") or "bronze"
    local prio = ({ gold = 300, silver = 200, bronze = 100 })[tier] or 0
    return vmm.migrate {
        class = vmm.has_vdp(vm) and vmm.NETWORK_CRITICAL or vmm.URGENT,
        priority = prio,
        params = {
            bandwidth_mibs = BANDWIDTH_MIBS,
            max_downtime_ms = 300,
            timeout_s = 15 * 60,
            timeout_action = "abort",
        },
        reason = "maintenance window, tier " .. tier,
    }
end

on_progress = vmm.ladder {
    { iteration = 10, downtime_ms = 1000 },
    { elapsed_ms = 15 * vmm.min, action = "abort", reason = "maintenance window exceeded" },
}
