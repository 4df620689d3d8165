/* SPDX-License-Identifier: MIT */
/* virt.c — see virt.h. */
#include "backend/libvirt/virt.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"
#include "backend/libvirt/virt_errnames.h"

/* ---- errors ---------------------------------------------------------- */

void vm_virt_err_capture(struct vm_virt_err *e)
{
    vm_virt_err_clear(e);
    virErrorPtr le = virGetLastError();
    if (le) {
        e->code = le->code;
        e->domain = le->domain;
        e->message = xstrdup(le->message ? le->message : "unknown libvirt error");
    } else {
        e->code = VIR_ERR_INTERNAL_ERROR;
        e->message = xstrdup("libvirt call failed without an error message");
    }
    virResetLastError();
}

void vm_virt_err_set(struct vm_virt_err *e, int code, const char *fmt, ...)
{
    vm_virt_err_clear(e);
    va_list ap;
    va_start(ap, fmt);
    e->message = xvasprintf(fmt, ap);
    va_end(ap);
    e->code = code;
}

void vm_virt_err_clear(struct vm_virt_err *e)
{
    free(e->message);
    e->message = NULL;
    e->code = 0;
    e->domain = 0;
}

void vm_virt_err_keep(struct vm_virt_err *dst, struct vm_virt_err *src)
{
    if (!dst->message && src->message) {
        *dst = *src;
        src->message = NULL;
        src->code = src->domain = 0;
    }
    vm_virt_err_clear(src);
}

char *vm_virt_uri_suggest(const char *uri)
{
    if (!*uri || strstr(uri, "://"))
        return NULL;
    size_t host = strcspn(uri, "/");
    for (const char *p = uri; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(p < uri + host ? ".-_@:[]" : "/", *p))
            return NULL;
    if (!host)
        return NULL;
    return uri[host] ? xasprintf("qemu+ssh://%s", uri) : xasprintf("qemu+ssh://%s/system", uri);
}

const char *vm_virt_err_name(int code)
{
    if (code >= 0 && (size_t)code < VM_ARRAY_LEN(vm_virt_err_names) && vm_virt_err_names[code])
        return vm_virt_err_names[code];
    return "VIR_ERR_UNKNOWN";
}

/* ---- tasks on the thread pool ----------------------------------------- */

static void task_work(uv_work_t *req)
{
    struct vm_virt_task *t = req->data;
    t->work(t);
}

/* Tasks queued and not yet done: a call on a host that stopped answering
 * may never return (libvirt cannot cancel it, and a connection its
 * keepalive closed does not always wake a second call waiting on it). */
static atomic_int tasks_in_flight;

int vm_virt_tasks_in_flight(void)
{
    return atomic_load(&tasks_in_flight);
}

static void task_done(uv_work_t *req, int status)
{
    struct vm_virt_task *t = req->data;
    atomic_fetch_sub(&tasks_in_flight, 1);
    if (status == UV_ECANCELED && !t->err.message) {
        t->rc = -1;
        vm_virt_err_set(&t->err, VIR_ERR_OPERATION_ABORTED, "task cancelled");
    }
    t->done(t);
}

int vm_virt_submit(uv_loop_t *loop, struct vm_virt_task *t)
{
    t->req.data = t;
    t->rc = 0;
    vm_virt_err_clear(&t->err);
    int rc = uv_queue_work(loop, &t->req, task_work, task_done);
    if (rc == 0)
        atomic_fetch_add(&tasks_in_flight, 1);
    return rc;
}

static void silent_error(void *data, virErrorPtr err)
{
    /* libvirt must never print on its own: errors are reported once, where
     * they are handled, from the captured vm_virt_err. */
    (void)data;
    (void)err;
}

void vm_virt_global_init(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    virInitialize();
    virSetErrorFunc(NULL, silent_error);
}

/* ---- events ----------------------------------------------------------- */

static void deliver(struct vm_virt_host *h, virDomainPtr dom, struct vm_virt_event *ev)
{
    if (!h->on_event)
        return;
    virDomainGetUUIDString(dom, ev->uuid);
    ev->name = virDomainGetName(dom);
    h->on_event(h, ev, h->event_data);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    struct vm_virt_event ev = {
        .kind = VM_VIRT_EVENT_LIFECYCLE, .lifecycle = event, .detail = detail};
    deliver(opaque, dom, &ev);
    (void)conn;
    return 0;
}

