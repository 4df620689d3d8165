/* SPDX-License-Identifier: MIT */
/* evloop.c — see evloop.h. */
#include "backend/libvirt/evloop.h"

#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/util.h"

enum rec_kind {
    REC_HANDLE,
    REC_TIMEOUT,
};

struct rec {
    struct rec *next;
    enum rec_kind kind;
    int id;
    /* what libvirt asked for (guarded by the mutex) */
    int fd;
    int events;  /* VIR_EVENT_HANDLE_* for handles */
    int timeout; /* ms, -1 disabled, for timeouts */
    bool deleted;
    bool dirty;
    virEventHandleCallback hcb;
    virEventTimeoutCallback tcb;
    void *opaque;
    virFreeCallback ff;
    /* what is applied (loop thread only) */
    bool inited;
    bool failed;
    int applied_events;
    int applied_timeout;
    union {
        uv_handle_t handle;
        uv_poll_t poll;
        uv_timer_t timer;
    } uv;
};

static struct {
    uv_loop_t *loop;
    uv_thread_t loop_thread;
    pthread_mutex_t lock;
    uv_async_t wakeup;
    struct rec *recs;
    int next_id;
    atomic_bool registered;
} ev = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool on_loop_thread(void)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &ev.loop_thread);
}

static struct rec *find(int id, enum rec_kind kind)
{
    for (struct rec *r = ev.recs; r; r = r->next)
        if (r->id == id && r->kind == kind && !r->deleted)
            return r;
    return NULL;
}

/* Under the lock, which vm_evloop_shutdown() takes to unregister: a thread
 * that outlives the loop (an opener stuck in virConnectOpen, virt.c) never
 * wakes a closed handle. */
static void request_apply(void)
{
    pthread_mutex_lock(&ev.lock);
    if (atomic_load(&ev.registered))
        uv_async_send(&ev.wakeup);
    pthread_mutex_unlock(&ev.lock);
}

static int to_uv_events(int vir)
{
    int e = 0;
    if (vir & VIR_EVENT_HANDLE_READABLE)
        e |= UV_READABLE;
    if (vir & VIR_EVENT_HANDLE_WRITABLE)
        e |= UV_WRITABLE;
    return e;
}

static void rec_closed(uv_handle_t *h)
{
    struct rec *r = h->data;
    if (r->ff)
        r->ff(r->opaque);
    free(r);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct rec *r = p->data;
    pthread_mutex_lock(&ev.lock);
    bool live = !r->deleted;
    int wanted = r->events;
    int id = r->id, fd = r->fd;
    virEventHandleCallback cb = r->hcb;
    void *opaque = r->opaque;
    pthread_mutex_unlock(&ev.lock);
    if (!live)
        return;
    int vir = 0;
    if (status < 0) {
        vir = VIR_EVENT_HANDLE_ERROR;
    } else {
        if (events & UV_READABLE)
            vir |= VIR_EVENT_HANDLE_READABLE;
        if (events & UV_WRITABLE)
            vir |= VIR_EVENT_HANDLE_WRITABLE;
        if (events & UV_DISCONNECT)
            vir |= VIR_EVENT_HANDLE_HANGUP;
        /* libvirt may have narrowed its interest since; honour that */
        vir &= wanted | VIR_EVENT_HANDLE_HANGUP | VIR_EVENT_HANDLE_ERROR;
    }
    if (vir)
        cb(id, fd, vir, opaque);
}

static void timer_cb(uv_timer_t *t)
{
    struct rec *r = t->data;
    pthread_mutex_lock(&ev.lock);
    bool live = !r->deleted && r->timeout >= 0;
    int id = r->id, timeout = r->timeout;
    virEventTimeoutCallback cb = r->tcb;
    void *opaque = r->opaque;
    pthread_mutex_unlock(&ev.lock);
    if (!live)
        return;
    (void)timeout;
    cb(id, opaque);
}

/* Apply every recorded change; loop thread only. */
static void apply(uv_async_t *a)
{
    struct rec *dead = NULL;
    pthread_mutex_lock(&ev.lock);
    struct rec **pp = &ev.recs;
    while (*pp) {
        struct rec *r = *pp;
        if (r->deleted) {
            *pp = r->next;
            r->next = dead;
            dead = r;
            continue;
        }
        pp = &r->next;
        if (!r->dirty)
            continue;
        r->dirty = false;
        if (!r->inited && !r->failed) {
            int rc = r->kind == REC_HANDLE ? uv_poll_init(ev.loop, &r->uv.poll, r->fd)
                                           : uv_timer_init(ev.loop, &r->uv.timer);
            if (rc < 0) {
                /* Cannot happen for a valid fd; libvirt then sees no events
                 * for it, which its own keepalive turns into an error. */
                vm_warn("libvirt watch on fd %d failed: %s", r->fd, uv_strerror(rc));
                r->failed = true;
                continue;
            }
            r->inited = true;
            r->uv.handle.data = r;
            uv_unref(&r->uv.handle);
            r->applied_events = 0;
            r->applied_timeout = -1;
        }
        if (r->failed)
            continue;
        if (r->kind == REC_HANDLE) {
            int want = to_uv_events(r->events);
            if (want != r->applied_events) {
                if (want)
                    uv_poll_start(&r->uv.poll, want | UV_DISCONNECT, poll_cb);
                else
                    uv_poll_stop(&r->uv.poll);
                r->applied_events = want;
            }
        } else {
            /* Always restart: libvirt's update resets the period. libvirt's
             * 0 ms ("on every iteration") becomes a 1 ms period: libuv runs a
             * timer re-armed at 0 ms again in the same pass, forever. */
            uint64_t period = r->timeout > 0 ? (uint64_t)r->timeout : 1;
            if (r->timeout >= 0)
                uv_timer_start(&r->uv.timer, timer_cb, period, period);
            else
                uv_timer_stop(&r->uv.timer);
            r->applied_timeout = r->timeout;
        }
    }
    pthread_mutex_unlock(&ev.lock);

    /* Free outside the lock: libvirt's free callbacks may call back in. */
    while (dead) {
        struct rec *r = dead;
        dead = r->next;
        if (r->inited && !uv_is_closing(&r->uv.handle)) {
            uv_close(&r->uv.handle, rec_closed);
        } else {
            if (r->ff)
                r->ff(r->opaque);
            free(r);
        }
    }
    (void)a;
}

