/* virt.c — see virt.h. */
#include "backend/libvirt/virt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void task_done(uv_work_t *req, int status)
{
    struct vm_virt_task *t = req->data;
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
    return uv_queue_work(loop, &t->req, task_work, task_done);
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

static void host_open_work(struct vm_virt_task *t)
{
    struct vm_virt_host *h = t->data;
    virConnectPtr c = virConnectOpen(h->uri);
    if (!c)
        goto fail;
    /* 5 s interval, 6 missed: a dead peer is noticed within ~30 s, the same
     * as libvirt's daemon side. */
    if (virConnectSetKeepAlive(c, 5, 6) < 0) {
        virErrorPtr e = virGetLastError();
        if (!e || e->code != VIR_ERR_NO_SUPPORT) /* local drivers have no keepalive */
            goto fail_close;
        virResetLastError();
    }
    char *hn = virConnectGetHostname(c);
    char *caps = virConnectGetCapabilities(c);
    if (!hn || !caps) {
        free(hn);
        free(caps);
        goto fail_close;
    }
    char *uuid = vm_virt_caps_host_uuid(caps);
    free(caps);
    snprintf(h->host_uuid, sizeof(h->host_uuid), "%s", uuid ? uuid : "");
    free(uuid);
    h->hostname = hn;
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
        goto fail_close;
    virConnectRegisterCloseCallback(c, on_conn_closed, h, NULL);
    h->conn = c;
    return;

fail_close:
    vm_virt_err_capture(&t->err);
    for (size_t i = 0; i < VM_ARRAY_LEN(h->cb_ids); i++) {
        if (h->cb_ids[i] >= 0)
            virConnectDomainEventDeregisterAny(c, h->cb_ids[i]);
        h->cb_ids[i] = -1;
    }
    virConnectClose(c);
    t->rc = -1;
    return;
fail:
    vm_virt_err_capture(&t->err);
    t->rc = -1;
}

static void host_task_done(struct vm_virt_task *t)
{
    struct vm_virt_host *h = t->data;
    if (t->rc < 0)
        vm_virt_err_keep(&h->err, &t->err);
    vm_virt_host_cb cb = h->cb;
    h->cb = NULL;
    cb(h, h->cb_data);
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
        h->cb = NULL;
        cb(h, data);
    }
}

void vm_virt_host_open(struct vm_virt_host *h, vm_virt_host_cb cb, void *data)
{
    host_run(h, host_open_work, cb, data);
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
