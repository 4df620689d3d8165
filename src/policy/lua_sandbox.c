/* lua_sandbox.c — see lua_sandbox.h.
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
 * A read-only proxy is an empty table whose metatable forwards reads,
 * pairs() and # to the real table, raises on writes, hides itself
 * (__metatable = false) and carries PROXY_TAG so that rawset refuses it.
 * Stock Lua 5.4 has no read-only tables; the proxy is the substitute, and
 * it works because nothing can reach the real tables behind it.
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
 * trip is marked (reg_threads) so its __close handlers are never run. */
#include "policy/lua_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "util/exitcode.h"
#include "util/util.h"

#define DEFAULT_MEM (64u << 20)
#define DEFAULT_LOAD_INSNS 50000000u
#define DEFAULT_CALL_INSNS 10000000u
#define DEFAULT_CALL_MS 1000u
#define PRINT_MAX 1000 /* bytes of one print() line */
#define ERR_MAX 2000   /* bytes of one *err message */
#define WHERE_LEN (LUA_IDSIZE + 24)

/* Registry keys and sentinels: the addresses of these (not const, so that
 * no compiler may merge them). */
static char reg_globals, reg_base, reg_env, reg_loaded, reg_proxies, reg_array_mt, reg_threads;
static char proxy_tag, null_tag, loading_tag;

struct vm_lua {
    lua_State *L;
    size_t mem_max;
    uint64_t load_insns, call_insns, call_ms;
    struct vm_lua_module *modules; /* copies */
    size_t nmodules;
    void (*print)(void *data, const char *where, const char *msg);
    void *print_data;
    char *dir; /* directory of the policy file, for require; NULL for buffers */

    /* memory */
    size_t mem, mem_peak;
    bool enforce;      /* refuse growth past mem_max (policy code may run) */
    bool mem_failed;   /* a refusal was not cured by an emergency collection */
    bool refused;      /* the last growth request was refused ... */
    void *refused_ptr; /* ... and was this one (Lua retries it once) */
    size_t refused_osize, refused_nsize;

    /* the running call */
    bool in_call, frozen;
    lua_State *cur; /* thread running policy code, for the allocator's poke */
    uint64_t budget, used, deadline_ms;
    int trip;                   /* 0 or VM_LUA_E_BUDGET / _TIMEOUT / _MEMORY */
    char *trip_msg;             /* "file:line: what", the first trip of the call */
    char fn_where[WHERE_LEN];   /* "file:line" where the called function starts */
    char last_where[WHERE_LEN]; /* where the hook last saw the policy, "" = never */
};

static struct vm_lua *state_of(lua_State *L)
{
    return *(struct vm_lua **)lua_getextraspace(L);
}

const char *vm_lua_strerror(int code)
{
    switch (code) {
    case VM_LUA_OK:
        return "success";
    case VM_LUA_E_RUNTIME:
        return "policy error";
    case VM_LUA_E_SYNTAX:
        return "policy does not compile";
    case VM_LUA_E_BUDGET:
        return "policy exceeded its instruction budget";
    case VM_LUA_E_TIMEOUT:
        return "policy exceeded its deadline";
    case VM_LUA_E_MEMORY:
        return "policy exceeded its memory limit";
    case VM_LUA_E_FILE:
        return "policy file refused";
    case VM_LUA_E_STATE:
        return "policy state misused";
    case VM_LUA_E_DATA:
        return "policy value is not plain data";
    default:
        return "unknown policy error";
    }
}

/* ---- small helpers ------------------------------------------------------ */

static void fmt_size(size_t n, char *buf, size_t len)
{
    if (n && n % (1u << 20) == 0)
        snprintf(buf, len, "%zu MiB", n >> 20);
    else if (n && n % 1024 == 0)
        snprintf(buf, len, "%zu KiB", n >> 10);
    else
        snprintf(buf, len, "%zu bytes", n);
}

/* Length of the valid UTF-8 sequence at S (at most N bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xe0) == 0xc0 ? 2
                 : (s[0] & 0xf0) == 0xe0 ? 3
                 : (s[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((len == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (len == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (len == 4 && s[0] == 0xf0 && s[1] < 0x90) || (len == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return len;
}

/* A malloc'd one-line, valid UTF-8 copy of S for logs and *err: newlines
 * and tabs escaped, other control characters and invalid bytes replaced by
 * '?', cut at MAX bytes. */
