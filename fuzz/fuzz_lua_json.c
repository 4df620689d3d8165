/* SPDX-License-Identifier: MIT */
/* fuzz_lua_json.c — libFuzzer harness for the plain-data boundary of the
 * policy sandbox (src/policy/lua_json.c), and the sandbox itself.
 *
 * Input: byte 0 picks the mode, the rest is the payload.
 *  - even: the payload is JSON (any value, NUL allowed). Pushed into a
 *    sandbox and converted back, it must come out equal (types included:
 *    integers stay integers, [] stays [], null stays null), unless it nests
 *    deeper than VM_LUA_MAX_DEPTH (then vm_lua_push_json says so) or has
 *    more than VM_LUA_MAX_ELEMENTS values (then vm_lua_to_json says so).
 *  - odd: the payload is a policy, loaded with small limits; if it defines
 *    f(), f is called with the payload as a string and its result converted.
 *    Any outcome is fine but a crash, a sanitizer report, a leak or a hang.
 *    Payloads naming the pattern functions are skipped: a backtracking
 *    pattern is the sandbox's documented gap (lua_sandbox.h) and would only
 *    show up as a timeout. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/lua_sandbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_values(json_t *v)
{
    size_t n = 1, i;
    const char *k;
    json_t *x;
    if (json_is_array(v))
        json_array_foreach(v, i, x) n += count_values(x);
    else if (json_is_object(v))
        json_object_foreach(v, k, x) n += count_values(x);
    return n;
}

static void json_mode(const char *p, size_t n)
{
    static struct vm_lua *s;
    char *err = NULL;
    if (!s && vm_lua_load_buffer("=fuzz", "", 0, NULL, &s, &err) != 0)
        abort();
    lua_State *L = vm_lua_state(s);
    json_t *in = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!in)
        return;
    int rc = vm_lua_push_json(L, in);
    if (lua_gettop(L) != 1)
        abort();
    json_t *out = vm_lua_to_json(L, -1, &err);
    lua_settop(L, 0);
    if (rc == 0 && count_values(in) <= VM_LUA_MAX_ELEMENTS) {
        if (!out || !json_equal(in, out))
            abort();
    }
    if (!out && (!err || !*err))
        abort();
    json_decref(in);
    json_decref(out);
    free(err);
}

static bool mentions(const char *p, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (memcmp(p + i, word, w) == 0)
            return true;
    return false;
}

static void lua_mode(const char *p, size_t n)
{
    static const char *const skip[] = {"find", "match", "gsub"};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
        if (mentions(p, n, skip[i]))
            return;
    struct vm_lua_opts o = {
        .mem_bytes = 8u << 20,
        .load_instructions = 200000,
        .call_instructions = 200000,
        .call_ms = 2000,
    };
    struct vm_lua *s = NULL;
    char *err = NULL;
    int rc = vm_lua_load_buffer("=fuzz", p, n, &o, &s, &err);
    if (rc != 0) {
        if (s || !err || strchr(err, '\n'))
            abort();
        free(err);
        return;
    }
    lua_State *L = vm_lua_state(s);
    if (vm_lua_push_hook(s, "f")) {
        lua_pushlstring(L, p, n);
        rc = vm_lua_call(s, 1, 1, &err);
        if (rc == 0) {
            json_t *j = vm_lua_to_json(L, -1, &err);
            json_decref(j);
            lua_pop(L, 1);
        } else if (!err || strchr(err, '\n')) {
            abort();
        }
        free(err);
    }
    if (lua_gettop(L) != 0)
        abort();
    vm_lua_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 2 == 0)
        json_mode((const char *)data + 1, size - 1);
    else
        lua_mode((const char *)data + 1, size - 1);
    return 0;
}
