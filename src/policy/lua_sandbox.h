/* SPDX-License-Identifier: MIT */
/* lua_sandbox.h — a Lua 5.4 state that runs one operator policy, and nothing
 * else, with bounded memory, instructions and time.
 *
 * The policy API (hook names, what a decision may contain) lives on top of
 * this; this module only knows "a policy file that defines global
 * functions, called with plain data".
 *
 * What a policy sees:
 *  - base functions, minus dofile, loadfile, load, collectgarbage and warn;
 *    print logs one line through opts->print (default vm_info("policy: ..."));
 *    setmetatable refuses metatables with __gc (finalizers would run outside
 *    any limit); rawset refuses read-only tables; xpcall does not run the
 *    policy's handler for an error raised by a limit (Lua runs handlers with
 *    hooks off at that point).
 *  - string (no string.dump), table, math, utf8, coroutine, as read-only
 *    proxies: reads, pairs() and # work, writes raise, getmetatable() gives
 *    false. getmetatable("") gives false too.
 *  - require(name): the builtin modules given in opts->modules (their tables
 *    come back as deep read-only proxies), and NAME.lua next to the policy
 *    file (NAME matching [A-Za-z0-9_]+, same file checks as the policy, only
 *    while the policy loads). Nothing else: no C modules, no paths.
 *  - its own global table (_ENV, also _G): reading an undefined global raises
 *    "undefined global 'x'"; globals may be defined only while the main chunk
 *    runs (that is how hooks are defined), builtins never. After load the
 *    globals are frozen: "attempt to write global 'x' from a hook".
 *    Tables the policy made itself (including ones held by its globals)
 *    stay mutable, so a policy can keep state between calls.
 *  - no io, os, package, debug; no way to load bytecode (text chunks only).
 *
 * Limits, re-armed for the load and for every call: an instruction budget
 * (counted every VM_LUA_HOOK_PERIOD instructions per coroutine; creating a
 * coroutine is charged one period; table.concat/insert/remove/move/sort/
 * unpack are charged their element count up front, as they loop in C), a
 * wall-clock deadline, and a memory cap for the whole state (growth past it
 * is refused; Lua collects and retries once, then raises "not enough
 * memory"). Once a limit trips, the state stays "tripped" until the call
 * returns: every further Lua instruction raises again, so a pcall in the
 * policy cannot swallow it, and the call reports the limit whatever the
 * policy did. A coroutine a limit killed never runs its __close handlers.
 *
 * Known gap: one pattern-matching call (string.find, match, gmatch, gsub)
 * runs in C without instructions, so neither the budget nor the deadline
 * can stop it; backtracking patterns such as ("a"):rep(3000):find(".-.-.-b")
 * run for minutes. Fixing it needs a step-counting matcher in place of
 * lstrlib's.
 *
 * After any failed call the state is still safe to call again (the sandbox
 * holds), but the policy's own tables may be half-updated; callers decide
 * whether to go on or to reload. Nothing here raises a Lua error into C:
 * every entry from C is a protected call.
 *
 * Ownership: struct vm_lua owns its lua_State and copies of everything in
 * the options; vm_lua_free() (NULL-safe) frees it. *err strings are
 * malloc'd, one line, and belong to the caller. JSON passed in is borrowed;
 * JSON returned is a new reference.
 *
 * Error locations: for the budget and the deadline, the line running when
 * the limit tripped; for memory, the line the hook last saw (within one
 * period of the failing allocation), or where the called function starts
 * when the call failed before its first period. Lua shortens long paths in
 * locations to their last 60 bytes ("...").
 *
 * Errors are negative VM_LUA_E_* codes; vm_lua_strerror() names them.
 *
 * Implemented by sandbox.c and the sandbox_*.c files beside it, one concern
 * each, and lua_json.c (the plain data); sandbox_priv.h says which is which. */