static void on_iteration(virConnectPtr conn, virDomainPtr dom, int iteration, void *opaque)
{
    struct vm_virt_event ev = {.kind = VM_VIRT_EVENT_ITERATION, .iteration = iteration};
    deliver(opaque, dom, &ev);
    (void)conn;
}

static void on_job_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params,
                             int nparams, void *opaque)
{
    struct vm_virt_event ev = {.kind = VM_VIRT_EVENT_JOB_COMPLETED};
    ev.stats = vm_virt_params_to_json(params, nparams);
    deliver(opaque, dom, &ev);
    json_decref(ev.stats);
    (void)conn;
}

static void on_graphics(virConnectPtr conn, virDomainPtr dom, int phase,
                        const virDomainEventGraphicsAddress *local,
                        const virDomainEventGraphicsAddress *remote, const char *scheme,
                        const virDomainEventGraphicsSubject *subject, void *opaque)
{
    char addr[300] = "";
    if (remote && remote->node)
        snprintf(addr, sizeof(addr), "%s:%s", remote->node,
                 remote->service ? remote->service : "?");
    struct vm_virt_event ev = {.kind = VM_VIRT_EVENT_GRAPHICS,
                               .graphics_phase = phase,
                               .graphics_remote = addr[0] ? addr : NULL};
    deliver(opaque, dom, &ev);
    (void)conn, (void)local, (void)scheme, (void)subject;
}

/* The host's on_event runs on the loop thread only, but libvirt calls the
 * close callback wherever it notices the close: on the loop thread (our
 * event loop saw EOF) or on a thread-pool worker whose call was waiting on
 * that connection. A 0 ms libvirt timeout hands the event over: evloop.c
 * runs timeout callbacks on the loop thread. */
static void conn_lost_deliver(int timer, void *opaque)
{
    struct vm_virt_host *h = opaque;
    if (timer >= 0)
        virEventRemoveTimeout(timer);
    h->lost_timer = -1;
    if (!h->on_event)
        return;
    struct vm_virt_event ev = {.kind = VM_VIRT_EVENT_CONNECTION_LOST,
                               .lost_reason = h->lost_reason};
    h->on_event(h, &ev, h->event_data);
}

static void on_conn_closed(virConnectPtr conn, int reason, void *opaque)
{
    struct vm_virt_host *h = opaque;
    static const char *const reasons[] = {"error", "end of file", "keepalive timeout",
                                          "client closed"};
    if (reason == VIR_CONNECT_CLOSE_REASON_CLIENT)
        return;
    h->lost = true;
    h->lost_reason = reason >= 0 && reason < 4 ? reasons[reason] : "unknown reason";
    vm_virt_err_set(&h->err, VIR_ERR_SYSTEM_ERROR, "connection to '%s' lost: %s", h->uri,
                    h->lost_reason);
    vm_warn("%s", h->err.message);
    h->lost_timer = virEventAddTimeout(0, conn_lost_deliver, h, NULL);
    if (h->lost_timer < 0) { /* no event loop registered: tell now */
        virResetLastError();
        conn_lost_deliver(-1, h);
    }
    (void)conn;
}

/* ---- hosts ------------------------------------------------------------ */

struct vm_virt_host *vm_virt_host_new(uv_loop_t *loop, const char *uri, vm_virt_event_cb on_event,
                                      void *event_data)
{
    struct vm_virt_host *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->uri = xstrdup(uri);
    h->on_event = on_event;
    h->event_data = event_data;
    for (size_t i = 0; i < VM_ARRAY_LEN(h->cb_ids); i++)
        h->cb_ids[i] = -1;
    h->lost_timer = -1;
    return h;
}

