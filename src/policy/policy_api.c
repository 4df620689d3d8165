/* SPDX-License-Identifier: MIT */
/* policy_api.c — the C half of the `vmm` module a policy requires
 * (lua/vmm.lua is the Lua half): vmm.log, vmm.feature, vmm.exec, vmm.http,
 * vmm.null and vmm.array. vmm.feature records the steps in the state's
 * registry; vmm.exec and vmm.http only check their arguments and yield to
 * the step runner (feature/feature_policy.c), which does the work. Owns
 * nothing outside the Lua state. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"
#include "util/http.h"
#include "util/util.h"

/* ---- the C half of the vmm module ------------------------------------- */

static int core_log(lua_State *L)
{
    const char *level = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    lua_Debug ar;
    char where[256] = "policy";
    /* level 2: the policy line that called vmm.log.x (level 1 is vmm.lua) */
    if (lua_getstack(L, 2, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        snprintf(where, sizeof(where), "%s:%d", ar.short_src, ar.currentline);
    enum vm_log_level lv = strcmp(level, "error") == 0  ? VM_LOG_ERROR
                           : strcmp(level, "warn") == 0 ? VM_LOG_WARN
                           : strcmp(level, "info") == 0 ? VM_LOG_INFO
                                                        : VM_LOG_DEBUG;
    vm_log(lv, "policy %s: %s", where, msg);
    lua_getfield(L, LUA_REGISTRYINDEX, "vmmigrate.policy");
    struct vm_policy *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (p && p->log_cb)
        p->log_cb(p->log_data, level, where, msg);
    return 0;
}

/* vmm.feature(name, {prepare=, gate=, after=, deinit=}): register a feature
 * implemented by the policy. Only while the policy loads. */
static vm_policy_reserved_fn reserved;

void vm_policy_set_reserved(vm_policy_reserved_fn fn)
{
    reserved = fn;
}

static const char *const feature_steps[] = {"probe", "prepare", "gate", "after", "deinit"};

static int core_feature(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, LUA_REGISTRYINDEX, "vmmigrate.loaded");
    bool loaded = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (loaded)
        return luaL_error(L,
                          "vmm.feature('%s'): features are defined while the policy loads, "
                          "not from a hook",
                          name);
    size_t len = strlen(name);
    if (!len || len > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
        return luaL_error(L, "vmm.feature: '%s' is not a name of [a-z0-9_-], 1-64 characters",
                          name);
    if (reserved && reserved(name))
        return luaL_error(L, "vmm.feature: '%s' is a built-in feature", name);
    /* Copy the step functions (only those) into our own table. */
    lua_newtable(L);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        bool known = false;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (size_t i = 0; i < VM_ARRAY_LEN(feature_steps); i++)
                known |= strcmp(lua_tostring(L, -2), feature_steps[i]) == 0;
        if (!known)
            return luaL_error(L,
                              "vmm.feature('%s'): unknown key '%s' (probe, prepare, gate, "
                              "after, deinit)",
                              name, lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
        if (!lua_isfunction(L, -1))
            return luaL_error(L, "vmm.feature('%s'): %s must be a function", name,
                              lua_tostring(L, -2));
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
        n++;
    }
    if (!n)
        return luaL_error(L, "vmm.feature('%s'): no step defined", name);
    lua_getfield(L, LUA_REGISTRYINDEX, "vmmigrate.features");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, "vmmigrate.features");
    }
    lua_getfield(L, -1, name);
    if (!lua_isnil(L, -1))
        return luaL_error(L, "vmm.feature: '%s' defined twice", name);
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, name);
    return 0;
}

/* vmm.exec(host, argv): yields to the step runner, which runs the command
 * (exec.h) and resumes with its result. Only inside a feature step. */
const char vm_policy_exec_tag = 0;

static int core_exec(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isyieldable(L))
        return luaL_error(L, "vmm.exec: only inside a feature step (prepare, gate, after, "
                             "deinit)");
    lua_Integer n = luaL_len(L, 2);
    if (n < 1 || n > 256)
        return luaL_error(L, "vmm.exec: argv must be a list of 1 to 256 strings");
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
            return luaL_error(L, "vmm.exec: argv[%d] is not a string", (int)i);
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_pushlightuserdata(L, (void *)&vm_policy_exec_tag);
    lua_insert(L, 1);
    (void)host;
    return lua_yield(L, 3);
}

/* vmm.http{method=, url=, headers=, body=, timeout_ms=, allow_http=}: checked
 * here (so a refusal names the policy's line), then yields to the step runner
 * like vmm.exec. */
const char vm_policy_http_tag = 0;

/* Read the request table at idx into a (strings stay owned by the table). */
int vm_policy_http_read(lua_State *L, int idx, struct http_args *a)
{
    memset(a, 0, sizeof(*a));
    lua_getfield(L, idx, "url");
    a->rq.url = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, idx, "method");
    a->rq.method = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, idx, "body");
    a->rq.body = lua_tolstring(L, -1, &a->rq.body_len);
    lua_pop(L, 1);
    lua_getfield(L, idx, "timeout_ms");
    a->rq.timeout_ms =
        lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 ? (uint64_t)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    lua_getfield(L, idx, "allow_http");
    a->rq.allow_http = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, idx, "headers");
    if (lua_istable(L, -1)) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n && a->nheaders < VM_HTTP_MAX_HEADERS; i++) {
            lua_rawgeti(L, -1, i);
            const char *h = lua_tostring(L, -1);
            lua_pop(L, 1); /* the string stays referenced by the table */
            if (!h)
                return -1;
            a->headers[a->nheaders++] = h;
        }
        a->rq.headers = a->headers;
    }
    lua_pop(L, 1);
    return a->rq.url ? 0 : -1;
}

static int core_http(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isyieldable(L))
        return luaL_error(L, "vmm.http: only inside a feature step (probe, prepare, gate, "
                             "after, deinit)");
    struct http_args a;
    if (vm_policy_http_read(L, 1, &a) < 0)
        return luaL_error(L, "vmm.http: needs url = \"https://...\" and headers as a list of "
                             "\"Name: value\" strings");
    char *why = vm_http_check(&a.rq);
    if (why) {
        lua_pushfstring(L, "vmm.http: %s", why);
        free(why);
        return lua_error(L);
    }
    lua_settop(L, 1);
    lua_pushlightuserdata(L, (void *)&vm_policy_http_tag);
    lua_insert(L, 1);
    return lua_yield(L, 2);
}

static int core_null(lua_State *L)
{
    vm_lua_push_null(L);
    return 1;
}

int vm_policy_api_open(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, core_log);
    lua_setfield(L, -2, "log");
    lua_pushcfunction(L, core_feature);
    lua_setfield(L, -2, "feature");
    lua_pushcfunction(L, core_exec);
    lua_setfield(L, -2, "exec");
    lua_pushcfunction(L, core_http);
    lua_setfield(L, -2, "http");
    core_null(L);
    lua_setfield(L, -2, "null");
    lua_pushcfunction(L, vm_lua_new_array);
    lua_setfield(L, -2, "array");
    return 1;
}
