-- Test policy for the crash-and-re-run drains (test_drain_crash.py): VMs
-- tagged test=crash move network-critical with two features of the
-- policy's own, "mark" then "mark2". Each of their steps (prepare, gate,
-- after, deinit) appends one line
--     STEP VM PID FEATURE
-- to the file named by the VM's tag log=PATH, through vmm.exec: PID is the
-- vmmigrate process that ran the step (the shell's parent), so the test
-- tells the killed run's steps from the re-run's and from a later recover.
-- With a tag hold=PATH, mark's gate step then waits while PATH does not
-- exist (at most 120 s): the first attempt holds at the gate, and once the
-- test has created PATH the next attempt goes straight through.
local vmm = require("vmm")

local function step(feature)
    return function(vm, ctx)
        local log = vmm.tag(vm, "log")
        if not log then
            return false, "no log=PATH tag on " .. vm.name
        end
        local host = ctx.step == "deinit" and "source" or "target"
        local r, err = vmm.exec(host, { "/bin/sh", "-c", 'echo "$1 $2 $PPID $3" >> "$4"',
            "mark", ctx.step, vm.name, feature, log })
        if not r or r.status ~= 0 then
            return false, "cannot record the step: " .. tostring(err or r.stderr)
        end
        local marker = vmm.tag(vm, "hold")
        if feature == "mark" and ctx.step == "gate" and marker then
            r, err = vmm.exec("target", { "/bin/sh", "-c",
                'i=0; while [ ! -e "$1" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done',
                "hold", marker })
            if not r or r.status ~= 0 then
                return false, "the hold failed: " .. tostring(err or r.stderr)
            end
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
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "crash" then
        return nil
    end
    return vmm.migrate {
        class = vmm.NETWORK_CRITICAL,
        features = {
            { name = "mark", required = true, timeout_ms = 150000 },
            { name = "mark2", required = true, timeout_ms = 30000 },
        },
        gate_timeout_ms = 180000,
        reason = "drain (crash test)",
    }
end