char *vm_virt_caps_host_uuid(const char *caps)
{
    const char *host = caps ? strstr(caps, "<host>") : NULL;
    const char *end = host ? strstr(host, "</host>") : NULL;
    const char *u = host ? strstr(host, "<uuid>") : NULL;
    if (!u || (end && u > end))
        return NULL;
    u += strlen("<uuid>");
    const char *ue = strstr(u, "</uuid>");
    if (!ue || ue - u != VIR_UUID_STRING_BUFLEN - 1)
        return NULL;
    return xstrndup(u, (size_t)(ue - u));
}

/* ---- opening a connection: on its own thread, under a deadline ---------- */

/* What the opener's thread and its waiter share: the loop (a host's open,
 * woken by `async`) or a blocked thread (vm_virt_connect, woken by `cond`).
 * The thread owns uri, conn, hostname, host_uuid and err until it sets
 * `finished`; then the waiter takes them, unless it had `dropped` the
 * opener first: then the thread closes what it opened. Freed when the
 * thread and the waiter's parts (the async handle and the timer, if any;
 * or the blocked thread) have all let go (refs). */
struct vm_virt_opener {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* vm_virt_connect's */
    bool sync;           /* a blocked thread waits, not the loop */
    int refs;            /* guarded */
    bool finished;       /* guarded: the thread has its result */
    bool dropped;        /* guarded: the waiter no longer waits for it */
    char *uri;
    virConnectPtr conn;
    char *hostname;
    char host_uuid[VIR_UUID_STRING_BUFLEN];
    struct vm_virt_err err;
    /* loop thread only */
    struct vm_virt_host *h; /* NULL once taken or dropped */
    uv_async_t async;
    uv_timer_t timer;
    bool has_timer;
};

static atomic_int openers_live;

int vm_virt_openers_live(void)
{
    return atomic_load(&openers_live);
}

static void opener_unref(struct vm_virt_opener *o)
{
    pthread_mutex_lock(&o->lock);
    int left = --o->refs;
    pthread_mutex_unlock(&o->lock);
    if (left > 0)
        return;
    atomic_fetch_sub(&openers_live, 1);
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->lock);
    vm_virt_err_clear(&o->err);
    free(o->hostname);
    free(o->uri);
    free(o);
}

static void opener_handle_closed(uv_handle_t *handle)
{
    opener_unref(handle->data);
}

/* Loop thread: the loop lets go of o (its handles close). */
static void opener_release(struct vm_virt_opener *o)
{
    o->h = NULL;
    uv_close((uv_handle_t *)&o->async, opener_handle_closed);
    if (o->has_timer)
        uv_close((uv_handle_t *)&o->timer, opener_handle_closed);
}

/* The opener's thread: the blocking part of opening. */
static void open_blocking(struct vm_virt_opener *o)
{
    virConnectPtr c = virConnectOpen(o->uri);
    if (!c) {
        vm_virt_err_capture(&o->err);
        return;
    }
    /* A ping every 2 s, 3 missed: a peer that stops answering (a hung
     * libvirtd) is noticed within ~8 s and every later call on c fails
     * then instead of waiting: what bounds a guest's pause when a host
     * hangs at the commit gate (its Finish or Confirm never returns). */
    if (virConnectSetKeepAlive(c, 2, 3) < 0) {
        /* Local drivers have no keepalive; nor has a blocking open without
         * an event loop to serve it (vm_virt_connect in vmmigrate recover). */
        virErrorPtr e = virGetLastError();
        if (!o->sync && (!e || e->code != VIR_ERR_NO_SUPPORT))
            goto fail;
        virResetLastError();
    }
    o->hostname = virConnectGetHostname(c);
    char *caps = virConnectGetCapabilities(c);
    if (!o->hostname || !caps) {
        free(caps);
        goto fail;
    }
    char *uuid = vm_virt_caps_host_uuid(caps);
    free(caps);
    snprintf(o->host_uuid, sizeof(o->host_uuid), "%s", uuid ? uuid : "");
    free(uuid);
    o->conn = c;
    return;
fail:
    vm_virt_err_capture(&o->err);
    free(o->hostname);
    o->hostname = NULL;
    virConnectClose(c);
}