static struct rec *rec_new(enum rec_kind kind, virFreeCallback ff, void *opaque)
{
    struct rec *r = xcalloc(1, sizeof(*r));
    r->kind = kind;
    r->ff = ff;
    r->opaque = opaque;
    r->dirty = true;
    r->applied_timeout = -1;
    return r;
}

/* Put r in the list under a fresh id and have the loop apply it. */
static int rec_add(struct rec *r)
{
    pthread_mutex_lock(&ev.lock);
    r->id = ++ev.next_id;
    r->next = ev.recs;
    ev.recs = r;
    int id = r->id;
    pthread_mutex_unlock(&ev.lock);
    request_apply();
    return id;
}

static int add_handle(int fd, int events, virEventHandleCallback cb, void *opaque,
                      virFreeCallback ff)
{
    struct rec *r = rec_new(REC_HANDLE, ff, opaque);
    r->fd = fd;
    r->events = events;
    r->hcb = cb;
    return rec_add(r);
}

static void update_handle(int id, int events)
{
    pthread_mutex_lock(&ev.lock);
    struct rec *r = find(id, REC_HANDLE);
    if (r && r->events != events) {
        r->events = events;
        r->dirty = true;
        /* Narrowing interest takes effect at once on the loop thread, so a
         * socket another thread now reads is not reported readable again. */
        if (on_loop_thread() && r->inited && !r->failed && !events) {
            uv_poll_stop(&r->uv.poll);
            r->applied_events = 0;
        }
    }
    pthread_mutex_unlock(&ev.lock);
    if (r)
        request_apply();
}

static int remove_handle(int id)
{
    pthread_mutex_lock(&ev.lock);
    struct rec *r = find(id, REC_HANDLE);
    if (r) {
        r->deleted = true;
        /* Stop watching now if we can: the fd may be closed right after. */
        if (on_loop_thread() && r->inited && !r->failed)
            uv_poll_stop(&r->uv.poll);
    }
    pthread_mutex_unlock(&ev.lock);
    if (!r)
        return -1;
    request_apply();
    return 0;
}

static int add_timeout(int timeout, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
    struct rec *r = rec_new(REC_TIMEOUT, ff, opaque);
    r->timeout = timeout;
    r->tcb = cb;
    return rec_add(r);
}

static void update_timeout(int id, int timeout)
{
    pthread_mutex_lock(&ev.lock);
    struct rec *r = find(id, REC_TIMEOUT);
    if (r) {
        r->timeout = timeout;
        r->dirty = true;
    }
    pthread_mutex_unlock(&ev.lock);
    if (r)
        request_apply();
}

static int remove_timeout(int id)
{
    pthread_mutex_lock(&ev.lock);
    struct rec *r = find(id, REC_TIMEOUT);
    if (r)
        r->deleted = true;
    pthread_mutex_unlock(&ev.lock);
    if (!r)
        return -1;
    request_apply();
    return 0;
}

int vm_evloop_register(uv_loop_t *loop)
{
    if (ev.registered)
        return ev.loop == loop ? 0 : UV_EBUSY;
    int rc = uv_async_init(loop, &ev.wakeup, apply);
    if (rc < 0)
        return rc;
    uv_unref((uv_handle_t *)&ev.wakeup);
    ev.loop = loop;
    ev.loop_thread = uv_thread_self();
    ev.registered = true;
    virEventRegisterImpl(add_handle, update_handle, remove_handle, add_timeout, update_timeout,
                         remove_timeout);
    return 0;
}

void vm_evloop_shutdown(void)
{
    if (!ev.registered)
        return;
    pthread_mutex_lock(&ev.lock);
    for (struct rec *r = ev.recs; r; r = r->next)
        r->deleted = true;
    atomic_store(&ev.registered, false);
    pthread_mutex_unlock(&ev.lock);
    apply(&ev.wakeup);
    uv_close((uv_handle_t *)&ev.wakeup, NULL);
    /* libvirt keeps the implementation pointers; they stay valid (static
     * functions) and any late registration is queued on a dead list that
     * nobody applies, which only happens if a connection outlives the loop. */
}