#ifndef VMM_LUA_SANDBOX_H
#define VMM_LUA_SANDBOX_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vm_lua_error {
    VM_LUA_OK = 0,
    VM_LUA_E_RUNTIME = -1, /* the policy raised an error (or called error()) */
    VM_LUA_E_SYNTAX = -2,  /* the file does not compile, or is a binary chunk */
    VM_LUA_E_BUDGET = -3,  /* instruction budget exhausted */
    VM_LUA_E_TIMEOUT = -4, /* wall-clock deadline passed */
    VM_LUA_E_MEMORY = -5,  /* memory cap reached */
    VM_LUA_E_FILE = -6,    /* the file is unsafe (StrictModes) or unreadable */
    VM_LUA_E_STATE = -7,   /* misuse: a call while another runs, bad stack */
    VM_LUA_E_DATA = -8,    /* a value that is not plain data (vm_lua_to_json) */
};
#define VM_LUA_YIELD 1 /* vm_lua_resume(): the coroutine yielded */

/* Instructions between two checks of the budget and the clock. */
#define VM_LUA_HOOK_PERIOD 1000
/* Tables nest at most this deep across the boundary, both ways. */
#define VM_LUA_MAX_DEPTH 64
/* vm_lua_to_json() refuses values with more elements than this (a shared
 * subtable counts each time it is reached, so a DAG cannot blow up). */
#define VM_LUA_MAX_ELEMENTS 100000

/* A module that require(name) returns, shipped in the binary.
 *  - open (optional) is called first, with the name as its argument, and
 *    returns a value T (usually a table of C functions);
 *  - source (optional) is Lua text run in the policy's sandbox with
 *    (name, T) as `...`; what it returns is the module (nil: T).
 * Loaded on first require, cached, tables wrapped read-only. Chunk name in
 * messages: "builtin:NAME:LINE:". */
struct vm_lua_module {
    const char *name;
    lua_CFunction open;
    const char *source;
};

/* Zero fields take the defaults; a NULL options pointer means all defaults. */
struct vm_lua_opts {
    size_t mem_bytes;                    /* cap for the whole state, default 64 MiB */
    uint64_t load_instructions;          /* main chunk + required modules, default 50M */
    uint64_t call_instructions;          /* per vm_lua_call/vm_lua_resume, default 10M */
    uint64_t call_ms;                    /* deadline per load and per call, default 1000 */
    const struct vm_lua_module *modules; /* copied at load */
    size_t nmodules;
    /* Where print() goes: WHERE is "file:line", MSG one line (control
     * characters replaced, at most 1000 bytes). NULL: vm_info("policy: ..."). */
    void (*print)(void *data, const char *where, const char *msg);
    void *print_data;
};

struct vm_lua;

/* Check PATH the way ssh's StrictModes does (a regular file owned by root or
 * the effective user, not writable by group or others; the same for the
 * directory it is in, and for the resolved directory if PATH goes through a
 * symlink), read it, compile it as text ("@PATH" is the chunk name, so errors
 * read "PATH:LINE: message") and run the main chunk within the load limits,
 * then freeze the globals. 0 and *out, or a negative code and *err naming
 * the file (and the line, when there is one). */
int vm_lua_load(const char *path, const struct vm_lua_opts *opts, struct vm_lua **out, char **err);
/* The same from a buffer; CHUNKNAME as for lua_load ("@file", "=name").
 * Only builtin modules can be required (there is no directory). */
int vm_lua_load_buffer(const char *chunkname, const char *buf, size_t len,
                       const struct vm_lua_opts *opts, struct vm_lua **out, char **err);
void vm_lua_free(struct vm_lua *s);

/* The main thread, for pushing arguments and reading results. Call policy
 * code only through vm_lua_call()/vm_lua_resume(). */
lua_State *vm_lua_state(struct vm_lua *s);
/* Does the policy define a global function NAME? (Globals are frozen after
 * load, so the answer never changes: probe once.) */
bool vm_lua_has_hook(struct vm_lua *s, const char *name);
/* Push global function NAME and return true, or push nothing and return
 * false. */
