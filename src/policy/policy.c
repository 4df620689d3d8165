/* SPDX-License-Identifier: MIT */
/* policy.c — see policy.h: loading a policy with the `vmm` module, the
 * hooks it defines, and calling decide, settings and on_progress. The `vmm`
 * module's C functions are in policy_api.c, the feature steps in
 * feature/feature_policy.c; struct vm_policy is in policy_priv.h. */
#include "policy/policy.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "util/http.h"
#include "policy/lua_modules.h"
#include "policy/lua_sandbox.h"
#include "policy/policy_priv.h"
#include "util/util.h"

static const char *const hook_names[] = {"decide", "on_progress", "settings"};

static void policy_print(void *data, const char *where, const char *msg)
{
    (void)data;
    vm_info("policy %s: %s", where, msg);
}

/* ---- load ------------------------------------------------------------- */

struct vm_policy *vm_policy_load(const char *path, char **err)
{
    struct vm_lua_module modules[8];
    size_t n = 0;
    for (size_t i = 0; vm_lua_sources[i].name && n < VM_ARRAY_LEN(modules); i++)
        modules[n++] = (struct vm_lua_module){
            .name = vm_lua_sources[i].name,
            .open = strcmp(vm_lua_sources[i].name, "vmm") == 0 ? vm_policy_api_open : NULL,
            .source = vm_lua_sources[i].text,
        };
    struct vm_lua_opts opts = {
        .modules = modules,
        .nmodules = n,
        .print = policy_print,
    };
    struct vm_lua *lua = NULL;
    char *lerr = NULL;
    int rc = vm_lua_load(path, &opts, &lua, &lerr);
    if (rc < 0) {
        *err = xstrdup(lerr ? lerr : vm_lua_strerror(rc));
        free(lerr);
        return NULL;
    }
    struct vm_policy *p = xcalloc(1, sizeof(*p));
    p->lua = lua;
    p->path = xstrdup(path);
    p->has_decide = vm_lua_has_hook(lua, "decide");
    {
        lua_State *L0 = vm_lua_state(lua);
        lua_Debug ar;
        if (vm_lua_push_hook(lua, "decide") && lua_getinfo(L0, ">S", &ar))
            p->decide_where = xasprintf("%s:%d", ar.short_src, ar.linedefined);
    }
    p->has_progress = vm_lua_has_hook(lua, "on_progress");
    p->has_settings = vm_lua_has_hook(lua, "settings");
    p->run_ref = LUA_NOREF;
    lua_State *L = vm_lua_state(lua);
    lua_pushlightuserdata(L, p);
    lua_setfield(L, LUA_REGISTRYINDEX, "vmmigrate.policy");
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "vmmigrate.loaded");
    lua_newtable(L);
    p->states_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (!p->has_decide) {
        *err = xasprintf("policy %s: defines no decide(vm, run) function, so it would move "
                         "nothing",
                         path);
        vm_policy_free(p);
        return NULL;
    }
    return p;
}

void vm_policy_set_logger(struct vm_policy *p, vm_policy_log_fn fn, void *data)
{
    p->log_cb = fn;
    p->log_data = data;
}

void vm_policy_set_stuck(vm_policy_stuck_fn fn, void *data)
{
    vm_lua_set_stuck(fn, data);
}

void vm_policy_free(struct vm_policy *p)
{
    if (!p)
        return;
    vm_lua_free(p->lua);
    free(p->decide_where);
    free(p->path);
    free(p);
}

const char *vm_policy_path(const struct vm_policy *p)
{
    return p->path;
}

bool vm_policy_has_hook(const struct vm_policy *p, const char *name)
{
    if (strcmp(name, "decide") == 0)
        return p->has_decide;
    if (strcmp(name, "on_progress") == 0)
        return p->has_progress;
    if (strcmp(name, "settings") == 0)
        return p->has_settings;
    return false;
}

json_t *vm_policy_hooks(const struct vm_policy *p)
{
    json_t *a = json_array();
    for (size_t i = 0; i < VM_ARRAY_LEN(hook_names); i++)
        if (vm_policy_has_hook(p, hook_names[i]))
            json_array_append_new(a, json_string(hook_names[i]));
    return a;
}

/* ---- decide ----------------------------------------------------------- */

