-- ladderprobe.lua — a helper module for the policy tests (require'd by the
-- policies next to it): feeds an on_progress hook a list of fake progress
-- samples, with one state table kept across them as vmmigrate keeps one per
-- VM, and writes down what the hook returned, comma-separated:
--   - (continue) | set_downtime:MS | postcopy(REASON) | abort(REASON)
-- Policies put the result in the decision's reason, so `vmmigrate plan`
-- shows it without a lab. Keep it short: vmmigrate cuts a reason at 200
-- bytes (src/decision.c), hence "-" for "continue".
local function encode(a)
    if a == nil or a == "continue" then
        return "-"
    end
    if type(a) ~= "table" then
        return "?" .. tostring(a)
    end
    local s = tostring(a.action)
    if a.downtime_ms ~= nil then
        s = s .. ":" .. tostring(a.downtime_ms)
    end
    if a.reason ~= nil then
        s = s .. "(" .. tostring(a.reason) .. ")"
    end
    return s
end

return function(hook, vm, samples, state)
    state = state or {}
    local out = {}
    for i, p in ipairs(samples) do
        out[i] = encode(hook(vm, p, state))
    end
    return table.concat(out, ",")
end
