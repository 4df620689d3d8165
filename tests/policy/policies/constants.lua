-- constants.lua — the vmm module's units and names, and vmm.tag's error
-- return, in the reason of plain's decision.
local vmm = require("vmm")

function decide(vm, run)
    if vm.name ~= "plain" then
        return nil
    end
    local v, err = vmm.tag("not a vm", "tier")
    return {
        reason = string.format("api=%d KiB=%d MiB=%d GiB=%d ms=%d s=%d min=%d %s %s %s/%s",
            vmm.api_version, vmm.KiB, vmm.MiB, vmm.GiB, vmm.ms, vmm.s, vmm.min,
            vmm.URGENT, vmm.NETWORK_CRITICAL, tostring(v), tostring(err)),
    }
end
