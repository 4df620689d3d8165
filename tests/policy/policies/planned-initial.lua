-- planned-initial.lua — math.type and value of every target's
-- planned_memory_bytes at the first decide() call, before any reservation,
-- in bronze-spice's reason.
function decide(vm, run)
    if vm.name ~= "bronze-spice" then -- the first VM in inventory order
        return nil
    end
    local out = {}
    for _, h in ipairs(run.targets) do
        out[#out + 1] = tostring(math.type(h.planned_memory_bytes)) .. " "
            .. tostring(h.planned_memory_bytes)
    end
    return { reason = table.concat(out, ",") }
end
