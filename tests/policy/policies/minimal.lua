-- minimal.lua — a valid policy that moves nothing (for the file checks).
function decide(vm, run)
    return nil
end
