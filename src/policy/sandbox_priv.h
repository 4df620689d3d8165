/* SPDX-License-Identifier: MIT */
/* sandbox_priv.h — what the sandbox's files share, and nothing else may use:
 * struct vm_lua, the registry keys, and the sb_* functions one file of the
 * sandbox calls in another. The public interface is lua_sandbox.h.
 *
 *   sandbox.c         a state's layout, setup and free; the replaced base
 *                     functions (print, rawset, setmetatable) and globals
 *   sandbox_limits.c  allocator cap, count hook and trips, the watchdog,
 *                     charged library functions, xpcall, call and resume
 *   sandbox_proxy.c   read-only proxies
 *   sandbox_coro.c    metered coroutines
 *   sandbox_load.c    require, policy file checks, loading, hook lookup
 *   sandbox_err.c     error text (file:line, sizes, one line)
 *   lua_json.c        plain data across the boundary, JSON <-> Lua
 *
 * Ownership is as in lua_sandbox.h: struct vm_lua owns its lua_State and
 * copies of the options; strings the sb_* functions return are malloc'd and
 * belong to the caller. */
#ifndef VMM_SANDBOX_PRIV_H
#define VMM_SANDBOX_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "policy/lua_sandbox.h"

#define DEFAULT_MEM (64u << 20)
#define DEFAULT_LOAD_INSNS 50000000u
#define DEFAULT_CALL_INSNS 10000000u
#define DEFAULT_CALL_MS 1000u
#define PRINT_MAX 1000 /* bytes of one print() line */
#define ERR_MAX 2000   /* bytes of one *err message */
#define WHERE_LEN (LUA_IDSIZE + 24)

/* Registry keys and sentinels: the addresses of these fields (not const, so
 * that no compiler may merge them). Defined in sandbox.c. */
struct sb_keys {
    char globals, base, env, loaded, proxies, array_mt, threads;
    char proxy_tag; /* in the metatable of every read-only proxy */
};
extern struct sb_keys sb_keys;

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

static inline struct vm_lua *state_of(lua_State *L)
{
    return *(struct vm_lua **)lua_getextraspace(L);
}

/* sandbox.c */
struct vm_lua *sb_new_state(const struct vm_lua_opts *o, const char *dir, char **err);

/* sandbox_limits.c */
void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void sb_hook(lua_State *L, lua_Debug *ar);
void sb_poke(lua_State *L);
void sb_set_hook_mode(struct vm_lua *s, lua_State *L);
int sb_run(struct vm_lua *s, uint64_t budget, int nargs, int nresults, char **err);
int sb_str_rep(lua_State *L);
int sb_xpcall(lua_State *L);
int sb_tab_charged(lua_State *L); /* upvalues: the real function, its index in
                                     setup's list (concat insert remove move sort unpack) */

/* sandbox_proxy.c */
bool sb_is_proxy(lua_State *L, int idx);
void sb_push_proxy(lua_State *L, int idx, const char *name, bool deep);
int sb_proxy_pairs(lua_State *L);

/* sandbox_coro.c */
int sb_co_create(lua_State *L);
int sb_co_resume(lua_State *L);
int sb_co_wrap(lua_State *L);
int sb_co_close(lua_State *L);

/* sandbox_load.c */
int sb_require(lua_State *L);

/* sandbox_err.c */
void sb_fmt_size(size_t n, char *buf, size_t len);
char *sb_one_line(const char *s, size_t len, size_t max);
bool sb_has_location(const char *m);
void sb_where_from(lua_State *L, int level, char *buf, size_t len);
int sb_error_at_lua(lua_State *L, const char *fmt, ...);
char *sb_call_error(struct vm_lua *s, lua_State *L, int idx, int code);
int sb_msgh(lua_State *L);

#endif
