/* SPDX-License-Identifier: MIT */
/* sandbox_load.c — getting policy code into a sandbox (lua_sandbox.h):
 * require (builtin modules and NAME.lua next to the policy), the StrictModes
 * checks and reading of policy files, compiling text chunks and running the
 * main chunk within the load limits, and looking up the hooks it defined.
 * Buffers read here are freed here; *err strings belong to the caller. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "policy/sandbox_priv.h"
#include "util/util.h"

static char loading_tag; /* sb_keys.loaded[name] while NAME loads */

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
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sb_keys.env);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
}

/* A chunk that failed to compile: its message, with the chunk's name in
 * front when Lua left it out ("attempt to load a binary chunk"). */
static void fix_load_message(lua_State *L, const char *chunkname)
{
    const char *m = lua_tostring(L, -1);
    if (!m || sb_has_location(m))
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
            sb_push_proxy(L, -1, name, true);
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
        return sb_error_at_lua(L, "%s", msg); /* at the require() line */
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

int sb_require(lua_State *L)
{
    struct vm_lua *s = state_of(L);
    size_t nlen;
    const char *name = luaL_checklstring(L, 1, &nlen);
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sb_keys.loaded); /* 2 */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == &loading_tag)
            return sb_error_at_lua(L, "module '%s' requires itself (a require loop)", name);
        return 1;
    }
    lua_pop(L, 1);
    if (!find_module(s, name, nlen)) {
        if (!module_name_ok(name, nlen) || !s->dir)
            return sb_error_at_lua(L,
                                "module '%s' not allowed: only builtin modules and NAME.lua "
                                "files next to the policy can be required",
                                name);
        if (s->frozen)
            return sb_error_at_lua(L,
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
        *err = m ? sb_one_line(m, mlen, ERR_MAX) : xstrdup("cannot compile the policy");
        lua_pop(L, 1);
        return st == LUA_ERRMEM || s->mem_failed ? VM_LUA_E_MEMORY : VM_LUA_E_SYNTAX;
    }
    set_env(L);
    int rc = sb_run(s, s->load_insns, 0, 0, err);
    if (rc == 0)
        s->frozen = true;
    return rc;
}

int vm_lua_load_buffer(const char *chunkname, const char *buf, size_t len,
                       const struct vm_lua_opts *opts, struct vm_lua **out, char **err)
{
    *out = NULL;
    *err = NULL;
    struct vm_lua *s = sb_new_state(opts, NULL, err);
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
    struct vm_lua *s = sb_new_state(opts, dir, err);
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
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sb_keys.globals);
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
