-- Globals that must not exist: each read raises "undefined global".
local names = {"load", "loadstring", "dofile", "loadfile", "collectgarbage", "os", "io",
    "debug", "package", "module", "setfenv", "getfenv", "newproxy", "warn", "unpack",
    "require_c", "jit", "ffi"}

function present()
    local out = {}
    for _, n in ipairs(names) do
        if pcall(function() return _ENV[n] end) then out[#out + 1] = n end
    end
    return out
end

function dump_absent()
    return string.dump(present) -- @dump_absent
end

function load_absent()
    return load("return 1") -- @load_absent
end
