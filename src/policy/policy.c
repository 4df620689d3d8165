/* policy.c — see policy.h. */
#include "policy/policy.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "util/exec.h"
#include "util/http.h"
#include "policy/lua_modules.h"
#include "policy/lua_sandbox.h"
#include "util/util.h"

struct vm_policy {
    struct vm_lua *lua;
    struct vm_http *http; /* made on first vmm.http, closed by vm_policy_shutdown */
    vm_policy_log_fn log_cb;
    void *log_data;
    char *path;
    bool has_decide, has_progress, has_settings;
    int run_ref;        /* the run table, or LUA_NOREF */
    char *decide_where; /* "file:line" where decide() is defined */
    int states_ref;     /* per-VM state tables for on_progress, keyed by uuid/name */
};

static const char *const hook_names[] = {"decide", "on_progress", "settings"};

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
    static const char *const builtin[] = {"vdp", "spice", "announce"}; /* reserved */
    for (size_t i = 0; i < VM_ARRAY_LEN(builtin); i++)
        if (strcmp(name, builtin[i]) == 0)
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
static const char exec_tag = 0;

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
    lua_pushlightuserdata(L, (void *)&exec_tag);
    lua_insert(L, 1);
    (void)host;
    return lua_yield(L, 3);
}

/* vmm.http{method=, url=, headers=, body=, timeout_ms=, allow_http=}: checked
 * here (so a refusal names the policy's line), then yields to the step runner
 * like vmm.exec. */
static const char http_tag = 0;

struct http_args {
    struct vm_http_request rq;
    const char *headers[VM_HTTP_MAX_HEADERS + 1];
    int nheaders;
};

/* Read the request table at idx into a (strings stay owned by the table). */
static int http_read(lua_State *L, int idx, struct http_args *a)
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
    if (http_read(L, 1, &a) < 0)
        return luaL_error(L, "vmm.http: needs url = \"https://...\" and headers as a list of "
                             "\"Name: value\" strings");
    char *why = vm_http_check(&a.rq);
    if (why) {
        lua_pushfstring(L, "vmm.http: %s", why);
        free(why);
        return lua_error(L);
    }
    lua_settop(L, 1);
    lua_pushlightuserdata(L, (void *)&http_tag);
    lua_insert(L, 1);
    return lua_yield(L, 2);
}

static int core_null(lua_State *L)
{
    vm_lua_push_null(L);
    return 1;
}

static int core_open(lua_State *L)
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
            .open = strcmp(vm_lua_sources[i].name, "vmm") == 0 ? core_open : NULL,
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

/* ---- features defined by the policy ------------------------------------ */

/* Push features[name] (a table) and return true, or push nothing. */
static bool push_feature(lua_State *L, const char *name)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "vmmigrate.features");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return false;
    }
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return false;
    }
    return true;
}

bool vm_policy_has_feature(const struct vm_policy *p, const char *name)
{
    lua_State *L = vm_lua_state(p->lua);
    if (!push_feature(L, name))
        return false;
    lua_pop(L, 1);
    return true;
}

bool vm_policy_feature_has_step(const struct vm_policy *p, const char *name, const char *step)
{
    lua_State *L = vm_lua_state(p->lua);
    if (!push_feature(L, name))
        return false;
    lua_getfield(L, -1, step);
    bool has = lua_isfunction(L, -1);
    lua_pop(L, 2);
    return has;
}

/* ---- feature steps as coroutines ---------------------------------------- */

struct vm_policy_step {
    struct vm_policy *p;
    uv_loop_t *loop;
    lua_State *co;
    int co_ref;
    char *source, *target, *name, *step;
    struct vm_exec *exec;
    struct vm_http_req *http;
    uv_timer_t timer;
    uint64_t timeout_ms;
    bool done;
    vm_policy_step_cb cb;
    void *data;
};

static void step_timer_closed(uv_handle_t *h)
{
    struct vm_policy_step *st = h->data;
    free(st->source);
    free(st->target);
    free(st->name);
    free(st->step);
    free(st);
}

static void step_finish(struct vm_policy_step *st, int rc, const char *reason)
{
    if (st->done)
        return;
    st->done = true;
    uv_timer_stop(&st->timer);
    if (st->http) {
        struct vm_http_req *h = st->http;
        st->http = NULL;
        vm_http_cancel(h); /* its callback sees done and does nothing */
    }
    lua_State *L = vm_lua_state(st->p->lua);
    luaL_unref(L, LUA_REGISTRYINDEX, st->co_ref);
    st->cb(st->data, rc, reason);
    if (!st->exec)
        uv_close((uv_handle_t *)&st->timer, step_timer_closed);
    /* else: freed when the killed command reports (exec_done) */
}

static void step_resume(struct vm_policy_step *st, int nargs);

static void exec_done(const struct vm_exec_result *r, void *data)
{
    struct vm_policy_step *st = data;
    st->exec = NULL;
    if (st->done) { /* timed out meanwhile: nothing to resume */
        uv_close((uv_handle_t *)&st->timer, step_timer_closed);
        return;
    }
    lua_State *co = st->co;
    lua_createtable(co, 0, 6);
    lua_pushinteger(co, (lua_Integer)r->status);
    lua_setfield(co, -2, "status");
    lua_pushinteger(co, r->signal);
    lua_setfield(co, -2, "signal");
    lua_pushboolean(co, r->timed_out);
    lua_setfield(co, -2, "timed_out");
    lua_pushlstring(co, r->out, r->out_len);
    lua_setfield(co, -2, "stdout");
    lua_pushlstring(co, r->err, r->err_len);
    lua_setfield(co, -2, "stderr");
    if (r->error) {
        lua_pushstring(co, r->error);
        lua_setfield(co, -2, "error");
    }
    step_resume(st, 1);
}

