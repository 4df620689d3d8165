/* SPDX-License-Identifier: MIT */
/* virt_reconnect.c — a host's connection opened again after it was lost
 * (virt.h, "connecting again"). Everything here runs on the loop thread;
 * the blocking parts are virt.c's close (thread pool) and open (a thread
 * of its own, under the host's connect timeout). A reconnect under way is
 * owned by itself (h->reconnect points to it) and freed when it ends,
 * before its callers are told. */
#include "backend/libvirt/virt.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

struct reconnect_waiter {
    vm_virt_host_cb cb;
    void *data;
};

struct vm_virt_reconnect {
    struct vm_virt_host *h;
    struct reconnect_waiter *waiters;
    int nwaiters;
    int attempt;        /* attempts started */
    uint64_t until_ms;  /* vm_mono_ms(): no attempt starts past this */
    uint64_t delay_ms;  /* before the next attempt */
    unsigned timeout_s; /* the host's connect timeout (0: none) */
    char *hostname;     /* the old connection's, owned: restored if no attempt succeeds */
    char host_uuid[VIR_UUID_STRING_BUFLEN]; /* the host it must lead to again ("" if unknown) */
    uv_timer_t *timer;
};

/* A caller whose connection was already opened again: told from the loop,
 * not from inside vm_virt_host_reconnect. */
struct reconnect_fresh {
    uv_timer_t timer;
    struct vm_virt_host *h;
    struct reconnect_waiter w;
};

bool vm_virt_conn_lost(virConnectPtr c)
{
    if (!c)
        return true;
    int alive = virConnectIsAlive(c);
    virResetLastError();
    return alive != 1;
}

bool vm_virt_host_reconnecting(const struct vm_virt_host *h)
{
    return h->reconnect != NULL;
}

static void free_handle(uv_handle_t *t)
{
    free(t);
}

static void fresh_fire(uv_timer_t *t)
{
    struct reconnect_fresh *f = t->data;
    struct reconnect_waiter w = f->w;
    struct vm_virt_host *h = f->h;
    uv_close((uv_handle_t *)&f->timer, free_handle); /* f is its timer */
    w.cb(h, w.data);
}

/* The reconnect is over: the host is its callers' again. */
static void reconnect_end(struct vm_virt_reconnect *r, bool ok)
{
    struct vm_virt_host *h = r->h;
    h->reconnect = NULL;
    if (ok) {
        h->generation++;
        free(r->hostname);
        vm_info("connected again to '%s' (attempt %d)", h->uri, r->attempt);
    } else {
        if (!h->hostname)
            h->hostname = r->hostname;
        else
            free(r->hostname);
        if (!h->err.message)
            vm_virt_err_set(&h->err, VIR_ERR_NO_CONNECT, "cannot connect again");
        vm_warn("cannot connect again to '%s' (%d attempts): %s", h->uri, r->attempt,
                h->err.message);
    }
    uv_close((uv_handle_t *)r->timer, free_handle);
    struct reconnect_waiter *w = r->waiters;
    int n = r->nwaiters;
    free(r);
    for (int i = 0; i < n; i++)
        w[i].cb(h, w[i].data);
    free(w);
}

static void attempt_opened(struct vm_virt_host *h, void *data);

static void attempt_start(struct vm_virt_reconnect *r)
{
    struct vm_virt_host *h = r->h;
    r->attempt++;
    free(h->hostname);
    h->hostname = NULL;
    h->lost = false;
    vm_virt_err_clear(&h->err);
    /* Each attempt within the connect timeout, and none past the budget. */
    uint64_t now = vm_mono_ms();
    unsigned left_s = r->until_ms > now ? (unsigned)((r->until_ms - now + 999) / 1000) : 1;
    unsigned timeout_s = r->timeout_s && r->timeout_s < left_s ? r->timeout_s : left_s;
    vm_virt_host_open(h, timeout_s, attempt_opened, r);
}