bool vm_lua_push_hook(struct vm_lua *s, const char *name);
/* Call the function below the NARGS arguments on top of the main thread's
 * stack, like lua_pcall, with the call budget and deadline re-armed.
 * 0 and NRESULTS values on the stack, or a negative code, nothing left on
 * the stack, and *err = "file:line: message" (for budget and timeout the
 * line running when the limit tripped). */
int vm_lua_call(struct vm_lua *s, int nargs, int nresults, char **err);
/* Resume coroutine CO (a thread of this state, anchored by the caller) with
 * NARGS arguments on CO's stack, within the call limits. 0 (finished) or
 * VM_LUA_YIELD with *nres values on CO's stack, or a negative code and *err;
 * a coroutine that failed is dead. Never lua_closethread() one that failed
 * with a limit: its __close handlers would run with hooks off. Drop it. */
int vm_lua_resume(struct vm_lua *s, lua_State *co, int nargs, int *nres, char **err);

/* A call stuck where the limits cannot stop it (the known gap above): the
 * thread that made the call is inside it and stays there. A watchdog thread
 * notices a call running 4 s past its deadline and, once per call, calls FN
 * on its own thread with WHAT = "policy FILE:LINE: stuck for N ms in library
 * code the instruction budget cannot interrupt (a backtracking string
 * pattern?)" (one line without a newline, FILE:LINE where the called
 * function starts; borrowed for the call). Beside a stuck thread FN may only
 * do what is safe from any thread, e.g. write(2) and _exit(); whoever sets
 * it decides whether the process ends (the run does: exit status 6). If FN
 * returns, the call runs on. One setting for the process; NULL (the
 * default): no one is told. */
typedef void (*vm_lua_stuck_fn)(void *data, const char *what);
void vm_lua_set_stuck(vm_lua_stuck_fn fn, void *data);

/* Bytes the state holds now, and at most so far. */
size_t vm_lua_mem_used(const struct vm_lua *s);
size_t vm_lua_mem_peak(const struct vm_lua *s);

/* ---- plain data across the boundary -------------------------------------
 * JSON null is a light userdata sentinel (so arrays keep their holes and
 * objects their keys); vm_lua_push_null() pushes it, vm_lua_is_null() tests
 * for it, and the policy API should expose it (e.g. as vmm.null). Empty
 * JSON arrays come in as tables marked as arrays; vm_lua_new_array (a
 * lua_CFunction for the policy API, e.g. vmm.array()) makes such a table.
 * An unmarked empty table goes out as {}. */
void vm_lua_push_null(lua_State *L);
bool vm_lua_is_null(lua_State *L, int idx);
int vm_lua_new_array(lua_State *L);
/* Push V (borrowed) as one value: objects -> tables, arrays -> sequences,
 * integers -> integers, reals -> floats, null -> the sentinel. Returns 0, or
 * -1 if V nests deeper than VM_LUA_MAX_DEPTH (what is too deep is pushed as
 * nil). Never raises outside a call; inside one (from a C function of the
 * policy API) it may raise "not enough memory". */
int vm_lua_push_json(lua_State *L, json_t *v);
/* Convert the value at IDX, strictly: nil (at the top only) / the null
 * sentinel -> null, booleans, integers, finite floats, UTF-8 strings,
 * sequences 1..n -> arrays, string-keyed tables -> objects. Anything else
 * (functions, userdata, threads, NaN/inf, mixed or sparse keys, other
 * metatables, cycles, nesting deeper than VM_LUA_MAX_DEPTH, more than
 * VM_LUA_MAX_ELEMENTS values) is NULL and *err naming the key path, e.g.
 * "params.bandwidth: a function is not plain data". Raw access only: no
 * policy code runs, no Lua error is raised. */
json_t *vm_lua_to_json(lua_State *L, int idx, char **err);

const char *vm_lua_strerror(int code);

#endif
