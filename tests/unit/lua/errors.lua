-- Error objects that are not plain strings, and errors without a position.

function err_table()
    error(setmetatable({}, {__tostring = function() while true do end end})) -- @err_table
end

function err_nil()
    error(nil) -- @err_nil
end

function err_level0()
    error("plain", 0) -- @err_level0
end

function err_number()
    error(42) -- @err_number
end

function err_runtime()
    local x = nil
    return x.field -- @err_runtime
end

local function f(n) return 1 + f(n + 1) end -- @deep
function deep()
    return f(1)
end

function meta_recursion()
    local t
    t = setmetatable({}, {__index = function(_, k) return t[k] end}) -- @meta_recursion
    return t.x
end

function tostring_recursion()
    local t
    t = setmetatable({}, {__tostring = function(self) return tostring(self) end}) -- @tostring_recursion
    return tostring(t)
end

function yield_from_hook()
    coroutine.yield(1) -- @yield_from_hook
end
