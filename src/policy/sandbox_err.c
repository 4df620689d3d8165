/* SPDX-License-Identifier: MIT */
/* sandbox_err.c — the text of the sandbox's errors (lua_sandbox.h): names
 * of the VM_LUA_E_* codes, "file:line:" locations, sizes, one-line UTF-8
 * copies of messages, the message handler of every call and the *err of a
 * failed one. Returned strings are malloc'd and belong to the caller. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "policy/sandbox_priv.h"
#include "util/util.h"

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

void sb_fmt_size(size_t n, char *buf, size_t len)
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
char *sb_one_line(const char *s, size_t len, size_t max)
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
bool sb_has_location(const char *m)
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
void sb_where_from(lua_State *L, int level, char *buf, size_t len)
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
int sb_error_at_lua(lua_State *L, const char *fmt, ...)
{
    char where[WHERE_LEN];
    va_list ap;
    sb_where_from(L, 1, where, sizeof(where));
    lua_pushfstring(L, "%s%s", where, *where ? ": " : "");
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

/* *err for a failed call; the error object (if any) is at IDX of L. */
char *sb_call_error(struct vm_lua *s, lua_State *L, int idx, int code)
{
    if (s->trip_msg)
        return sb_one_line(s->trip_msg, strlen(s->trip_msg), ERR_MAX);
    if (code == VM_LUA_E_MEMORY) {
        char size[64];
        const char *w = s->last_where[0] ? s->last_where : s->fn_where;
        sb_fmt_size(s->mem_max, size, sizeof(size));
        char *m = xasprintf("%s%smemory limit of %s reached", w, *w ? ": " : "", size);
        char *r = sb_one_line(m, strlen(m), ERR_MAX);
        free(m);
        return r;
    }
    size_t len;
    const char *m = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    if (!m) {
        m = "(error object is not a string)";
        len = strlen(m);
    }
    return sb_one_line(m, len, ERR_MAX);
}

/* Message handler of every call: make the error object a string that starts
 * with "file:line:", without running policy code (no __tostring). */
int sb_msgh(lua_State *L)
{
    char where[WHERE_LEN];
    int t = lua_type(L, 1);

    if (t == LUA_TSTRING && sb_has_location(lua_tostring(L, 1)))
        return 1;
    sb_where_from(L, 1, where, sizeof(where));
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
