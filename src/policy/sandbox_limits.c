/* SPDX-License-Identifier: MIT */
/* sandbox_limits.c — the limits of a sandboxed call (lua_sandbox.h): the
 * allocator and its cap, the count hook and what a trip does, the watchdog
 * for calls the hook cannot reach, the library functions charged up front
 * (string.rep, table.*), xpcall, and vm_lua_call/vm_lua_resume, which arm
 * and disarm all of it.
 *
 * Limits: one count hook (sb_hook) on every thread of the state. While a
 * call runs (s->in_call) it adds VM_LUA_HOOK_PERIOD to s->used at each
 * firing and checks the clock. A limit "trips" the state: the thread that
 * notices switches to a hook on every line and every instruction that
 * raises the same error again, and every thread is switched on its next
 * resume, so policy code that catches the error with pcall cannot go on.
 * The allocator refuses growth past the cap; a refusal that Lua's emergency
 * collection does not cure (s->mem_failed) trips the state the same way.
 *
 * One trap in stock Lua: an error raised by a hook is raised while Lua has
 * hooks switched off (L->allowhook = 0), and stays so until a pcall
 * unwinds. Two kinds of policy code could run in that window, unmetered:
 * an xpcall message handler (Lua calls it before unwinding) and the
 * __close handlers of a coroutine that the error killed (run when it is
 * closed, any time later). So xpcall is replaced by one that skips the
 * policy's handler once the state has tripped, and a coroutine killed by a
 * trip is marked (sb_keys.threads) so its __close handlers are never run. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "policy/sandbox_priv.h"
#include "util/util.h"

/* ---- memory --------------------------------------------------------------- */

/* Make thread L run the hook before its next instruction (safe from
 * anywhere, as lua.c does from a signal handler). */
void sb_poke(lua_State *L)
{
    if (L)
        lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
}

void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct vm_lua *s = ud;
    size_t old = ptr ? osize : 0; /* without a block, osize is a type tag */

    if (nsize == 0) {
        free(ptr);
        s->mem -= old;
        return NULL;
    }
    if (s->enforce && nsize > old && s->mem - old + nsize > s->mem_max) {
        /* Refused. Lua collects and retries once; a second refusal of the
         * same request, or no retry at all, is a real failure. */
        s->mem_failed = true;
        s->refused = true;
        s->refused_ptr = ptr;
        s->refused_osize = osize;
        s->refused_nsize = nsize;
        sb_poke(s->cur);
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return nsize <= old ? ptr : NULL; /* a failed shrink keeps the block */
    if (s->refused && ptr == s->refused_ptr && osize == s->refused_osize &&
        nsize == s->refused_nsize)
        s->mem_failed = false; /* the retry after the emergency collection worked */
    s->refused = false;
    s->mem = s->mem - old + nsize;
    if (s->mem > s->mem_peak)
        s->mem_peak = s->mem;
    return p;
}

size_t vm_lua_mem_used(const struct vm_lua *s)
{
    return s->mem;
}

size_t vm_lua_mem_peak(const struct vm_lua *s)
{
    return s->mem_peak;
}

/* ---- limits ------------------------------------------------------------- */

void sb_set_hook_mode(struct vm_lua *s, lua_State *L)
{
    int mask = s->trip ? LUA_MASKCOUNT | LUA_MASKLINE : LUA_MASKCOUNT;
    int count = s->trip ? 1 : VM_LUA_HOOK_PERIOD;
    /* Only when it differs: lua_sethook restarts the count, and a policy
     * must not get a fresh period by resuming a coroutine. */
    if (lua_gethook(L) != sb_hook || lua_gethookmask(L) != mask || lua_gethookcount(L) != count)
        lua_sethook(L, sb_hook, mask, count);
}

static void trip(struct vm_lua *s, int code, const char *where)
{
    char what[64];
    s->trip = code;
    if (s->trip_msg)
        return; /* the first trip of a call is the one reported */
    if (code == VM_LUA_E_BUDGET) {
        s->trip_msg = xasprintf("%s%sinstruction budget of %" PRIu64 " exhausted", where,
                                *where ? ": " : "", s->budget);
    } else if (code == VM_LUA_E_TIMEOUT) {
        s->trip_msg = xasprintf("%s%sdeadline of %" PRIu64 " ms passed", where, *where ? ": " : "",
                                s->call_ms);
    } else {
        sb_fmt_size(s->mem_max, what, sizeof(what));
        s->trip_msg = xasprintf("%s%smemory limit of %s reached", where, *where ? ": " : "", what);
    }
}

