/* SPDX-License-Identifier: MIT */
/* qmp.h — a QMP (QEMU Machine Protocol) client on a libuv unix-socket pipe.
 *
 * Two layers:
 *
 *  - struct vm_qmp_parser: a pure, loop-free parser. It is fed byte chunks
 *    of any size and hands each complete, strictly classified message to a
 *    callback. It owns one bounded buffer (never more than max_msg + 1
 *    bytes) that vm_qmp_parser_fini() frees. The struct is public so it can
 *    be embedded or put on the stack; its fields are private.
 *
 *  - struct vm_qmp: the client. vm_qmp_new() allocates it together with its
 *    uv_pipe_t and uv_timer_t; the owner must end it with vm_qmp_close()
 *    unless it ended on its own (EOF, protocol error, timeout, failed
 *    connect). Either way the struct is freed only from the libuv close
 *    callback, right after on_close() returns; on_close() is the last
 *    callback a client ever makes and is made exactly once.
 *
 * Ownership of JSON: vm_qmp_command() steals the reference to its
 * arguments, even when it fails. Every json_t handed to a callback is
 * borrowed for the callback's duration (json_incref() it to keep it).
 *
 * Errors are negative: UV_E* codes where one fits, otherwise the
 * VM_QMP_E_* codes below; vm_qmp_strerror() describes both. A function that
 * fails to start returns a negative code and never calls its callback.
 *
 * Not supported: QEMU's -qmp-pretty mode (messages must be one per line),
 * out-of-band commands, and integers beyond int64 (jansson's limit). */
#ifndef VMM_QMP_H
#define VMM_QMP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

/* Error codes of this module; far from libuv's range (-1 .. -4095). */
enum vm_qmp_errno {
    VM_QMP_E_PROTO = -30100,     /* malformed or unexpected message */
    VM_QMP_E_TOOBIG = -30101,    /* a message exceeded the maximum size */
    VM_QMP_E_CLOSED = -30102,    /* the client is closing or closed */
    VM_QMP_E_NEGOTIATE = -30103, /* QEMU refused qmp_capabilities */
};

/* Human-readable text for VM_QMP_E_* and UV_E* codes (0 = "success"). */
const char *vm_qmp_strerror(int code);

/* ---- Parser ------------------------------------------------------------ */

#define VM_QMP_DEFAULT_MAX_MSG ((size_t)1 << 20) /* 1 MiB */

enum vm_qmp_msg_type {
    VM_QMP_MSG_GREETING, /* {"QMP": {"version": {...}, "capabilities": [...]}} */
    VM_QMP_MSG_RETURN,   /* {"return": any, "id"?: int} */
    VM_QMP_MSG_ERROR,    /* {"error": {"class": str, "desc": str}, "id"?: int} */
    VM_QMP_MSG_EVENT,    /* {"event": str, "data"?: {...}, "timestamp": {...}} */
};

/* One classified message. Everything points into root and is borrowed for
 * the duration of the vm_qmp_msg_cb call. Only the members of msg's type are
 * set; the others are NULL / 0. */
struct vm_qmp_msg {
    enum vm_qmp_msg_type type;
    json_t *root;
    /* RETURN and ERROR: has_id says whether the reply carried an "id". */
    int has_id;
    int64_t id;
    json_t *ret;           /* RETURN: the "return" value (any JSON type) */
    const char *err_class; /* ERROR: e.g. "CommandNotFound" */
    const char *err_desc;  /* ERROR: free text */
    const char *event;     /* EVENT: name, non-empty */
    json_t *data;          /* EVENT: the "data" object, or NULL if absent */
    double timestamp;      /* EVENT: seconds since the epoch */
    json_t *version;       /* GREETING: the "version" object */
    json_t *capabilities;  /* GREETING: array of strings */
};

/* Return 0 to go on, non-zero to stop: vm_qmp_parser_feed() then returns
 * that value at once and drops the rest of its chunk. */
typedef int (*vm_qmp_msg_cb)(void *cb_data, const struct vm_qmp_msg *msg);

struct vm_qmp_parser {
    char *buf; /* partial message; never longer than max_msg + 1 */
    size_t len, cap;
    size_t max_msg;
    uint64_t nmsgs; /* messages delivered so far */
    int error;      /* sticky: 0 or VM_QMP_E_PROTO / VM_QMP_E_TOOBIG */
    char errmsg[256];
};

/* max_msg: the largest message accepted, line terminator excluded
 * (0 = VM_QMP_DEFAULT_MAX_MSG). */
void vm_qmp_parser_init(struct vm_qmp_parser *p, size_t max_msg);
void vm_qmp_parser_fini(struct vm_qmp_parser *p);

/* Consume len bytes. Messages end with "\n" (QEMU sends "\r\n"; a "\r"
 * before the "\n" is dropped); blank lines are skipped. Calls cb for each
 * complete message. Returns 0 when everything was consumed, a negative
 * VM_QMP_E_PROTO / VM_QMP_E_TOOBIG on the first bad message (sticky: every
 * later call returns it too; vm_qmp_parser_errmsg() says why), or cb's
 * non-zero return value. */