void vm_policy_set_run(struct vm_policy *p, json_t *run)
{
    lua_State *L = vm_lua_state(p->lua);
    luaL_unref(L, LUA_REGISTRYINDEX, p->run_ref);
    vm_lua_push_json(L, run);
    p->run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static int policy_decide(void *ctx, json_t *vm, json_t **decision, char **err)
{
    struct vm_policy *p = ctx;
    lua_State *L = vm_lua_state(p->lua);
    const char *name = json_string_value(json_object_get(vm, "name"));
    *decision = NULL;
    if (!vm_lua_push_hook(p->lua, "decide")) {
        *err = xasprintf("%s: no decide() hook", p->path);
        return -1;
    }
    vm_lua_push_json(L, vm);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->run_ref);
    char *lerr = NULL;
    int rc = vm_lua_call(p->lua, 2, 1, &lerr);
    if (rc < 0) {
        *err = xasprintf("%s (decide() for '%s')", lerr ? lerr : vm_lua_strerror(rc),
                         name ? name : "?");
        free(lerr);
        return -1;
    }
    if (lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) {
        *err = xasprintf("%s: decide() for '%s' returned a %s, not a table or nil", p->path,
                         name ? name : "?", luaL_typename(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    *decision = vm_lua_to_json(L, -1, &lerr);
    lua_pop(L, 1);
    if (!*decision) {
        *err = xasprintf("%s: decide() for '%s' returned %s", p->path, name ? name : "?",
                         lerr ? lerr : "something that is not plain data");
        free(lerr);
        return -1;
    }
    /* An empty Lua table arrives as [] or {}: both mean "migrate, defaults". */
    if (json_is_array(*decision) && json_array_size(*decision) == 0) {
        json_decref(*decision);
        *decision = json_object();
    }
    return 0;
}

static void policy_reserve(void *ctx, int target_index, uint64_t planned)
{
    struct vm_policy *p = ctx;
    lua_State *L = vm_lua_state(p->lua);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->run_ref);
    if (lua_istable(L, -1)) {
        lua_pushliteral(L, "targets");
        lua_rawget(L, -2);
        if (lua_istable(L, -1)) {
            lua_rawgeti(L, -1, target_index + 1);
            if (lua_istable(L, -1)) {
                lua_pushliteral(L, "planned_memory_bytes");
                lua_pushinteger(L, (lua_Integer)planned);
                lua_rawset(L, -3);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void vm_policy_plan_ops(struct vm_policy *p, struct vm_plan_ops *ops)
{
    ops->decide = policy_decide;
    ops->reserve = policy_reserve;
    ops->ctx = p;
    ops->origin = p->decide_where ? p->decide_where : p->path;
}

/* ---- settings --------------------------------------------------------- */

static int call_settings(struct vm_policy *p, json_t *run, json_t **settings, char **err)
{
    lua_State *L = vm_lua_state(p->lua);
    *settings = NULL;
    if (!p->has_settings)
        return 0;
    if (!vm_lua_push_hook(p->lua, "settings")) {
        *err = xasprintf("%s: no settings() hook", p->path);
        return -1;
    }
    vm_lua_push_json(L, run);
    char *lerr = NULL;
    int rc = vm_lua_call(p->lua, 1, 1, &lerr);
    if (rc < 0) {
        *err = xasprintf("%s (settings())", lerr ? lerr : vm_lua_strerror(rc));
        free(lerr);
        return -1;
    }
    if (!lua_isnil(L, -1)) {
        *settings = vm_lua_to_json(L, -1, &lerr);
        if (!*settings) {
            *err = xasprintf("%s: settings() returned %s", p->path,
                             lerr ? lerr : "something that is not plain data");
            free(lerr);
            lua_pop(L, 1);
            return -1;
        }
    }
    lua_pop(L, 1);
    return 0;
}

int vm_policy_settings(struct vm_policy *p, json_t *run, struct vm_run_settings *out, char **err)
{
    json_t *sj = NULL;
    char *e = NULL;
    memset(out, 0, sizeof(*out));
    int rc = call_settings(p, run, &sj, err);
    if (rc == 0 && sj && vm_settings_parse(sj, out, &e) < 0) {
        *err = xasprintf("%s: %s", p->path, e);
        free(e);
        rc = -1;
    }
    json_decref(sj);
    return rc;
}

/* ---- on_progress ------------------------------------------------------ */

int vm_policy_progress(struct vm_policy *p, json_t *vm, json_t *progress, struct vm_action *action,
                       char **err)
{
    lua_State *L = vm_lua_state(p->lua);
    memset(action, 0, sizeof(*action));
    if (!p->has_progress)
        return 0;
    const char *key = json_string_value(json_object_get(vm, "uuid"));
    if (!key)
        key = json_string_value(json_object_get(vm, "name"));
    if (!vm_lua_push_hook(p->lua, "on_progress")) {
        *err = xasprintf("%s: no on_progress() hook", p->path);
        return -1;
    }
    vm_lua_push_json(L, vm);
    vm_lua_push_json(L, progress);
    /* state: one table per VM, kept across calls */
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->states_ref);
    lua_pushstring(L, key ? key : "?");
    lua_rawget(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushstring(L, key ? key : "?");
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, -2); /* the states table */
    char *lerr = NULL;
    int rc = vm_lua_call(p->lua, 3, 1, &lerr);
    if (rc < 0) {
        *err = xasprintf("%s (on_progress())", lerr ? lerr : vm_lua_strerror(rc));
        free(lerr);
        return -1;
    }
    json_t *j = NULL;
    if (!lua_isnil(L, -1)) {
        j = vm_lua_to_json(L, -1, &lerr);
        if (!j) {
            lua_pop(L, 1);
            *err = xasprintf("%s: on_progress() returned %s", p->path,
                             lerr ? lerr : "something that is not plain data");
            free(lerr);
            return -1;
        }
    }
    lua_pop(L, 1);
    rc = vm_action_parse(j, action, &lerr);
    json_decref(j);
    if (rc < 0) {
        *err = xasprintf("%s: %s", p->path, lerr);
        free(lerr);
        return -1;
    }
    return 0;
}


void vm_policy_shutdown(struct vm_policy *p)
{
    if (p && p->http) {
        vm_http_close(p->http, NULL, NULL);
        p->http = NULL;
    }
}