static char *one_line(const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = len < max ? len : max;
    char *out = xmalloc(2 * n + 4);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t l = utf8_len(u + i, n - i);
        if (c == '\n' || c == '\t' || c == '\r') {
            out[o++] = '\\';
            out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            i++;
        } else if (l == 0 || c < 0x20 || c == 0x7f) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, u + i, l);
            o += l;
            i += l;
        }
    }
    if (len > max) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* Does M start with a Lua location, "something:LINE:"? */
static bool has_location(const char *m)
{
    for (const char *p = m; *p && *p != '\n' && p - m < 2 * LUA_IDSIZE; p++) {
        if (*p != ':' || p[1] < '0' || p[1] > '9')
            continue;
        const char *q = p + 1;
        while (*q >= '0' && *q <= '9')
            q++;
        if (*q == ':')
            return true;
    }
    return false;
}

/* "short_src:line" of the innermost Lua function at or above LEVEL, or "". */
static void where_from(lua_State *L, int level, char *buf, size_t len)
{
    lua_Debug ar;
    buf[0] = '\0';
    for (; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            snprintf(buf, len, "%s:%d", ar.short_src, ar.currentline);
            return;
        }
    }
}

/* luaL_error, but located at the innermost Lua line even when the caller is
 * a C function (pcall(require, "x")). */
static int error_at_lua(lua_State *L, const char *fmt, ...)
{
    char where[WHERE_LEN];
    va_list ap;
    where_from(L, 1, where, sizeof(where));
    lua_pushfstring(L, "%s%s", where, *where ? ": " : "");
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

/* Is the value at IDX one of our read-only proxies (or the _ENV proxy)? */
static bool is_proxy(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return false;
    bool tagged = lua_rawgetp(L, -1, &proxy_tag) != LUA_TNIL;
    lua_pop(L, 2);
    return tagged;
}

/* ---- memory --------------------------------------------------------------- */

static void sb_hook(lua_State *L, lua_Debug *ar);

/* Make thread L run the hook before its next instruction (safe from
 * anywhere, as lua.c does from a signal handler). */
static void poke(lua_State *L)
{
    if (L)
        lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
}

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
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
        poke(s->cur);
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

static int sb_panic(lua_State *L)
{
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    vm_error("lua: unprotected error (a bug in vmmigrate): %s", m);
    abort();
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

static void set_hook_mode(struct vm_lua *s, lua_State *L)
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
        fmt_size(s->mem_max, what, sizeof(what));
        s->trip_msg = xasprintf("%s%smemory limit of %s reached", where, *where ? ": " : "", what);
    }
}

static void sb_hook(lua_State *L, lua_Debug *ar)
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
            /* a poke that came to nothing, or a thread left tripped by an
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
    set_hook_mode(s, L);
    if (!s->trip_msg) {
        where_from(L, 0, where, sizeof(where));
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
    where_from(L, 1, where, sizeof(where));
    trip(s, code, where);
    set_hook_mode(s, L);
    lua_pushstring(L, s->trip_msg);
    return lua_error(L);
}

/* ---- the watchdog: what the count hook cannot reach -------------------- *
 * One call into the Lua C library can run without ever returning to the
 * VM, so neither the instruction budget nor the deadline can stop it (a
 * backtracking string pattern: string.find(s, ".-.-.-.-x") on a long s).
 * The loop would hang with it, holding the run's lock, deaf to SIGTERM. A
 * thread of its own watches the running call; one stuck far past its
 * deadline ends the process (exit status 6) with a line saying why: the
 * journal makes that a crash the next run settles, instead of a hang. */
static _Atomic uint64_t wd_since; /* vm_mono_ms() when the running call began; 0: none */
static _Atomic uint64_t wd_limit_ms;
static char wd_where[WHERE_LEN]; /* the called function, for the message */
static pthread_once_t wd_once = PTHREAD_ONCE_INIT;

