-- refused-reserve.lua — migrate the paused VM (first, priority 10), which
-- vmmigrate refuses as not running, and mover-full (5 GiB) and plain
-- (1 GiB), which together fill target-small's 6 GiB exactly.
function decide(vm, run)
    if vm.name == "paused" then
        return { priority = 10 }
    elseif vm.name == "mover-full" or vm.name == "plain" then
        return {}
    end
    return nil
end
