-- syntax-error.lua — does not compile; the error names the marked line.
function decide(vm, run)
    return { reason = "x" }
end end -- @syntax
