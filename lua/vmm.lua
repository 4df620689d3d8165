-- vmm.lua — the Lua half of vmmigrate's policy API, preloaded into every
-- policy state: `local vmm = require("vmm")`. Compiled into the binary;
-- the installed copy under share/vmmigrate/lua is for reading.
--
-- Everything here is plain Lua over the data vmmigrate hands to hooks:
-- helpers that can fail return nil, err (mpv's convention); constructors
-- check their arguments and raise errors that point at the caller's line.
-- See vmmigrate-policy(7).

-- vmmigrate runs this chunk with (name, core) as `...`: core holds the C
-- half (log, null, array).
local _, core = ...

local vmm = {}

vmm.api_version = 1
-- JSON null as it arrives in data (e.g. an absent uuid), and a constructor
-- for tables that must go out as JSON arrays even when empty.
vmm.null = core.null
vmm.array = core.array

-- Units: sizes in bytes, times in milliseconds, rates in MiB/s.
vmm.KiB = 1024
vmm.MiB = 1024 * 1024
vmm.GiB = 1024 * 1024 * 1024
vmm.ms = 1
vmm.s = 1000
vmm.min = 60 * 1000

vmm.URGENT = "urgent"
vmm.NETWORK_CRITICAL = "network-critical"

-- Logging goes to vmmigrate's log (stderr, with the policy's file:line):
-- vmm.log.info(fmt, ...), .debug, .warn, .error (string.format rules).
vmm.log = {}
for _, level in ipairs({ "debug", "info", "warn", "error" }) do
    vmm.log[level] = function(fmt, ...)
        core.log(level, string.format(tostring(fmt), ...))
    end
end

local function kind(v)
    return type(v)
end

-- Tags: the children of <vmm:tags xmlns:vmm="urn:vmmigrate:1"> in the
-- domain's <metadata>, as vm.tags. tag() returns the value or nil.
function vmm.tag(vm, name)
    if kind(vm) ~= "table" then
        return nil, "vmm.tag: vm is not a table"
    end
    local tags = vm.tags
    if tags == nil then
        return nil, "no tags"
    end
    return tags[name]
end

function vmm.has_tag(vm, name, value)
    local v = vmm.tag(vm, name)
    if v == nil then
        return false
    end
    return value == nil or v == value
end

-- Does any interface carry an 802.1Qbg (VDP) virtualport?
function vmm.has_vdp(vm)
    for _, nic in ipairs(vm.interfaces or {}) do
        if nic.virtualport and nic.virtualport.type == "802.1Qbg" then
            return true
        end
    end
    return false
end

function vmm.has_spice(vm)
    for _, g in ipairs(vm.graphics or {}) do
        if g.type == "spice" then
            return true
        end
    end
    return false
end

function vmm.has_local_disks(vm)
    for _, d in ipairs(vm.disks or {}) do
        if d["local"] and not d.readonly then
            return true
        end
    end
    return false
end

