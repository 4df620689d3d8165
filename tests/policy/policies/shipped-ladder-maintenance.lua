-- shipped-ladder-maintenance.lua — as shipped-ladder-evacuate.lua, for
-- policies/maintenance-window.lua (copied next to this file by the test as
-- maintenance_window.lua: require() takes names of [A-Za-z0-9_] only).
require("maintenance_window")
local probe = require("ladderprobe")

local shipped_decide, shipped_progress = decide, on_progress

local steady = {
    { iteration = 9, elapsed_ms = 1000 },
    { iteration = 10, elapsed_ms = 2000 },
    { iteration = 11, elapsed_ms = 899999 },
    { iteration = 12, elapsed_ms = 900000 },
    { iteration = 13, elapsed_ms = 900500 },
}
local stalled = {
    { iteration = 1, elapsed_ms = 0 },
    { iteration = 2, elapsed_ms = 900000 },
}

function decide(vm, run)
    local d = shipped_decide(vm, run)
    if d then
        d.reason = probe(shipped_progress, vm, steady) .. ";"
            .. probe(shipped_progress, vm, stalled)
    end
    return d
end
