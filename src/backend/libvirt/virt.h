/* SPDX-License-Identifier: MIT */
/* virt.h — the libvirt backend: host connections, blocking calls on the
 * thread pool, domain events.
 *
 * Every libvirt call that may block runs in a `struct vm_virt_task` on
 * libuv's thread pool; its `done` callback runs on the loop thread. A task
 * captures libvirt's thread-local error into task->err (owned by the task,
 * freed with vm_virt_err_clear). Domain events arrive on the loop thread
 * (evloop.h) and are handed to the host's `on_event` as plain structs.
 *
 * Opening a connection is the one call that does not go to the pool: it runs
 * on a detached thread of its own (struct vm_virt_opener, virt.c) under a
 * deadline, since a peer that accepts and never answers holds its caller
 * forever and libvirt cannot cancel it. Past the deadline (or when asked to,
 * vm_virt_host_abandon) the loop stops waiting; the thread, when it returns
 * at all, closes what it opened and frees itself. It touches only what it
 * owns, never the host, and nobody joins it: the process can exit while it
 * is stuck. Every other blocking call runs on a connection with libvirt's
 * keepalive (a ping every 2 s, 3 missed), which fails the call that waits
 * on the socket once the peer stops answering; a second call waiting on
 * the same connection is not always woken by libvirt then, and stays on
 * its thread until the peer answers or goes (vm_virt_tasks_in_flight).
 *
 * A `struct vm_virt_host` is owned by whoever created it (job.c) and freed
 * with vm_virt_host_free() after vm_virt_host_close() completed. */
#ifndef VMM_VIRT_H
#define VMM_VIRT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <uv.h>

struct vm_virt_err {
    int code;      /* virErrorNumber, or 0 */
    int domain;    /* virErrorDomain */
    char *message; /* owned; NULL if no error */
};

