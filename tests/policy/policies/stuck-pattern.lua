-- decide() calls one string.find that backtracks for ages inside Lua's C
-- library, where the instruction budget cannot interrupt it: the watchdog
-- ends the run (exit 6) instead of letting it hang.
function decide(vm, run) -- @decide
    local s = string.rep("a", 20000)
    if string.find(s, ".-.-.-.-b") then
        return {}
    end
    return nil
end
