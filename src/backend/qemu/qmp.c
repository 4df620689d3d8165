/* SPDX-License-Identifier: MIT */
/* qmp.c — see qmp.h.
 *
 * Client lifecycle: vm_qmp_new() initialises the pipe and the timer; the
 * first error (or vm_qmp_close()) closes both, and the close callback of the
 * last one (finish()) makes every outstanding callback — on_ready if it is
 * still owed, each pending reply with "Closed"/"Timeout", then on_close —
 * and frees the struct. Until then nothing is freed, so user callbacks can
 * close the client at any point; the code that called them only checks
 * q->closing afterwards. */
#include "backend/qemu/qmp.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "util/util.h"

const char *vm_qmp_strerror(int code)
{
    static _Thread_local char buf[96];

    switch (code) {
    case 0:
        return "success";
    case VM_QMP_E_PROTO:
        return "QMP protocol error";
    case VM_QMP_E_TOOBIG:
        return "QMP message too large";
    case VM_QMP_E_CLOSED:
        return "QMP connection closed";
    case VM_QMP_E_NEGOTIATE:
        return "QMP capabilities negotiation refused";
    default:
        /* uv_strerror() leaks for unknown codes; the _r variant does not. */
        return uv_strerror_r(code, buf, sizeof(buf));
    }
}

/* ---- Parser ------------------------------------------------------------ */

/* Copy at most 60 bytes of s into dst for an error message, escaping what
 * is not printable ASCII and marking a cut with "...". */
static void excerpt(char *dst, size_t dstlen, const char *s, size_t n)
{
    size_t o = 0, i;

    for (i = 0; i < n && i < 60 && o + 8 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            dst[o++] = (char)c;
        else
            o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", c);
    }
    if (i < n && o + 4 <= dstlen) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o < dstlen ? o : dstlen - 1] = '\0';
}

__attribute__((format(printf, 3, 4))) static int parser_fail(struct vm_qmp_parser *p, int code,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof(p->errmsg), fmt, ap);
    va_end(ap);
    p->error = code;
    p->len = 0;
    return code;
}

void vm_qmp_parser_init(struct vm_qmp_parser *p, size_t max_msg)
{
    memset(p, 0, sizeof(*p));
    if (max_msg == 0)
        max_msg = VM_QMP_DEFAULT_MAX_MSG;
    if (max_msg > SIZE_MAX / 2)
        max_msg = SIZE_MAX / 2;
    p->max_msg = max_msg;
}

void vm_qmp_parser_fini(struct vm_qmp_parser *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
}

size_t vm_qmp_parser_pending(const struct vm_qmp_parser *p)
{
    return p->len;
}

const char *vm_qmp_parser_errmsg(const struct vm_qmp_parser *p)
{
    return p->errmsg;
}

/* Append n bytes; the caller has checked p->len + n <= p->max_msg + 1. */
static void parser_append(struct vm_qmp_parser *p, const char *s, size_t n)
{
    size_t need = p->len + n;

    if (need > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < need)
            cap *= 2;
        if (cap > p->max_msg + 1)
            cap = p->max_msg + 1;
        p->buf = xrealloc(p->buf, cap);
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len = need;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Classification. Top-level members are checked strictly (an unknown one is
 * an error); inside the known members, required fields are type-checked and
 * extra ones tolerated, as QEMU adds members over time. On error, writes the
 * reason to err and returns -1. */
static int check_members(json_t *root, const char *kind, const char *const *allowed, char *err,
                         size_t errlen)
{
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok = ok || strcmp(key, *a) == 0;
        if (!ok) {
            char k[80];
            excerpt(k, sizeof(k), key, strlen(key));
            snprintf(err, errlen, "unexpected member \"%s\" in %s message", k, kind);
            return -1;
        }
    }
    return 0;
}

static int check_id(const json_t *root, struct vm_qmp_msg *m, char *err, size_t errlen)
{
    json_t *id = json_object_get(root, "id");

    if (!id)
        return 0;
    if (!json_is_integer(id)) {
        snprintf(err, errlen, "reply id is %s, not an integer", json_type_name(id));
        return -1;
    }
    m->has_id = 1;
    m->id = (int64_t)json_integer_value(id);
    return 0;
}

