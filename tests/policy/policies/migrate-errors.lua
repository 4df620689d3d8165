-- migrate-errors.lua — vmm.migrate{} misused, one mistake per VM of
-- tests/policy/fixtures/source.xml; each error must point at the marked
-- line of this file (`-- @NAME`), not into vmm.lua. The decision is kept in
-- a local first: `return vmm.migrate{...}` is a tail call (see
-- migrate-errors-tail.lua). mover-auto's decision is valid.
local vmm = require("vmm")

local cases = {}

cases["plain"] = function()
    local d = vmm.migrate { tagret = "test:///nowhere" } -- @unknown-key
    return d
end

cases["gold-nc"] = function()
    local d = vmm.migrate { priority = "high" } -- @wrong-type
    return d
end

cases["silver-vdp"] = function()
    local d = vmm.migrate { class = "fast" } -- @bad-class
    return d
end

cases["bronze-spice"] = function()
    local d = vmm.migrate { params = { postcopy = "yes" } } -- @param-type
    return d
end

cases["local-disk"] = function()
    local d = vmm.migrate { params = { bandwith_mibs = 100 } } -- @param-key
    return d
end

cases["pinned"] = function()
    local d = vmm.migrate { features = { { name = "vdp", requred = true } } } -- @feature-key
    return d
end

cases["mover"] = function()
    local d = vmm.migrate("urgent") -- @not-a-table
    return d
end

cases["mover-auto"] = function()
    local d = vmm.migrate {
        class = vmm.NETWORK_CRITICAL,
        priority = 7,
        params = { bandwidth_mibs = 64, compression = "xbzrle,zstd", direct = true },
        features = {
            { name = "announce" },
            { name = "spice", required = false, args = { port = 5900 } },
        },
        reason = "valid",
    }
    return d
end

function decide(vm, run)
    local case = cases[vm.name]
    if case == nil then
        return nil
    end
    local d = case()
    return d
end
