/* SPDX-License-Identifier: MIT */
/* exec.c — see exec.h. */
#include "util/exec.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

struct vm_exec_hosts {
    char **specs; /* "URI=PREFIX", NULL-terminated */
};

bool vm_exec_override_valid(const char *spec)
{
    const char *eq = strchr(spec, '=');
    return eq && eq != spec && eq[1] && eq[1] != ' ';
}

struct vm_exec_hosts *vm_exec_hosts_new(const char *const *specs)
{
    size_t n = 0;
    while (specs && specs[n])
        n++;
    struct vm_exec_hosts *h = xcalloc(1, sizeof(*h));
    h->specs = xcalloc(n + 1, sizeof(*h->specs));
    for (size_t i = 0; i < n; i++)
        h->specs[i] = xstrdup(specs[i]);
    return h;
}

void vm_exec_hosts_free(struct vm_exec_hosts *h)
{
    if (!h)
        return;
    for (char **p = h->specs; *p; p++)
        free(*p);
    free(h->specs);
    free(h);
}

const char *vm_exec_hosts_lookup(const struct vm_exec_hosts *h, const char *uri)
{
    size_t ulen = strlen(uri);
    for (char **p = h ? h->specs : NULL; p && *p; p++) {
        /* URIs contain '=' (socket=...): the override is "URI=" + PREFIX. */
        if (strncmp(*p, uri, ulen) == 0 && (*p)[ulen] == '=')
            return *p + ulen + 1;
    }
    return NULL;
}

struct strv {
    char **v;
    size_t n, cap;
};

static void push(struct strv *s, char *str)
{
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = str;
    s->v[s->n] = NULL;
}

/* 'arg' quoted for a POSIX shell on the remote side. */
static char *shell_quote(const char *a)
{
    size_t n = 2;
    for (const char *p = a; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *q = xmalloc(n + 1), *w = q;
    *w++ = '\'';
    for (const char *p = a; *p; p++) {
        if (*p == '\'') {
            memcpy(w, "'\\''", 4);
            w += 4;
        } else {
            *w++ = *p;
        }
    }
    *w++ = '\'';
    *w = '\0';
    return q;
}

/* ARGV after what S holds; quoted when a remote shell reads it (ssh). */
static void push_argv(struct strv *s, const char *const *argv, bool quote)
{
    for (const char *const *a = argv; *a; a++)
        push(s, quote ? shell_quote(*a) : xstrdup(*a));
}

void vm_exec_argv_free(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}

char **vm_exec_argv(const struct vm_exec_hosts *hosts, const char *uri, const char *const *argv,
                    char **why)
{
    struct strv s = {0};
    *why = NULL;
    const char *prefix = vm_exec_hosts_lookup(hosts, uri);
    if (prefix) {
        char *copy = xstrdup(prefix), *save = NULL;
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
            push(&s, xstrdup(t));
        free(copy);
        /* ssh hands its arguments to the remote shell as one line */
        const char *prog = s.v ? strrchr(s.v[0], '/') : NULL;
        push_argv(&s, argv, s.v && strcmp(prog ? prog + 1 : s.v[0], "ssh") == 0);
        return s.v;
    }
    const char *sep = strstr(uri, "://");
    size_t slen = sep ? (size_t)(sep - uri) : 0;
    bool local = false;
    if (strncmp(uri, "test:", 5) == 0 || (sep && sep[3] == '/'))
        local = true; /* no host part: this machine */
    if (local) {
        push_argv(&s, argv, false);
        return s.v;
    }
    if (sep && slen >= 4 && strncmp(uri + slen - 4, "+ssh", 4) == 0) {
        const char *host = sep + 3;
        size_t hlen = strcspn(host, "/?");
        char *h = xstrndup(host, hlen), *port = NULL;
        char *colon = strrchr(h, ':');
        if (colon && !strchr(colon, ']')) {
            *colon = '\0';
            port = colon + 1;
        }
        push(&s, xstrdup("ssh"));
        push(&s, xstrdup("-o"));
        push(&s, xstrdup("BatchMode=yes"));
        if (port && *port) {
            push(&s, xstrdup("-p"));
            push(&s, xstrdup(port));
        }
        push(&s, xstrdup(h));
        push(&s, xstrdup("--"));
        push_argv(&s, argv, true);
        free(h);
        return s.v;
    }
    *why = xasprintf("no executor for host '%s' (give one with --host-exec URI=PREFIX)", uri);
    return NULL;
}

struct vm_exec {
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;
    char *buf[2];
    size_t len[2];
    int open_handles;
    bool exited, timed_out, reported;
    int64_t status;
    int signal;
    vm_exec_cb cb; /* the first caller's */
    void *data;
    struct vm_exec_waiter *more; /* callers that joined it (vm_exec_start_shared) */
    int nmore;
    int live;                    /* callers that have not called vm_exec_kill */
    struct vm_exec_share *share; /* where it is listed while it runs, or NULL */
    char *key;                   /* its full command line, when shared */
    struct vm_exec *next;        /* in share->running */
};

struct vm_exec_waiter {
    vm_exec_cb cb;
    void *data;
};

struct vm_exec_share {
    struct vm_exec *running; /* commands that may still be joined */
    long started, joined;
};

struct vm_exec_share *vm_exec_share_new(void)
{
    return xcalloc(1, sizeof(struct vm_exec_share));
}

void vm_exec_share_free(struct vm_exec_share *s)
{
    if (!s)
        return;
    for (struct vm_exec *e = s->running; e; e = e->next)
        e->share = NULL;
    free(s);
}

void vm_exec_share_counts(const struct vm_exec_share *s, long *started, long *joined)
{
    *started = s ? s->started : 0;
    *joined = s ? s->joined : 0;
}

/* No one joins a command once it has reported. */
static void share_leave(struct vm_exec *e)
{
    if (!e->share)
        return;
    for (struct vm_exec **p = &e->share->running; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    e->share = NULL;
}

static void handle_closed(uv_handle_t *h);

static void report(struct vm_exec *e)
{
    if (e->reported || !e->exited || e->open_handles > 1)
        return; /* wait for exit and both pipes' EOF (the timer is the last) */
    e->reported = true;
    struct vm_exec_result r = {
        .status = e->status,
        .signal = e->signal,
        .timed_out = e->timed_out,
        .out = e->buf[0] ? e->buf[0] : "",
        .err = e->buf[1] ? e->buf[1] : "",
        .out_len = e->len[0],
        .err_len = e->len[1],
    };
    share_leave(e);
    e->cb(&r, e->data);
    for (int i = 0; i < e->nmore; i++)
        e->more[i].cb(&r, e->more[i].data);
    uv_close((uv_handle_t *)&e->timer, handle_closed);
}

static void handle_closed(uv_handle_t *h)
{
    struct vm_exec *e = h->data;
    if (--e->open_handles == 0) {
        free(e->buf[0]);
        free(e->buf[1]);
        free(e->more);
        free(e->key);
        free(e);
        return;
    }
    report(e);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = xmalloc(suggested);
    buf->len = suggested;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct vm_exec *e = s->data;
    int k = s == (uv_stream_t *)&e->out ? 0 : 1;
    if (n > 0) {
        size_t room = VM_EXEC_MAX_OUTPUT - e->len[k];
        size_t take = (size_t)n < room ? (size_t)n : room;
        e->buf[k] = xrealloc(e->buf[k], e->len[k] + take + 1);
        memcpy(e->buf[k] + e->len[k], buf->base, take);
        e->len[k] += take;
        e->buf[k][e->len[k]] = '\0';
    }
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        uv_close((uv_handle_t *)s, handle_closed);
    }
}

static void exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct vm_exec *e = p->data;
    e->exited = true;
    e->status = status;
    e->signal = sig;
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)p, handle_closed);
}

