-- Test policy: VMs tagged test=retry move network-critical with the feature
-- "first-fails", whose gate refuses each VM's first attempt -- or its first
-- N with tag fails=N -- (counted in a file per VM in the directory of tag
-- dir) and accepts later ones; its deinit logs "deinit VM TARGET" there.
-- Tag pin=URI names the target; tag retries=K sets the decision's retries.
local vmm = require("vmm")

local function sh(vm, script)
    return vmm.exec("target", { "/bin/sh", "-c", script, "sh", vmm.tag(vm, "dir"), vm.name,
                                vmm.tag(vm, "fails") or "1" })
end

vmm.feature("first-fails", {
    gate = function(vm, ctx)
        local r = sh(vm, 'n=$(cat "$1/$2" 2>/dev/null || echo 0); '
            .. '[ "$n" -ge "$3" ] || { echo $((n + 1)) > "$1/$2"; exit 1; }')
        if not r or r.status ~= 0 then
            return false, "first attempt refused"
        end
        return true
    end,
    deinit = function(vm, ctx)
        sh(vm, 'echo "deinit $2 ' .. ctx.target .. '" >> "$1/log"')
        return true
    end,
})

function decide(vm, run)
    if vm.state ~= "running" or vmm.tag(vm, "test") ~= "retry" then
        return nil
    end
    return {
        class = "network-critical",
        target = vmm.tag(vm, "pin"),
        retries = tonumber(vmm.tag(vm, "retries") or ""),
        features = { { name = "first-fails", required = true, timeout_ms = 20000 } },
    }
end
