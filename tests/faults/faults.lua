-- Test policy of the fault matrix (tests/faults/faults.py). VMs tagged
-- test=fault move network-critical (through the commit gate) with two
-- features of the policy's own, "mark" then "mark2". Each of their steps
-- (prepare, gate, after, deinit) is one command on a host (vmm.exec) that
-- appends to the file named by the tag log=PATH
--     start STEP VM PID FEATURE MS SHPID REDO
-- when it starts (REDO: "redo" if ctx.redo, the step runs again after a
-- crash left it unknown, else "first") and
--     end STEP VM PID FEATURE MS SHPID
-- when it ends: PID is the process that ran the step (the shell's parent),
-- MS the wall clock in ms, SHPID the step's own shell, so the matrix tells
-- the runs apart, counts steps, and sees a command that goes on after its
-- step was cancelled.
-- Tags:
--   hold=PATH    mark's gate step waits while PATH does not exist (at most
--                holdmax tenths of a second, default 1200)
--   budget=MS    the gate budget (gate_timeout_ms, default 60000)
--   arg=TEXT     passed to every step as one more argument and written
--                alone on a line to PATH.arg (checks that arguments reach
--                the host as argv, e.g. through --host-exec)
local vmm = require("vmm")

local SCRIPT = 'echo "start $1 $2 $PPID $3 $(date +%s%3N) $$ $8" >> "$4"; '
    .. 'if [ -n "$7" ]; then printf "%s\\n" "$7" >> "$4.arg"; fi; '
    .. 'if [ -n "$5" ]; then i=0; while [ ! -e "$5" ] && [ $i -lt "$6" ]; do sleep 0.1; '
    .. 'i=$((i+1)); done; fi; '
    .. 'echo "end $1 $2 $PPID $3 $(date +%s%3N) $$" >> "$4"'

local function step(feature)
    return function(vm, ctx)
        local log = vmm.tag(vm, "log")
        if not log then
            return false, "no log=PATH tag on " .. vm.name
        end
        local host = ctx.step == "deinit" and "source" or "target"
        local hold = ""
        if feature == "mark" and ctx.step == "gate" then
            hold = vmm.tag(vm, "hold") or ""
        end
        local r, err = vmm.exec(host, { "/bin/sh", "-c", SCRIPT, "faultstep", ctx.step, vm.name,
            feature, log, hold, vmm.tag(vm, "holdmax") or "1200", vmm.tag(vm, "arg") or "",
            ctx.redo and "redo" or "first" })
        if not r or r.status ~= 0 then
            return false, "the step's command failed: " .. tostring(err or r.stderr)
        end
        return true
    end
end

for _, name in ipairs({ "mark", "mark2" }) do
    vmm.feature(name, {
        prepare = step(name),
        gate = step(name),
        after = step(name),
        deinit = step(name),
    })
end

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "fault" then
        return nil
    end
    return vmm.migrate {
        class = vmm.NETWORK_CRITICAL,
        features = {
            { name = "mark", required = true, timeout_ms = 200000 },
            { name = "mark2", required = true, timeout_ms = 30000 },
        },
        gate_timeout_ms = tonumber(vmm.tag(vm, "budget") or "60000"),
        reason = "drain (fault matrix)",
    }
end