static void timeout_cb(uv_timer_t *t)
{
    struct vm_exec *e = t->data;
    e->timed_out = true;
    uv_process_kill(&e->proc, SIGKILL);
}

void vm_exec_kill(struct vm_exec *e)
{
    if (!e || e->exited)
        return;
    if (--e->live > 0)
        return; /* others still wait for its answer */
    share_leave(e);
    uv_process_kill(&e->proc, SIGKILL);
}

/* Can PROG (a path, or a name looked up in PATH) be executed? 0, or an
 * errno. */
static int runnable(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? 0 : errno;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int err = ENOENT;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        char *cand = n ? xasprintf("%.*s/%s", (int)n, p, prog) : xasprintf("./%s", prog);
        int ok = access(cand, X_OK);
        if (ok < 0 && errno != ENOENT)
            err = errno;
        free(cand);
        if (ok == 0)
            return 0;
        p += n + (p[n] == ':');
    }
    return err;
}

/* Commands must not outlive vmmigrate: a feature step still running after
 * a crash (kill -9) could undo what the recovery settles. util-linux's
 * setpriv sets PR_SET_PDEATHSIG before it executes the command (libuv has
 * no hook for that); without it commands run as they are. */
#define SETPRIV "/usr/bin/setpriv"

static char **with_death_signal(char **argv)
{
    static int have = -1;
    if (have < 0)
        have = access(SETPRIV, X_OK) == 0;
    if (!have)
        return argv;
    size_t n = 0;
    while (argv[n])
        n++;
    char **v = xcalloc(n + 5, sizeof(*v)); /* and the NULL */
    v[0] = xstrdup(SETPRIV);
    v[1] = xstrdup("--pdeathsig");
    v[2] = xstrdup("KILL");
    v[3] = xstrdup("--");
    memcpy(v + 4, argv, n * sizeof(*v));
    free(argv);
    return v;
}

