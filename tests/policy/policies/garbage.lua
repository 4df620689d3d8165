-- garbage.lua — decide() returns things that are not decisions, one kind
-- per VM of tests/policy/fixtures/source.xml; each such VM must end with
-- plan status "error" and a clear note, and the others be unaffected.
local vmm = require("vmm")

local returns = {
    ["plain"] = function() return function() end end,
    ["gold-nc"] = function() return "migrate" end,
    ["silver-vdp"] = function()
        local t = { reason = "cyclic" }
        t.again = t
        return t
    end,
    ["bronze-spice"] = function() return { target = 5 } end,
    ["local-disk"] = function() return 42 end,
    ["pinned"] = function() return true end,
    ["mover"] = function() return { reason = print } end,
    ["mover-auto"] = function() return { priority = 1.5 } end,
    ["mover-full"] = function() return { target = "test:///nowhere.xml" } end,
    ["move-no"] = function()
        error("deliberate failure for " .. "move-no") -- @error
    end,
    ["huge"] = function() return {} end,
    ["paused"] = function() return nil end,
    ["shutoff"] = function() return false end,
}

function decide(vm, run) -- @decide
    local d = returns[vm.name]()
    return d
end
