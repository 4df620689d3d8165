-- Test policy: every running VM tagged test=ladder moves with a low
-- bandwidth cap; a migration that does not
-- converge has its downtime raised at once, then is aborted after 4 s.
local vmm = require("vmm")

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "ladder" then
        return nil
    end
    return vmm.migrate { params = { bandwidth_mibs = 8, max_downtime_ms = 100 } }
end

on_progress = vmm.ladder {
    { iteration = 1, downtime_ms = 150 },
    { elapsed_ms = 4 * vmm.s, action = "abort", reason = "test ladder: give up" },
}