void vm_virt_err_capture(struct vm_virt_err *e); /* from this thread's last libvirt error */
void vm_virt_err_set(struct vm_virt_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vm_virt_err_clear(struct vm_virt_err *e);
/* Move src into dst if dst holds no error yet (the first error wins). */
void vm_virt_err_keep(struct vm_virt_err *dst, struct vm_virt_err *src);
/* libvirt's symbolic name of an error code, e.g. "VIR_ERR_OPERATION_ABORTED". */
const char *vm_virt_err_name(int code);

/* For a connection that failed because `uri` names no driver: the URI the
 * operator probably meant, a host name made into a qemu+ssh URI ("hv13":
 * "qemu+ssh://hv13/system", "root@hv13:22" likewise, "hv13/session":
 * "qemu+ssh://hv13/session"). NULL when uri has a scheme ("://") or is not
 * [user@]host[:port][/path]. Caller frees. A bare
 * word may still be one of libvirt.conf's uri_aliases, so only a failed
 * open asks for it. */
char *vm_virt_uri_suggest(const char *uri);

struct vm_virt_task {
    uv_work_t req;
    void (*work)(struct vm_virt_task *t); /* thread pool: may block */
    void (*done)(struct vm_virt_task *t); /* loop thread: may free t */
    void *data;
    int rc;
    struct vm_virt_err err;
};

/* Queue t; returns 0 or a negative uv error (then done is never called). */
int vm_virt_submit(uv_loop_t *loop, struct vm_virt_task *t);
/* Tasks queued whose done has not run yet (any loop). Once a run's hosts
 * are closed, any left are calls on a host that stopped answering: the
 * run stops waiting for them (job.c) and the process exits without
 * joining the thread pool. */
int vm_virt_tasks_in_flight(void);

/* Once per process: libvirt initialised, its own error printing silenced. */
void vm_virt_global_init(void);

enum vm_virt_event_kind {
    VM_VIRT_EVENT_LIFECYCLE,
    VM_VIRT_EVENT_ITERATION,
    VM_VIRT_EVENT_JOB_COMPLETED,
    VM_VIRT_EVENT_GRAPHICS,
    /* the connection closed under us (not by us): host-wide, uuid empty,
     * name NULL; h->lost and h->err are set; delivered on the loop thread */
    VM_VIRT_EVENT_CONNECTION_LOST,
};

struct vm_virt_event {
    enum vm_virt_event_kind kind;
    char uuid[VIR_UUID_STRING_BUFLEN];
    const char *name;
    int lifecycle, detail;       /* LIFECYCLE: virDomainEventType and its detail */
    int iteration;               /* ITERATION */
    json_t *stats;               /* JOB_COMPLETED: the typed parameters (borrowed) */
    int graphics_phase;          /* GRAPHICS: virDomainEventGraphicsPhase */
    const char *graphics_remote; /* GRAPHICS: "host:port" of the client, or NULL */
    const char *lost_reason;     /* CONNECTION_LOST: "end of file", "keepalive timeout", ... */
};

struct vm_virt_host;
struct vm_virt_opener;
typedef void (*vm_virt_event_cb)(struct vm_virt_host *h, const struct vm_virt_event *ev,
                                 void *data);
typedef void (*vm_virt_host_cb)(struct vm_virt_host *h, void *data);

struct vm_virt_host {
    char *uri;
    virConnectPtr conn;
    char *hostname;
    char host_uuid[VIR_UUID_STRING_BUFLEN];
    struct vm_virt_err err; /* why open failed or the connection was lost */
    bool lost;              /* the connection closed under us */
    bool timed_out;         /* the open did not finish within its deadline */
    unsigned generation;    /* how often the connection was opened again (reconnect below) */
    vm_virt_event_cb on_event;
    void *event_data;
    /* private */
    uv_loop_t *loop;
    int cb_ids[4];
    vm_virt_host_cb cb;
    void *cb_data;
    struct vm_virt_task task;
    struct vm_virt_opener *opener; /* an open still on its thread, or NULL */
    unsigned open_timeout_s;
    int lost_timer;          /* the CONNECTION_LOST hand-over to the loop thread, or -1 */
    const char *lost_reason; /* static */
    struct vm_virt_reconnect *reconnect; /* a reconnect under way (virt_reconnect.c), or NULL */
};

struct vm_virt_host *vm_virt_host_new(uv_loop_t *loop, const char *uri, vm_virt_event_cb on_event,
                                      void *event_data);
/* Connect, enable keepalive, read hostname and host UUID (on the opener's
 * thread, within timeout_s; 0: as long as libvirt takes), then subscribe to
 * domain events (thread pool). cb runs once when done; on failure h->conn
 * is NULL and h->err set, and h->timed_out says the deadline passed. */
void vm_virt_host_open(struct vm_virt_host *h, unsigned timeout_s, vm_virt_host_cb cb, void *data);
/* How long opening a connection may take unless told otherwise. */
#define VM_VIRT_CONNECT_TIMEOUT_DEFAULT_S 30
/* Blocking, for any thread (recover.c): open uri with keepalive, on an
 * opener's thread, waiting at most timeout_s (0: as long as libvirt takes);
 * NULL with *err set ("no answer within N s" past the deadline: the thread
 * closes a late answer itself). The connection is the caller's. */
virConnectPtr vm_virt_connect(const char *uri, unsigned timeout_s, struct vm_virt_err *err);
/* Openers not yet freed, their threads' included (for the tests: a late
 * answer is dropped and its opener freed). */
int vm_virt_openers_live(void);
/* Is h connected, its connection not closed under us (libvirt's own view,
 * no call to the host)? */
bool vm_virt_host_alive(const struct vm_virt_host *h);
/* Is the open still on its thread (connecting, not yet subscribing)? */
bool vm_virt_host_connecting(const struct vm_virt_host *h);
/* Stop waiting for an open still on its thread: cb runs now, with h->conn
 * NULL and h->err set to WHY; true. false, and nothing happens, when no
 * open is on its thread (the result may already be on its way). */
bool vm_virt_host_abandon(struct vm_virt_host *h, const char *why);
/* Unsubscribe and disconnect; cb runs when done. No-op (cb still runs) if
 * never connected. */
void vm_virt_host_close(struct vm_virt_host *h, vm_virt_host_cb cb, void *data);
void vm_virt_host_free(struct vm_virt_host *h);

/* ---- connecting again (virt_reconnect.c) ----
 * A connection that went away under a caller (the ssh process carrying it
 * died, say) is opened again in one place, for every caller of the host:
 * what is left of the old one is closed (unsubscribed), then h is opened
 * again (vm_virt_host_open, each attempt within h's connect timeout) up to
 * VM_VIRT_RECONNECT_ATTEMPTS times, waiting VM_VIRT_RECONNECT_FIRST_MS
 * between the first attempts and twice as long after each failure (at most
 * VM_VIRT_RECONNECT_MAX_MS), never past budget_ms from now. A connection
 * that leads to another host (another host UUID) counts as a failure.
 *
 * `seen` is the generation whose connection the caller saw fail: if h has
 * been opened again since, cb runs on the loop's next turn and nothing is
 * opened; if a reconnect is under way the caller joins it. cb runs once, on
 * the loop thread, never from inside this call: h->conn set on success
 * (h->generation one more), or NULL with h->err saying why. Domains looked
 * up on the old connection stay valid objects but their calls fail: look
 * them up again. A host is not freed while a reconnect is under way. */
#define VM_VIRT_RECONNECT_ATTEMPTS 5
#define VM_VIRT_RECONNECT_FIRST_MS 250
#define VM_VIRT_RECONNECT_MAX_MS 4000
void vm_virt_host_reconnect(struct vm_virt_host *h, unsigned seen, uint64_t budget_ms,
                            vm_virt_host_cb cb, void *data);
bool vm_virt_host_reconnecting(const struct vm_virt_host *h);
/* Thread pool, after a call on c failed: is c gone (closed under us, or
 * NULL), so that the call failed for that and not for its own reason? */
bool vm_virt_conn_lost(virConnectPtr c);

/* Thread-pool helpers (call from a task's work function). */
char *vm_virt_caps_host_uuid(const char *caps_xml); /* NULL if absent; caller frees */
json_t *vm_virt_params_to_json(virTypedParameterPtr params, int n);

const char *vm_virt_lifecycle_name(int event);
const char *vm_virt_lifecycle_detail_name(int event, int detail);
const char *vm_virt_state_name(int state);

#endif