static void *opener_main(void *arg)
{
    struct vm_virt_opener *o = arg;
    open_blocking(o);
    pthread_mutex_lock(&o->lock);
    o->finished = true;
    bool dropped = o->dropped;
    if (!dropped && o->sync)
        pthread_cond_signal(&o->cond);
    else if (!dropped)
        uv_async_send(&o->async); /* the handle is closed only after dropped is set */
    pthread_mutex_unlock(&o->lock);
    if (dropped && o->conn) {
        /* A late answer nobody waits for: closed here, off the loop. */
        virConnectClose(o->conn);
        o->conn = NULL;
    }
    opener_unref(o);
    return NULL;
}

static void host_finish(struct vm_virt_host *h)
{
    vm_virt_host_cb cb = h->cb;
    h->cb = NULL;
    cb(h, h->cb_data);
}

static void host_subscribe_work(struct vm_virt_task *t);
static void host_run(struct vm_virt_host *h, void (*work)(struct vm_virt_task *),
                     vm_virt_host_cb cb, void *data);

/* Loop thread: the opener's thread has its result. */
static void opener_async(uv_async_t *a)
{
    struct vm_virt_opener *o = a->data;
    struct vm_virt_host *h = o->h;
    pthread_mutex_lock(&o->lock);
    bool finished = o->finished;
    pthread_mutex_unlock(&o->lock);
    if (!finished || !h)
        return;
    h->opener = NULL;
    opener_release(o);
    if (!o->conn) {
        vm_virt_err_keep(&h->err, &o->err);
        host_finish(h);
        return;
    }
    h->conn = o->conn;
    o->conn = NULL;
    h->hostname = o->hostname;
    o->hostname = NULL;
    memcpy(h->host_uuid, o->host_uuid, sizeof(h->host_uuid));
    host_run(h, host_subscribe_work, h->cb, h->cb_data);
}

/* Loop thread: stop waiting for h's opener; false if it has finished (its
 * result is on its way) or there is none. */
static bool opener_drop(struct vm_virt_host *h)
{
    struct vm_virt_opener *o = h->opener;
    if (!o)
        return false;
    pthread_mutex_lock(&o->lock);
    bool finished = o->finished;
    if (!finished)
        o->dropped = true;
    pthread_mutex_unlock(&o->lock);
    if (finished)
        return false;
    h->opener = NULL;
    opener_release(o);
    return true;
}

static void opener_timeout(uv_timer_t *t)
{
    struct vm_virt_opener *o = t->data;
    struct vm_virt_host *h = o->h;
    if (!h || !opener_drop(h))
        return;
    h->timed_out = true;
    vm_virt_err_set(&h->err, VIR_ERR_OPERATION_TIMEOUT, "no answer within %u s", h->open_timeout_s);
    host_finish(h);
}

bool vm_virt_host_alive(const struct vm_virt_host *h)
{
    if (!h->conn || h->lost)
        return false;
    int alive = virConnectIsAlive(h->conn);
    virResetLastError();
    return alive == 1;
}

bool vm_virt_host_connecting(const struct vm_virt_host *h)
{
    return h->opener != NULL;
}

bool vm_virt_host_abandon(struct vm_virt_host *h, const char *why)
{
    if (!opener_drop(h))
        return false;
    vm_virt_err_set(&h->err, VIR_ERR_OPERATION_ABORTED, "%s", why);
    host_finish(h);
    return true;
}

static struct vm_virt_opener *opener_new(const char *uri)
{
    struct vm_virt_opener *o = xcalloc(1, sizeof(*o));
    atomic_fetch_add(&openers_live, 1);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    o->uri = xstrdup(uri);
    o->refs = 2; /* the thread, the waiter */
    return o;
}

/* Start o's thread: detached, taking no signal (the loop's handlers get
 * them); 0 or an errno value. */
static int opener_start(struct vm_virt_opener *o)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, opener_main, o);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

