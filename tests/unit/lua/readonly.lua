-- The shared library tables are read-only; their metatables are hidden.

function rep_nil()
    string.rep = nil -- @rep_nil
end

function insert_fn()
    table.insert = print -- @insert_fn
end

function huge()
    math.huge = 1 -- @huge
end

function strmeta()
    getmetatable("").__index.rep = nil -- @strmeta
end

function setmeta_string()
    setmetatable(string, {}) -- @setmeta_string
end

function rawset_string()
    rawset(string, "rep", print) -- @rawset_string
end

function insert_into_lib()
    table.insert(string, 1) -- @insert_into_lib
end

function move_into_lib()
    table.move({1, 2}, 1, 2, 1, math) -- @move_into_lib
end

function coroutine_create()
    coroutine.create = nil -- @coroutine_create
end

function gc_meta()
    setmetatable({}, {__gc = function() end}) -- @gc_meta
end

function overwrite_builtin()
    print = nil -- @overwrite_builtin
end

-- reading still works
function views()
    local n = 0
    for k, v in pairs(string) do n = n + 1 end
    local m = 0
    for i, v in ipairs({10, 20}) do m = m + v end
    return {
        string_meta = getmetatable("") == false,
        lib_meta = getmetatable(string) == false,
        env_meta = getmetatable(_ENV) == false,
        string_keys = n,
        dump = string.dump == nil,
        method = ("ab"):rep(2, "-"),
        upper = string.upper("x"),
        G_is_ENV = _G == _ENV,
        next_sees_nothing = next(string) == nil,
        rawget_sees_nothing = rawget(string, "rep") == nil,
        len = #"abc",
        sum = m,
        pi = math.floor(math.pi * 100),
        utf8 = utf8.char(72, 105),
        version = _VERSION,
    }
end