void sb_hook(lua_State *L, lua_Debug *ar)
{
    struct vm_lua *s = state_of(L);
    char where[WHERE_LEN];

    if (!s->in_call)
        return; /* no policy code runs outside calls; nothing to police */
    if (!s->trip) {
        bool period =
            lua_gethookmask(L) == LUA_MASKCOUNT && lua_gethookcount(L) == VM_LUA_HOOK_PERIOD;
        if (period && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
            snprintf(s->last_where, sizeof(s->last_where), "%s:%d", ar->short_src, ar->currentline);
        if (s->mem_failed) {
            /* where the policy was when it last got a period: close to the
             * failed allocation (this firing is after it, maybe after a
             * pcall that caught it) */
            if (s->last_where[0])
                trip(s, VM_LUA_E_MEMORY, s->last_where);
            else
                s->trip = VM_LUA_E_MEMORY; /* the message takes this line */
        } else if (!period) {
            /* a sb_poke that came to nothing, or a thread left tripped by an
             * earlier call */
            lua_sethook(L, sb_hook, LUA_MASKCOUNT, VM_LUA_HOOK_PERIOD);
            return;
        } else {
            s->used += VM_LUA_HOOK_PERIOD;
            if (s->used > s->budget)
                trip(s, VM_LUA_E_BUDGET, s->last_where);
            else if (vm_mono_ms() >= s->deadline_ms)
                trip(s, VM_LUA_E_TIMEOUT, s->last_where);
            else
                return;
        }
    }
    sb_set_hook_mode(s, L);
    if (!s->trip_msg) {
        sb_where_from(L, 0, where, sizeof(where));
        trip(s, s->trip, where);
    }
    lua_pushstring(L, s->trip_msg);
    lua_error(L);
}

/* Trip from a C function of the sandbox, at its Lua caller's line. */
static int trip_here(lua_State *L, int code)
{
    struct vm_lua *s = state_of(L);
    char where[WHERE_LEN];
    sb_where_from(L, 1, where, sizeof(where));
    trip(s, code, where);
    sb_set_hook_mode(s, L);
    lua_pushstring(L, s->trip_msg);
    return lua_error(L);
}

/* ---- the watchdog: what the count hook cannot reach -------------------- *
 * One call into the Lua C library can run without ever returning to the
 * VM, so neither the instruction budget nor the deadline can stop it (a
 * backtracking string pattern: string.find(s, ".-.-.-.-x") on a long s).
 * The loop would hang with it, holding the run's lock, deaf to SIGTERM. A
 * thread of its own watches the running call; one stuck far past its
 * deadline is reported, once, to the function the process set with
 * vm_lua_set_stuck(): the run ends the process there (exit status 6) with
 * a line saying why, and the journal makes that a crash the next run
 * settles, instead of a hang. The sandbox itself never ends the process. */
static _Atomic uint64_t wd_since; /* vm_mono_ms() when the running call began; 0: none */
static _Atomic uint64_t wd_limit_ms;
static char wd_where[WHERE_LEN]; /* the called function, for the message */
static pthread_once_t wd_once = PTHREAD_ONCE_INIT;
static _Atomic(vm_lua_stuck_fn) wd_fn; /* who hears of a stuck call; NULL: no one */
static void *_Atomic wd_data;

void vm_lua_set_stuck(vm_lua_stuck_fn fn, void *data)
{
    atomic_store(&wd_data, data);
    atomic_store(&wd_fn, fn);
}

static void *wd_main(void *arg)
{
    uint64_t reported = 0; /* wd_since of the call last reported */
    (void)arg;
    for (;;) {
        usleep(250 * 1000);
        uint64_t since = atomic_load(&wd_since);
        if (since && since != reported && vm_mono_ms() - since > atomic_load(&wd_limit_ms)) {
            char what[256];
            snprintf(what, sizeof(what),
                     "policy%s%s: stuck for %" PRIu64
                     " ms in library code the instruction budget cannot interrupt (a "
                     "backtracking string pattern?)",
                     wd_where[0] ? " " : "", wd_where, vm_mono_ms() - since);
            reported = since;
            vm_lua_stuck_fn fn = atomic_load(&wd_fn);
            if (fn)
                fn(atomic_load(&wd_data), what);
        }
    }
    return NULL;
}

static void wd_start(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, wd_main, NULL) == 0)
        pthread_detach(t);
}

