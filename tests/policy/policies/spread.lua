-- spread.lua — every running VM goes where vmm.least_loaded says, in
-- inventory order (by name); the reason records what run.targets'
-- planned_memory_bytes (MiB) were before the choice. A VM that fits nowhere
-- is logged (warn) and left.
local vmm = require("vmm")

function decide(vm, run)
    if vm.state ~= "running" then
        return nil
    end
    local before = {}
    for i, t in ipairs(run.targets) do
        before[i] = tostring((t.planned_memory_bytes or 0) // vmm.MiB)
    end
    local uri, err = vmm.least_loaded(run, vm)
    if uri == nil then
        vmm.log.warn("%s", err)
        return nil
    end
    return { target = uri, reason = "before " .. table.concat(before, ",") }
end
