/* SPDX-License-Identifier: MIT */
/* test_lua_sandbox.c — the policy sandbox (lua_sandbox.h) against the
 * adversarial policies in tests/unit/lua/: each must fail closed with the
 * right code and an error naming the file and the line (marked "-- @HOOK"
 * in the fixture). Plus the plain-data boundary, require, the file checks,
 * and the state staying usable after every failure.
 *
 * VMM_LUA_BENCH=1 also prints measurements (hook calls per second, the
 * count hook's overhead, memory per state). */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "policy/lua_sandbox.h"
#include "util/util.h"

static char tmpdir[] = "/tmp/vmm-lua-test-XXXXXX";

/* ---- fixtures ------------------------------------------------------------ */

static char *source_path(const char *name)
{
    char *rel = xasprintf("lua/%s", name);
    char *path = vm_test_path(rel);
    free(rel);
    return path;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        CHECK_FAIL("cannot open '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap)
            buf = xrealloc(buf, cap = 2 * cap + 4096);
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static char *write_file(const char *name, const void *data, size_t len, mode_t mode)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        CHECK_FAIL("cannot create '%s': %s", path, strerror(errno));
    CHECK_INT(write(fd, data, len), ==, (long long)len);
    close(fd);
    CHECK_INT(chmod(path, mode), ==, 0);
    return path;
}

/* Copy fixture NAME into the private directory; the path there. */
static char *fixture(const char *name)
{
    size_t len;
    char *src = source_path(name);
    char *buf = slurp(src, &len);
    char *path = write_file(name, buf, len, 0644);
    free(buf);
    free(src);
    return path;
}

/* The line of fixture FILE marked "-- @MARKER". */
static int marker_line(const char *file, const char *marker)
{
    char *src = source_path(file);
    char *buf = slurp(src, NULL);
    char *tag = xasprintf("-- @%s", marker);
    int line = 1, found = 0;
    for (char *p = buf; *p && !found; p++) {
        if (*p == '\n')
            line++;
        else if (strncmp(p, tag, strlen(tag)) == 0 &&
                 (p[strlen(tag)] == '\n' || p[strlen(tag)] == ' ' || p[strlen(tag)] == '\0'))
            found = line;
    }
    if (!found)
        CHECK_FAIL("no marker '%s' in %s", tag, src);
    free(tag);
    free(buf);
    free(src);
    return found;
}

static struct vm_lua_opts small_opts(void)
{
    struct vm_lua_opts o = {
        .mem_bytes = 16u << 20,
        .load_instructions = 2000000,
        .call_instructions = 2000000,
        .call_ms = 10000,
    };
    return o;
}

static struct vm_lua *load_ok(const char *name, const struct vm_lua_opts *o)
{
    struct vm_lua *s = NULL;
    char *err = NULL;
    char *path = fixture(name);
    int rc = vm_lua_load(path, o, &s, &err);
    if (rc != 0)
        CHECK_FAIL("loading %s: %s (%s)", path, err, vm_lua_strerror(rc));
    CHECK(s && !err);
    free(path);
    return s;
}

/* Call HOOK with no arguments; on success its one result stays on the stack. */
static int call(struct vm_lua *s, const char *hook, char **err)
{
    if (!vm_lua_push_hook(s, hook))
        CHECK_FAIL("no hook '%s'", hook);
    return vm_lua_call(s, 0, 1, err);
}

/* HOOK of FILE must fail with CODE, at the line marked for it, saying WHAT. */
static void expect_fail(struct vm_lua *s, const char *file, const char *hook, int code,
                        const char *what)
{
    char *err = NULL;
    lua_State *L = vm_lua_state(s);
    int top = lua_gettop(L);
    int rc = call(s, hook, &err);
    if (rc != code)
        CHECK_FAIL("%s: got %d (%s) \"%s\", want %d (%s)", hook, rc, vm_lua_strerror(rc),
                   err ? err : "", code, vm_lua_strerror(code));
    CHECK_INT(lua_gettop(L), ==, top);
    char *loc = xasprintf("%s:%d:", file, marker_line(file, hook));
    CHECK_CONTAINS(err, loc);
    if (what)
        CHECK_CONTAINS(err, what);
    CHECK(!strchr(err, '\n'));
    fprintf(stderr, "   %-24s %-8s %s\n", hook, vm_lua_strerror(rc) + 7, err);
    free(loc);
    free(err);
}

/* The state must still work: a trivial call succeeds. */
static void expect_usable(struct vm_lua *s)
{
    lua_State *L = vm_lua_state(s);
    int top = lua_gettop(L);
    char *err = NULL;
    lua_pushcfunction(L, vm_lua_new_array);
    CHECK_INT(vm_lua_call(s, 0, 1, &err), ==, 0);
    CHECK(lua_istable(L, -1));
    lua_pop(L, 1);
    CHECK_INT(lua_gettop(L), ==, top);
}

static json_t *call_json(struct vm_lua *s, const char *hook)
{
    char *err = NULL;
    int rc = call(s, hook, &err);
    if (rc)
        CHECK_FAIL("%s: %s", hook, err);
    json_t *j = vm_lua_to_json(vm_lua_state(s), -1, &err);
    if (!j)
        CHECK_FAIL("%s: %s", hook, err);
    lua_pop(vm_lua_state(s), 1);
    return j;
}

/* ---- runaway code ---------------------------------------------------------- */

static void test_loop_main(void)
{
    struct vm_lua *s = (struct vm_lua *)1;
    char *err = NULL;
    struct vm_lua_opts o = small_opts();
    char *path = fixture("loop_main.lua");
    CHECK_INT(vm_lua_load(path, &o, &s, &err), ==, VM_LUA_E_BUDGET);
    CHECK(!s);
    char *loc = xasprintf("loop_main.lua:%d: instruction budget of 2000000 exhausted",
                          marker_line("loop_main.lua", "load"));
    CHECK_CONTAINS(err, loc);
    CHECK_CONTAINS(err, tmpdir); /* the whole path */
    free(loc);
    free(err);
    /* the same by the clock */
    o.load_instructions = UINT64_MAX / 2;
    o.call_ms = 100;
    uint64_t t0 = vm_mono_ms();
    CHECK_INT(vm_lua_load(path, &o, &s, &err), ==, VM_LUA_E_TIMEOUT);
    CHECK_INT(vm_mono_ms() - t0, <, 3000);
    CHECK_CONTAINS(err, "deadline of 100 ms passed");
    free(err);
    free(path);
}

static void test_loops(void)
{
    static const char *const hooks[] = {
        "spin",
        "spin_pcall",
        "spin_pcall_loop",
        "spin_xpcall",
        "spin_handler",
        "spin_return_pcall",
        "spin_close",
        "spin_coroutine",
        "spin_coroutine_resume",
        "spin_saved_coroutine",
        "many_coroutines",
        "spin_tostring",
    };
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = load_ok("loops.lua", &o);
    for (size_t i = 0; i < VM_ARRAY_LEN(hooks); i++) {
        expect_fail(s, "loops.lua", hooks[i], VM_LUA_E_BUDGET,
                    "instruction budget of 2000000 exhausted");
        expect_usable(s);
    }
    /* coroutines killed by a trip: closing them later runs no policy code */
    expect_fail(s, "loops.lua", "kill_coroutine", VM_LUA_E_BUDGET, "instruction budget");
    json_t *j = call_json(s, "close_dead_coroutine");
    char *dump = json_dumps(j, JSON_COMPACT);
    CHECK_STR(dump, "[false,\"coroutine was stopped by a limit (its __close handlers do not "
                    "run)\"]");
    free(dump);
    json_decref(j);
    expect_fail(s, "loops.lua", "kill_wrapped", VM_LUA_E_BUDGET, "instruction budget");
    j = call_json(s, "call_dead_wrapped");
    dump = json_dumps(j, JSON_COMPACT);
    CHECK_CONTAINS(dump, "[false,\"");
    CHECK_CONTAINS(dump, "cannot resume dead coroutine");
    free(dump);
    json_decref(j);
    vm_lua_free(s);

    /* by the clock: the budget is out of reach */
    o.call_instructions = UINT64_MAX / 2;
    o.call_ms = 100;
    s = load_ok("loops.lua", &o);
    for (size_t i = 0; i < VM_ARRAY_LEN(hooks); i++) {
        if (strcmp(hooks[i], "many_coroutines") == 0)
            continue; /* charged per coroutine: trips the (huge) budget late */
        uint64_t t0 = vm_mono_ms();
        expect_fail(s, "loops.lua", hooks[i], VM_LUA_E_TIMEOUT, "deadline of 100 ms passed");
        CHECK_INT(vm_mono_ms() - t0, <, 3000);
    }
    vm_lua_free(s);
}

static void test_c_loops(void)
{
    static const char *const hooks[] = {"move_bomb",   "concat_bomb", "insert_bomb",
                                        "remove_bomb", "sort_bomb",   "unpack_bomb"};
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = load_ok("cbombs.lua", &o);
    for (size_t i = 0; i < VM_ARRAY_LEN(hooks); i++) {
        uint64_t t0 = vm_mono_ms();
        expect_fail(s, "cbombs.lua", hooks[i], VM_LUA_E_BUDGET, "instruction budget");
        CHECK_INT(vm_mono_ms() - t0, <, 2000);
    }
    json_t *j = call_json(s, "rep_empty");
    char *dump = json_dumps(j, JSON_COMPACT);
    CHECK_STR(dump, "[\"\",\"\"]");
    free(dump);
    json_decref(j);
    j = call_json(s, "ordinary");
    dump = json_dumps(j, JSON_COMPACT);
    CHECK_STR(dump, "[1000,\"first,1,10,100,1000,101,102,103,104,105\",1000,50000]");
    free(dump);
    json_decref(j);
    vm_lua_free(s);
}

static void test_budget_rearmed(void)
{
    struct vm_lua_opts o = small_opts();
    o.call_instructions = 1000000;
    struct vm_lua *s = load_ok("loops.lua", &o);
    lua_State *L = vm_lua_state(s);
    char *err = NULL;
    for (int i = 0; i < 3; i++) { /* 60% of the budget, three times */
        CHECK(vm_lua_push_hook(s, "burn"));
        lua_pushinteger(L, 600000);
        CHECK_INT(vm_lua_call(s, 1, 1, &err), ==, 0);
        CHECK_INT(lua_tointeger(L, -1), ==, 600000);
        lua_pop(L, 1);
    }
    CHECK(vm_lua_push_hook(s, "burn"));
    lua_pushinteger(L, 1200000);
    CHECK_INT(vm_lua_call(s, 1, 1, &err), ==, VM_LUA_E_BUDGET);
    CHECK_CONTAINS(err, "loops.lua:");
    free(err);
    CHECK_INT(lua_gettop(L), ==, 0);
    vm_lua_free(s);
}

/* ---- memory ------------------------------------------------------------------ */

static void test_memory(void)
{
    static const char *const hooks[] = {"rep_bomb",  "rep_method_bomb", "table_bomb",
                                        "hash_bomb", "concat_bomb",     "caught_bomb"};
    struct vm_lua_opts o = small_opts();
    o.call_instructions = 100000000;
    struct vm_lua *s = load_ok("memory.lua", &o);
    size_t base = vm_lua_mem_used(s);
    for (size_t i = 0; i < VM_ARRAY_LEN(hooks); i++) {
        expect_fail(s, "memory.lua", hooks[i], VM_LUA_E_MEMORY, "memory limit of 16 MiB reached");
        CHECK_INT(vm_lua_mem_peak(s), <=, 16u << 20);
        /* what the failed call made is gone again (Lua's string table only
         * halves per collection, so allow it some slack) */
        CHECK_INT(vm_lua_mem_used(s), <, base + (4u << 20));
        char *err = NULL;
        CHECK_INT(call(s, "small", &err), ==, 0);
        CHECK_INT(lua_tointeger(vm_lua_state(s), -1), ==, 1000);
        lua_pop(vm_lua_state(s), 1);
    }
    vm_lua_free(s);
}

static void test_recursion_and_errors(void)
{
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = load_ok("errors.lua", &o);
    char *err = NULL;

    /* a stack overflow or the memory cap, whichever comes first: never a crash */
    int rc = call(s, "deep", &err);
    CHECK(rc == VM_LUA_E_RUNTIME || rc == VM_LUA_E_MEMORY);
    char *loc = xasprintf("errors.lua:%d:", marker_line("errors.lua", "deep"));
    CHECK_CONTAINS(err, loc);
    fprintf(stderr, "   %-24s %s\n", "deep", err);
    free(loc);
    free(err);
    expect_usable(s);
    expect_fail(s, "errors.lua", "meta_recursion", VM_LUA_E_RUNTIME, "stack overflow");
    expect_fail(s, "errors.lua", "tostring_recursion", VM_LUA_E_RUNTIME, "stack overflow");
    expect_fail(s, "errors.lua", "err_table", VM_LUA_E_RUNTIME, "(error object is a table value)");
    expect_fail(s, "errors.lua", "err_nil", VM_LUA_E_RUNTIME, "(error object is a nil value)");
    expect_fail(s, "errors.lua", "err_level0", VM_LUA_E_RUNTIME, ": plain");
    expect_fail(s, "errors.lua", "err_number", VM_LUA_E_RUNTIME, ": 42");
    expect_fail(s, "errors.lua", "err_runtime", VM_LUA_E_RUNTIME,
                "attempt to index a nil value (local 'x')");
    expect_fail(s, "errors.lua", "yield_from_hook", VM_LUA_E_RUNTIME,
                "attempt to yield from outside a coroutine");
    expect_usable(s);
    vm_lua_free(s);
}

/* ---- the sandbox ---------------------------------------------------------- */

static void test_globals(void)
{
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = load_ok("globals.lua", &o);
    expect_fail(s, "globals.lua", "write_global", VM_LUA_E_RUNTIME,
                "attempt to write global 'counter' from a hook");
    expect_fail(s, "globals.lua", "write_new_global", VM_LUA_E_RUNTIME,
                "attempt to write global 'fresh' from a hook");
    expect_fail(s, "globals.lua", "read_undefined", VM_LUA_E_RUNTIME,
                "undefined global 'undefined_thing'");
    expect_fail(s, "globals.lua", "use_os", VM_LUA_E_RUNTIME, "undefined global 'os'");
    expect_fail(s, "globals.lua", "use_io", VM_LUA_E_RUNTIME, "undefined global 'io'");
    expect_fail(s, "globals.lua", "rawset_env", VM_LUA_E_RUNTIME,
                "attempt to modify a read-only table with rawset");
    expect_fail(s, "globals.lua", "rawset_G", VM_LUA_E_RUNTIME,
                "attempt to modify a read-only table with rawset");
    expect_fail(s, "globals.lua", "write_via_G", VM_LUA_E_RUNTIME,
                "attempt to write global 'y' from a hook");
    expect_fail(s, "globals.lua", "write_via_ENV", VM_LUA_E_RUNTIME,
                "attempt to write global 'z' from a hook");
    /* the policy's own tables keep their state between calls */
    for (int i = 1; i <= 2; i++) {
        json_t *j = call_json(s, "keep_state");
        CHECK_INT(json_integer_value(json_array_get(j, 0)), ==, i);
        CHECK_INT(json_integer_value(json_array_get(j, 1)), ==, 3 + i);
        CHECK_INT(json_integer_value(json_array_get(j, 2)), ==, 0);
        json_decref(j);
    }
    json_t *names = call_json(s, "list_globals");
    char *dump = json_dumps(names, JSON_COMPACT);
    CHECK_CONTAINS(dump, "\"LIMITS\",\"counter\"");
    CHECK(!strstr(dump, "print") && !strstr(dump, "string"));
    free(dump);
    json_decref(names);
    vm_lua_free(s);

    /* builtins cannot be redefined, even while loading */
    char *err = NULL;
    static const char src[] = "local x = 1\nprint = function() end\n";
    CHECK_INT(vm_lua_load_buffer("=inline", src, strlen(src), &o, &s, &err), ==, VM_LUA_E_RUNTIME);
    CHECK_CONTAINS(err, "inline:2: attempt to overwrite builtin 'print'");
    free(err);
    static const char src2[] = "_ENV[1] = true\n";
    CHECK_INT(vm_lua_load_buffer("=inline", src2, strlen(src2), &o, &s, &err), ==,
              VM_LUA_E_RUNTIME);
    CHECK_CONTAINS(err, "inline:1: global names must be strings");
    free(err);
}

static void test_readonly(void)
{
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = load_ok("readonly.lua", &o);
    const char *f = "readonly.lua";
    expect_fail(s, f, "rep_nil", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'string' (field 'rep')");
    expect_fail(s, f, "insert_fn", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'table' (field 'insert')");
    expect_fail(s, f, "huge", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'math' (field 'huge')");
    expect_fail(s, f, "strmeta", VM_LUA_E_RUNTIME, "attempt to index a boolean value");
    expect_fail(s, f, "setmeta_string", VM_LUA_E_RUNTIME, "cannot change a protected metatable");
    expect_fail(s, f, "rawset_string", VM_LUA_E_RUNTIME, "read-only table with rawset");
    expect_fail(s, f, "insert_into_lib", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'string'");
    expect_fail(s, f, "move_into_lib", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'math'");
    expect_fail(s, f, "coroutine_create", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'coroutine' (field 'create')");
    expect_fail(s, f, "gc_meta", VM_LUA_E_RUNTIME, "__gc metamethods are not allowed");
    expect_fail(s, f, "overwrite_builtin", VM_LUA_E_RUNTIME,
                "attempt to write global 'print' from a hook");

    json_t *v = call_json(s, "views");
    static const char *const yes[] = {
        "string_meta", "lib_meta",          "env_meta",           "dump",
        "G_is_ENV",    "next_sees_nothing", "rawget_sees_nothing"};
    for (size_t i = 0; i < VM_ARRAY_LEN(yes); i++)
        if (!json_is_true(json_object_get(v, yes[i])))
            CHECK_FAIL("views.%s is not true", yes[i]);
    CHECK_INT(json_integer_value(json_object_get(v, "string_keys")), >, 10);
    CHECK_STR(json_string_value(json_object_get(v, "method")), "ab-ab");
    CHECK_STR(json_string_value(json_object_get(v, "upper")), "X");
    CHECK_INT(json_integer_value(json_object_get(v, "len")), ==, 3);
    CHECK_INT(json_integer_value(json_object_get(v, "sum")), ==, 30);
    CHECK_INT(json_integer_value(json_object_get(v, "pi")), ==, 314);
    CHECK_STR(json_string_value(json_object_get(v, "utf8")), "Hi");
    CHECK_STR(json_string_value(json_object_get(v, "version")), "Lua 5.4");
    json_decref(v);
    vm_lua_free(s);
}

static void test_absent(void)
{
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = load_ok("absent.lua", &o);
    json_t *present = call_json(s, "present");
    char *dump = json_dumps(present, JSON_COMPACT);
    CHECK_STR(dump, "{}"); /* none of them: an empty (unmarked) table */
    free(dump);
    json_decref(present);
    expect_fail(s, "absent.lua", "dump_absent", VM_LUA_E_RUNTIME,
                "attempt to call a nil value (field 'dump')");
    expect_fail(s, "absent.lua", "load_absent", VM_LUA_E_RUNTIME, "undefined global 'load'");
    vm_lua_free(s);
}

struct dump {
    char *buf;
    size_t len;
};

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    struct dump *d = ud;
    (void)L;
    d->buf = xrealloc(d->buf, d->len + sz);
    memcpy(d->buf + d->len, p, sz);
    d->len += sz;
    return 0;
}

static void test_binary_chunks(void)
{
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = NULL;
    char *err = NULL;

    /* real bytecode, from a separate, ordinary state */
    lua_State *P = luaL_newstate();
    CHECK_INT(luaL_loadstring(P, "function decide() return 1 end"), ==, LUA_OK);
    struct dump d = {0};
    CHECK_INT(lua_dump(P, dump_writer, &d, 0), ==, 0);
    lua_close(P);
    size_t len = d.len;
    const char *code = d.buf;
    CHECK(len > 4 && memcmp(code, LUA_SIGNATURE, 4) == 0);
    char *path = write_file("binary.lua", code, len, 0644);
    CHECK_INT(vm_lua_load(path, &o, &s, &err), ==, VM_LUA_E_SYNTAX);
    CHECK(!s);
    char *want = xasprintf("%s: attempt to load a binary chunk (mode is 't')", path);
    CHECK_CONTAINS(err, want);
    free(want);
    free(err);
    free(path);

    /* as a module next to a policy */
    path = write_file("binmod.lua", code, len, 0644);
    free(path);
    free(d.buf);
    static const char pol[] = "local m = require('binmod')\n";
    path = write_file("usebin.lua", pol, strlen(pol), 0644);
    CHECK_INT(vm_lua_load(path, &o, &s, &err), ==, VM_LUA_E_RUNTIME);
    CHECK_CONTAINS(err, "binmod.lua: attempt to load a binary chunk");
    free(err);
    free(path);

    /* a crafted header from a buffer */
    static const char crafted[] = "\x1bLua\x54\x00garbage";
    CHECK_INT(vm_lua_load_buffer("=crafted", crafted, sizeof(crafted) - 1, &o, &s, &err), ==,
              VM_LUA_E_SYNTAX);
    CHECK_CONTAINS(err, "crafted: attempt to load a binary chunk");
    free(err);

    /* and a syntax error says where */
    path = fixture("syntax.lua");
    CHECK_INT(vm_lua_load(path, &o, &s, &err), ==, VM_LUA_E_SYNTAX);
    CHECK_CONTAINS(err, "syntax.lua:4:"); /* Lua reports the token after the '+' */
    free(err);
    free(path);
}

/* ---- require ----------------------------------------------------------------- */

static int c_add(lua_State *L)
{
    lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
    return 1;
}

static int open_vmm(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, c_add);
    lua_setfield(L, -2, "c_add");
    return 1;
}

static const char vmm_source[] = "local name, c = ...\n"
                                 "local M = {name = name, sub = {x = 1}}\n"
                                 "function M.answer() return 42 end\n"
                                 "M.c_add = c.c_add\n"
                                 "return M\n";

static void test_require(void)
{
    struct vm_lua_module mods[] = {{"vmm", open_vmm, vmm_source}};
    struct vm_lua_opts o = small_opts();
    o.modules = mods;
    o.nmodules = 1;
    free(fixture("helper.lua"));
    free(fixture("helper2.lua"));
    free(fixture("loop_self.lua"));
    struct vm_lua *s = load_ok("require_ok.lua", &o);

    json_t *u = call_json(s, "use");
    CHECK_INT(json_integer_value(json_object_get(u, "answer")), ==, 42);
    CHECK_STR(json_string_value(json_object_get(u, "name")), "vmm");
    CHECK_INT(json_integer_value(json_object_get(u, "double")), ==, 42);
    CHECK(json_is_true(json_object_get(u, "same")));
    CHECK_INT(json_integer_value(json_object_get(u, "nested")), ==, 1);
    CHECK_INT(json_integer_value(json_object_get(u, "c")), ==, 5);
    CHECK_INT(json_integer_value(json_object_get(u, "keys")), ==, 4);
    CHECK(json_is_true(json_object_get(u, "nested_via_pairs")));
    json_decref(u);
    const char *f = "require_ok.lua";
    expect_fail(s, f, "write_module", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'vmm' (field 'name')");
    expect_fail(s, f, "write_nested", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'vmm.sub' (field 'x')");
    expect_fail(s, f, "write_nested_pairs", VM_LUA_E_RUNTIME,
                "attempt to modify read-only table 'vmm.sub' (field 'x')");
    expect_fail(s, f, "late_require", VM_LUA_E_RUNTIME,
                "module 'helper2' not allowed here: not a builtin module, and files next to "
                "the policy can only be required while the policy loads");
    char *err = NULL;
    CHECK_INT(call(s, "cached_require", &err), ==, 0);
    CHECK_INT(lua_tointeger(vm_lua_state(s), -1), ==, 4);
    lua_pop(vm_lua_state(s), 1);
    vm_lua_free(s);

    s = load_ok("require_bad.lua", &o);
    json_t *r = call_json(s, "results_of");
    static const char *const want[] = {
        "module 'io' not allowed: not a builtin module, and no file",
        "module 'os' not allowed",
        "module 'socket' not allowed",
        "module 'debug' not allowed",
        "module 'string' not allowed",
        "module '../helper' not allowed: only builtin modules and NAME.lua files",
        "module '/etc/passwd' not allowed",
        "module 'x.y' not allowed",
        "module 'helper.lua' not allowed",
        "module '' not allowed",
        "module 'a/b' not allowed",
        "module 'loop_self' requires itself",
    };
    CHECK_INT(json_array_size(r), ==, VM_ARRAY_LEN(want));
    for (size_t i = 0; i < VM_ARRAY_LEN(want); i++) {
        const char *m = json_string_value(json_array_get(r, i));
        CHECK_CONTAINS(m, want[i]);
        /* the require line (for the loop: the line in the module) */
        CHECK_CONTAINS(m, i + 1 < VM_ARRAY_LEN(want) ? "require_bad.lua:" : "loop_self.lua:2:");
    }
    json_decref(r);
    expect_fail(s, "require_bad.lua", "require_io", VM_LUA_E_RUNTIME, "module 'io' not allowed");
    vm_lua_free(s);

    /* from a buffer there is no directory: builtins only */
    static const char src[] = "local h = require('helper')\n";
    CHECK_INT(vm_lua_load_buffer("=buf", src, strlen(src), &o, &s, &err), ==, VM_LUA_E_RUNTIME);
    CHECK_CONTAINS(err, "buf:1: module 'helper' not allowed");
    free(err);
}

/* ---- files ------------------------------------------------------------------- */

static void expect_refused(const char *path, const char *what)
{
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = NULL;
    char *err = NULL;
    CHECK_INT(vm_lua_load(path, &o, &s, &err), ==, VM_LUA_E_FILE);
    CHECK(!s);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, what);
    fprintf(stderr, "   refused: %s\n", err);
    free(err);
}

static void test_strict_modes(void)
{
    static const char pol[] = "function decide() return {} end\n";
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = NULL;
    char *err = NULL;

    char *path = write_file("modes.lua", pol, strlen(pol), 0600);
    CHECK_INT(vm_lua_load(path, &o, &s, &err), ==, 0);
    vm_lua_free(s);
    CHECK_INT(chmod(path, 0666), ==, 0);
    expect_refused(path, "writable by group or others (mode 0666)");
    CHECK_INT(chmod(path, 0664), ==, 0);
    expect_refused(path, "writable by group or others (mode 0664)");
    CHECK_INT(chmod(path, 0644), ==, 0);
    if (geteuid() == 0) {
        CHECK_INT(chown(path, 65534, 65534), ==, 0);
        expect_refused(path, "owned by uid 65534, not by root or uid 0");
        CHECK_INT(chown(path, 0, 0), ==, 0);
    } else {
        fprintf(stderr, "   (not root: chown case skipped)\n");
    }
    free(path);

    /* the directory */
    char *dir = xasprintf("%s/open", tmpdir);
    CHECK_INT(mkdir(dir, 0700), ==, 0);
    CHECK_INT(chmod(dir, 0777), ==, 0);
    path = xasprintf("%s/p.lua", dir);
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(pol, f);
    fclose(f);
    CHECK_INT(chmod(path, 0644), ==, 0);
    expect_refused(path, "its directory");
    expect_refused(path, "is writable by group or others (mode 0777)");
    /* through a symlink from a safe directory: the real directory counts */
    char *link = xasprintf("%s/link.lua", tmpdir);
    CHECK_INT(symlink(path, link), ==, 0);
    expect_refused(link, "is writable by group or others (mode 0777)");
    CHECK_INT(chmod(dir, 0755), ==, 0);
    CHECK_INT(vm_lua_load(link, &o, &s, &err), ==, 0);
    vm_lua_free(s);
    if (geteuid() == 0) {
        CHECK_INT(chown(dir, 65534, 65534), ==, 0);
        expect_refused(path, "is owned by uid 65534");
        CHECK_INT(chown(dir, 0, 0), ==, 0);
    }
    unlink(link);
    unlink(path);
    rmdir(dir);
    free(link);
    free(path);
    free(dir);

    /* not a file */
    expect_refused(tmpdir, "not a regular file");
    char *fifo = xasprintf("%s/fifo.lua", tmpdir);
    CHECK_INT(mkfifo(fifo, 0600), ==, 0);
    expect_refused(fifo, "not a regular file");
    unlink(fifo);
    free(fifo);
    path = xasprintf("%s/missing.lua", tmpdir);
    expect_refused(path, "cannot open policy");
    free(path);

    /* a module next to the policy gets the same checks */
    free(write_file("m666.lua", "return 1\n", 9, 0666));
    static const char uses[] = "local m = require('m666')\n";
    path = write_file("usesm.lua", uses, strlen(uses), 0644);
    CHECK_INT(vm_lua_load(path, &o, &s, &err), ==, VM_LUA_E_RUNTIME);
    CHECK_CONTAINS(err, "usesm.lua:1: refusing module");
    CHECK_CONTAINS(err, "m666.lua': writable by group or others (mode 0666)");
    free(err);
    free(path);
}

/* ---- plain data ---------------------------------------------------------------- */

static void test_json_in_out(void)
{
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = load_ok("args.lua", &o);
    lua_State *L = vm_lua_state(s);
    char *err = NULL;

    CHECK(vm_lua_has_hook(s, "decide"));
    CHECK(vm_lua_has_hook(s, "on_progress"));
    CHECK(!vm_lua_has_hook(s, "on_done"));
    CHECK(!vm_lua_has_hook(s, "NOT_A_HOOK"));
    CHECK(!vm_lua_has_hook(s, "print")); /* builtins are not hooks */
    CHECK_INT(lua_gettop(L), ==, 0);

    json_error_t je;
    json_t *vm = json_loads("{\"name\":\"db1\",\"memory_mib\":4096,\"ratio\":0.25,"
                            "\"tags\":[\"a\",\"b\"],\"empty\":[],\"note\":null}",
                            0, &je);
    json_t *run = json_pack("{s:b}", "dry_run", 1);
    CHECK(vm_lua_push_hook(s, "decide"));
    CHECK_INT(vm_lua_push_json(L, vm), ==, 0);
    CHECK_INT(vm_lua_push_json(L, run), ==, 0);
    CHECK_INT(vm_lua_call(s, 2, 1, &err), ==, 0);
    json_t *out = vm_lua_to_json(L, -1, &err);
    CHECK(out);
    lua_pop(L, 1);
    char *dump = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(dump, "{\"dry\":true,\"empty_is_array\":[],\"first_tag\":\"a\",\"mem\":8192,"
                    "\"name\":\"db1\",\"ntags\":2,\"null_kept\":null,\"ratio\":0.25}");
    free(dump);
    json_decref(out);
    json_decref(vm);
    json_decref(run);

    /* round trips through echo(), one value at a time */
    static const char *const docs[] = {
        "null",
        "true",
        "false",
        "0",
        "-9223372036854775808",
        "9223372036854775807",
        "1.5",
        "1.0",
        "-0.0",
        "1e300",
        "\"\"",
        "\"caf\\u00e9 \\u0000 nul\"",
        "[]",
        "{}",
        "[1,null,3]",
        "[[],[{}],{\"a\":[]}]",
        "{\"1\":\"string key\",\"x\":{\"y\":[true]}}",
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(docs); i++) {
        json_t *in = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!in)
            CHECK_FAIL("bad test JSON %s: %s", docs[i], je.text);
        CHECK(vm_lua_push_hook(s, "echo"));
        CHECK_INT(vm_lua_push_json(L, in), ==, 0);
        CHECK_INT(vm_lua_call(s, 1, 1, &err), ==, 0);
        json_t *back = vm_lua_to_json(L, -1, &err);
        lua_pop(L, 1);
        if (!back || !json_equal(in, back))
            CHECK_FAIL("round trip of %s: %s", docs[i], err ? err : "differs");
        if (json_is_integer(in) != json_is_integer(back))
            CHECK_FAIL("round trip of %s changed the number type", docs[i]);
        json_decref(in);
        json_decref(back);
    }

    /* nil at the top is null; no value at all too */
    lua_pushnil(L);
    out = vm_lua_to_json(L, -1, &err);
    CHECK(json_is_null(out));
    json_decref(out);
    lua_pop(L, 1);

    /* too deep on the way in: -1, and the deep part is nil */
    json_t *deep = json_array();
    for (int i = 0; i < 70; i++)
        deep = json_pack("[o]", deep);
    CHECK_INT(vm_lua_push_json(L, deep), ==, -1);
    CHECK_INT(lua_gettop(L), ==, 1);
    lua_pop(L, 1);
    json_decref(deep);

    /* userdata made in C */
    lua_newuserdatauv(L, 8, 0);
    CHECK(!vm_lua_to_json(L, -1, &err));
    CHECK_STR(err, "(top level): a userdata is not plain data (only nil, booleans, numbers, "
                   "strings and tables of those)");
    free(err);
    lua_pushlightuserdata(L, &err);
    CHECK(!vm_lua_to_json(L, -1, &err));
    CHECK_CONTAINS(err, "a userdata is not plain data");
    free(err);
    lua_pop(L, 2);
    CHECK_INT(lua_gettop(L), ==, 0);
    vm_lua_free(s);
}

static void test_json_rejects(void)
{
    static const struct {
        const char *hook, *err;
    } cases[] = {
        {"ret_function", "params.bandwidth: a function is not plain data"},
        {"ret_thread", "list[2]: a thread is not plain data"},
        {"ret_cycle", "params.self: a cycle (the table contains itself)"},
        {"ret_deep", "tables nest deeper than 64 levels"},
        {"ret_nan", "x: NaN is not a JSON number"},
        {"ret_inf", "x: infinity is not a JSON number"},
        {"ret_mixed", "params: the table mixes sequence indices and string keys"},
        {"ret_sparse", "(top level): not a sequence: 2 elements but index 3"},
        {"ret_zero", "(top level): a key of type number that is not 1..n"},
        {"ret_float_key", "(top level): a key of type number that is not 1..n"},
        {"ret_bool_key", "(top level): a key of type boolean"},
        {"ret_bad_utf8", "name: the string is not valid UTF-8"},
        {"ret_bad_utf8_key", "[\"?\"]: the key is not valid UTF-8"},
        {"ret_dag", "more than 100000 values"},
        {"ret_meta", "obj: a table with a metatable is not plain data"},
        {"ret_proxy", "lib: a table with a metatable is not plain data"},
        {"ret_odd_key", "a[\"b c\"][1]: a function is not plain data"},
    };
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = load_ok("returns.lua", &o);
    lua_State *L = vm_lua_state(s);
    for (size_t i = 0; i < VM_ARRAY_LEN(cases); i++) {
        char *err = NULL;
        CHECK_INT(call(s, cases[i].hook, &err), ==, 0);
        json_t *j = vm_lua_to_json(L, -1, &err);
        if (j)
            CHECK_FAIL("%s: converted", cases[i].hook);
        CHECK_CONTAINS(err, cases[i].err);
        CHECK_INT(lua_gettop(L), ==, 1);
        lua_pop(L, 1);
        fprintf(stderr, "   %-18s %s\n", cases[i].hook, err);
        free(err);
    }
    json_t *ok = call_json(s, "ret_ok");
    char *dump = json_dumps(ok, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(dump, "{\"big\":9007199254740993,\"empty\":{},\"list\":[1,\"two\",false],"
                    "\"n\":3,\"name\":\"vm1\",\"nested\":{\"a\":{\"b\":{\"c\":true}}},"
                    "\"r\":0.5}");
    free(dump);
    json_decref(ok);
    vm_lua_free(s);
}

/* ---- coroutines and print ------------------------------------------------------ */

struct printed {
    int n;
    char where[2][128];
    char msg[2][1100];
};

static void capture(void *data, const char *where, const char *msg)
{
    struct printed *p = data;
    if (p->n < 2) {
        snprintf(p->where[p->n], sizeof(p->where[0]), "%s", where);
        snprintf(p->msg[p->n], sizeof(p->msg[0]), "%s", msg);
    }
    p->n++;
}

static void test_coroutines_and_print(void)
{
    struct printed pr = {0};
    struct vm_lua_opts o = small_opts();
    o.print = capture;
    o.print_data = &pr;
    struct vm_lua *s = load_ok("coroutines.lua", &o);
    lua_State *L = vm_lua_state(s);
    char *err = NULL;

    CHECK(vm_lua_push_hook(s, "sum"));
    lua_pushinteger(L, 100);
    CHECK_INT(vm_lua_call(s, 1, 1, &err), ==, 0);
    json_t *j = vm_lua_to_json(L, -1, &err);
    lua_pop(L, 1);
    char *dump = json_dumps(j, JSON_COMPACT);
    CHECK_STR(dump, "[5050,3,20,\"dead\",false]");
    free(dump);
    json_decref(j);

    /* a coroutine driven from C */
    lua_State *co = lua_newthread(L); /* anchored on L's stack */
    CHECK(vm_lua_push_hook(s, "stepper"));
    lua_xmove(L, co, 1);
    int nres = 0, want[] = {2, 11, 101};
    for (int i = 0; i < 3; i++) {
        lua_pushinteger(co, i == 0 ? 1 : i == 1 ? 10 : 100);
        int rc = vm_lua_resume(s, co, 1, &nres, &err);
        CHECK_INT(rc, ==, i < 2 ? VM_LUA_YIELD : 0);
        CHECK_INT(nres, ==, 1);
        CHECK_INT(lua_tointeger(co, -1), ==, want[i]);
        lua_pop(co, 1);
    }
    lua_pop(L, 1);
    CHECK_INT(vm_lua_resume(s, L, 0, &nres, &err), ==, VM_LUA_E_STATE);
    free(err);

    CHECK_INT(call(s, "print_things", &err), ==, 0);
    lua_pop(L, 1);
    CHECK_INT(pr.n, ==, 2);
    CHECK_CONTAINS(pr.where[0], "coroutines.lua:25");
    CHECK_STR(pr.msg[0], "hello\\t42\\tnil\\ttrue\\tline\\nbreak?");
    CHECK_INT(strlen(pr.msg[1]), ==, 1002);
    CHECK(strcmp(pr.msg[1] + 999, "...") == 0);
    vm_lua_free(s);

    /* a runaway coroutine resumed from C */
    static const char src[] = "function f()\n  while true do end\nend\n";
    o.print = NULL;
    CHECK_INT(vm_lua_load_buffer("@inline.lua", src, strlen(src), &o, &s, &err), ==, 0);
    L = vm_lua_state(s);
    co = lua_newthread(L);
    CHECK(vm_lua_push_hook(s, "f"));
    lua_xmove(L, co, 1);
    CHECK_INT(vm_lua_resume(s, co, 0, &nres, &err), ==, VM_LUA_E_BUDGET);
    CHECK_CONTAINS(err, "inline.lua:2: instruction budget");
    free(err);
    vm_lua_free(s);
}

static void test_misuse(void)
{
    struct vm_lua_opts o = small_opts();
    struct vm_lua *s = NULL;
    char *err = NULL;
    static const char src[] = "function f() return 1 end\n";
    CHECK_INT(vm_lua_load_buffer("=m", src, strlen(src), &o, &s, &err), ==, 0);
    CHECK_INT(vm_lua_call(s, 0, 0, &err), ==, VM_LUA_E_STATE);
    CHECK_CONTAINS(err, "no function on the stack");
    free(err);
    /* calling a non-function is a runtime error, not a crash */
    lua_pushinteger(vm_lua_state(s), 3);
    CHECK_INT(vm_lua_call(s, 0, 0, &err), ==, VM_LUA_E_RUNTIME);
    CHECK_CONTAINS(err, "attempt to call a number value");
    free(err);
    vm_lua_free(s);
    vm_lua_free(NULL);
    for (int c = 1; c >= -9; c--)
        CHECK(vm_lua_strerror(c) && *vm_lua_strerror(c));
}

/* ---- measurements -------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench(void)
{
    struct vm_lua_opts o = {0};
    o.call_instructions = 2000000000;
    o.call_ms = 60000;
    struct vm_lua *s = NULL;
    char *err = NULL;
    lua_State *L;

    CHECK_INT(vm_lua_load_buffer("=empty", "", 0, &o, &s, &err), ==, 0);
    fprintf(stderr, "bench: memory of a state with an empty policy: %zu bytes\n",
            vm_lua_mem_used(s));
    vm_lua_free(s);
    s = load_ok("args.lua", &o);
    fprintf(stderr, "bench: memory of a state with args.lua loaded: %zu bytes\n",
            vm_lua_mem_used(s));
    L = vm_lua_state(s);

    int n = 300000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        vm_lua_push_hook(s, "on_progress");
        lua_pushinteger(L, i);
        lua_pushinteger(L, i);
        if (vm_lua_call(s, 2, 0, &err))
            CHECK_FAIL("%s", err);
    }
    double dt = now_s() - t0;
    fprintf(stderr, "bench: trivial hook: %.0f calls/s (%.2f us/call)\n", n / dt, dt / n * 1e6);

    json_t *vm = json_pack("{s:s,s:i,s:f,s:[s,s],s:[],s:n}", "name", "db1", "memory_mib", 4096,
                           "ratio", 0.25, "tags", "a", "b", "empty", "note");
    json_t *run = json_pack("{s:b}", "dry_run", 0);
    n = 100000;
    t0 = now_s();
    for (int i = 0; i < n; i++) {
        vm_lua_push_hook(s, "decide");
        vm_lua_push_json(L, vm);
        vm_lua_push_json(L, run);
        if (vm_lua_call(s, 2, 1, &err))
            CHECK_FAIL("%s", err);
        json_t *out = vm_lua_to_json(L, -1, &err);
        lua_pop(L, 1);
        json_decref(out);
    }
    dt = now_s() - t0;
    fprintf(stderr, "bench: decide() with JSON in and out: %.0f calls/s (%.2f us/call)\n", n / dt,
            dt / n * 1e6);
    json_decref(vm);
    json_decref(run);
    vm_lua_free(s);

    /* count hook overhead: the same loop, sandboxed vs a bare state */
    static const char loop[] = "function work(n) local x = 0 for i = 1, n do x = x + i % 7 end "
                               "return x end\n";
    const lua_Integer iters = 50000000;
    CHECK_INT(vm_lua_load_buffer("=loop", loop, strlen(loop), &o, &s, &err), ==, 0);
    L = vm_lua_state(s);
    vm_lua_push_hook(s, "work");
    lua_pushinteger(L, iters);
    t0 = now_s();
    if (vm_lua_call(s, 1, 1, &err))
        CHECK_FAIL("%s", err);
    double sandboxed = now_s() - t0;
    lua_Integer r1 = lua_tointeger(L, -1);
    vm_lua_free(s);
    lua_State *P = luaL_newstate();
    luaL_openlibs(P);
    CHECK_INT(luaL_dostring(P, loop), ==, 0);
    lua_getglobal(P, "work");
    lua_pushinteger(P, iters);
    t0 = now_s();
    CHECK_INT(lua_pcall(P, 1, 1, 0), ==, 0);
    double bare = now_s() - t0;
    CHECK_INT(lua_tointeger(P, -1), ==, r1);
    lua_close(P);
    fprintf(stderr,
            "bench: %lld-iteration loop (~%lld instructions): bare %.3f s, sandboxed %.3f s "
            "(count hook overhead %+.1f%%)\n",
            (long long)iters, (long long)iters * 4, bare, sandboxed, (sandboxed / bare - 1) * 100);
}

/* ---- a call the limits cannot stop -------------------------------------- */

/* In a fresh process (the watchdog thread would not survive a fork): a
 * handler that passes on what it is told and ends the process. */
static void stuck_exit(void *data, const char *what)
{
    int fd = *(int *)data;
    ssize_t w = write(fd, what, strlen(what));
    (void)w;
    _exit(42);
}

static int stuck_child(int fd)
{
    static const char src[] = "function f()\n"
                              "  return string.find(string.rep('a', 20000), '.-.-.-.-b')\n"
                              "end\n";
    struct vm_lua_opts o = {.call_ms = 1};
    struct vm_lua *s = NULL;
    char *err = NULL;
    vm_lua_set_stuck(stuck_exit, &fd);
    CHECK_INT(vm_lua_load_buffer("=stuck", src, strlen(src), &o, &s, &err), ==, 0);
    vm_lua_push_hook(s, "f");
    vm_lua_call(s, 0, 1, &err);
    return 1; /* the pattern ended before the watchdog: not what is tested */
}

/* The watchdog reports a call stuck in library code, once it is 4 s past its
 * deadline, to the function set with vm_lua_set_stuck; the sandbox itself
 * does not end the process (the handler does, here with status 42). */
static void test_stuck_reported(void)
{
    int fds[2];
    CHECK_INT(pipe(fds), ==, 0);
    double t0 = now_s();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        char fd[16];
        snprintf(fd, sizeof(fd), "%d", fds[1]);
        execl("/proc/self/exe", "test_lua_sandbox", "--stuck-child", fd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_s() - t0 < 60)
        usleep(50 * 1000);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK_FAIL("the stuck call was not reported within 60 s");
    }
    double took = now_s() - t0;
    char what[512] = "";
    ssize_t n = read(fds[0], what, sizeof(what) - 1);
    close(fds[0]);
    what[n > 0 ? n : 0] = '\0';
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), ==, 42);
    CHECK_CONTAINS(what, "policy stuck:1: stuck for ");
    CHECK_CONTAINS(what, " ms in library code the instruction budget cannot interrupt");
    CHECK(!strchr(what, '\n'));
    if (took < 4.0)
        CHECK_FAIL("reported after %.1f s, before the 4 s grace past the deadline", took);
}

static void cleanup(void)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    free(cmd);
}

static void setup(void)
{
    umask(022);
    if (!mkdtemp(tmpdir))
        CHECK_FAIL("mkdtemp: %s", strerror(errno));
    atexit(cleanup);
}

static const struct vm_test tests[] = {
    VM_TEST(test_loop_main),      VM_TEST(test_loops),          VM_TEST(test_c_loops),
    VM_TEST(test_budget_rearmed), VM_TEST(test_memory),         VM_TEST(test_recursion_and_errors),
    VM_TEST(test_globals),        VM_TEST(test_readonly),       VM_TEST(test_absent),
    VM_TEST(test_binary_chunks),  VM_TEST(test_require),        VM_TEST(test_strict_modes),
    VM_TEST(test_json_in_out),    VM_TEST(test_json_rejects),   VM_TEST(test_coroutines_and_print),
    VM_TEST(test_misuse),         VM_TEST(test_stuck_reported), {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup};

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--stuck-child") == 0)
        return stuck_child(atoi(argv[2]));
    if (getenv("VMM_LUA_BENCH")) {
        setup();
        bench();
        return 0;
    }
    return vm_test_main(argc, argv, &suite);
}
