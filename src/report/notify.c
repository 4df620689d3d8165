/* SPDX-License-Identifier: MIT */
/* notify.c — see notify.h. */
#include "report/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/http.h"
#include "report/report.h"
#include "util/util.h"

#define ATTEMPTS 4

struct post;

struct vm_notify {
    uv_loop_t *loop;
    struct vm_http *http;
    char **urls;
    int n;
    char *auth;         /* "Authorization: Bearer ..." or NULL */
    struct post *posts; /* in flight or waiting to retry */
    uv_timer_t *grace;
    bool closing, finishing;
};

struct post {
    struct post *next;
    struct vm_notify *nf;
    char *url, *body;
    int attempt;
    struct vm_http_req *req;
    uv_timer_t *retry;
};

static char *read_token(const char *path, char **err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        *err = xasprintf("--notify-token-file '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || (st.st_uid != 0 && st.st_uid != geteuid())) {
        *err = xasprintf("--notify-token-file '%s' must be a regular file of root (or yours) "
                         "that group and others cannot read (chmod 600)",
                         path);
        close(fd);
        return NULL;
    }
    char buf[4096];
    ssize_t len = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (len <= 0) {
        *err = xasprintf("--notify-token-file '%s' is empty", path);
        return NULL;
    }
    buf[len] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return xasprintf("Authorization: Bearer %s", buf);
}

struct vm_notify *vm_notify_new(uv_loop_t *loop, const char *const *urls, int n,
                                const char *token_file, char **err)
{
    *err = NULL;
    if (n == 0)
        return NULL;
    struct vm_notify *nf = xcalloc(1, sizeof(*nf));
    nf->loop = loop;
    if (token_file && !(nf->auth = read_token(token_file, err))) {
        free(nf);
        return NULL;
    }
    nf->urls = xcalloc((size_t)n, sizeof(*nf->urls));
    for (int i = 0; i < n; i++) {
        struct vm_http_request rq = {.method = "POST", .url = urls[i], .allow_http = true};
        char *why = vm_http_check(&rq);
        if (why) {
            *err = xasprintf("--notify '%s': %s", urls[i], why);
            free(why);
            for (int k = 0; k < i; k++)
                free(nf->urls[k]);
            free(nf->urls);
            free(nf->auth);
            free(nf);
            return NULL;
        }
        nf->urls[i] = xstrdup(urls[i]);
    }
    nf->n = n;
    nf->http = vm_http_new(loop);
    return nf;
}

static void post_free(struct post *p)
{
    struct vm_notify *nf = p->nf;
    for (struct post **pp = &nf->posts; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    free(p->url);
    free(p->body);
    free(p);
}

static void start(struct post *p);
static void maybe_finish(struct vm_notify *nf);

static void retry_fired(uv_timer_t *t)
{
    struct post *p = t->data;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    p->retry = NULL;
    start(p);
}

static void done(const struct vm_http_response *r, void *data)
{
    struct post *p = data;
    struct vm_notify *nf = p->nf;
    p->req = NULL;
    if (!r->error && r->status >= 200 && r->status < 300) {
        post_free(p);
        maybe_finish(nf);
        return;
    }
    if (p->attempt >= ATTEMPTS || nf->closing) {
        vm_warn("webhook %s: given up after %d attempt%s: %s%s", p->url, p->attempt,
                p->attempt == 1 ? "" : "s", r->error ? r->error : "HTTP status ",
                r->error ? "" : "not 2xx");
        post_free(p);
        if (!nf->finishing)
            maybe_finish(nf);
        return;
    }
    /* backoff: 1 s, 2 s, 4 s */
    p->retry = xmalloc(sizeof(*p->retry));
    uv_timer_init(nf->loop, p->retry);
    p->retry->data = p;
    uv_timer_start(p->retry, retry_fired, 1000u << (p->attempt - 1), 0);
}

static void start(struct post *p)
{
    struct vm_notify *nf = p->nf;
    const char *headers[3] = {"Content-Type: application/json", nf->auth, NULL};
    struct vm_http_request rq = {.method = "POST",
                                 .url = p->url,
                                 .headers = headers,
                                 .body = p->body,
                                 .body_len = strlen(p->body),
                                 .timeout_ms = 5000,
                                 .allow_http = true};
    p->attempt++;
    p->req = vm_http_start(nf->http, &rq, done, p);
}

void vm_notify_send(struct vm_notify *nf, const char *event, const char *run_id, json_t *details)
{
    if (!nf || nf->closing) {
        json_decref(details);
        return;
    }
    char ts[32];
    json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:o}", "schema_version", VM_REPORT_SCHEMA_VERSION,
                          "event", event, "time", vm_rfc3339(vm_wall_ms(), ts, sizeof(ts)), "run",
                          run_id ? run_id : "", "details", details ? details : json_object());
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    for (int i = 0; i < nf->n; i++) {
        struct post *p = xcalloc(1, sizeof(*p));
        p->nf = nf;
        p->url = xstrdup(nf->urls[i]);
        p->body = xstrdup(body);
        p->next = nf->posts;
        nf->posts = p;
        start(p);
    }
    free(body);
}