-- Placement: the target with the most free memory left after taking this VM,
-- among run.targets (or the given list). Returns uri or nil, err.
function vmm.least_loaded(run, vm, targets)
    local best, best_free
    for _, t in ipairs(targets or run.targets) do
        local free = math.type(t.free_memory_bytes) and t.free_memory_bytes or 0
        free = free - (t.planned_memory_bytes or 0)
        if free >= vm.memory_bytes and (best == nil or free > best_free) then
            best, best_free = t.uri, free
        end
    end
    if best == nil then
        return nil, string.format("no target has %d MiB free for %s",
            vm.memory_bytes // vmm.MiB, vm.name)
    end
    return best
end

local decision_keys = {
    target = "string", class = "string", priority = "number", params = "table",
    features = "table", reason = "string", gate_timeout_ms = "number", retries = "number",
}
local param_keys = {
    bandwidth_mibs = "number", max_downtime_ms = "number", auto_converge = "boolean",
    postcopy = "boolean", parallel = "number", compression = "string",
    timeout_s = "number", timeout_action = "string", persistent = "boolean",
    undefine_source = "boolean", direct = "boolean",
}
local feature_keys = {
    name = "string", required = "boolean", timeout_ms = "number", args = "table",
}

local function check_keys(t, spec, what)
    for k, v in pairs(t) do
        local want = spec[k]
        if want == nil then
            error(string.format("%s: unknown key '%s'", what, tostring(k)), 3)
        end
        if kind(v) ~= want then
            error(string.format("%s: '%s' must be a %s, not a %s", what, k, want, kind(v)), 3)
        end
    end
end

-- vmm.migrate{...}: a decision, checked here so that a mistake is reported
-- at the policy's own line. (vmmigrate checks returned tables again.)
function vmm.migrate(d)
    if kind(d) ~= "table" then
        error("vmm.migrate: expects a table", 2)
    end
    check_keys(d, decision_keys, "vmm.migrate")
    if d.class ~= nil and d.class ~= vmm.URGENT and d.class ~= vmm.NETWORK_CRITICAL then
        error("vmm.migrate: class must be 'urgent' or 'network-critical', not '" ..
            tostring(d.class) .. "'", 2)
    end
    if d.params then
        check_keys(d.params, param_keys, "vmm.migrate: params")
    end
    for i, f in ipairs(d.features or {}) do
        check_keys(f, feature_keys, "vmm.migrate: features[" .. i .. "]")
    end
    return d
end

-- vmm.feature(name, {prepare = f, gate = f, after = f, deinit = f}): a
-- feature of the policy's own, named in decisions like the built-in ones.
-- Each step is called as f(vm, ctx) with ctx = {source, target, class, args,
-- step, redo}; it returns true (or nothing) when done, or false, "why".
-- prepare runs while memory is copied, gate at the commit gate
-- (network-critical: a required feature failing rolls the migration back),
-- after once the guest runs on the target, deinit (undo) on rollback, in
-- reverse order, for every feature whose prepare or gate ran. after and
-- deinit run exactly once, and at least once after a crash: a crash between
-- a step and its record makes the next run (or recover) run it again, with
-- ctx.redo = true; write them so that running twice does no harm.
-- Defined while the policy loads.
vmm.feature = core.feature

-- vmm.exec(host, argv): run a command, without a shell, on "source",
-- "target" or a host URI, from a feature step (the step waits; vmmigrate's
-- loop does not). Returns {status, signal, timed_out, stdout, stderr}, or
-- nil, err when it could not run. Output is cut at 64 KiB per stream.
function vmm.exec(host, argv)
    local r = core.exec(host, argv)
    if r.error then
        return nil, r.error
    end
    return r
end

-- vmm.http{method = "POST", url = "https://...", headers = {"Name: value"},
-- body = "...", timeout_ms = 5000, allow_http = false}: an HTTP request from
-- a feature step (https only unless allow_http; no redirects; bodies at most
-- 1 MiB). Returns {status, body, content_type}, or nil, err.
function vmm.http(rq)
    local r = core.http(rq)
    if r.error then
        return nil, r.error
    end
    return r
end

-- A convergence ladder (oVirt-style) as an on_progress hook:
--   on_progress = vmm.ladder{
--       { iteration = 3, downtime_ms = 300 },
--       { iteration = 6, downtime_ms = 1000 },
--       { elapsed_ms = 2 * vmm.min, action = "postcopy" },
--       { elapsed_ms = 5 * vmm.min, action = "abort" },
--   }
-- A step fires when the progress reaches its iteration or elapsed time; the
-- furthest step reached is taken, each at most once, in order. vmmigrate
-- ignores a post-copy step for migrations whose params do not allow it.
function vmm.ladder(steps)
    if kind(steps) ~= "table" then
        error("vmm.ladder: expects a list of steps", 2)
    end
    for i, s in ipairs(steps) do
        if s.iteration == nil and s.elapsed_ms == nil then
            error("vmm.ladder: step " .. i .. " needs iteration or elapsed_ms", 2)
        end
        if s.downtime_ms == nil and s.action == nil then
            error("vmm.ladder: step " .. i .. " needs downtime_ms or action", 2)
        end
    end
    return function(vm, p, state)
        -- The furthest step reached is taken (time-based steps are not held
        -- back by iterations that stall); each step at most once.
        local done = state.ladder_step or 0
        local take
        for i = done + 1, #steps do
            local s = steps[i]
            if (s.iteration and p.iteration >= s.iteration)
                or (s.elapsed_ms and p.elapsed_ms >= s.elapsed_ms) then
                take = i
            end
        end
        if take == nil then
            return "continue"
        end
        state.ladder_step = take
        local s = steps[take]
        if s.downtime_ms then
            return { action = "set_downtime", downtime_ms = s.downtime_ms }
        end
        return { action = s.action, reason = s.reason or ("ladder step " .. take) }
    end
end

return vmm
