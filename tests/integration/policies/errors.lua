-- Test policy that fails: decide() raises for VMs tagged test=decide-error;
-- on_progress() raises on its third call for VMs tagged test=progress-error.
-- Every other VM tagged test=ok moves normally.
local vmm = require("vmm")

function decide(vm, run)
    local t = vmm.tag(vm, "test")
    if vm.state ~= "running" or t == nil then
        return nil
    end
    if t == "decide-error" then
        error("deliberate decide failure for " .. vm.name)
    end
    if t == "progress-error" then
        return { params = { bandwidth_mibs = 8 } }
    end
    return {}
end

function on_progress(vm, p, state)
    if vmm.tag(vm, "test") ~= "progress-error" then
        return "continue"
    end
    state.calls = (state.calls or 0) + 1
    if state.calls >= 3 then
        error("deliberate on_progress failure")
    end
    return "continue"
end