static void wd_arm(struct vm_lua *s)
{
    pthread_once(&wd_once, wd_start);
    snprintf(wd_where, sizeof(wd_where), "%s", s->fn_where);
    atomic_store(&wd_limit_ms, s->call_ms + 4000);
    atomic_store(&wd_since, vm_mono_ms());
}

static void arm(struct vm_lua *s, lua_State *co, uint64_t budget)
{
    wd_arm(s);
    s->in_call = true;
    s->enforce = true;
    s->trip = 0;
    free(s->trip_msg);
    s->trip_msg = NULL;
    s->mem_failed = s->refused = false;
    s->used = 0;
    s->budget = budget;
    s->deadline_ms = vm_mono_ms() + s->call_ms;
    s->last_where[0] = '\0';
    s->cur = co;
    lua_sethook(co, sb_hook, LUA_MASKCOUNT, VM_LUA_HOOK_PERIOD);
}

static void disarm(struct vm_lua *s)
{
    atomic_store(&wd_since, 0);
    s->in_call = false;
    s->enforce = false;
    s->cur = NULL;
}

/* The outcome of a call that returned STATUS. */
static int classify(struct vm_lua *s, int status)
{
    if (s->trip)
        return s->trip;
    if (status == LUA_OK || status == LUA_YIELD)
        return s->mem_failed ? VM_LUA_E_MEMORY : 0;
    if (status == LUA_ERRMEM || s->mem_failed)
        return VM_LUA_E_MEMORY;
    return VM_LUA_E_RUNTIME;
}


/* string.rep, checked against the memory cap first so the error names the
 * line (an allocator refusal cannot). Upvalue: the real rep. */
int sb_str_rep(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n > 0 && l == 0 && lsep == 0) {
        lua_pushliteral(L, ""); /* Lua would loop n times copying nothing */
        return 1;
    }
    if (n > 0 && s->enforce) {
        double total = (double)l * (double)n + (double)lsep * (double)(n - 1);
        if (total > (double)(s->mem_max > s->mem ? s->mem_max - s->mem : 0))
            return trip_here(L, VM_LUA_E_MEMORY);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* xpcall's message handler: upvalue (the policy's handler). */
static int sb_xpcall_msgh(lua_State *L)
{
    if (state_of(L)->trip)
        return 1; /* raised by the hook, hooks are off: do not run policy code */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* As lbaselib's finishpcall. */
static int finish_pcall(lua_State *L, int status, lua_KContext extra)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_xpcall_msgh, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1); /* first result */
    lua_pushvalue(L, 1);   /* the function */
    lua_rotate(L, 3, 2);   /* below its arguments */
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
    return finish_pcall(L, status, 2);
}

/* The table functions loop in C over ranges the policy chooses (and __len
 * can claim any length), calling no Lua code on plain tables, or only C
 * metamethods: no instruction runs, the hook never fires. So they are
 * charged their element count against the budget before they start.
 * Upvalues: (the real function, which one). */
enum tab_fn { TAB_CONCAT, TAB_INSERT, TAB_REMOVE, TAB_MOVE, TAB_SORT, TAB_UNPACK };

