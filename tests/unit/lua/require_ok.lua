-- Builtin modules and NAME.lua files next to the policy.
local vmm = require("vmm")
local helper = require("helper")
local again = require("helper")

function use()
    return {
        answer = vmm.answer(),
        name = vmm.name,
        double = helper.double(21),
        same = helper == again and vmm == require("vmm"),
        nested = vmm.sub.x,
        c = vmm.c_add(2, 3),
        keys = (function() local n = 0 for _ in pairs(vmm) do n = n + 1 end return n end)(),
        nested_via_pairs = (function()
            for k, v in pairs(vmm) do if k == "sub" then return getmetatable(v) == false end end
        end)(),
    }
end

function write_module()
    vmm.name = "x" -- @write_module
end

function write_nested()
    vmm.sub.x = 2 -- @write_nested
end

function write_nested_pairs()
    for k, v in pairs(vmm) do if type(v) == "table" then v.x = 3 end end -- @write_nested_pairs
end

function late_require()
    return require("helper2") -- @late_require
end

function cached_require()
    return require("helper").double(2)
end
