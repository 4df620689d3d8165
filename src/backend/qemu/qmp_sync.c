/* SPDX-License-Identifier: MIT */
/* qmp_sync.c — see qmp_sync.h. */
#include "backend/qemu/qmp_sync.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "backend/qemu/qmp.h"
#include "util/util.h"

struct vm_qmp_sync {
    uv_loop_t loop;
    struct vm_qmp *q; /* NULL once it closed */
    int ready;        /* 0 waiting, 1 negotiated, negative: why not */
    char *why;        /* the client's details when it ended */
};

char *vm_qmp_uri(const char *path)
{
    if (path[0] == '/')
        return xasprintf("%s%s", VM_QMP_URI_PREFIX, path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return xasprintf("%s%s", VM_QMP_URI_PREFIX, path);
    return xasprintf("%s%s/%s", VM_QMP_URI_PREFIX, cwd, path);
}

const char *vm_qmp_uri_path(const char *uri)
{
    size_t n = strlen(VM_QMP_URI_PREFIX);
    return uri && strncmp(uri, VM_QMP_URI_PREFIX, n) == 0 && uri[n] ? uri + n : NULL;
}

static void on_ready(struct vm_qmp *q, int status, void *ud)
{
    struct vm_qmp_sync *s = ud;
    (void)q;
    s->ready = status < 0 ? status : 1;
}

static void on_close(struct vm_qmp *q, int reason, void *ud)
{
    struct vm_qmp_sync *s = ud;
    if (!s->why && *vm_qmp_errmsg(q))
        s->why = xstrdup(vm_qmp_errmsg(q));
    if (s->ready == 0)
        s->ready = reason < 0 ? reason : VM_QMP_E_CLOSED;
    s->q = NULL;
}

static const struct vm_qmp_callbacks sync_cbs = {on_ready, NULL, on_close};

static void sync_free(struct vm_qmp_sync *s)
{
    if (s->q)
        vm_qmp_close(s->q);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* to the client's close callback */
    uv_loop_close(&s->loop);
    free(s->why);
    free(s);
}

struct vm_qmp_sync *vm_qmp_sync_open(const char *path, uint64_t timeout_ms, bool *gone,
                                     char **err)
{
    struct vm_qmp_sync *s = xcalloc(1, sizeof(*s));
    *gone = false;
    uv_loop_init(&s->loop);
    s->q = vm_qmp_new(&s->loop, &sync_cbs, s);
    vm_qmp_set_timeout_ms(s->q, timeout_ms);
    int rc = vm_qmp_connect(s->q, path);
    if (rc < 0) {
        vm_qmp_close(s->q);
        s->ready = rc;
    }
    while (s->ready == 0 && uv_run(&s->loop, UV_RUN_ONCE))
        ;
    if (s->ready == 1)
        return s;
    *gone = s->ready == UV_ENOENT || s->ready == UV_ECONNREFUSED;
    *err = xasprintf("cannot talk to QMP at '%s': %s%s%s", path,
                     vm_qmp_strerror(s->ready ? s->ready : VM_QMP_E_CLOSED), s->why ? ": " : "",
                     s->why ? s->why : "");
    sync_free(s);
    return NULL;
}

struct reply {
    bool done, closed;
    json_t *ret;
    char *err;
};

static void on_reply(struct vm_qmp *q, json_t *ret, const struct vm_qmp_error *err, void *data)
{
    struct reply *r = data;
    (void)q;
    r->done = true;
    if (err) {
        r->closed = err->code == VM_QMP_E_CLOSED;
        r->err = xasprintf("%s: %s", err->error_class, err->desc ? err->desc : "no description");
    } else {
        r->ret = json_incref(ret);
    }
}

json_t *vm_qmp_sync_command(struct vm_qmp_sync *s, const char *cmd, json_t *args, bool *closed,
                            char **err)
{
    struct reply r = {0};
    int rc = s->q ? vm_qmp_command(s->q, cmd, args, on_reply, &r) : VM_QMP_E_CLOSED;
    if (!s->q)
        json_decref(args);
    if (rc < 0) {
        r.done = true;
        r.closed = rc == VM_QMP_E_CLOSED;
        r.err = xstrdup(vm_qmp_strerror(rc));
    }
    while (!r.done && uv_run(&s->loop, UV_RUN_ONCE))
        ;
    if (closed)
        *closed = r.closed || !r.done;
    if (r.ret)
        return r.ret;
    *err = xasprintf("%s: %s", cmd, r.err ? r.err : "no reply");
    free(r.err);
    return NULL;
}

void vm_qmp_sync_close(struct vm_qmp_sync *s)
{
    if (s)
        sync_free(s);
}
