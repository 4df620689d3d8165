/* virt.h — the libvirt backend: host connections, blocking calls on the
 * thread pool, domain events.
 *
 * Every libvirt call that may block runs in a `struct vm_virt_task` on
 * libuv's thread pool; its `done` callback runs on the loop thread. A task
 * captures libvirt's thread-local error into task->err (owned by the task,
 * freed with vm_virt_err_clear). Domain events arrive on the loop thread
 * (evloop.h) and are handed to the host's `on_event` as plain structs.
 *
 * A `struct vm_virt_host` is owned by whoever created it (job.c) and freed
 * with vm_virt_host_free() after vm_virt_host_close() completed. */
#ifndef VMM_VIRT_H
#define VMM_VIRT_H

#include <stdbool.h>

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
    vm_virt_event_cb on_event;
    void *event_data;
    /* private */
    uv_loop_t *loop;
    int cb_ids[4];
    vm_virt_host_cb cb;
    void *cb_data;
    struct vm_virt_task task;
    int lost_timer;          /* the CONNECTION_LOST hand-over to the loop thread, or -1 */
    const char *lost_reason; /* static */
};

struct vm_virt_host *vm_virt_host_new(uv_loop_t *loop, const char *uri, vm_virt_event_cb on_event,
                                      void *event_data);
/* Connect, enable keepalive, read hostname and host UUID, subscribe to domain
 * events. cb runs when done; h->conn is NULL and h->err set on failure. */
void vm_virt_host_open(struct vm_virt_host *h, vm_virt_host_cb cb, void *data);
/* Unsubscribe and disconnect; cb runs when done. No-op (cb still runs) if
 * never connected. */
void vm_virt_host_close(struct vm_virt_host *h, vm_virt_host_cb cb, void *data);
void vm_virt_host_free(struct vm_virt_host *h);

/* Thread-pool helpers (call from a task's work function). */
char *vm_virt_caps_host_uuid(const char *caps_xml); /* NULL if absent; caller frees */
json_t *vm_virt_params_to_json(virTypedParameterPtr params, int n);

const char *vm_virt_lifecycle_name(int event);
const char *vm_virt_lifecycle_detail_name(int event, int detail);
const char *vm_virt_state_name(int state);

#endif
