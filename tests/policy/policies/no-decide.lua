-- no-decide.lua — only on_progress: `policy check` must refuse it.
local vmm = require("vmm")

on_progress = vmm.ladder { { iteration = 3, downtime_ms = 500 } }
