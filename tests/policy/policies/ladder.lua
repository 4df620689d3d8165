-- ladder.lua — vmm.ladder's step logic, without a lab: decide() calls
-- ladders directly with fake progress tables (ladderprobe.lua) and puts
-- what they return in the reason. One case per VM name.
local vmm = require("vmm")
local probe = require("ladderprobe")

-- built once, used for two VMs: its state lives in `state`, not in it
local shared = vmm.ladder {
    { iteration = 2, downtime_ms = 250 },
    { elapsed_ms = 100, action = "abort", reason = "shared" },
}

local cases = {
    -- the two kinds of steps, each once, then nothing more
    ["plain"] = {
        steps = { { iteration = 2, downtime_ms = 300 }, { elapsed_ms = 1000, action = "abort" } },
        samples = { { iteration = 1, elapsed_ms = 0 }, { iteration = 2, elapsed_ms = 500 },
                    { iteration = 3, elapsed_ms = 2000 }, { iteration = 4, elapsed_ms = 3000 } },
    },
    -- the furthest step reached is taken at once: elapsed 5000 >= 1000 skips
    -- step 1, which never fires afterwards (iteration 5 comes too late)
    ["gold-nc"] = {
        steps = { { iteration = 5, downtime_ms = 100 },
                  { elapsed_ms = 1000, action = "postcopy" } },
        samples = { { iteration = 1, elapsed_ms = 5000 }, { iteration = 5, elapsed_ms = 6000 },
                    { iteration = 6, elapsed_ms = 7000 }, { iteration = 7, elapsed_ms = 8000 } },
    },
    -- several steps reached at once: only the last of them is taken
    ["silver-vdp"] = {
        steps = { { iteration = 1, downtime_ms = 100 }, { iteration = 2, downtime_ms = 200 },
                  { elapsed_ms = 10, action = "abort", reason = "r" } },
        samples = { { iteration = 9, elapsed_ms = 99999 }, { iteration = 9, elapsed_ms = 99999 },
                    { iteration = 9, elapsed_ms = 99999 }, { iteration = 9, elapsed_ms = 99999 } },
    },
    -- no steps
    ["bronze-spice"] = {
        steps = {},
        samples = { { iteration = 1, elapsed_ms = 0 }, { iteration = 100, elapsed_ms = 100000 } },
    },
    -- a step with both conditions fires on either; exactly at the threshold
    ["mover"] = {
        steps = { { iteration = 3, elapsed_ms = 100, downtime_ms = 50 },
                  { iteration = 3, elapsed_ms = 100000, action = "postcopy", reason = "p" } },
        samples = { { iteration = 1, elapsed_ms = 99 }, { iteration = 1, elapsed_ms = 100 },
                    { iteration = 2, elapsed_ms = 200 }, { iteration = 3, elapsed_ms = 300 } },
    },
    -- a middle step skipped: iteration 3 reaches steps 1 and 2 (2 is taken),
    -- then step 3 in its turn; the default reason numbers the step taken
    ["mover-auto"] = {
        steps = { { iteration = 1, downtime_ms = 100 }, { iteration = 2, downtime_ms = 200 },
                  { iteration = 5, action = "abort" } },
        samples = { { iteration = 3, elapsed_ms = 0 }, { iteration = 4, elapsed_ms = 0 },
                    { iteration = 5, elapsed_ms = 0 }, { iteration = 6, elapsed_ms = 0 } },
    },
}

local shared_samples = { { iteration = 1, elapsed_ms = 0 }, { iteration = 2, elapsed_ms = 50 },
                         { iteration = 3, elapsed_ms = 150 } }

function decide(vm, run)
    if vm.name == "local-disk" or vm.name == "pinned" then
        return { reason = probe(shared, vm, shared_samples) }
    end
    local c = cases[vm.name]
    if c == nil then
        return nil
    end
    return { reason = probe(vmm.ladder(c.steps), vm, c.samples) }
end
