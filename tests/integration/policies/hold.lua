-- Test policy: VMs tagged test=hold move network-critical and their feature
-- "hold" keeps the commit gate closed for 30 s (a sleep on the target), so
-- a test can kill or interrupt vmmigrate while both sides wait at the gate.
-- A tag budget=MS sets the decision's gate_timeout_ms.
local vmm = require("vmm")

vmm.feature("hold", {
    gate = function(vm, ctx)
        vmm.exec("target", { "sleep", "30" })
        return true
    end,
})

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "hold" then
        return nil
    end
    return {
        class = "network-critical",
        features = { { name = "hold", required = true, timeout_ms = 60000 } },
        gate_timeout_ms = tonumber(vmm.tag(vm, "budget") or "60000"),
    }
end