static void finish(struct vm_notify *nf)
{
    nf->finishing = true;
    if (nf->grace) {
        uv_close((uv_handle_t *)nf->grace, (uv_close_cb)free);
        nf->grace = NULL;
    }
    while (nf->posts) {
        struct post *p = nf->posts;
        if (p->retry) {
            uv_close((uv_handle_t *)p->retry, (uv_close_cb)free);
            p->retry = NULL;
            vm_warn("webhook %s: given up at the end of the run", p->url);
            post_free(p);
        } else if (p->req) {
            vm_http_cancel(p->req); /* done() frees it */
        } else {
            post_free(p);
        }
    }
    vm_http_close(nf->http, NULL, NULL);
    for (int i = 0; i < nf->n; i++)
        free(nf->urls[i]);
    free(nf->urls);
    free(nf->auth);
    free(nf);
}

static void grace_over(uv_timer_t *t)
{
    finish(t->data);
}

/* Closing and nothing left to wait for: end now. */
static void maybe_finish(struct vm_notify *nf)
{
    bool waiting = false;
    for (struct post *p = nf->posts; p; p = p->next)
        waiting |= p->req != NULL || p->retry != NULL;
    if (nf->closing && !nf->finishing && !waiting)
        finish(nf);
}

void vm_notify_close(struct vm_notify *nf, uint64_t grace_ms)
{
    if (!nf)
        return;
    nf->closing = true;
    /* retries waiting for their timer are dropped now: only requests on the
     * wire get the grace time */
    for (struct post *p = nf->posts; p; p = p->next)
        if (p->retry) {
            uv_close((uv_handle_t *)p->retry, (uv_close_cb)free);
            p->retry = NULL;
        }
    for (struct post *p = nf->posts, *next; p; p = next) {
        next = p->next;
        if (!p->req) {
            vm_warn("webhook %s: given up at the end of the run (it was failing)", p->url);
            post_free(p);
        }
    }
    if (!nf->posts) {
        finish(nf);
        return;
    }
    nf->grace = xmalloc(sizeof(*nf->grace));
    uv_timer_init(nf->loop, nf->grace);
    nf->grace->data = nf;
    uv_timer_start(nf->grace, grace_over, grace_ms, 0);
}

/* ---- as a sink ------------------------------------------------------- */

struct notify_sink {
    struct vm_sink base;
    struct vm_notify *nf; /* NULL once closed */
    uint64_t grace_ms;
};

static void sink_on_event(struct vm_sink *s, const struct vm_event_rec *ev)
{
    struct notify_sink *ns = (struct notify_sink *)s;
    if (ev->cls == VM_EVENT_CLASS_NOTICE)
        vm_notify_send(ns->nf, ev->event, ev->run,
                       ev->details ? json_incref((json_t *)ev->details) : NULL);
}

static void sink_on_finish(struct vm_sink *s, const struct vm_finish_rec *fin)
{
    struct notify_sink *ns = (struct notify_sink *)s;
    (void)fin;
    vm_notify_close(ns->nf, ns->grace_ms);
    ns->nf = NULL;
}

static void sink_free(struct vm_sink *s)
{
    struct notify_sink *ns = (struct notify_sink *)s;
    if (!ns)
        return;
    vm_notify_close(ns->nf, 0);
    free(ns);
}

static const struct vm_sink_ops notify_ops = {
    .name = "webhooks", .on_event = sink_on_event, .on_finish = sink_on_finish, .free = sink_free};

int vm_notify_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    *out = NULL;
    struct vm_notify *nf =
        vm_notify_new(cfg->loop, cfg->notify_urls, cfg->nnotify, cfg->notify_token_file, err);
    if (*err)
        return -1;
    if (!nf)
        return 0;
    struct notify_sink *ns = xcalloc(1, sizeof(*ns));
    ns->base.ops = &notify_ops;
    ns->nf = nf;
    ns->grace_ms = cfg->notify_grace_ms ? cfg->notify_grace_ms : 5000;
    *out = &ns->base;
    return 0;
}

json_t *vm_notify_vm_details(const struct vm_state_rec *r)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "vm", r->name, "source", r->source, "target",
                     r->target, "result", r->result, "location", r->location, "error",
                     r->error_message ? json_string(r->error_message)
                     : r->gate_reason ? json_string(r->gate_reason)
                                      : json_null());
}