static void *wd_main(void *arg)
{
    (void)arg;
    for (;;) {
        usleep(250 * 1000);
        uint64_t since = atomic_load(&wd_since);
        if (since && vm_mono_ms() - since > atomic_load(&wd_limit_ms)) {
            char msg[512];
            int n = snprintf(msg, sizeof(msg),
                             "vmmigrate: error: policy%s%s: stuck for %" PRIu64
                             " ms in library code the instruction budget cannot interrupt (a "
                             "backtracking string pattern?): exiting; the next run, or "
                             "'vmmigrate recover', settles what this one left\n",
                             wd_where[0] ? " " : "", wd_where, vm_mono_ms() - since);
            ssize_t w =
                n > 0 ? write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1) : 0;
            (void)w;
            _exit(VM_EXIT_POLICY);
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

/* *err for a failed call; the error object (if any) is at IDX of L. */
static char *call_error(struct vm_lua *s, lua_State *L, int idx, int code)
{
    if (s->trip_msg)
        return one_line(s->trip_msg, strlen(s->trip_msg), ERR_MAX);
    if (code == VM_LUA_E_MEMORY) {
        char size[64];
        const char *w = s->last_where[0] ? s->last_where : s->fn_where;
        fmt_size(s->mem_max, size, sizeof(size));
        char *m = xasprintf("%s%smemory limit of %s reached", w, *w ? ": " : "", size);
        char *r = one_line(m, strlen(m), ERR_MAX);
        free(m);
        return r;
    }
    size_t len;
    const char *m = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    if (!m) {
        m = "(error object is not a string)";
        len = strlen(m);
    }
    return one_line(m, len, ERR_MAX);
}

/* ---- errors raised by policy code ------------------------------------- */

/* Message handler of every call: make the error object a string that starts
 * with "file:line:", without running policy code (no __tostring). */
static int sb_msgh(lua_State *L)
{
    char where[WHERE_LEN];
    int t = lua_type(L, 1);

    if (t == LUA_TSTRING && has_location(lua_tostring(L, 1)))
        return 1;
    where_from(L, 1, where, sizeof(where));
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        lua_pushvalue(L, 1);
        const char *m = lua_tostring(L, -1); /* numbers convert without metamethods */
        lua_pushfstring(L, "%s%s%s", where, *where ? ": " : "", m);
    } else {
        lua_pushfstring(L, "%s%s(error object is a %s value)", where, *where ? ": " : "",
                        lua_typename(L, t));
    }
    return 1;
}

/* ---- read-only proxies ---------------------------------------------------- */

static void push_proxy(lua_State *L, int idx, const char *name, bool deep);

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
    push_proxy(L, validx, lua_tostring(L, -1), true);
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

static int proxy_pairs(lua_State *L)
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
static void push_proxy(lua_State *L, int idx, const char *name, bool deep)
{
    idx = lua_absindex(L, idx);
    if (deep) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &reg_proxies);
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
    lua_pushcclosure(L, proxy_pairs, 3);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, proxy_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &proxy_tag);
    lua_setmetatable(L, -2);
    if (deep) {
        lua_pushvalue(L, idx);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4); /* cache[real] = proxy */
        lua_remove(L, -2);
    }
}

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
    char *line = one_line(buf, o, cut ? o - 1 : PRINT_MAX);
    where_from(L, 1, where, sizeof(where));
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
    if (is_proxy(L, 1))
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

/* string.rep, checked against the memory cap first so the error names the
 * line (an allocator refusal cannot). Upvalue: the real rep. */
static int sb_str_rep(lua_State *L)
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

static int sb_xpcall(lua_State *L)
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

static int sb_tab_charged(lua_State *L)
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

/* ---- coroutines: every thread carries the hook ------------------------ */

/* reg_threads[co]: false for a coroutine of the policy, true once a trip
 * killed it. The key is made at creation, so marking never allocates. */
static void thread_mark(lua_State *L, lua_State *co, bool killed)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &reg_threads);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushboolean(L, killed);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static bool thread_killed(lua_State *L, lua_State *co)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &reg_threads);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    bool killed = lua_rawget(L, -2) == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 2);
    return killed;
}

