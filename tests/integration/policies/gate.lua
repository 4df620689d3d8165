-- Test policy for the commit gate: VMs tagged test=... move network-critical
-- with two features of the policy's own:
--   first   always succeeds
--   second  fails at the gate for test=gate-fail, loops forever at the gate
--           (the sandbox's instruction budget stops it) for test=gate-hang,
--           runs `sleep 10` at the gate (its 700 ms timeout stops it) for
--           test=gate-slow, fails its probe for test=probe-fail (so the VM
--           never leaves), succeeds otherwise
-- Tags test=urgent-ok / urgent-fail make the migration urgent (no gate:
-- features come up after the switchover; urgent-fail's second fails).
-- Every step logs "STEP FEATURE VM" with vmm.log.info, so the test reads
-- from the event stream which steps ran, in which order, how often; with a
-- tag dir=PATH, "first" also appends its step's name to PATH/VM.steps on the
-- target host (or the source, for deinit) with vmm.exec: a side effect.
local vmm = require("vmm")

local function step(name, what)
    return function(vm, ctx)
        vmm.log.info("%s %s %s", ctx.step, name, vm.name)
        local dir = vmm.tag(vm, "dir")
        if name == "first" and dir then
            local host = ctx.step == "deinit" and "source" or "target"
            local r, err = vmm.exec(host, { "/bin/sh", "-c", 'echo "$0" >> "$1"', ctx.step,
                dir .. "/" .. vm.name .. ".steps" })
            if not r or r.status ~= 0 then
                return false, "cannot record the step: " .. tostring(err or r.stderr)
            end
        end
        if what then
            return what(vm, ctx)
        end
        return true
    end
end

local function second_gate(vm, ctx)
    local t = vmm.tag(vm, "test")
    if t == "gate-fail" or t == "urgent-fail" then
        return false, "the target is not ready (test)"
    elseif t == "gate-hang" then
        while true do
        end
    elseif t == "gate-slow" then
        vmm.exec("target", { "sleep", "10" })
        return true
    end
    return true
end

local function second_probe(vm, ctx)
    if vmm.tag(vm, "test") == "probe-fail" then
        return false, "no EVB peer on the target (test)"
    end
    return true
end

for _, name in ipairs({ "first", "second" }) do
    vmm.feature(name, {
        probe = name == "second" and second_probe or nil,
        prepare = step(name),
        gate = step(name, name == "second" and second_gate or nil),
        after = step(name),
        deinit = step(name),
    })
end

-- "notify": with a tag hook=URL, the gate step POSTs {"vm": NAME} there
-- with vmm.http and is ready only on a 2xx answer.
vmm.feature("notify", {
    gate = function(vm, ctx)
        local r, err = vmm.http {
            method = "POST",
            url = vmm.tag(vm, "hook"),
            headers = { "Content-Type: application/json" },
            body = '{"vm": "' .. vm.name .. '", "step": "' .. ctx.step .. '"}',
            timeout_ms = 3000,
            allow_http = true,
        }
        if not r then
            return false, err
        end
        if r.status < 200 or r.status > 299 then
            return false, "the hook answered " .. r.status .. ": " .. r.body
        end
        return true
    end,
})

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") == nil then
        return nil
    end
    local urgent = vmm.tag(vm, "test"):sub(1, 7) == "urgent-"
    local features = {
        { name = "first", required = true },
        { name = "second", required = true, timeout_ms = 700 },
        { name = "announce", required = false },
    }
    if vmm.tag(vm, "hook") then
        features[#features + 1] = { name = "notify", required = true }
    end
    return vmm.migrate {
        class = urgent and vmm.URGENT or vmm.NETWORK_CRITICAL,
        features = features,
    }
end
