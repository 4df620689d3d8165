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

-- The run itself: one migration out of each host at a time, a VM that
-- fails gets one more try (on another target if there is one), the window
-- closes after 4 hours (what runs then is aborted, the guests stay home),
-- and a stop request (SIGTERM, vmmigrate abort) lets the running
-- migrations finish. Options given on the command line win.
function settings(run)
    return { max_out = 1, retries = 1, deadline_s = 4 * 3600, on_abort = "finish" }
end

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
