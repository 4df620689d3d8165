/* SPDX-License-Identifier: MIT */
/* sandbox.c — a sandboxed Lua state (lua_sandbox.h): its layout, setup and
 * free, and the globals and base functions the sandbox replaces. The limits,
 * proxies, coroutines, loading, error text and plain data live in the other
 * sandbox_*.c files and lua_json.c (sandbox_priv.h lists them).
 *
 * Layout of a state. Everything below lives in the registry, out of the
 * policy's reach (no debug library, no load, no string.dump):
 *
 *   G  the policy's globals (its hooks and constants); metatable
 *      {__index = B}
 *   B  the builtins (allow-listed base functions, library proxies, _G);
 *      metatable {__index = "undefined global" error}
 *   E  the policy's _ENV: an empty proxy, {__index = G, __newindex = write
 *      G while loading / error once frozen, __pairs over G, __metatable =
 *      false}; every chunk (policy, modules) gets E as its _ENV upvalue.
 *
 * The libraries are read-only proxies (sandbox_proxy.c). vm_lua_free() frees
 * the state and every copy it holds; nothing of the policy's runs then (no
 * finalizers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "policy/sandbox_priv.h"
#include "util/util.h"

struct sb_keys sb_keys;

/* ---- globals ------------------------------------------------------------ */

/* __index of B: the end of the global lookup chain. */
static int sb_undefined(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "undefined global '%s'", lua_tostring(L, 2));
    return luaL_error(L, "undefined global (a %s key)", luaL_typename(L, 2));
}

/* __newindex of E: upvalues (G, B). */
static int sb_env_newindex(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "global names must be strings, not %s", luaL_typename(L, 2));
    const char *k = lua_tostring(L, 2);
    if (s->frozen)
        return luaL_error(L, "attempt to write global '%s' from a hook", k);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL)
        return luaL_error(L, "attempt to overwrite builtin '%s'", k);
    lua_settop(L, 3);
    lua_rawset(L, lua_upvalueindex(1));
    return 0;
}

/* ---- replaced base functions ------------------------------------------- */

static int sb_print(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    char buf[PRINT_MAX + 1], where[WHERE_LEN];
    size_t o = 0;
    int n = lua_gettop(L);
    bool cut = false;

    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *p = luaL_tolstring(L, i, &len); /* runs __tostring: budgeted */
        if (i > 1 && o < PRINT_MAX)
            buf[o++] = '\t';
        size_t take = len < PRINT_MAX - o ? len : PRINT_MAX - o;
        cut |= take < len;
        memcpy(buf + o, p, take);
        o += take;
        lua_pop(L, 1);
    }
    char *line = sb_one_line(buf, o, cut ? o - 1 : PRINT_MAX);
    sb_where_from(L, 1, where, sizeof(where));
    if (s->print)
        s->print(s->print_data, where, line);
    else
        vm_info("policy: %s: %s", where, line);
    free(line);
    return 0;
}

static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (sb_is_proxy(L, 1))
        return luaL_error(L, "attempt to modify a read-only table with rawset");
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

/* setmetatable without __gc: finalizers would run policy code at collection
 * time, outside any call's limits. (Lua only looks for __gc when the
 * metatable is set, so adding it later has no effect.) */
static int sb_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in policies");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

static int sb_panic(lua_State *L)
{
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    vm_error("lua: unprotected error (a bug in vmmigrate): %s", m);
    abort();
}

/* ---- building a state --------------------------------------------------- */

