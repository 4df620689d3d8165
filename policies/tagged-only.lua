-- tagged-only.lua — move only the VMs tagged for it, leave the rest.
--
-- Tag a VM with <vmm:tags xmlns:vmm="urn:vmmigrate:1"><move>yes</move></vmm:tags>
-- (optionally <target>URI</target> to pin its destination). Useful to move a
-- hand-picked set, e.g. before a partial maintenance.
local vmm = require("vmm")

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "move") ~= "yes" then
        return nil
    end
    return vmm.migrate {
        target = vmm.tag(vm, "target"), -- nil: vmmigrate places it
        class = vmm.has_tag(vm, "network-critical") and vmm.NETWORK_CRITICAL or vmm.URGENT,
        priority = tonumber(vmm.tag(vm, "priority") or "0"),
        reason = "tagged move=yes",
    }
end
