/* SPDX-License-Identifier: MIT */
/* sandbox_coro.c — the policy's coroutine library (lua_sandbox.h): create,
 * resume, wrap and close replaced so that every thread carries the count
 * hook, a fresh thread is charged one period, a trip inside a coroutine
 * holds in its resumer, and a coroutine a trip killed never runs its
 * __close handlers. Threads are Lua values: the state owns them. */
#include <lauxlib.h>

#include "policy/sandbox_priv.h"

/* ---- coroutines: every thread carries the hook ------------------------ */

/* sb_keys.threads[co]: false for a coroutine of the policy, true once a trip
 * killed it. The key is made at creation, so marking never allocates. */
static void thread_mark(lua_State *L, lua_State *co, bool killed)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sb_keys.threads);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushboolean(L, killed);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static bool thread_killed(lua_State *L, lua_State *co)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sb_keys.threads);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    bool killed = lua_rawget(L, -2) == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 2);
    return killed;
}

int sb_co_create(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    /* A fresh thread starts a fresh count: charge one period for it so a
     * loop of short-lived coroutines cannot run unmetered. */
    s->used += VM_LUA_HOOK_PERIOD;
    lua_State *co = lua_newthread(L);
    lua_sethook(co, sb_hook, LUA_MASKCOUNT, VM_LUA_HOOK_PERIOD);
    sb_set_hook_mode(s, co);
    thread_mark(L, co, false);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    return 1;
}

/* As lcorolib's auxresume: results or error on L's top; count or -1. */
static int aux_resume(lua_State *L, lua_State *co, int narg)
{
    struct vm_lua *s = state_of(L);
    int nres;
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, narg);
    sb_set_hook_mode(s, co);
    lua_State *prev = s->cur;
    s->cur = co;
    int st = lua_resume(co, L, narg, &nres);
    s->cur = prev;
    sb_set_hook_mode(s, L); /* a trip inside co holds here too */
    if (s->mem_failed)
        sb_poke(L);
    if (st == LUA_OK || st == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    if (s->trip)
        thread_mark(L, co, true);
    lua_xmove(co, L, 1);
    return -1;
}

int sb_co_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    int r = aux_resume(L, co, lua_gettop(L) - 1);
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

/* The function coroutine.wrap returns: upvalue (thread). */
static int sb_co_wrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int r = aux_resume(L, co, lua_gettop(L));
    if (r >= 0)
        return r;
    int st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD && !thread_killed(L, co)) { /* close it */
#if LUA_VERSION_RELEASE_NUM >= 50406
        st = lua_closethread(co, L);
#else
        st = lua_resetthread(co);
#endif
        lua_xmove(co, L, 1);
    }
    if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING && !sb_has_location(lua_tostring(L, -1))) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* coroutine.close, except for coroutines a trip killed: their __close
 * handlers would run with hooks off. */
int sb_co_close(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    if (thread_killed(L, co)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "coroutine was stopped by a limit (its __close handlers do not run)");
        return 2;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

int sb_co_wrap(lua_State *L)
{
    sb_co_create(L);
    lua_pushcclosure(L, sb_co_wrapped, 1);
    return 1;
}