static int classify_greeting(json_t *root, struct vm_qmp_msg *m, char *err, size_t errlen)
{
    static const char *const allowed[] = {"QMP", NULL};
    json_t *qmp = json_object_get(root, "QMP"), *v;
    size_t i;

    if (check_members(root, "greeting", allowed, err, errlen) < 0)
        return -1;
    if (!json_is_object(qmp)) {
        snprintf(err, errlen, "greeting: \"QMP\" is %s, not an object", json_type_name(qmp));
        return -1;
    }
    m->version = json_object_get(qmp, "version");
    m->capabilities = json_object_get(qmp, "capabilities");
    if (!json_is_object(m->version)) {
        snprintf(err, errlen, "greeting: \"version\" is %s, not an object",
                 m->version ? json_type_name(m->version) : "missing");
        return -1;
    }
    if (!json_is_array(m->capabilities)) {
        snprintf(err, errlen, "greeting: \"capabilities\" is %s, not an array",
                 m->capabilities ? json_type_name(m->capabilities) : "missing");
        return -1;
    }
    for (i = 0; i < json_array_size(m->capabilities); i++) {
        v = json_array_get(m->capabilities, i);
        if (!json_is_string(v)) {
            snprintf(err, errlen, "greeting: capability %zu is %s, not a string", i,
                     json_type_name(v));
            return -1;
        }
    }
    m->type = VM_QMP_MSG_GREETING;
    return 0;
}

static int classify_error(json_t *root, struct vm_qmp_msg *m, char *err, size_t errlen)
{
    static const char *const allowed[] = {"error", "id", NULL};
    json_t *e = json_object_get(root, "error");
    json_t *cls = json_object_get(e, "class"), *desc = json_object_get(e, "desc");

    if (check_members(root, "error", allowed, err, errlen) < 0 ||
        check_id(root, m, err, errlen) < 0)
        return -1;
    if (!json_is_object(e)) {
        snprintf(err, errlen, "error reply: \"error\" is %s, not an object", json_type_name(e));
        return -1;
    }
    if (!json_is_string(cls) || !json_is_string(desc)) {
        snprintf(err, errlen, "error reply: \"class\" and \"desc\" must be strings");
        return -1;
    }
    m->err_class = json_string_value(cls);
    m->err_desc = json_string_value(desc);
    m->type = VM_QMP_MSG_ERROR;
    return 0;
}

static int classify_event(json_t *root, struct vm_qmp_msg *m, char *err, size_t errlen)
{
    static const char *const allowed[] = {"event", "data", "timestamp", NULL};
    json_t *name = json_object_get(root, "event"), *data = json_object_get(root, "data");
    json_t *ts = json_object_get(root, "timestamp");
    json_t *sec = json_object_get(ts, "seconds"), *usec = json_object_get(ts, "microseconds");

    if (check_members(root, "event", allowed, err, errlen) < 0)
        return -1;
    if (!json_is_string(name) || json_string_length(name) == 0) {
        snprintf(err, errlen, "event: \"event\" is not a non-empty string");
        return -1;
    }
    if (data && !json_is_object(data)) {
        snprintf(err, errlen, "event: \"data\" is %s, not an object", json_type_name(data));
        return -1;
    }
    if (!json_is_object(ts) || !json_is_integer(sec) || !json_is_integer(usec) ||
        json_integer_value(usec) < 0 || json_integer_value(usec) > 999999) {
        snprintf(err, errlen,
                 "event: \"timestamp\" must be {\"seconds\": int, "
                 "\"microseconds\": 0..999999}");
        return -1;
    }
    m->event = json_string_value(name);
    m->data = data;
    m->timestamp = (double)json_integer_value(sec) + (double)json_integer_value(usec) / 1e6;
    m->type = VM_QMP_MSG_EVENT;
    return 0;
}

