-- log.lua — vmm.log at every level, from decide() for plain only.
local vmm = require("vmm")

function decide(vm, run)
    if vm.name == "plain" then
        vmm.log.debug("debug %d", 1) -- @debug
        vmm.log.info("info %s", "two") -- @info
        vmm.log.warn("warn %.1f", 3) -- @warn
        vmm.log.error("error for %s", vm.name) -- @error
    end
    return nil
end
