-- Globals: defined while loading, frozen afterwards.
counter = 0
LIMITS = {max = 3}
local state = {n = 0}

function write_global()
    counter = counter + 1 -- @write_global
end

function write_new_global()
    fresh = 1 -- @write_new_global
end

function read_undefined()
    return undefined_thing -- @read_undefined
end

function use_os()
    return os.execute("id") -- @use_os
end

function use_io()
    return io.open("/etc/shadow") -- @use_io
end

function rawset_env()
    rawset(_ENV, "x", 1) -- @rawset_env
end

function rawset_G()
    rawset(_G, "x", 1) -- @rawset_G
end

function write_via_G()
    _G.y = 1 -- @write_via_G
end

function write_via_ENV()
    _ENV["z"] = 1 -- @write_via_ENV
end

-- the policy's own tables stay mutable: state between calls
function keep_state()
    state.n = state.n + 1
    LIMITS.max = LIMITS.max + 1
    return {state.n, LIMITS.max, counter}
end

function list_globals()
    local names = {}
    for k in pairs(_ENV) do names[#names + 1] = k end
    table.sort(names)
    return names
end
