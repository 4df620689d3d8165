-- Runaway hooks. Each must fail closed, naming the line that was running
-- when the budget (or the deadline) ran out, whatever the policy does with
-- pcall, xpcall, error handlers, to-be-closed variables or coroutines.

function spin()
    while true do end -- @spin
end

function spin_pcall()
    pcall(function()
        while true do end -- @spin_pcall
    end)
    return "escaped"
end

function spin_pcall_loop()
    while true do
        pcall(function() while true do end end) -- @spin_pcall_loop
    end
end

-- the protected function loops; its handler would swallow the error
function spin_xpcall()
    return xpcall(function() while true do end end, function(e) return e end) -- @spin_xpcall
end

-- the protected function fails at once; the handler loops
function spin_handler()
    return xpcall(function() error("boom") end, function(e) while true do end end) -- @spin_handler
end

-- the loop is stopped inside pcall, and the hook returns pcall's results
-- without running another instruction
function spin_return_pcall()
    return pcall(function() while true do end end) -- @spin_return_pcall
end

-- a __close metamethod that loops, run while the error unwinds
function spin_close()
    local guard <close> = setmetatable({}, {__close = function() while true do end end})
    while true do end -- @spin_close
end

function spin_coroutine()
    local f = coroutine.wrap(function() while true do end end) -- @spin_coroutine
    return f()
end

-- the coroutine trips; resume returns false; the caller loops on
function spin_coroutine_resume()
    local co = coroutine.create(function() while true do end end) -- @spin_coroutine_resume
    local ok = coroutine.resume(co)
    while true do end
end

-- a coroutine made while loading, resumed from a hook
local saved = coroutine.create(function()
    while true do end -- @spin_saved_coroutine
end)
function spin_saved_coroutine()
    return coroutine.resume(saved)
end

-- short coroutines, each shorter than a hook period
function many_coroutines()
    while true do coroutine.wrap(function() for i = 1, 900 do end end)() end -- @many_coroutines
end

-- a loop of pcall'd errors that themselves loop in tostring
function spin_tostring()
    local t = setmetatable({}, {__tostring = function() while true do end end}) -- @spin_tostring
    while true do pcall(tostring, t) end
end

-- burn N iterations of a numeric for (one VM instruction each)
function burn(n)
    for i = 1, n do end
    return n
end

-- A coroutine killed by the budget while it holds a to-be-closed variable
-- whose __close loops; a later call closes it. (A hook's error leaves the
-- coroutine with hooks switched off: its __close must never run.)
local dead, dead_wrap
function kill_coroutine()
    dead = coroutine.create(function()
        local guard <close> = setmetatable({}, {__close = function() while true do end end})
        while true do end -- @kill_coroutine
    end)
    coroutine.resume(dead)
end

function close_dead_coroutine()
    return {coroutine.close(dead)}
end

function kill_wrapped()
    dead_wrap = coroutine.wrap(function()
        local guard <close> = setmetatable({}, {__close = function() while true do end end})
        while true do end -- @kill_wrapped
    end)
    dead_wrap()
end

function call_dead_wrapped()
    return {pcall(dead_wrap)}
end