static int classify(json_t *root, struct vm_qmp_msg *m, char *err, size_t errlen)
{
    static const char *const ret_allowed[] = {"return", "id", NULL};

    memset(m, 0, sizeof(*m));
    m->root = root;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "top-level value is %s, not an object", json_type_name(root));
        return -1;
    }
    if (json_object_get(root, "QMP"))
        return classify_greeting(root, m, err, errlen);
    if (json_object_get(root, "return")) {
        if (check_members(root, "return", ret_allowed, err, errlen) < 0 ||
            check_id(root, m, err, errlen) < 0)
            return -1;
        m->ret = json_object_get(root, "return");
        m->type = VM_QMP_MSG_RETURN;
        return 0;
    }
    if (json_object_get(root, "error"))
        return classify_error(root, m, err, errlen);
    if (json_object_get(root, "event"))
        return classify_event(root, m, err, errlen);
    snprintf(err, errlen,
             "unrecognized message: it has none of \"QMP\", \"return\", "
             "\"error\", \"event\"");
    return -1;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* One line, terminator already removed. */
static int parser_line(struct vm_qmp_parser *p, const char *line, size_t n, vm_qmp_msg_cb cb,
                       void *cb_data)
{
    struct vm_qmp_msg m;
    json_error_t jerr;
    char why[200], ex[256];
    json_t *root;
    int rc = 0;

    if (blank(line, n))
        return 0;
    root = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        excerpt(ex, sizeof(ex), line, n);
        return parser_fail(p, VM_QMP_E_PROTO,
                           "malformed JSON in message %llu at byte %d: %s: \"%s\"",
                           (unsigned long long)p->nmsgs + 1, jerr.position, jerr.text, ex);
    }
    if (classify(root, &m, why, sizeof(why)) < 0) {
        json_decref(root);
        excerpt(ex, sizeof(ex), line, n);
        return parser_fail(p, VM_QMP_E_PROTO, "bad message %llu: %s: \"%s\"",
                           (unsigned long long)p->nmsgs + 1, why, ex);
    }
    p->nmsgs++;
    if (cb)
        rc = cb(cb_data, &m);
    json_decref(root);
    return rc;
}

static int parser_toobig(struct vm_qmp_parser *p)
{
    return parser_fail(p, VM_QMP_E_TOOBIG, "message %llu is larger than %zu bytes",
                       (unsigned long long)p->nmsgs + 1, p->max_msg);
}