virConnectPtr vm_virt_connect(const char *uri, unsigned timeout_s, struct vm_virt_err *err)
{
    struct vm_virt_opener *o = opener_new(uri);
    o->sync = true;
    int rc = opener_start(o);
    if (rc != 0) {
        vm_virt_err_set(err, VIR_ERR_INTERNAL_ERROR, "cannot start a thread: %s", strerror(rc));
        o->refs = 1;
        opener_unref(o);
        return NULL;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_s;
    pthread_mutex_lock(&o->lock);
    while (!o->finished) {
        if (!timeout_s)
            pthread_cond_wait(&o->cond, &o->lock);
        else if (pthread_cond_timedwait(&o->cond, &o->lock, &until) == ETIMEDOUT)
            break;
    }
    bool finished = o->finished;
    if (!finished)
        o->dropped = true;
    pthread_mutex_unlock(&o->lock);
    virConnectPtr c = NULL;
    if (!finished) {
        vm_virt_err_set(err, VIR_ERR_OPERATION_TIMEOUT, "no answer within %u s", timeout_s);
    } else if (!(c = o->conn)) {
        vm_virt_err_clear(err);
        *err = o->err;
        o->err = (struct vm_virt_err){0};
    }
    o->conn = NULL;
    opener_unref(o);
    return c;
}

void vm_virt_host_open(struct vm_virt_host *h, unsigned timeout_s, vm_virt_host_cb cb, void *data)
{
    h->cb = cb;
    h->cb_data = data;
    h->open_timeout_s = timeout_s;
    h->timed_out = false;
    struct vm_virt_opener *o = opener_new(h->uri);
    o->h = h;
    uv_async_init(h->loop, &o->async, opener_async);
    o->async.data = o;
    if (timeout_s) {
        o->refs++;
        o->has_timer = true;
        uv_timer_init(h->loop, &o->timer);
        o->timer.data = o;
        uv_timer_start(&o->timer, opener_timeout, (uint64_t)timeout_s * 1000, 0);
    }
    int rc = opener_start(o);
    if (rc != 0) {
        o->refs--; /* no thread */
        opener_release(o);
        vm_virt_err_set(&h->err, VIR_ERR_INTERNAL_ERROR, "cannot start a thread: %s", strerror(rc));
        host_finish(h);
        return;
    }
    h->opener = o;
}

/* Thread pool: subscribe the connection the opener handed over to domain
 * events and its closing (keepalive bounds these calls). */
static void host_subscribe_work(struct vm_virt_task *t)
{
    struct vm_virt_host *h = t->data;
    virConnectPtr c = h->conn;
    h->cb_ids[0] = virConnectDomainEventRegisterAny(
        c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), h, NULL);
    h->cb_ids[1] =
        virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_iteration), h, NULL);
    h->cb_ids[2] =
        virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_job_completed), h, NULL);
    h->cb_ids[3] = virConnectDomainEventRegisterAny(
        c, NULL, VIR_DOMAIN_EVENT_ID_GRAPHICS, VIR_DOMAIN_EVENT_CALLBACK(on_graphics), h, NULL);
    if (h->cb_ids[0] < 0 || h->cb_ids[1] < 0 || h->cb_ids[2] < 0 || h->cb_ids[3] < 0)
        goto fail;
    virConnectRegisterCloseCallback(c, on_conn_closed, h, NULL);
    return;

fail:
    vm_virt_err_capture(&t->err);
    for (size_t i = 0; i < VM_ARRAY_LEN(h->cb_ids); i++) {
        if (h->cb_ids[i] >= 0)
            virConnectDomainEventDeregisterAny(c, h->cb_ids[i]);
        h->cb_ids[i] = -1;
    }
    virConnectClose(c);
    h->conn = NULL;
    t->rc = -1;
}

static void host_task_done(struct vm_virt_task *t)
{
    struct vm_virt_host *h = t->data;
    if (t->rc < 0)
        vm_virt_err_keep(&h->err, &t->err);
    host_finish(h);
}

static void host_run(struct vm_virt_host *h, void (*work)(struct vm_virt_task *),
                     vm_virt_host_cb cb, void *data)
{
    h->cb = cb;
    h->cb_data = data;
    h->task.work = work;
    h->task.done = host_task_done;
    h->task.data = h;
    int rc = vm_virt_submit(h->loop, &h->task);
    if (rc < 0) {
        vm_virt_err_set(&h->err, VIR_ERR_INTERNAL_ERROR, "cannot queue libvirt call: %s",
                        uv_strerror(rc));
        host_finish(h);
    }
}

