-- Test policy: VMs tagged test=all move network-critical with three required
-- features: the 802.1Qbg port (vdp, tags ifa/ifb/mac/vlan as in vdp.lua),
-- the SPICE client (spice), and "mark", a feature of the policy's own that
-- records each of its steps in DIR/VM.steps (tag dir) with vmm.exec.
local vmm = require("vmm")

local function mark(vm, ctx)
    local r, err = vmm.exec(ctx.step == "deinit" and "source" or "target",
        { "/bin/sh", "-c", 'echo "$0" >> "$1"', ctx.step, vmm.tag(vm, "dir") .. "/" ..
            vm.name .. ".steps" })
    if not r or r.status ~= 0 then
        return false, tostring(err or r.stderr)
    end
    return true
end

vmm.feature("mark", { prepare = mark, gate = mark, after = mark, deinit = mark })

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "all" then
        return nil
    end
    local interfaces = {}
    interfaces[run.sources[1].uri] = vmm.tag(vm, "ifa")
    interfaces[run.targets[1].uri] = vmm.tag(vm, "ifb")
    return vmm.migrate {
        class = vmm.NETWORK_CRITICAL,
        features = {
            { name = "vdp", required = true, timeout_ms = 8000, args = {
                interfaces = interfaces, mac = vmm.tag(vm, "mac"), vlan = vmm.tag(vm, "vlan"),
                mgrid = "mgr1", typeid = "1193046", typeidver = "1" } },
            { name = "spice", required = true, timeout_ms = 5000 },
            { name = "mark", required = true },
        },
    }
end