int sb_tab_charged(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    double n = 0, i, j;
    switch ((enum tab_fn)lua_tointeger(L, lua_upvalueindex(2))) {
    case TAB_CONCAT:   /* (list, sep, i, j) */
    case TAB_UNPACK: { /* (list, i, j) */
        int first = lua_tointeger(L, lua_upvalueindex(2)) == TAB_CONCAT ? 3 : 2;
        i = (double)luaL_optinteger(L, first, 1);
        j = lua_isnoneornil(L, first + 1) ? (double)luaL_len(L, 1)
                                          : (double)luaL_checkinteger(L, first + 1);
        n = j - i + 1;
        break;
    }
    case TAB_INSERT: /* (list, [pos,] value): appending shifts nothing */
        if (lua_gettop(L) == 3)
            n = (double)luaL_len(L, 1) - (double)luaL_checkinteger(L, 2) + 1;
        break;
    case TAB_REMOVE: { /* (list [, pos]): removing the last shifts nothing */
        double size = (double)luaL_len(L, 1);
        n = lua_isnoneornil(L, 2) ? 0 : size - (double)luaL_checkinteger(L, 2);
        break;
    }
    case TAB_MOVE: /* (a1, f, e, t [, a2]) */
        n = (double)luaL_checkinteger(L, 3) - (double)luaL_checkinteger(L, 2) + 1;
        break;
    case TAB_SORT:
        n = (double)luaL_len(L, 1);
        n = n > 1 ? n * log2(n) : 0;
        break;
    }
    if (s->in_call && n > 0) {
        if (n > (double)(s->budget - (s->used < s->budget ? s->used : s->budget)))
            return trip_here(L, VM_LUA_E_BUDGET);
        s->used += (uint64_t)n;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Call the function under NARGS arguments on s->L's top, protected, within
 * BUDGET. See vm_lua_call(). */
int sb_run(struct vm_lua *s, uint64_t budget, int nargs, int nresults, char **err)
{
    lua_State *L = s->L;
    lua_Debug ar;
    int base = lua_gettop(L) - nargs;

    s->fn_where[0] = '\0';
    if (lua_type(L, base) == LUA_TFUNCTION) {
        lua_pushvalue(L, base);
        lua_getinfo(L, ">S", &ar);
        if (ar.linedefined > 0)
            snprintf(s->fn_where, sizeof(s->fn_where), "%s:%d", ar.short_src, ar.linedefined);
        else
            snprintf(s->fn_where, sizeof(s->fn_where), "%s", ar.short_src);
    }
    lua_pushcfunction(L, sb_msgh);
    lua_insert(L, base);
    arm(s, L, budget);
    int st = lua_pcall(L, nargs, nresults, base);
    int code = classify(s, st);
    disarm(s);
    if (code == 0) {
        lua_remove(L, base);
        return 0;
    }
    if (err)
        *err = sb_call_error(s, L, -1, code);
    lua_settop(L, base - 1);
    lua_gc(L, LUA_GCCOLLECT, 0); /* leave the next call a clean heap */
    return code;
}

int vm_lua_call(struct vm_lua *s, int nargs, int nresults, char **err)
{
    lua_State *L = s->L;
    if (err)
        *err = NULL;
    if (s->in_call || nargs < 0 || lua_gettop(L) < nargs + 1) {
        if (err)
            *err = xstrdup(s->in_call ? "vm_lua_call: a call is already running"
                                      : "vm_lua_call: no function on the stack");
        return VM_LUA_E_STATE;
    }
    return sb_run(s, s->call_insns, nargs, nresults, err);
}

int vm_lua_resume(struct vm_lua *s, lua_State *co, int nargs, int *nres, char **err)
{
    char where[WHERE_LEN];
    if (err)
        *err = NULL;
    *nres = 0;
    if (s->in_call || !co || co == s->L || state_of(co) != s) {
        if (err)
            *err = xstrdup("vm_lua_resume: not a coroutine of this state, or a call is running");
        return VM_LUA_E_STATE;
    }
    s->fn_where[0] = '\0';
    arm(s, co, s->call_insns);
    int st = lua_resume(co, s->L, nargs, nres);
    int code = classify(s, st);
    disarm(s);
    if (code == 0)
        return st == LUA_YIELD ? VM_LUA_YIELD : 0;
    if (st == LUA_OK || st == LUA_YIELD) {
        lua_pop(co, *nres);
    } else if (err && !s->trip_msg && code != VM_LUA_E_MEMORY) {
        /* no message handler here, but the dead coroutine keeps its stack */
        int t = lua_type(co, -1);
        const char *m = t == LUA_TSTRING ? lua_tostring(co, -1) : NULL;
        if (!m || !sb_has_location(m)) {
            sb_where_from(co, 0, where, sizeof(where));
            if (t == LUA_TSTRING || t == LUA_TNUMBER)
                lua_pushfstring(co, "%s%s%s", where, *where ? ": " : "", lua_tostring(co, -1));
            else
                lua_pushfstring(co, "%s%s(error object is a %s value)", where, *where ? ": " : "",
                                lua_typename(co, t));
            lua_remove(co, -2);
        }
    }
    if (err)
        *err = sb_call_error(s, co, -1, code);
    if (st != LUA_OK && st != LUA_YIELD)
        lua_pop(co, 1);
    *nres = 0;
    lua_gc(s->L, LUA_GCCOLLECT, 0);
    return code;
}
