-- Memory bombs. The state must stay usable afterwards.

function rep_bomb()
    return #string.rep("x", 1e9) -- @rep_bomb
end

function rep_method_bomb()
    return #("xy"):rep(1 << 40, ",") -- @rep_method_bomb
end

function table_bomb()
    local t = {}
    for i = 1, math.maxinteger do t[i] = i end -- @table_bomb
end

function hash_bomb()
    local t = {}
    for i = 1, math.maxinteger do t["k" .. i] = true end -- @hash_bomb
end

-- fails within its first hook period: the error names the function's line
function concat_bomb() -- @concat_bomb
    local s = "x"
    while true do s = s .. s end
end

-- pcall catches "not enough memory"; the policy must not go on
function caught_bomb()
    local t = {}
    local ok = pcall(function() for i = 1, math.maxinteger do t[i] = {} end end) -- @caught_bomb
    t = nil
    return "survived"
end

function small()
    local t = {}
    for i = 1, 1000 do t[i] = i end
    return #t
end