/* Runs protected, once, with no limits. */
static int sb_setup(lua_State *L)
{
    static const char *const keep[] = {
        "assert", "error",  "getmetatable", "ipairs",   "next",     "pairs", "pcall",    "rawequal",
        "rawget", "rawlen", "select",       "tonumber", "tostring", "type",  "_VERSION",
    };
    static const char *const co_keep[] = {"yield", "status", "running", "isyieldable"};
    static const char *const libs[] = {"string", "table", "math", "utf8"};

    lua_settop(L, 0);
    luaL_requiref(L, "_G", luaopen_base, 0);             /* 1 */
    luaL_requiref(L, "string", luaopen_string, 0);       /* 2 */
    luaL_requiref(L, "table", luaopen_table, 0);         /* 3 */
    luaL_requiref(L, "math", luaopen_math, 0);           /* 4 */
    luaL_requiref(L, "utf8", luaopen_utf8, 0);           /* 5 */
    luaL_requiref(L, "coroutine", luaopen_coroutine, 0); /* 6 */

    /* string: no dump, a checked rep, and a hidden metatable */
    lua_pushnil(L);
    lua_setfield(L, 2, "dump");
    lua_getfield(L, 2, "rep");
    lua_pushcclosure(L, sb_str_rep, 1);
    lua_setfield(L, 2, "rep");
    static const char *const tab_fns[] = {"concat", "insert", "remove", "move", "sort", "unpack"};
    for (size_t i = 0; i < VM_ARRAY_LEN(tab_fns); i++) { /* order of enum tab_fn */
        lua_getfield(L, 3, tab_fns[i]);
        lua_pushinteger(L, (lua_Integer)i);
        lua_pushcclosure(L, sb_tab_charged, 2);
        lua_setfield(L, 3, tab_fns[i]);
    }
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    lua_createtable(L, 0, 1); /* the array marker */
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sb_keys.array_mt);
    lua_newtable(L); /* proxy cache, weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sb_keys.proxies);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sb_keys.loaded);
    lua_newtable(L); /* the policy's coroutines, weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sb_keys.threads);

    lua_newtable(L); /* 7: G */
    lua_newtable(L); /* 8: B */
    lua_newtable(L); /* 9: E */
    for (size_t i = 0; i < VM_ARRAY_LEN(keep); i++) {
        lua_getfield(L, 1, keep[i]);
        lua_setfield(L, 8, keep[i]);
    }
    static const luaL_Reg own[] = {{"print", sb_print},     {"xpcall", sb_xpcall},
                                   {"rawset", sb_rawset},   {"setmetatable", sb_setmetatable},
                                   {"require", sb_require}, {NULL, NULL}};
    lua_pushvalue(L, 8);
    luaL_setfuncs(L, own, 0);
    lua_pop(L, 1);
    lua_pushvalue(L, 9);
    lua_setfield(L, 8, "_G");
    for (size_t i = 0; i < VM_ARRAY_LEN(libs); i++) {
        sb_push_proxy(L, 2 + (int)i, libs[i], false);
        lua_setfield(L, 8, libs[i]);
    }
    lua_createtable(L, 0, 8);
    for (size_t i = 0; i < VM_ARRAY_LEN(co_keep); i++) {
        lua_getfield(L, 6, co_keep[i]);
        lua_setfield(L, -2, co_keep[i]);
    }
    static const luaL_Reg co_own[] = {
        {"create", sb_co_create}, {"resume", sb_co_resume}, {"wrap", sb_co_wrap}, {NULL, NULL}};
    luaL_setfuncs(L, co_own, 0);
    lua_getfield(L, 6, "close");
    lua_pushcclosure(L, sb_co_close, 1);
    lua_setfield(L, -2, "close");
    sb_push_proxy(L, -1, "coroutine", false);
    lua_setfield(L, 8, "coroutine");
    lua_pop(L, 1);

    lua_createtable(L, 0, 2); /* B's metatable */
    lua_pushcfunction(L, sb_undefined);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, 8);
    lua_createtable(L, 0, 2); /* G's */
    lua_pushvalue(L, 8);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, 7);
    lua_createtable(L, 0, 5); /* E's */
    lua_pushvalue(L, 7);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, 7);
    lua_pushvalue(L, 8);
    lua_pushcclosure(L, sb_env_newindex, 2);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, 7);
    lua_pushliteral(L, "_ENV");
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, sb_proxy_pairs, 3);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &sb_keys.proxy_tag);
    lua_setmetatable(L, 9);
    lua_pushvalue(L, 7);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sb_keys.globals);
    lua_pushvalue(L, 8);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sb_keys.base);
    lua_pushvalue(L, 9);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sb_keys.env);

    /* Empty the state's own global table: nothing should find it, and if
     * something did, it would find nothing. */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, 1);
    }
    return 0;
}

struct vm_lua *sb_new_state(const struct vm_lua_opts *o, const char *dir, char **err)
{
    static const struct vm_lua_opts none;
    struct vm_lua *s = xcalloc(1, sizeof(*s));
    if (!o)
        o = &none;
    s->mem_max = o->mem_bytes ? o->mem_bytes : DEFAULT_MEM;
    s->load_insns = o->load_instructions ? o->load_instructions : DEFAULT_LOAD_INSNS;
    s->call_insns = o->call_instructions ? o->call_instructions : DEFAULT_CALL_INSNS;
    s->call_ms = o->call_ms ? o->call_ms : DEFAULT_CALL_MS;
    s->print = o->print;
    s->print_data = o->print_data;
    s->dir = dir ? xstrdup(dir) : NULL;
    if (o->nmodules) {
        s->modules = xcalloc(o->nmodules, sizeof(*s->modules));
        for (size_t i = 0; i < o->nmodules; i++) {
            s->modules[i].name = xstrdup(o->modules[i].name);
            s->modules[i].open = o->modules[i].open;
            s->modules[i].source = o->modules[i].source ? xstrdup(o->modules[i].source) : NULL;
        }
        s->nmodules = o->nmodules;
    }
    s->L = lua_newstate(sb_alloc, s);
    if (!s->L) {
        *err = xstrdup("cannot create a Lua state (out of memory)");
        vm_lua_free(s);
        return NULL;
    }
    *(struct vm_lua **)lua_getextraspace(s->L) = s;
    lua_atpanic(s->L, sb_panic);
    lua_pushcfunction(s->L, sb_setup);
    if (lua_pcall(s->L, 0, 0, 0) != LUA_OK) {
        *err = xasprintf("cannot set up the Lua sandbox: %s", lua_tostring(s->L, -1));
        vm_lua_free(s);
        return NULL;
    }
    return s;
}

void vm_lua_free(struct vm_lua *s)
{
    if (!s)
        return;
    if (s->L)
        lua_close(s->L); /* no finalizers: no policy code runs here */
    for (size_t i = 0; i < s->nmodules; i++) {
        free((char *)s->modules[i].name);
        free((char *)s->modules[i].source);
    }
    free(s->modules);
    free(s->dir);
    free(s->trip_msg);
    free(s);
}

lua_State *vm_lua_state(struct vm_lua *s)
{
    return s->L;
}