static void attempt_timer(uv_timer_t *t)
{
    attempt_start(t->data);
}

static void old_closed(struct vm_virt_host *h, void *data)
{
    (void)h;
    attempt_start(data);
}

static void other_host_closed(struct vm_virt_host *h, void *data)
{
    (void)h;
    reconnect_end(data, false);
}

static void first_step(uv_timer_t *t)
{
    struct vm_virt_reconnect *r = t->data;
    if (r->h->conn)
        vm_virt_host_close(r->h, old_closed, r); /* unsubscribe what is left of it */
    else
        attempt_start(r);
}

static void attempt_opened(struct vm_virt_host *h, void *data)
{
    struct vm_virt_reconnect *r = data;
    if (h->conn && r->host_uuid[0] && strcmp(h->host_uuid, r->host_uuid) != 0) {
        /* Something else answers there now: not the host that was lost. */
        vm_virt_err_set(&h->err, VIR_ERR_OPERATION_INVALID,
                        "'%s' now leads to another host (host UUID %s, was %s)", h->uri,
                        h->host_uuid[0] ? h->host_uuid : "unknown", r->host_uuid);
        memcpy(h->host_uuid, r->host_uuid, sizeof(h->host_uuid));
        vm_virt_host_close(h, other_host_closed, r);
        return;
    }
    if (h->conn) {
        reconnect_end(r, true);
        return;
    }
    uint64_t now = vm_mono_ms();
    if (r->attempt >= VM_VIRT_RECONNECT_ATTEMPTS || now + r->delay_ms >= r->until_ms) {
        reconnect_end(r, false);
        return;
    }
    vm_info("connecting again to '%s' in %llu ms (attempt %d: %s)", h->uri,
            (unsigned long long)r->delay_ms, r->attempt,
            h->err.message ? h->err.message : "unknown error");
    uv_timer_start(r->timer, attempt_timer, r->delay_ms, 0);
    r->delay_ms =
        r->delay_ms * 2 < VM_VIRT_RECONNECT_MAX_MS ? r->delay_ms * 2 : VM_VIRT_RECONNECT_MAX_MS;
}

void vm_virt_host_reconnect(struct vm_virt_host *h, unsigned seen, uint64_t budget_ms,
                            vm_virt_host_cb cb, void *data)
{
    struct vm_virt_reconnect *r = h->reconnect;
    if (r) { /* under way: join it */
        r->waiters = xrealloc(r->waiters, (size_t)(r->nwaiters + 1) * sizeof(*r->waiters));
        r->waiters[r->nwaiters++] = (struct reconnect_waiter){cb, data};
        return;
    }
    if (h->generation != seen && h->conn && !h->lost) {
        struct reconnect_fresh *f = xcalloc(1, sizeof(*f));
        f->h = h;
        f->w = (struct reconnect_waiter){cb, data};
        uv_timer_init(h->loop, &f->timer);
        f->timer.data = f;
        uv_timer_start(&f->timer, fresh_fire, 0, 0);
        return;
    }
    r = xcalloc(1, sizeof(*r));
    r->h = h;
    r->waiters = xmalloc(sizeof(*r->waiters));
    r->waiters[0] = (struct reconnect_waiter){cb, data};
    r->nwaiters = 1;
    r->until_ms = vm_mono_ms() + budget_ms;
    r->delay_ms = VM_VIRT_RECONNECT_FIRST_MS;
    r->timeout_s = h->open_timeout_s;
    r->hostname = h->hostname;
    h->hostname = NULL;
    memcpy(r->host_uuid, h->host_uuid, sizeof(r->host_uuid));
    r->timer = xmalloc(sizeof(*r->timer));
    uv_timer_init(h->loop, r->timer);
    r->timer->data = r;
    h->reconnect = r;
    vm_info("connecting again to '%s'", h->uri);
    uv_timer_start(r->timer, first_step, 0, 0); /* from the loop: cb never runs in here */
}