int vm_qmp_parser_feed(struct vm_qmp_parser *p, const void *data, size_t len, vm_qmp_msg_cb cb,
                       void *cb_data);

/* Bytes of an incomplete message currently buffered. */
size_t vm_qmp_parser_pending(const struct vm_qmp_parser *p);

/* Why the parser failed ("" if it did not). Owned by the parser. */
const char *vm_qmp_parser_errmsg(const struct vm_qmp_parser *p);

/* ---- Client ------------------------------------------------------------ */

struct vm_qmp;

/* An error reply, or a local failure of a command. */
struct vm_qmp_error {
    /* QEMU's class ("GenericError", "CommandNotFound", ...), or for local
     * failures "Closed" (the connection ended first) or "Timeout". */
    const char *error_class;
    const char *desc;
    /* 0 when QEMU sent the error, else the local negative code
     * (VM_QMP_E_CLOSED for "Closed", UV_ETIMEDOUT for "Timeout"). */
    int code;
};

/* Exactly one of ret and err is non-NULL. Called exactly once per command
 * that vm_qmp_command() accepted. Both are borrowed for the call. */
typedef void (*vm_qmp_reply_cb)(struct vm_qmp *q, json_t *ret, const struct vm_qmp_error *err,
                                void *cb_data);

struct vm_qmp_callbacks {
    /* Once per successful vm_qmp_connect(): status 0 once the greeting was
     * read and capabilities were negotiated, else negative (connect errors
     * as UV_E*, UV_ECANCELED if vm_qmp_close() came first, UV_ETIMEDOUT,
     * VM_QMP_E_*); on failure on_close() follows. May be NULL. */
    void (*on_ready)(struct vm_qmp *q, int status, void *userdata);
    /* Each event QEMU sends. data is NULL when the event has none. May be
     * NULL. */
    void (*on_event)(struct vm_qmp *q, const char *name, json_t *data, double timestamp,
                     void *userdata);
    /* The client is gone: reason 0 after vm_qmp_close(), UV_EOF when QEMU
     * hung up (also when it reset the connection, which on a unix socket
     * only means it left commands unread), or the error that ended it (VM_QMP_E_PROTO,
     * VM_QMP_E_TOOBIG, UV_ETIMEDOUT, read/write/connect errors).
     * vm_qmp_errmsg() has the details during the call; q is freed when it
     * returns. May be NULL. */
    void (*on_close)(struct vm_qmp *q, int reason, void *userdata);
};

/* Allocate a client on loop (never NULL). cbs is copied. */
struct vm_qmp *vm_qmp_new(uv_loop_t *loop, const struct vm_qmp_callbacks *cbs, void *userdata);

/* Settings; call before vm_qmp_connect() for them to apply from the start.
 * timeout_ms bounds the handshake (connect + greeting + negotiation) and
 * each command from when it is sent to its reply; 0 (default) = no limit.
 * Expiry ends the connection (UV_ETIMEDOUT): the late command fails with
 * class "Timeout", the others with "Closed". The new value applies to
 * commands sent afterwards. */
void vm_qmp_set_timeout_ms(struct vm_qmp *q, uint64_t timeout_ms);
/* Largest message accepted from QEMU (0 = VM_QMP_DEFAULT_MAX_MSG). Only
 * before vm_qmp_connect(); returns UV_EBUSY afterwards. */
int vm_qmp_set_max_message(struct vm_qmp *q, size_t max_msg);

/* Start connecting to the unix socket at path (copied). Returns 0, and
 * on_ready() reports the outcome; or UV_EINVAL (empty path),
 * UV_ENAMETOOLONG, UV_EALREADY (connect already called) or VM_QMP_E_CLOSED,
 * and no callback. */
int vm_qmp_connect(struct vm_qmp *q, const char *path);

/* Queue command cmd with arguments args (NULL or an object; the reference
 * is stolen) under a fresh numeric id. Commands issued before on_ready()
 * are sent once capabilities are negotiated. cb (may be NULL) gets the
 * reply. Returns 0, or UV_EINVAL (bad name or args) / VM_QMP_E_CLOSED
 * without calling cb. */
int vm_qmp_command(struct vm_qmp *q, const char *cmd, json_t *args, vm_qmp_reply_cb cb,
                   void *cb_data);

/* Close the connection. Pending commands fail with class "Closed", then
 * on_close(q, 0) runs and q is freed — all from the libuv close callback,
 * never from inside this call. Safe from any callback, and more than once
 * (later calls do nothing). */
void vm_qmp_close(struct vm_qmp *q);

/* The greeting's "QMP" object ({"version": ..., "capabilities": ...}), or
 * NULL before it arrived. Borrowed; lives as long as q. */
json_t *vm_qmp_greeting(const struct vm_qmp *q);

/* Details of the error that ended (or is ending) the connection, "" if
 * none. Owned by q. */
const char *vm_qmp_errmsg(const struct vm_qmp *q);

void *vm_qmp_userdata(const struct vm_qmp *q);

#endif
