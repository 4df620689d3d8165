-- Coroutines work, within the budget.
local function gen(n)
    return coroutine.wrap(function()
        for i = 1, n do coroutine.yield(i) end
    end)
end

function sum(n)
    local s = 0
    for v in gen(n) do s = s + v end
    local co = coroutine.create(function(a, b) local c = coroutine.yield(a + b) return c * 2 end)
    local _, x = coroutine.resume(co, 1, 2)
    local _, y = coroutine.resume(co, 10)
    return {s, x, y, coroutine.status(co), coroutine.isyieldable()}
end

-- for vm_lua_resume: yields twice, then returns
function stepper(a)
    local b = coroutine.yield(a + 1)
    local c = coroutine.yield(b + 1)
    return c + 1
end

function print_things()
    print("hello", 42, nil, true, "line\nbreak\1")
    print(string.rep("y", 5000))
end
