-- Test policy for the built-in vdp feature on the lab: VMs tagged test=vdp
-- move network-critical with their 802.1Qbg port association required at
-- the gate. The lab's station interfaces differ per host: tags ifa/ifb name
-- them for the source and the target; mac and vlan tags give the filter.
local vmm = require("vmm")

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "vdp" then
        return nil
    end
    local interfaces = {}
    interfaces[run.sources[1].uri] = vmm.tag(vm, "ifa")
    interfaces[run.targets[1].uri] = vmm.tag(vm, "ifb")
    return vmm.migrate {
        class = vmm.NETWORK_CRITICAL,
        features = { {
            name = "vdp",
            required = true,
            timeout_ms = 8000,
            args = {
                interfaces = interfaces,
                mac = vmm.tag(vm, "mac"),
                vlan = vmm.tag(vm, "vlan"),
                mgrid = "mgr1",
                typeid = "1193046",
                typeidver = "1",
            },
        } },
    }
end
