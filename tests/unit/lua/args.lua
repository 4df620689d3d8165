-- Plain data in and out.
function decide(vm, run)
    local out = {
        name = vm.name,
        mem = vm.memory_mib * 2,
        ratio = vm.ratio,
        first_tag = vm.tags[1],
        ntags = #vm.tags,
        empty_is_array = vm.empty,
        null_kept = vm.note,
        dry = run.dry_run,
    }
    return out
end

function echo(...)
    return ...
end

function on_progress(vm, p) end

NOT_A_HOOK = 1
