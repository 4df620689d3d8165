-- helpers.lua — what vmm.tag, has_tag, has_vdp, has_spice and
-- has_local_disks say about each VM of tests/policy/fixtures/source.xml,
-- logged (warn) for every VM and, for every VM, put in the reason of a
-- decision that lets vmmigrate place it (so the non-running ones show the
-- refusal notes).
local vmm = require("vmm")

local function q(v)
    if v == nil then
        return "nil"
    end
    return "'" .. tostring(v) .. "'"
end

function decide(vm, run)
    local s = string.format(
        "tier=%s gold=%s nc=%s ncv=%s pinned=%s move=%s move_yes=%s vdp=%s spice=%s local=%s",
        q(vmm.tag(vm, "tier")), tostring(vmm.has_tag(vm, "tier", "gold")),
        tostring(vmm.has_tag(vm, "network-critical")), q(vmm.tag(vm, "network-critical")),
        tostring(vmm.has_tag(vm, "pinned")), tostring(vmm.has_tag(vm, "move")),
        tostring(vmm.has_tag(vm, "move", "yes")), tostring(vmm.has_vdp(vm)),
        tostring(vmm.has_spice(vm)), tostring(vmm.has_local_disks(vm)))
    vmm.log.warn("%s: %s", vm.name, s) -- @log
    return { reason = s, features = vmm.array() }
end
