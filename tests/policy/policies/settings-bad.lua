-- settings(run) with a value out of range: fail closed before anything.
function settings(run)
    return { max_in = 0 }
end

function decide(vm, run)
    return nil
end
