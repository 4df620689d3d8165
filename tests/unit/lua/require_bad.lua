-- Modules a policy must not get. Each attempt's error is collected.
local names = {"io", "os", "socket", "debug", "string", "../helper", "/etc/passwd", "x.y",
    "helper.lua", "", "a/b", "loop_self"}
local results = {}
for i, name in ipairs(names) do
    local ok, err = pcall(require, name)
    results[i] = ok and ("LOADED " .. name) or err
end

function results_of()
    return results
end

function require_io()
    return require("io") -- @require_io
end
