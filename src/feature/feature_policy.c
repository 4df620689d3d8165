/* SPDX-License-Identifier: MIT */
/* feature_policy.c — features a policy defines with vmm.feature(name,
 * steps) (policy.h): whether they exist, and running one step as a
 * coroutine on the loop, resumed when the vmm.exec command or vmm.http
 * request it yielded for completes. A struct vm_policy_step is freed when
 * its timer closes, after its callback ran and any command it started
 * reported. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"
#include "util/exec.h"
#include "util/http.h"
#include "util/util.h"

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
    const struct vm_exec_hosts *hosts; /* borrowed: the run's */
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
        if (nres == 3 && lua_touserdata(co, -3) == &vm_policy_exec_tag) {
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
            st->exec = vm_exec_start(st->loop, st->hosts, uri, argv, left, exec_done, st);
            free(argv);
            lua_pop(co, nres);
            return;
        }
        if (nres == 2 && lua_touserdata(co, -2) == &vm_policy_http_tag) {
            struct http_args a;
            vm_policy_http_read(co, -1, &a); /* checked before the yield */
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
                                               const struct vm_exec_hosts *hosts,
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
    st->hosts = hosts;
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
