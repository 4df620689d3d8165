-- planned-initial.lua — the kind of every host's planned_memory_bytes at
-- the first decide() call, before any reservation, in plain's reason.
function decide(vm, run)
    if vm.name ~= "bronze-spice" then -- the first VM in inventory order
        return nil
    end
    local kinds = {}
    for _, list in ipairs({ run.sources, run.targets }) do
        for _, h in ipairs(list) do
            kinds[#kinds + 1] = tostring(math.type(h.planned_memory_bytes))
        end
    end
    return { reason = table.concat(kinds, ",") }
end
