-- migrate-errors-tail.lua — as migrate-errors.lua, in the form the manual
-- and the shipped policies use: `return vmm.migrate{...}`, a tail call.
-- The error must still name this file and the marked line.
local vmm = require("vmm")

function decide(vm, run)
    if vm.name == "plain" then
        return vmm.migrate { tagret = "test:///nowhere" } -- @tail-unknown-key
    elseif vm.name == "gold-nc" then
        return vmm.migrate { class = "fast" } -- @tail-bad-class
    end
    return nil
end