/* The command line to spawn (with the death signal), or NULL after cb
 * ran with why it cannot start. */
static char **full_argv(const struct vm_exec_hosts *hosts, const char *uri, const char *const *argv,
                        vm_exec_cb cb, void *data)
{
    char *why = NULL;
    char **full = vm_exec_argv(hosts, uri, argv, &why);
    int err = full && full[0] ? runnable(full[0]) : 0;
    if (err) {
        why = xasprintf("cannot run '%s': %s", full[0], strerror(err));
        vm_exec_argv_free(full);
        full = NULL;
    }
    if (full && full[0])
        full = with_death_signal(full);
    if (!full || !full[0]) {
        struct vm_exec_result r = {
            .status = -1, .out = "", .err = "", .error = why ? why : "empty command"};
        cb(&r, data);
        free(why);
        vm_exec_argv_free(full);
        return NULL;
    }
    return full;
}

static struct vm_exec *spawn(uv_loop_t *loop, char **full, const char *const *argv,
                             uint64_t timeout_ms, vm_exec_cb cb, void *data);

struct vm_exec *vm_exec_start(uv_loop_t *loop, const struct vm_exec_hosts *hosts, const char *uri,
                              const char *const *argv, uint64_t timeout_ms, vm_exec_cb cb,
                              void *data)
{
    char **full = full_argv(hosts, uri, argv, cb, data);
    return full ? spawn(loop, full, argv, timeout_ms, cb, data) : NULL;
}

struct vm_exec *vm_exec_start_shared(struct vm_exec_share *share, uv_loop_t *loop,
                                     const struct vm_exec_hosts *hosts, const char *uri,
                                     const char *const *argv, uint64_t timeout_ms, vm_exec_cb cb,
                                     void *data)
{
    char **full = full_argv(hosts, uri, argv, cb, data);
    if (!full)
        return NULL;
    if (!share)
        return spawn(loop, full, argv, timeout_ms, cb, data);
    /* The key: the arguments, each ended by a byte no argument holds. */
    size_t len = 1;
    for (char **p = full; *p; p++)
        len += strlen(*p) + 1;
    char *key = xmalloc(len), *k = key;
    for (char **p = full; *p; p++) {
        size_t n = strlen(*p);
        memcpy(k, *p, n);
        k += n;
        *k++ = '\x1f';
    }
    *k = '\0';
    for (struct vm_exec *e = share->running; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            e->more = xrealloc(e->more, (size_t)(e->nmore + 1) * sizeof(*e->more));
            e->more[e->nmore++] = (struct vm_exec_waiter){cb, data};
            e->live++;
            share->joined++;
            free(key);
            vm_exec_argv_free(full);
            return e;
        }
    struct vm_exec *e = spawn(loop, full, argv, timeout_ms, cb, data);
    if (!e) {
        free(key);
        return NULL;
    }
    e->key = key;
    e->share = share;
    e->next = share->running;
    share->running = e;
    share->started++;
    return e;
}

static struct vm_exec *spawn(uv_loop_t *loop, char **full, const char *const *argv,
                             uint64_t timeout_ms, vm_exec_cb cb, void *data)
{
    struct vm_exec *e = xcalloc(1, sizeof(*e));
    e->cb = cb;
    e->data = data;
    e->live = 1;
    uv_pipe_init(loop, &e->out, 0);
    uv_pipe_init(loop, &e->err, 0);
    uv_timer_init(loop, &e->timer);
    e->out.data = e->err.data = e->timer.data = e->proc.data = e;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&e->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&e->err},
    };
    uv_process_options_t opts = {
        .exit_cb = exit_cb,
        .file = full[0],
        .args = full,
        .stdio_count = 3,
        .stdio = stdio,
    };
    int rc = uv_spawn(loop, &e->proc, &opts);
    vm_exec_argv_free(full);
    if (rc < 0) {
        /* Nothing started: close what was made, report, free in the close
         * callbacks (the process handle is closed too, libuv requires it). */
        char *msg = xasprintf("cannot run '%s': %s", argv[0], uv_strerror(rc));
        struct vm_exec_result r = {.status = -1, .out = "", .err = "", .error = msg};
        e->reported = true;
        e->exited = true;
        cb(&r, data);
        free(msg);
        e->open_handles = 4;
        uv_close((uv_handle_t *)&e->proc, handle_closed);
        uv_close((uv_handle_t *)&e->out, handle_closed);
        uv_close((uv_handle_t *)&e->err, handle_closed);
        uv_close((uv_handle_t *)&e->timer, handle_closed);
        return NULL;
    }
    e->open_handles = 4; /* process, two pipes, timer */
    uv_read_start((uv_stream_t *)&e->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&e->err, alloc_cb, read_cb);
    if (timeout_ms)
        uv_timer_start(&e->timer, timeout_cb, timeout_ms, 0);
    return e;
}
