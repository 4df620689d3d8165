/* SPDX-License-Identifier: MIT */
/* sandbox_proxy.c — read-only proxies (lua_sandbox.h): the standard
 * libraries and builtin modules as the policy sees them.
 *
 * A read-only proxy is an empty table whose metatable forwards reads,
 * pairs() and # to the real table, raises on writes, hides itself
 * (__metatable = false) and carries sb_keys.proxy_tag so that rawset
 * refuses it. Stock Lua 5.4 has no read-only tables; the proxy is the
 * substitute, and it works because nothing can reach the real tables behind
 * it. Proxies are Lua values: the state owns them. */
#include <lauxlib.h>

#include "policy/sandbox_priv.h"

/* Is the value at IDX one of our read-only proxies (or the _ENV proxy)? */
bool sb_is_proxy(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return false;
    bool tagged = lua_rawgetp(L, -1, &sb_keys.proxy_tag) != LUA_TNIL;
    lua_pop(L, 2);
    return tagged;
}

/* Nested tables of a deep proxy come out as proxies too (cached). */
static void wrap_child(lua_State *L, int validx, int keyidx)
{
    if (lua_type(L, validx) != LUA_TTABLE)
        return;
    validx = lua_absindex(L, validx);
    const char *parent = lua_tostring(L, lua_upvalueindex(2));
    if (lua_type(L, keyidx) == LUA_TSTRING)
        lua_pushfstring(L, "%s.%s", parent, lua_tostring(L, keyidx));
    else
        lua_pushstring(L, parent);
    sb_push_proxy(L, validx, lua_tostring(L, -1), true);
    lua_replace(L, validx);
    lua_pop(L, 1);
}

/* __index of a deep proxy: upvalues (real, name). */
static int proxy_index(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    lua_gettable(L, lua_upvalueindex(1));
    wrap_child(L, 3, 2);
    return 1;
}

/* __newindex: upvalue (name). */
static int proxy_newindex(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "attempt to modify read-only table '%s' (field '%s')", name,
                          lua_tostring(L, 2));
    return luaL_error(L, "attempt to modify read-only table '%s'", name);
}

/* The iterator __pairs hands out: upvalues (real, name, deep). It gets the
 * proxy as its state, never the real table. */
static int proxy_next(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    if (!lua_next(L, 3)) {
        lua_pushnil(L);
        return 1;
    }
    if (lua_toboolean(L, lua_upvalueindex(3)))
        wrap_child(L, 5, 4);
    return 2;
}

int sb_proxy_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_pushcclosure(L, proxy_next, 3);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int proxy_len(lua_State *L)
{
    lua_len(L, lua_upvalueindex(1));
    return 1;
}

/* Push a read-only view of the table at IDX. DEEP: nested tables are
 * wrapped as they are read (modules); otherwise reads go straight to the
 * real table (the standard libraries, which hold no tables). */
void sb_push_proxy(lua_State *L, int idx, const char *name, bool deep)
{
    idx = lua_absindex(L, idx);
    if (deep) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &sb_keys.proxies);
        lua_pushvalue(L, idx);
        if (lua_rawget(L, -2) == LUA_TTABLE) {
            lua_remove(L, -2);
            return;
        }
        lua_pop(L, 1);
    }
    lua_createtable(L, 0, 0); /* the proxy */
    lua_createtable(L, 0, 7); /* its metatable */
    lua_pushvalue(L, idx);
    if (deep) {
        lua_pushstring(L, name);
        lua_pushcclosure(L, proxy_index, 2);
    }
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, proxy_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, idx);
    lua_pushstring(L, name);
    lua_pushboolean(L, deep);
    lua_pushcclosure(L, sb_proxy_pairs, 3);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, proxy_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &sb_keys.proxy_tag);
    lua_setmetatable(L, -2);
    if (deep) {
        lua_pushvalue(L, idx);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4); /* cache[real] = proxy */
        lua_remove(L, -2);
    }
}
