-- Test policy: the run's settings come from the policy -- one migration at
-- a time, and a stop request lets the running one finish. VMs tagged
-- test=settings move urgent, capped at 16 MiB/s so that a migration lasts
-- a few seconds.
local vmm = require("vmm")

function settings(run)
    return { parallel = 1, on_abort = "finish" }
end

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "settings" then
        return nil
    end
    return { class = "urgent", params = { bandwidth_mibs = 16 } }
end
