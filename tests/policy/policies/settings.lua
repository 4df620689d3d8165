-- settings(run): run-level settings, from what the run is about; decide()
-- leaves every VM alone (only the settings matter here).
function settings(run)
    if run.command ~= "plan" and run.command ~= "run" then
        error("unexpected command " .. tostring(run.command))
    end
    return {
        parallel = 3, max_out = 1, max_in = #run.targets, max_failures = 2, retries = 1,
        deadline_s = 600, on_abort = "finish", notify = { "https://hooks.example/vmm" },
    }
end

function decide(vm, run)
    return nil
end
