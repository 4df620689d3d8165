-- ladder-no-action.lua — a ladder step with neither downtime_ms nor action:
-- the load fails at the marked line.
local vmm = require("vmm")

function decide(vm, run)
    return nil
end

on_progress = vmm.ladder { { iteration = 2 } } -- @ladder