static void host_close_work(struct vm_virt_task *t)
{
    struct vm_virt_host *h = t->data;
    if (!h->conn)
        return;
    virConnectUnregisterCloseCallback(h->conn, on_conn_closed);
    for (size_t i = 0; i < VM_ARRAY_LEN(h->cb_ids); i++) {
        if (h->cb_ids[i] >= 0)
            virConnectDomainEventDeregisterAny(h->conn, h->cb_ids[i]);
        h->cb_ids[i] = -1;
    }
    virConnectClose(h->conn);
    h->conn = NULL;
}

void vm_virt_host_close(struct vm_virt_host *h, vm_virt_host_cb cb, void *data)
{
    host_run(h, host_close_work, cb, data);
}

void vm_virt_host_free(struct vm_virt_host *h)
{
    if (!h)
        return;
    if (h->lost_timer >= 0) /* never delivered: the timeout must not outlive h */
        virEventRemoveTimeout(h->lost_timer);
    vm_virt_err_clear(&h->err);
    vm_virt_err_clear(&h->task.err);
    free(h->hostname);
    free(h->uri);
    free(h);
}

/* ---- conversions ------------------------------------------------------ */

json_t *vm_virt_params_to_json(virTypedParameterPtr params, int n)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++) {
        virTypedParameterPtr p = &params[i];
        json_t *v = NULL;
        switch (p->type) {
        case VIR_TYPED_PARAM_INT:
            v = json_integer(p->value.i);
            break;
        case VIR_TYPED_PARAM_UINT:
            v = json_integer(p->value.ui);
            break;
        case VIR_TYPED_PARAM_LLONG:
            v = json_integer(p->value.l);
            break;
        case VIR_TYPED_PARAM_ULLONG:
            v = json_integer((json_int_t)p->value.ul);
            break;
        case VIR_TYPED_PARAM_DOUBLE:
            v = json_real(p->value.d);
            break;
        case VIR_TYPED_PARAM_BOOLEAN:
            v = json_boolean(p->value.b);
            break;
        case VIR_TYPED_PARAM_STRING:
            v = json_string(p->value.s ? p->value.s : "");
            break;
        default:
            break;
        }
        if (v)
            json_object_set_new(o, p->field, v);
    }
    return o;
}

const char *vm_virt_lifecycle_name(int event)
{
    static const char *const names[] = {"defined",   "undefined",   "started",
                                        "suspended", "resumed",     "stopped",
                                        "shutdown",  "pmsuspended", "crashed"};
    return event >= 0 && (size_t)event < VM_ARRAY_LEN(names) ? names[event] : "unknown";
}

const char *vm_virt_lifecycle_detail_name(int event, int detail)
{
    static const char *const started[] = {"booted",        "migrated", "restored",
                                          "from-snapshot", "wakeup",   "recreated"};
    static const char *const suspended[] = {"paused",    "migrated", "ioerror",
                                            "watchdog",  "restored", "from-snapshot",
                                            "api-error", "postcopy", "postcopy-failed"};
    static const char *const resumed[] = {"unpaused", "migrated", "from-snapshot", "postcopy",
                                          "postcopy-failed"};
    static const char *const stopped[] = {"shutdown", "destroyed", "crashed",      "migrated",
                                          "saved",    "failed",    "from-snapshot"};
#define PICK(tbl) (detail >= 0 && (size_t)detail < VM_ARRAY_LEN(tbl) ? tbl[detail] : "unknown")
    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
        return PICK(started);
    case VIR_DOMAIN_EVENT_SUSPENDED:
        return PICK(suspended);
    case VIR_DOMAIN_EVENT_RESUMED:
        return PICK(resumed);
    case VIR_DOMAIN_EVENT_STOPPED:
        return PICK(stopped);
    default:
        return "other";
    }
#undef PICK
}

const char *vm_virt_state_name(int state)
{
    static const char *const names[] = {"nostate",  "running", "blocked", "paused",
                                        "shutdown", "shutoff", "crashed", "pmsuspended"};
    return state >= 0 && (size_t)state < VM_ARRAY_LEN(names) ? names[state] : "unknown";
}