static int sb_co_create(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    /* A fresh thread starts a fresh count: charge one period for it so a
     * loop of short-lived coroutines cannot run unmetered. */
    s->used += VM_LUA_HOOK_PERIOD;
    lua_State *co = lua_newthread(L);
    lua_sethook(co, sb_hook, LUA_MASKCOUNT, VM_LUA_HOOK_PERIOD);
    set_hook_mode(s, co);
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
    set_hook_mode(s, co);
    lua_State *prev = s->cur;
    s->cur = co;
    int st = lua_resume(co, L, narg, &nres);
    s->cur = prev;
    set_hook_mode(s, L); /* a trip inside co holds here too */
    if (s->mem_failed)
        poke(L);
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

static int sb_co_resume(lua_State *L)
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
    if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING && !has_location(lua_tostring(L, -1))) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* coroutine.close, except for coroutines a trip killed: their __close
 * handlers would run with hooks off. */
static int sb_co_close(lua_State *L)
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

static int sb_co_wrap(lua_State *L)
{
    sb_co_create(L);
    lua_pushcclosure(L, sb_co_wrapped, 1);
    return 1;
}

/* ---- require ------------------------------------------------------------ */

static const struct vm_lua_module *find_module(struct vm_lua *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->nmodules; i++)
        if (strlen(s->modules[i].name) == len && memcmp(s->modules[i].name, name, len) == 0)
            return &s->modules[i];
    return NULL;
}

static bool module_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static char *read_checked(const char *path, const char *what, size_t max, size_t *lenp, int *errnum,
                          char **err);

/* Give the function on top its _ENV. */
static void set_env(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &reg_env);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
}

/* A chunk that failed to compile: its message, with the chunk's name in
 * front when Lua left it out ("attempt to load a binary chunk"). */
static void fix_load_message(lua_State *L, const char *chunkname)
{
    const char *m = lua_tostring(L, -1);
    if (!m || has_location(m))
        return;
    const char *shown = chunkname[0] == '@' || chunkname[0] == '=' ? chunkname + 1 : chunkname;
    lua_pushfstring(L, "%s: %s", shown, m);
    lua_remove(L, -2);
}