static void http_done(const struct vm_http_response *r, void *data)
{
    struct vm_policy_step *st = data;
    st->http = NULL;
    if (st->done)
        return;
    lua_State *co = st->co;
    lua_createtable(co, 0, 4);
    if (r->error) {
        lua_pushstring(co, r->error);
        lua_setfield(co, -2, "error");
    } else {
        lua_pushinteger(co, r->status);
        lua_setfield(co, -2, "status");
        lua_pushlstring(co, r->body, r->body_len);
        lua_setfield(co, -2, "body");
        if (r->content_type) {
            lua_pushstring(co, r->content_type);
            lua_setfield(co, -2, "content_type");
        }
    }
    step_resume(st, 1);
}

static void step_resume(struct vm_policy_step *st, int nargs)
{
    int nres = 0;
    char *err = NULL;
    int rc = vm_lua_resume(st->p->lua, st->co, nargs, &nres, &err);
    lua_State *co = st->co;
    if (rc < 0) {
        step_finish(st, -1, err ? err : vm_lua_strerror(rc));
        free(err);
        return;
    }
    if (rc == VM_LUA_YIELD) {
        if (nres == 3 && lua_touserdata(co, -3) == &exec_tag) {
            const char *host = lua_tostring(co, -2);
            const char *uri = strcmp(host, "source") == 0   ? st->source
                              : strcmp(host, "target") == 0 ? st->target
                                                            : host;
            lua_Integer n = luaL_len(co, -1);
            const char **argv = xcalloc((size_t)n + 1, sizeof(*argv));
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(co, -1, i);
                argv[i - 1] = lua_tostring(co, -1);
                lua_pop(co, 1); /* the string stays alive in the argv table */
            }
            vm_debug("policy: feature '%s' %s runs '%s' on %s", st->name, st->step, argv[0], uri);
            /* copy argv before popping the table: vm_exec_start copies it */
            uint64_t left = st->timeout_ms;
            st->exec = vm_exec_start(st->loop, uri, argv, left, exec_done, st);
            free(argv);
            lua_pop(co, nres);
            return;
        }
        if (nres == 2 && lua_touserdata(co, -2) == &http_tag) {
            struct http_args a;
            http_read(co, -1, &a); /* checked before the yield */
            if (!st->p->http)
                st->p->http = vm_http_new(st->loop);
            st->http = vm_http_start(st->p->http, &a.rq, http_done, st);
            lua_pop(co, nres); /* vm_http_start copied what it needs */
            return;
        }
        lua_pop(co, nres);
        step_finish(st, -1, "a feature step yielded something else than vmm.exec or vmm.http");
        return;
    }
    /* finished: true / nothing = done; false, "why" = failed */
    int ok = nres == 0 || lua_isnil(co, -nres) || lua_toboolean(co, -nres);
    char *reason = NULL;
    if (!ok)
        reason = xstrdup(nres >= 2 && lua_type(co, -nres + 1) == LUA_TSTRING
                             ? lua_tostring(co, -nres + 1)
                             : "no reason given");
    lua_pop(co, nres);
    step_finish(st, ok, reason);
    free(reason);
}

static void step_timeout(uv_timer_t *t)
{
    struct vm_policy_step *st = t->data;
    char *reason = xasprintf("timed out after %llu ms", (unsigned long long)st->timeout_ms);
    vm_exec_kill(st->exec);
    step_finish(st, 0, reason);
    free(reason);
}

void vm_policy_step_cancel(struct vm_policy_step *st)
{
    if (!st || st->done)
        return;
    vm_exec_kill(st->exec);
    step_finish(st, 0, "cancelled: the gate was decided without it");
}

struct vm_policy_step *vm_policy_feature_start(struct vm_policy *p, uv_loop_t *loop,
                                               const char *name, const char *step, json_t *vm,
                                               json_t *ctx, const char *source, const char *target,
                                               uint64_t timeout_ms, vm_policy_step_cb cb,
                                               void *data)
{
    lua_State *L = vm_lua_state(p->lua);
    if (!push_feature(L, name)) {
        char *why = xasprintf("feature '%s' is not defined", name);
        cb(data, -1, why);
        free(why);
        return NULL;
    }
    lua_getfield(L, -1, step);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        cb(data, 1, NULL); /* a step left out succeeds */
        return NULL;
    }
    struct vm_policy_step *st = xcalloc(1, sizeof(*st));
    st->p = p;
    st->loop = loop;
    st->cb = cb;
    st->data = data;
    st->source = xstrdup(source);
    st->target = xstrdup(target);
    st->name = xstrdup(name);
    st->step = xstrdup(step);
    st->timeout_ms = timeout_ms;
    st->co = lua_newthread(L);
    st->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_xmove(L, st->co, 1); /* the step function */
    vm_lua_push_json(st->co, vm);
    vm_lua_push_json(st->co, ctx);
    uv_timer_init(loop, &st->timer);
    st->timer.data = st;
    if (timeout_ms)
        uv_timer_start(&st->timer, step_timeout, timeout_ms, 0);
    step_resume(st, 2);
    return st->done ? NULL : st;
}

void vm_policy_shutdown(struct vm_policy *p)
{
    if (p && p->http) {
        vm_http_close(p->http, NULL, NULL);
        p->http = NULL;
    }
}
