-- Test policy for the built-in spice feature: VMs tagged test=spice move
-- network-critical; every SPICE client connected on the source must have
-- reached the target before the commit.
local vmm = require("vmm")

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "spice" then
        return nil
    end
    return vmm.migrate {
        class = vmm.NETWORK_CRITICAL,
        features = { { name = "spice", required = true, timeout_ms = 5000 } },
    }
end
