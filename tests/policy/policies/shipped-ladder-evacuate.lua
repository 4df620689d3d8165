-- shipped-ladder-evacuate.lua — runs policies/evacuate.lua (copied next to
-- this file by the test) and, for every VM it migrates, replaces the reason
-- with what its on_progress ladder answers to fixed progress samples (see
-- ladderprobe.lua), so that `vmmigrate plan` shows the ladder's steps.
-- Two series, each with a fresh state: one that converges slowly but
-- steadily (every step in its turn, each threshold met exactly), one whose
-- iterations stall (the time-based steps are still taken).
require("evacuate") -- defines decide and on_progress, as when it is the policy
local probe = require("ladderprobe")

local shipped_decide, shipped_progress = decide, on_progress

local steady = {
    { iteration = 1, elapsed_ms = 500 },
    { iteration = 3, elapsed_ms = 60000 },
    { iteration = 4, elapsed_ms = 61000 },
    { iteration = 7, elapsed_ms = 120000 },
    { iteration = 8, elapsed_ms = 121000 },
    { iteration = 9, elapsed_ms = 179999 },
    { iteration = 10, elapsed_ms = 180000 },
    { iteration = 11, elapsed_ms = 479999 },
    { iteration = 12, elapsed_ms = 480000 },
    { iteration = 13, elapsed_ms = 600000 },
}
local stalled = {
    { iteration = 1, elapsed_ms = 0 },
    { iteration = 2, elapsed_ms = 240000 },
    { iteration = 2, elapsed_ms = 479999 },
    { iteration = 3, elapsed_ms = 480000 },
}

function decide(vm, run)
    local d = shipped_decide(vm, run)
    if d then
        d.reason = probe(shipped_progress, vm, steady) .. ";"
            .. probe(shipped_progress, vm, stalled)
    end
    return d
end