/* Runs protected: [name] -> module value. */
static int require_load(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    size_t nlen;
    const char *name = lua_tolstring(L, 1, &nlen);
    const struct vm_lua_module *m = find_module(s, name, nlen);

    if (m) {
        if (m->open) {
            lua_pushcfunction(L, m->open);
            lua_pushvalue(L, 1);
            lua_call(L, 1, 1);
        } else {
            lua_pushnil(L);
        } /* 2: T */
        if (m->source) {
            lua_pushfstring(L, "=builtin:%s", name);
            const char *chunk = lua_tostring(L, -1);
            if (luaL_loadbufferx(L, m->source, strlen(m->source), chunk, "t") != LUA_OK) {
                fix_load_message(L, chunk);
                return lua_error(L);
            }
            lua_remove(L, -2); /* the chunk name: the function is now 3 */
            set_env(L);
            lua_pushvalue(L, 1);
            lua_pushvalue(L, 2);
            lua_call(L, 2, 1);
            if (lua_isnil(L, -1))
                lua_pop(L, 1);
        }
        if (lua_type(L, -1) == LUA_TTABLE)
            push_proxy(L, -1, name, true);
        return 1;
    }

    /* NAME.lua next to the policy */
    lua_pushfstring(L, "%s/%s.lua", s->dir, name);
    const char *path = lua_tostring(L, -1);
    char msg[512], *err = NULL;
    size_t len;
    int errnum = 0;
    char *buf = read_checked(path, "module", s->mem_max, &len, &errnum, &err);
    if (!buf) {
        if (errnum == ENOENT)
            snprintf(msg, sizeof(msg),
                     "module '%s' not allowed: not a builtin module, and no file '%s'", name, path);
        else
            snprintf(msg, sizeof(msg), "%s", err);
        free(err);
        return error_at_lua(L, "%s", msg); /* at the require() line */
    }
    lua_pushfstring(L, "@%s", path);
    const char *chunk = lua_tostring(L, -1);
    int st = luaL_loadbufferx(L, buf, len, chunk, "t");
    free(buf);
    if (st != LUA_OK) {
        fix_load_message(L, chunk);
        return lua_error(L);
    }
    set_env(L);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

static int sb_require(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    size_t nlen;
    const char *name = luaL_checklstring(L, 1, &nlen);
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &reg_loaded); /* 2 */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == &loading_tag)
            return error_at_lua(L, "module '%s' requires itself (a require loop)", name);
        return 1;
    }
    lua_pop(L, 1);
    if (!find_module(s, name, nlen)) {
        if (!module_name_ok(name, nlen) || !s->dir)
            return error_at_lua(L,
                                "module '%s' not allowed: only builtin modules and NAME.lua "
                                "files next to the policy can be required",
                                name);
        if (s->frozen)
            return error_at_lua(L,
                                "module '%s' not allowed here: not a builtin module, and "
                                "files next to the policy can only be required while the "
                                "policy loads",
                                name);
    }
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, (void *)&loading_tag);
    lua_rawset(L, 2);
    lua_pushcfunction(L, require_load);
    lua_pushvalue(L, 1);
    int st = lua_pcall(L, 1, 1, 0);
    lua_pushvalue(L, 1); /* the key exists: these sets do not allocate */
    if (st != LUA_OK) {
        lua_pushnil(L);
        lua_rawset(L, 2);
        return lua_error(L); /* the module's error, as it was */
    }
    if (lua_isnil(L, 3)) {
        lua_pushboolean(L, 1);
        lua_replace(L, 3);
    }
    lua_pushvalue(L, 3);
    lua_rawset(L, 2);
    return 1;
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
    lua_rawsetp(L, LUA_REGISTRYINDEX, &reg_array_mt);
    lua_newtable(L); /* proxy cache, weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &reg_proxies);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &reg_loaded);
    lua_newtable(L); /* the policy's coroutines, weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &reg_threads);

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
        push_proxy(L, 2 + (int)i, libs[i], false);
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
    push_proxy(L, -1, "coroutine", false);
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
    lua_pushcclosure(L, proxy_pairs, 3);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &proxy_tag);
    lua_setmetatable(L, 9);
    lua_pushvalue(L, 7);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &reg_globals);
    lua_pushvalue(L, 8);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &reg_base);
    lua_pushvalue(L, 9);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &reg_env);

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

static struct vm_lua *new_state(const struct vm_lua_opts *o, const char *dir, char **err)
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

/* Call the function under NARGS arguments on s->L's top, protected, within
 * BUDGET. See vm_lua_call(). */
static int run(struct vm_lua *s, uint64_t budget, int nargs, int nresults, char **err)
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
        *err = call_error(s, L, -1, code);
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
    return run(s, s->call_insns, nargs, nresults, err);
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
        if (!m || !has_location(m)) {
            where_from(co, 0, where, sizeof(where));
            if (t == LUA_TSTRING || t == LUA_TNUMBER)
                lua_pushfstring(co, "%s%s%s", where, *where ? ": " : "", lua_tostring(co, -1));
            else
                lua_pushfstring(co, "%s%s(error object is a %s value)", where, *where ? ": " : "",
                                lua_typename(co, t));
            lua_remove(co, -2);
        }
    }
    if (err)
        *err = call_error(s, co, -1, code);
    if (st != LUA_OK && st != LUA_YIELD)
        lua_pop(co, 1);
    *nres = 0;
    lua_gc(s->L, LUA_GCCOLLECT, 0);
    return code;
}

static int load_chunk(struct vm_lua *s, const char *chunkname, const char *buf, size_t len,
                      char **err)
{
    lua_State *L = s->L;
    s->enforce = true; /* compiling counts against the cap too */
    int st = luaL_loadbufferx(L, buf, len, chunkname, "t");
    s->enforce = false;
    if (st != LUA_OK) {
        size_t mlen;
        fix_load_message(L, chunkname);
        const char *m = lua_tolstring(L, -1, &mlen);
        *err = m ? one_line(m, mlen, ERR_MAX) : xstrdup("cannot compile the policy");
        lua_pop(L, 1);
        return st == LUA_ERRMEM || s->mem_failed ? VM_LUA_E_MEMORY : VM_LUA_E_SYNTAX;
    }
    set_env(L);
    int rc = run(s, s->load_insns, 0, 0, err);
    if (rc == 0)
        s->frozen = true;
    return rc;
}

