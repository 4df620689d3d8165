-- ladder-no-condition.lua — a ladder step with neither iteration nor
-- elapsed_ms: the load fails at the marked line.
local vmm = require("vmm")

function decide(vm, run)
    return nil
end

on_progress = vmm.ladder { { iteration = 2, downtime_ms = 300 }, { downtime_ms = 500 } } -- @ladder
