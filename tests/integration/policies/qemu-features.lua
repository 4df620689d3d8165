-- Test policy for `vmmigrate qemu`: two features of the policy's own.
--   ready   every step appends its name, on the "target" host (here: this
--           machine), to /tmp/vmm-qemu-test-<vm name>.steps
--   broken  its gate step fails
local vmm = require("vmm")

local function record(vm, ctx)
    local r, err = vmm.exec("target", { "/bin/sh", "-c", 'echo "$0" >> "$1"', ctx.step,
        "/tmp/vmm-qemu-test-" .. vm.name .. ".steps" })
    if not r or r.status ~= 0 then
        return false, tostring(err or r.stderr)
    end
    return true
end

vmm.feature("ready", { prepare = record, gate = record, after = record, deinit = record })
vmm.feature("broken", {
    gate = function(vm, ctx)
        return false, "the switch port is not configured (test)"
    end,
})

function decide(vm, run)
    return nil -- not used by `vmmigrate qemu`
end