int vm_qmp_parser_feed(struct vm_qmp_parser *p, const void *data, size_t len, vm_qmp_msg_cb cb,
                       void *cb_data)
{
    const char *s = data;

    if (p->error)
        return p->error;
    while (len > 0) {
        const char *nl = memchr(s, '\n', len);
        const char *line;
        size_t seg, n;
        int rc;

        if (!nl) {
            /* An incomplete message: keep at most max_msg bytes, plus one
             * for a "\r" whose "\n" has not arrived yet. */
            size_t total = p->len + len;
            if (total > p->max_msg + 1 || (total == p->max_msg + 1 && s[len - 1] != '\r'))
                return parser_toobig(p);
            parser_append(p, s, len);
            return 0;
        }
        seg = (size_t)(nl - s);
        n = p->len + seg;
        if (n > 0 && (seg > 0 ? s[seg - 1] : p->buf[p->len - 1]) == '\r')
            n--;
        if (n > p->max_msg)
            return parser_toobig(p);
        if (p->len == 0) {
            line = s; /* whole message in this chunk: no copy */
        } else {
            parser_append(p, s, seg);
            line = p->buf;
        }
        s = nl + 1;
        len -= seg + 1;
        rc = parser_line(p, line, n, cb, cb_data);
        p->len = 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- Client ------------------------------------------------------------ */

enum qmp_state {
    QMP_STATE_IDLE,        /* vm_qmp_connect() not called yet */
    QMP_STATE_CONNECTING,  /* waiting for connect(2) */
    QMP_STATE_GREETING,    /* connected, waiting for the greeting */
    QMP_STATE_NEGOTIATING, /* qmp_capabilities sent */
    QMP_STATE_READY,
};

struct qmp_cmd {
    struct qmp_cmd *prev, *next;
    int64_t id;
    char *name;
    char *line; /* serialized command until it is sent, then NULL */
    size_t line_len;
    bool sent;
    bool timed_out;
    uint64_t timeout_ms; /* q->timeout_ms when it was sent */
    uint64_t deadline;   /* loop time in ms; 0 = none */
    vm_qmp_reply_cb cb;
    void *cb_data;
};

struct qmp_write {
    uv_write_t req; /* first: the callback casts back */
    struct vm_qmp *q;
    char *buf;
};

struct vm_qmp {
    uv_loop_t *loop;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_connect_t connect_req;
    struct vm_qmp_callbacks cbs;
    void *userdata;
    struct vm_qmp_parser parser;
    enum qmp_state state;
    bool connect_called;
    bool ready_reported;
    bool closing;
    int open_handles;
    int close_reason;
    char *path;
    json_t *greeting;
    uint64_t timeout_ms;
    uint64_t handshake_deadline;
    int64_t next_id;
    struct qmp_cmd *head, *tail; /* in issue order, sent or not */
    char errmsg[512];
    char rbuf[64 * 1024];
};

static void on_handle_closed(uv_handle_t *h);

static void begin_close(struct vm_qmp *q, int reason)
{
    if (q->closing)
        return;
    q->closing = true;
    q->close_reason = reason;
    q->open_handles = 2;
    uv_close((uv_handle_t *)&q->pipe, on_handle_closed);
    uv_close((uv_handle_t *)&q->timer, on_handle_closed);
}

/* The first error ends the connection; later ones are ignored. */
__attribute__((format(printf, 3, 4))) static void qmp_fail(struct vm_qmp *q, int reason,
                                                           const char *fmt, ...)
{
    va_list ap;

    if (q->closing)
        return;
    va_start(ap, fmt);
    vsnprintf(q->errmsg, sizeof(q->errmsg), fmt, ap);
    va_end(ap);
    vm_debug("qmp %s: %s", q->path ? q->path : "(unconnected)", q->errmsg);
    begin_close(q, reason);
}

static void cmd_unlink(struct vm_qmp *q, struct qmp_cmd *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        q->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        q->tail = c->prev;
    c->prev = c->next = NULL;
}

static void cmd_free(struct qmp_cmd *c)
{
    free(c->name);
    free(c->line);
    free(c);
}

static void on_timer(uv_timer_t *t);

static void arm_timer(struct vm_qmp *q)
{
    uint64_t next = 0, now;

    if (q->closing)
        return;
    if (q->state != QMP_STATE_READY && q->handshake_deadline)
        next = q->handshake_deadline;
    for (struct qmp_cmd *c = q->head; c; c = c->next)
        if (c->sent && c->deadline && (!next || c->deadline < next))
            next = c->deadline;
    if (!next) {
        uv_timer_stop(&q->timer);
        return;
    }
    now = uv_now(q->loop);
    uv_timer_start(&q->timer, on_timer, next > now ? next - now : 0, 0);
}

static uint64_t deadline_from_now(struct vm_qmp *q)
{
    uint64_t now = uv_now(q->loop);

    if (q->timeout_ms == 0 || q->timeout_ms > UINT64_MAX - now)
        return 0;
    return now + q->timeout_ms;
}

static void on_timer(uv_timer_t *t)
{
    struct vm_qmp *q = t->data;
    uint64_t now = uv_now(q->loop);

    if (q->state != QMP_STATE_READY && q->handshake_deadline && now >= q->handshake_deadline) {
        qmp_fail(q, UV_ETIMEDOUT, "no QMP handshake with %s within %llu ms", q->path,
                 (unsigned long long)q->timeout_ms);
        return;
    }
    for (struct qmp_cmd *c = q->head; c; c = c->next) {
        if (c->sent && c->deadline && now >= c->deadline) {
            c->timed_out = true;
            qmp_fail(q, UV_ETIMEDOUT, "no reply to '%s' (id %lld) within %llu ms", c->name,
                     (long long)c->id, (unsigned long long)c->timeout_ms);
            return;
        }
    }
    arm_timer(q);
}

static void on_write(uv_write_t *req, int status)
{
    struct qmp_write *w = (struct qmp_write *)req;
    struct vm_qmp *q = w->q;

    free(w->buf);
    free(w);
    /* UV_ECANCELED: the pipe is closing; q lives until its close callback. */
    if (status < 0 && status != UV_ECANCELED)
        qmp_fail(q, status, "cannot write to QMP socket %s: %s", q->path, uv_strerror(status));
}

static void cmd_send(struct vm_qmp *q, struct qmp_cmd *c)
{
    struct qmp_write *w = xmalloc(sizeof(*w));
    uv_buf_t b = uv_buf_init(c->line, (unsigned)c->line_len);
    int rc;

    w->q = q;
    w->buf = c->line;
    c->line = NULL;
    c->sent = true;
    c->timeout_ms = q->timeout_ms;
    c->deadline = deadline_from_now(q);
    rc = uv_write(&w->req, (uv_stream_t *)&q->pipe, &b, 1, on_write);
    if (rc < 0) {
        free(w->buf);
        free(w);
        qmp_fail(q, rc, "cannot write to QMP socket %s: %s", q->path, uv_strerror(rc));
        return;
    }
    arm_timer(q);
}

/* Serialize and append a command; send it now if the state allows. */
static int cmd_queue(struct vm_qmp *q, const char *name, json_t *args, vm_qmp_reply_cb cb,
                     void *cb_data, bool send_now)
{
    json_t *o = json_object();
    struct qmp_cmd *c;
    size_t n;

    if (json_object_set_new(o, "execute", json_string(name)) < 0) {
        json_decref(o);
        json_decref(args);
        return UV_EINVAL; /* name is not UTF-8 */
    }
    if (args && json_object_set_new(o, "arguments", args) < 0) {
        json_decref(o);
        return UV_EINVAL;
    }
    json_object_set_new(o, "id", json_integer((json_int_t)q->next_id));
    n = json_dumpb(o, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        json_decref(o);
        return UV_EINVAL; /* e.g. a reference cycle in args */
    }
    /* No "\n" after the object: QEMU's monitor reads one byte at a time and
     * stops reading at the "}" of "quit", so a newline would be left unread
     * and turn QEMU's exit into a connection reset. */
    c = xcalloc(1, sizeof(*c));
    c->line = xmalloc(n);
    json_dumpb(o, c->line, n, JSON_COMPACT);
    json_decref(o);
    c->line_len = n;
    c->id = q->next_id++;
    c->name = xstrdup(name);
    c->cb = cb;
    c->cb_data = cb_data;
    c->prev = q->tail;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    if (send_now)
        cmd_send(q, c);
    return 0;
}

static void on_caps_reply(struct vm_qmp *q, json_t *ret, const struct vm_qmp_error *err,
                          void *cb_data)
{
    if (err) {
        /* "Closed"/"Timeout" come from finish(), which reports on_ready. */
        if (err->code == 0)
            qmp_fail(q, VM_QMP_E_NEGOTIATE, "QEMU refused qmp_capabilities: %s: %s",
                     err->error_class, err->desc);
        return;
    }
    q->state = QMP_STATE_READY;
    q->handshake_deadline = 0;
    for (struct qmp_cmd *c = q->head; c && !q->closing; c = c->next)
        if (!c->sent)
            cmd_send(q, c);
    arm_timer(q);
    if (q->closing)
        return; /* a write failed; finish() reports on_ready */
    q->ready_reported = true;
    if (q->cbs.on_ready)
        q->cbs.on_ready(q, 0, q->userdata);
}

static struct qmp_cmd *cmd_find_sent(struct vm_qmp *q, int64_t id)
{
    for (struct qmp_cmd *c = q->head; c; c = c->next)
        if (c->sent && c->id == id)
            return c;
    return NULL;
}

static void handle_reply(struct vm_qmp *q, const struct vm_qmp_msg *m)
{
    struct qmp_cmd *c;

    if (!m->has_id) {
        if (m->type == VM_QMP_MSG_ERROR)
            qmp_fail(q, VM_QMP_E_PROTO, "error reply without an id: %s: %s", m->err_class,
                     m->err_desc);
        else
            qmp_fail(q, VM_QMP_E_PROTO, "reply without an id");
        return;
    }
    c = cmd_find_sent(q, m->id);
    if (!c) {
        qmp_fail(q, VM_QMP_E_PROTO, "reply with unknown id %lld", (long long)m->id);
        return;
    }
    cmd_unlink(q, c);
    arm_timer(q);
    if (c->cb) {
        if (m->type == VM_QMP_MSG_RETURN) {
            c->cb(q, m->ret, NULL, c->cb_data);
        } else {
            struct vm_qmp_error e = {m->err_class, m->err_desc, 0};
            c->cb(q, NULL, &e, c->cb_data);
        }
    }
    cmd_free(c);
}

static const char *msg_type_name(enum vm_qmp_msg_type t)
{
    switch (t) {
    case VM_QMP_MSG_GREETING:
        return "greeting";
    case VM_QMP_MSG_RETURN:
        return "return";
    case VM_QMP_MSG_ERROR:
        return "error";
    case VM_QMP_MSG_EVENT:
        return "event";
    }
    return "?";
}

static int on_msg(void *data, const struct vm_qmp_msg *m)
{
    struct vm_qmp *q = data;

    if (q->closing)
        return 1;
    if (q->state == QMP_STATE_GREETING) {
        if (m->type != VM_QMP_MSG_GREETING) {
            qmp_fail(q, VM_QMP_E_PROTO, "expected the QMP greeting, got %s message",
                     msg_type_name(m->type));
            return 1;
        }
        q->greeting = json_incref(json_object_get(m->root, "QMP"));
        q->state = QMP_STATE_NEGOTIATING;
        cmd_queue(q, "qmp_capabilities", NULL, on_caps_reply, NULL, true);
        return q->closing;
    }
    switch (m->type) {
    case VM_QMP_MSG_GREETING:
        qmp_fail(q, VM_QMP_E_PROTO, "unexpected second greeting");
        break;
    case VM_QMP_MSG_RETURN:
    case VM_QMP_MSG_ERROR:
        handle_reply(q, m);
        break;
    case VM_QMP_MSG_EVENT:
        if (q->cbs.on_event)
            q->cbs.on_event(q, m->event, m->data, m->timestamp, q->userdata);
        break;
    }
    return q->closing;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct vm_qmp *q = h->data;

    *buf = uv_buf_init(q->rbuf, sizeof(q->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct vm_qmp *q = s->data;
    int rc;

    if (q->closing || nread == 0)
        return;
    /* A reset on a unix socket only means QEMU closed it before reading
     * everything we sent (e.g. commands pipelined after "quit"). */
    if (nread == UV_EOF || nread == UV_ECONNRESET) {
        size_t pending = vm_qmp_parser_pending(&q->parser);
        const char *how = nread == UV_EOF ? "" : " before reading all commands";
        if (pending)
            qmp_fail(q, UV_EOF,
                     "QEMU closed the connection%s in the middle of a message "
                     "(%zu bytes received)",
                     how, pending);
        else
            qmp_fail(q, UV_EOF, "QEMU closed the connection%s", how);
        return;
    }
    if (nread < 0) {
        qmp_fail(q, (int)nread, "cannot read from QMP socket %s: %s", q->path,
                 uv_strerror((int)nread));
        return;
    }
    rc = vm_qmp_parser_feed(&q->parser, buf->base, (size_t)nread, on_msg, q);
    if (rc < 0)
        qmp_fail(q, rc, "%s", vm_qmp_parser_errmsg(&q->parser));
}

static void on_connect(uv_connect_t *req, int status)
{
    struct vm_qmp *q = req->data;
    int rc;

    if (q->closing)
        return; /* UV_ECANCELED: finish() reports */
    if (status < 0) {
        qmp_fail(q, status, "cannot connect to QMP socket %s: %s", q->path, uv_strerror(status));
        return;
    }
    q->state = QMP_STATE_GREETING;
    rc = uv_read_start((uv_stream_t *)&q->pipe, on_alloc, on_read);
    if (rc < 0)
        qmp_fail(q, rc, "cannot read from QMP socket %s: %s", q->path, uv_strerror(rc));
}

static void finish(struct vm_qmp *q)
{
    int reason = q->close_reason;
    struct qmp_cmd *c;

    if (q->connect_called && !q->ready_reported) {
        q->ready_reported = true;
        if (q->cbs.on_ready)
            q->cbs.on_ready(q, reason ? reason : UV_ECANCELED, q->userdata);
    }
    while ((c = q->head)) {
        cmd_unlink(q, c);
        if (c->cb) {
            struct vm_qmp_error e;
            char *desc;
            if (c->timed_out) {
                desc = xasprintf("no reply to '%s' within %llu ms", c->name,
                                 (unsigned long long)c->timeout_ms);
                e = (struct vm_qmp_error){"Timeout", desc, UV_ETIMEDOUT};
            } else {
                desc = xasprintf("QMP connection closed before '%s' completed (%s)", c->name,
                                 q->errmsg[0] ? q->errmsg : vm_qmp_strerror(reason));
                e = (struct vm_qmp_error){"Closed", desc, VM_QMP_E_CLOSED};
            }
            c->cb(q, NULL, &e, c->cb_data);
            free(desc);
        }
        cmd_free(c);
    }
    if (q->cbs.on_close)
        q->cbs.on_close(q, reason, q->userdata);
    vm_qmp_parser_fini(&q->parser);
    json_decref(q->greeting);
    free(q->path);
    free(q);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct vm_qmp *q = h->data;

    if (--q->open_handles == 0)
        finish(q);
}

struct vm_qmp *vm_qmp_new(uv_loop_t *loop, const struct vm_qmp_callbacks *cbs, void *userdata)
{
    struct vm_qmp *q = xcalloc(1, sizeof(*q));

    q->loop = loop;
    if (cbs)
        q->cbs = *cbs;
    q->userdata = userdata;
    q->next_id = 1;
    vm_qmp_parser_init(&q->parser, 0);
    /* Neither can fail on Unix (they only initialise memory). */
    if (uv_pipe_init(loop, &q->pipe, 0) != 0 || uv_timer_init(loop, &q->timer) != 0)
        abort();
    q->pipe.data = q;
    q->timer.data = q;
    q->connect_req.data = q;
    return q;
}

void vm_qmp_set_timeout_ms(struct vm_qmp *q, uint64_t timeout_ms)
{
    q->timeout_ms = timeout_ms;
}

int vm_qmp_set_max_message(struct vm_qmp *q, size_t max_msg)
{
    if (q->connect_called || q->closing)
        return UV_EBUSY;
    vm_qmp_parser_fini(&q->parser);
    vm_qmp_parser_init(&q->parser, max_msg);
    return 0;
}

int vm_qmp_connect(struct vm_qmp *q, const char *path)
{
    if (q->closing)
        return VM_QMP_E_CLOSED;
    if (q->connect_called)
        return UV_EALREADY;
    if (!path || !*path)
        return UV_EINVAL;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
        return UV_ENAMETOOLONG;
    q->connect_called = true;
    q->path = xstrdup(path);
    q->state = QMP_STATE_CONNECTING;
    q->handshake_deadline = deadline_from_now(q);
    uv_pipe_connect(&q->connect_req, &q->pipe, q->path, on_connect);
    arm_timer(q);
    return 0;
}

int vm_qmp_command(struct vm_qmp *q, const char *cmd, json_t *args, vm_qmp_reply_cb cb,
                   void *cb_data)
{
    if (q->closing) {
        json_decref(args);
        return VM_QMP_E_CLOSED;
    }
    if (!cmd || !*cmd || (args && !json_is_object(args))) {
        json_decref(args);
        return UV_EINVAL;
    }
    return cmd_queue(q, cmd, args, cb, cb_data, q->state == QMP_STATE_READY);
}

void vm_qmp_close(struct vm_qmp *q)
{
    if (q)
        begin_close(q, 0);
}

json_t *vm_qmp_greeting(const struct vm_qmp *q)
{
    return q->greeting;
}

const char *vm_qmp_errmsg(const struct vm_qmp *q)
{
    return q->errmsg;
}

void *vm_qmp_userdata(const struct vm_qmp *q)
{
    return q->userdata;
}
