/* SPDX-License-Identifier: MIT */
/* lua_json.c — plain data across the sandbox's boundary (lua_sandbox.h):
 * JSON pushed into Lua, and Lua values converted strictly back to JSON
 * (nil, booleans, numbers, strings and tables of those; wrk's
 * script_copy_value). JSON passed in is borrowed, JSON returned is a new
 * reference, *err is malloc'd and the caller's. Fuzzed by
 * fuzz/fuzz_lua_json.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "policy/sandbox_priv.h"
#include "util/util.h"

static char null_tag; /* JSON null in Lua: a light userdata of its address */

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
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sb_keys.array_mt);
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
    tj->err = sb_one_line(m, strlen(m), ERR_MAX);
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
        lua_rawgetp(L, LUA_REGISTRYINDEX, &sb_keys.array_mt);
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
