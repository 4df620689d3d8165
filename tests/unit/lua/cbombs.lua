-- Loops that run entirely in C, where the instruction hook never fires:
-- plain tables, ranges the policy picks, C functions as metamethods.

function move_bomb()
    table.move({}, 1, math.maxinteger - 1, 2) -- @move_bomb
end

function concat_bomb()
    local t = setmetatable({}, {__index = table.concat}) -- every element is ""
    return table.concat(t, "", 1, math.maxinteger) -- @concat_bomb
end

function insert_bomb()
    local t = setmetatable({}, {__len = function() return math.maxinteger - 1 end,
                                __index = table.concat, __newindex = rawequal})
    table.insert(t, 1, "x") -- @insert_bomb
end

function remove_bomb()
    local t = setmetatable({}, {__len = function() return math.maxinteger - 1 end,
                                __index = table.concat, __newindex = rawequal})
    table.remove(t, 1) -- @remove_bomb
end

function sort_bomb()
    local t = setmetatable({}, {__len = function() return (1 << 31) - 2 end,
                                __index = table.concat, __newindex = rawequal})
    table.sort(t) -- @sort_bomb
end

function unpack_bomb()
    return select("#", table.unpack({}, 1, 1 << 40)) -- @unpack_bomb
end

-- these are fine, and quick
function rep_empty()
    return {string.rep("", math.maxinteger), ("").rep("", math.maxinteger, "")}
end

function ordinary()
    local t = {}
    for i = 1, 1000 do t[i] = tostring(i) end
    table.sort(t)
    table.insert(t, 1, "first")
    table.remove(t)
    local u = table.move(t, 1, 10, 1, {})
    -- appending and removing the last element are O(1): not charged per element
    local big = {}
    for i = 1, 100000 do table.insert(big, i) end
    for i = 1, 50000 do table.remove(big) end
    return {#t, table.concat(u, ","), select("#", table.unpack(t)), #big}
end