int vm_lua_load_buffer(const char *chunkname, const char *buf, size_t len,
                       const struct vm_lua_opts *opts, struct vm_lua **out, char **err)
{
    *out = NULL;
    *err = NULL;
    struct vm_lua *s = new_state(opts, NULL, err);
    if (!s)
        return VM_LUA_E_MEMORY;
    int rc = load_chunk(s, chunkname, buf, len, err);
    if (rc) {
        vm_lua_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- policy files --------------------------------------------------------- */

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

/* StrictModes for the directory DIR that holds PATH. */
static char *check_dir(const char *dir, const char *path, const char *what)
{
    struct stat st;
    uid_t euid = geteuid();
    if (stat(dir, &st) != 0)
        return xasprintf("cannot check directory '%s' of %s '%s': %s", dir, what, path,
                         strerror(errno));
    if (st.st_uid != 0 && st.st_uid != euid)
        return xasprintf("refusing %s '%s': its directory '%s' is owned by uid %u, not by "
                         "root or uid %u (who runs vmmigrate)",
                         what, path, dir, (unsigned)st.st_uid, (unsigned)euid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return xasprintf("refusing %s '%s': its directory '%s' is writable by group or "
                         "others (mode %04o)",
                         what, path, dir, (unsigned)(st.st_mode & 07777));
    return NULL;
}

/* Open, check and read PATH. NULL and *err (and *errnum for open errors) on
 * failure. WHAT names it in messages ("policy", "module"). */
static char *read_checked(const char *path, const char *what, size_t max, size_t *lenp, int *errnum,
                          char **err)
{
    struct stat st;
    uid_t euid = geteuid();
    char *buf = NULL, *dir = NULL, *real = NULL, *rdir = NULL;

    *err = NULL;
    *errnum = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        *errnum = errno;
        *err = xasprintf("cannot open %s '%s': %s", what, path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        *err = xasprintf("cannot check %s '%s': %s", what, path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = xasprintf("refusing %s '%s': not a regular file", what, path);
        goto cleanup;
    }
    if (st.st_uid != 0 && st.st_uid != euid) {
        *err = xasprintf("refusing %s '%s': owned by uid %u, not by root or uid %u (who runs "
                         "vmmigrate)",
                         what, path, (unsigned)st.st_uid, (unsigned)euid);
        goto cleanup;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        *err = xasprintf("refusing %s '%s': writable by group or others (mode %04o)", what, path,
                         (unsigned)(st.st_mode & 07777));
        goto cleanup;
    }
    dir = dir_of(path);
    if ((*err = check_dir(dir, path, what)))
        goto cleanup;
    real = realpath(path, NULL);
    if (!real) {
        *err = xasprintf("cannot resolve %s '%s': %s", what, path, strerror(errno));
        goto cleanup;
    }
    rdir = dir_of(real);
    if (strcmp(rdir, dir) != 0 && (*err = check_dir(rdir, path, what)))
        goto cleanup;
    if ((uint64_t)st.st_size > max) {
        *err = xasprintf("refusing %s '%s': %lld bytes, more than the memory limit", what, path,
                         (long long)st.st_size);
        goto cleanup;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                *err = xasprintf("refusing %s '%s': it grew past the memory limit", what, path);
                goto fail;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = xasprintf("cannot read %s '%s': %s", what, path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *lenp = len;
    goto cleanup;
fail:
    free(buf);
    buf = NULL;
cleanup:
    close(fd);
    free(dir);
    free(real);
    free(rdir);
    return buf;
}

int vm_lua_load(const char *path, const struct vm_lua_opts *opts, struct vm_lua **out, char **err)
{
    size_t len, max = opts && opts->mem_bytes ? opts->mem_bytes : DEFAULT_MEM;
    int errnum;
    *out = NULL;
    *err = NULL;
    char *buf = read_checked(path, "policy", max, &len, &errnum, err);
    if (!buf)
        return VM_LUA_E_FILE;
    char *dir = dir_of(path);
    struct vm_lua *s = new_state(opts, dir, err);
    free(dir);
    if (!s) {
        free(buf);
        return VM_LUA_E_MEMORY;
    }
    char *chunk = xasprintf("@%s", path);
    int rc = load_chunk(s, chunk, buf, len, err);
    free(chunk);
    free(buf);
    if (rc) {
        vm_lua_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- hooks ---------------------------------------------------------------- */

bool vm_lua_push_hook(struct vm_lua *s, const char *name)
{
    lua_State *L = s->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &reg_globals);
    lua_pushstring(L, name);
    if (lua_rawget(L, -2) == LUA_TFUNCTION) {
        lua_remove(L, -2);
        return true;
    }
    lua_pop(L, 2);
    return false;
}

bool vm_lua_has_hook(struct vm_lua *s, const char *name)
{
    if (!vm_lua_push_hook(s, name))
        return false;
    lua_pop(s->L, 1);
    return true;
}

/* ---- plain data ------------------------------------------------------------ */

void vm_lua_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&null_tag);
}

bool vm_lua_is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &null_tag;
}

static void mark_array(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &reg_array_mt);
    lua_setmetatable(L, -2);
}

int vm_lua_new_array(lua_State *L)
{
    lua_newtable(L);
    mark_array(L);
    return 1;
}

static int push_json(lua_State *L, json_t *v, int depth)
{
    const char *key;
    size_t klen, i;
    json_t *x;
    int rc = 0;

    if (depth > VM_LUA_MAX_DEPTH && (json_is_object(v) || json_is_array(v))) {
        lua_pushnil(L);
        return -1;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        lua_createtable(L, 0, (int)json_object_size(v));
        json_object_keylen_foreach(v, key, klen, x)
        {
            lua_pushlstring(L, key, klen);
            rc |= push_json(L, x, depth + 1);
            lua_rawset(L, -3);
        }
        break;
    case JSON_ARRAY:
        lua_createtable(L, (int)json_array_size(v), 0);
        json_array_foreach(v, i, x)
        {
            rc |= push_json(L, x, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        mark_array(L);
        break;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(v));
        break;
    case JSON_NULL:
    default:
        vm_lua_push_null(L);
        break;
    }
    return rc ? -1 : 0;
}

int vm_lua_push_json(lua_State *L, json_t *v)
{
    if (!lua_checkstack(L, 3 * (VM_LUA_MAX_DEPTH + 2)))
        return -1;
    if (!v) {
        vm_lua_push_null(L);
        return 0;
    }
    return push_json(L, v, 1);
}

struct tojson {
    lua_State *L;
    long nodes;
    const void *tables[VM_LUA_MAX_DEPTH + 1]; /* the tables on the current path */
    struct {
        const char *s; /* string key, or NULL for an index */
        size_t len;
        lua_Integer i;
    } keys[VM_LUA_MAX_DEPTH + 2]; /* keys[d]: how the value at depth d was reached */
    char *err;
};

static bool ident(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static json_t *tj_fail(struct tojson *tj, int depth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static json_t *tj_fail(struct tojson *tj, int depth, const char *fmt, ...)
{
    char path[512];
    size_t o = 0;
    path[0] = '\0';
    for (int d = 1; d <= depth && o < sizeof(path) - 1; d++) {
        int n;
        if (tj->keys[d].s && ident(tj->keys[d].s, tj->keys[d].len))
            n = snprintf(path + o, sizeof(path) - o, "%s%.*s", d > 1 ? "." : "",
                         (int)tj->keys[d].len, tj->keys[d].s);
        else if (tj->keys[d].s)
            n = snprintf(path + o, sizeof(path) - o, "[\"%.*s\"]", (int)tj->keys[d].len,
                         tj->keys[d].s);
        else
            n = snprintf(path + o, sizeof(path) - o, "[%lld]", (long long)tj->keys[d].i);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    if (o >= sizeof(path))
        o = sizeof(path) - 1;
    va_list ap;
    va_start(ap, fmt);
    char *what = xvasprintf(fmt, ap);
    va_end(ap);
    char *m = xasprintf("%s: %s", depth ? path : "(top level)", what);
    tj->err = one_line(m, strlen(m), ERR_MAX);
    free(m);
    free(what);
    return NULL;
}

static json_t *tj_value(struct tojson *tj, int idx, int depth);

static json_t *tj_table(struct tojson *tj, int idx, int depth)
{
    lua_State *L = tj->L;
    bool marked = false;

    if (depth >= VM_LUA_MAX_DEPTH)
        return tj_fail(tj, depth, "tables nest deeper than %d levels", VM_LUA_MAX_DEPTH);
    const void *p = lua_topointer(L, idx);
    for (int d = 0; d < depth; d++)
        if (tj->tables[d] == p)
            return tj_fail(tj, depth, "a cycle (the table contains itself)");
    tj->tables[depth] = p;
    if (!lua_checkstack(L, 4))
        return tj_fail(tj, depth, "the Lua stack is full");
    if (lua_getmetatable(L, idx)) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &reg_array_mt);
        marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (!marked)
            return tj_fail(tj, depth, "a table with a metatable is not plain data");
    }

    size_t nstr = 0, nint = 0;
    lua_Integer max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            nstr++;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            lua_Integer k = lua_tointeger(L, -1);
            nint++;
            if (k > max)
                max = k;
        } else {
            const char *tn = luaL_typename(L, -1);
            bool num = lua_type(L, -1) == LUA_TNUMBER;
            lua_pop(L, 1);
            return tj_fail(tj, depth,
                           "a key of type %s%s (keys are strings, or 1..n in a "
                           "sequence)",
                           tn, num ? " that is not 1..n" : "");
        }
        if (nstr && nint) {
            lua_pop(L, 1);
            return tj_fail(tj, depth, "the table mixes sequence indices and string keys");
        }
    }
    if (nint || marked) {
        if (nstr)
            return tj_fail(tj, depth, "an array has string keys");
        if ((lua_Integer)nint != max)
            return tj_fail(tj, depth, "not a sequence: %zu elements but index %lld", nint,
                           (long long)max);
        json_t *a = json_array();
        for (lua_Integer i = 1; i <= max; i++) {
            lua_rawgeti(L, idx, i);
            tj->keys[depth + 1].s = NULL;
            tj->keys[depth + 1].i = i;
            json_t *v = tj_value(tj, -1, depth + 1);
            lua_pop(L, 1);
            if (!v) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    json_t *o = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen); /* a string: no conversion */
        tj->keys[depth + 1].s = k;
        tj->keys[depth + 1].len = klen;
        json_t *v = tj_value(tj, -1, depth + 1);
        if (!v) {
            lua_pop(L, 2);
            json_decref(o);
            return NULL;
        }
        if (json_object_setn_new(o, k, klen, v) != 0) {
            lua_pop(L, 2);
            json_decref(o);
            return tj_fail(tj, depth + 1, "the key is not valid UTF-8");
        }
        lua_pop(L, 1);
    }
    return o;
}

static json_t *tj_value(struct tojson *tj, int idx, int depth)
{
    lua_State *L = tj->L;
    idx = lua_absindex(L, idx);
    if (++tj->nodes > VM_LUA_MAX_ELEMENTS)
        return tj_fail(tj, depth, "more than %d values", VM_LUA_MAX_ELEMENTS);
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        double d = lua_tonumber(L, idx);
        if (!isfinite(d))
            return tj_fail(tj, depth, "%s is not a JSON number", isnan(d) ? "NaN" : "infinity");
        return json_real(d);
    case LUA_TSTRING: {
        size_t len;
        const char *p = lua_tolstring(L, idx, &len);
        json_t *j = json_stringn(p, len);
        return j ? j : tj_fail(tj, depth, "the string is not valid UTF-8");
    }
    case LUA_TTABLE:
        return tj_table(tj, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (vm_lua_is_null(L, idx))
            return json_null();
        /* fall through */
    default:
        return tj_fail(tj, depth,
                       "a %s is not plain data (only nil, booleans, numbers, strings and "
                       "tables of those)",
                       luaL_typename(L, idx));
    }
}

json_t *vm_lua_to_json(lua_State *L, int idx, char **err)
{
    struct tojson tj;
    memset(&tj, 0, sizeof(tj));
    tj.L = L;
    *err = NULL;
    int top = lua_gettop(L);
    json_t *j = tj_value(&tj, idx, 0);
    lua_settop(L, top);
    if (!j)
        *err = tj.err;
    return j;
}
