/* SPDX-License-Identifier: MIT */
/* test_qmp.c — the QMP parser, the client against a scripted fake server
 * (a thread on a unix socket in a temp dir), and the client against a real
 * qemu-system-x86_64 (required: its absence fails the test). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "backend/qemu/qmp.h"
#include "util/util.h"

/* A greeting and a session as qemu-system-x86_64 7.2 sent them. */
#define GREETING                                                                                   \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "             \
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n"

static const char qemu_trace[] =
    GREETING "{\"return\": {}, \"id\": 1}\r\n"
             "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, "
             "\"id\": 2}\r\n"
             "{\"id\": 4, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope "
             "has not been found\"}}\r\n"
             "{\"timestamp\": {\"seconds\": 1795305240, \"microseconds\": 351335}, \"event\": "
             "\"STOP\"}\r\n"
             "{\"return\": {}, \"id\": 5}\r\n"
             "{\"timestamp\": {\"seconds\": 1795305241, \"microseconds\": 852611}, \"event\": "
             "\"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n";

/* ---- Parser ------------------------------------------------------------ */

struct got {
    int n;
    enum vm_qmp_msg_type type[64];
    int64_t id[64];
    int has_id[64];
    char *text[64];   /* the whole message, re-serialized with sorted keys */
    char str[64][64]; /* event name or error class */
    double ts[64];
    int stop_at; /* return 7 from the callback for this message (1-based) */
};

static int collect(void *data, const struct vm_qmp_msg *m)
{
    struct got *g = data;
    int i = g->n++;

    CHECK(i < 64);
    g->type[i] = m->type;
    g->id[i] = m->id;
    g->has_id[i] = m->has_id;
    g->text[i] = json_dumps(m->root, JSON_COMPACT | JSON_SORT_KEYS);
    g->str[i][0] = '\0';
    if (m->type == VM_QMP_MSG_EVENT) {
        snprintf(g->str[i], sizeof(g->str[i]), "%s", m->event);
        g->ts[i] = m->timestamp;
    } else if (m->type == VM_QMP_MSG_ERROR) {
        snprintf(g->str[i], sizeof(g->str[i]), "%s", m->err_class);
        CHECK(m->err_desc != NULL);
    } else if (m->type == VM_QMP_MSG_RETURN) {
        CHECK(m->ret != NULL);
    } else {
        CHECK(json_is_object(m->version) && json_is_array(m->capabilities));
    }
    return g->stop_at == g->n ? 7 : 0;
}

static void got_free(struct got *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->text[i]);
    memset(g, 0, sizeof(*g));
}

static void got_same(const struct got *a, const struct got *b)
{
    CHECK_INT(a->n, ==, b->n);
    for (int i = 0; i < a->n; i++) {
        CHECK_INT(a->type[i], ==, b->type[i]);
        CHECK_STR(a->text[i], b->text[i]);
    }
}

/* Feed s whole into a fresh parser with the given maximum. */
static int parse_all(const char *s, size_t n, size_t max, struct got *g, char *errmsg,
                     size_t errlen)
{
    struct vm_qmp_parser p;
    int rc;

    vm_qmp_parser_init(&p, max);
    rc = vm_qmp_parser_feed(&p, s, n, collect, g);
    if (errmsg)
        snprintf(errmsg, errlen, "%s", vm_qmp_parser_errmsg(&p));
    vm_qmp_parser_fini(&p);
    return rc;
}

static int parse_str(const char *s, struct got *g, char *errmsg, size_t errlen)
{
    return parse_all(s, strlen(s), 0, g, errmsg, errlen);
}

static void test_parser_qemu_trace(void)
{
    struct got g = {0};

    CHECK_INT(parse_str(qemu_trace, &g, NULL, 0), ==, 0);
    CHECK_INT(g.n, ==, 7);
    CHECK_INT(g.type[0], ==, VM_QMP_MSG_GREETING);
    CHECK_INT(g.type[1], ==, VM_QMP_MSG_RETURN);
    CHECK_INT(g.id[1], ==, 1);
    CHECK_INT(g.type[2], ==, VM_QMP_MSG_RETURN);
    CHECK_CONTAINS(g.text[2], "\"status\":\"running\"");
    CHECK_INT(g.type[3], ==, VM_QMP_MSG_ERROR);
    CHECK_STR(g.str[3], "CommandNotFound");
    CHECK_INT(g.id[3], ==, 4);
    CHECK_INT(g.type[4], ==, VM_QMP_MSG_EVENT);
    CHECK_STR(g.str[4], "STOP");
    CHECK(g.ts[4] > 1795305240.351 && g.ts[4] < 1795305240.352);
    CHECK_INT(g.type[6], ==, VM_QMP_MSG_EVENT);
    CHECK_STR(g.str[6], "SHUTDOWN");
    CHECK_CONTAINS(g.text[6], "\"reason\":\"host-qmp-quit\"");
    got_free(&g);
}

/* Byte by byte, and in pseudo-random chunkings: same messages as whole. */
static void test_parser_split(void)
{
    size_t n = strlen(qemu_trace);
    struct got whole = {0}, g = {0};
    struct vm_qmp_parser p;
    unsigned seed = 12345;

    CHECK_INT(parse_str(qemu_trace, &whole, NULL, 0), ==, 0);

    vm_qmp_parser_init(&p, 0);
    for (size_t i = 0; i < n; i++) {
        CHECK_INT(vm_qmp_parser_feed(&p, qemu_trace + i, 1, collect, &g), ==, 0);
        CHECK_INT(vm_qmp_parser_pending(&p) == 0, ==, qemu_trace[i] == '\n');
    }
    CHECK_INT(vm_qmp_parser_pending(&p), ==, 0);
    vm_qmp_parser_fini(&p);
    got_same(&whole, &g);
    got_free(&g);

    for (int round = 0; round < 200; round++) {
        vm_qmp_parser_init(&p, 0);
        for (size_t off = 0; off < n;) {
            seed = seed * 1103515245u + 12345u;
            size_t k = 1 + (seed >> 16) % 97;
            if (k > n - off)
                k = n - off;
            CHECK_INT(vm_qmp_parser_feed(&p, qemu_trace + off, k, collect, &g), ==, 0);
            off += k;
        }
        vm_qmp_parser_fini(&p);
        got_same(&whole, &g);
        got_free(&g);
    }
    /* Zero-length feeds are harmless, even with a NULL pointer. */
    vm_qmp_parser_init(&p, 0);
    CHECK_INT(vm_qmp_parser_feed(&p, NULL, 0, collect, &g), ==, 0);
    vm_qmp_parser_fini(&p);
    got_free(&whole);
}

static void test_parser_line_endings(void)
{
    struct got g = {0};
    struct vm_qmp_parser p;

    /* LF only, CRLF, blank lines, and no terminator yet on the last one. */
    CHECK_INT(parse_str("{\"return\": 1, \"id\": 1}\n"
                        "\r\n\n   \r\n"
                        "{\"return\": 2, \"id\": 2}\r\n"
                        "{\"return\": 3, \"id\": 3}",
                        &g, NULL, 0),
              ==, 0);
    CHECK_INT(g.n, ==, 2);
    CHECK_INT(g.id[0], ==, 1);
    CHECK_INT(g.id[1], ==, 2);
    got_free(&g);

    /* "\r" and "\n" in different chunks; the message completes only then. */
    vm_qmp_parser_init(&p, 0);
    CHECK_INT(vm_qmp_parser_feed(&p, "{\"return\": {}, \"id\": 9}\r", 24, collect, &g), ==, 0);
    CHECK_INT(g.n, ==, 0);
    CHECK_INT(vm_qmp_parser_feed(&p, "\n", 1, collect, &g), ==, 0);
    CHECK_INT(g.n, ==, 1);
    CHECK_INT(g.id[0], ==, 9);
    CHECK_INT(vm_qmp_parser_pending(&p), ==, 0);
    vm_qmp_parser_fini(&p);
    got_free(&g);

    /* A "\r" inside a line is JSON whitespace. */
    CHECK_INT(parse_str("{\"return\":\r{}, \"id\": 3}\r\n", &g, NULL, 0), ==, 0);
    CHECK_INT(g.n, ==, 1);
    got_free(&g);
}

static void test_parser_malformed(void)
{
    static const char *const bad[] = {
        "{\"return\": }\r\n",
        "{\"return\": {}, \"id\": 1\r\n",
        "not json at all\r\n",
        "{\"return\": {}}{\"return\": {}}\r\n",              /* two values on one line */
        "{\"return\": \"\xff\xfe\"}\r\n",                    /* invalid UTF-8 */
        "{\"return\": \"a\\u0000b\"}\r\n",                   /* NUL in a string */
        "{\"return\": 1, \"id\": 99999999999999999999}\r\n", /* beyond int64 */
        "{\"return\": 1}\0\r\n",
    };
    static const size_t badlen[] = {0, 0, 0, 0, 0, 0, 0, 16};

    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++) {
        struct got g = {0};
        char err[256];
        size_t n = badlen[i] ? badlen[i] : strlen(bad[i]);
        int rc = parse_all(bad[i], n, 0, &g, err, sizeof(err));
        if (rc != VM_QMP_E_PROTO)
            CHECK_FAIL("case %zu: rc %d, want VM_QMP_E_PROTO", i, rc);
        CHECK_INT(g.n, ==, 0);
        CHECK_CONTAINS(err, "malformed JSON in message 1");
        got_free(&g);
    }

    /* Messages before the bad one are delivered; the error is sticky. */
    struct vm_qmp_parser p;
    struct got g = {0};
    const char *s = "{\"return\": 1, \"id\": 1}\r\n{oops}\r\n{\"return\": 2, \"id\": 2}\r\n";
    vm_qmp_parser_init(&p, 0);
    CHECK_INT(vm_qmp_parser_feed(&p, s, strlen(s), collect, &g), ==, VM_QMP_E_PROTO);
    CHECK_INT(g.n, ==, 1);
    CHECK_CONTAINS(vm_qmp_parser_errmsg(&p), "message 2");
    CHECK_CONTAINS(vm_qmp_parser_errmsg(&p), "{oops}");
    CHECK_INT(vm_qmp_parser_feed(&p, "{\"return\": 3, \"id\": 3}\r\n", 24, collect, &g), ==,
              VM_QMP_E_PROTO);
    CHECK_INT(g.n, ==, 1);
    vm_qmp_parser_fini(&p);
    got_free(&g);
}

static void test_parser_non_object(void)
{
    static const char *const cases[][2] = {
        {"[1, 2]\r\n", "top-level value is an array, not an object"},
        {"\"QMP\"\r\n", "top-level value is a string, not an object"},
        {"42\r\n", "top-level value is an integer, not an object"},
        {"null\r\n", "top-level value is null, not an object"},
        {"true\r\n", "top-level value is a boolean, not an object"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(cases); i++) {
        struct got g = {0};
        char err[256];
        CHECK_INT(parse_str(cases[i][0], &g, err, sizeof(err)), ==, VM_QMP_E_PROTO);
        CHECK_CONTAINS(err, cases[i][1]);
        CHECK_INT(g.n, ==, 0);
    }
}

/* A message of exactly max bytes; "{"return": "xxx..."}". */
static char *msg_of_size(size_t size)
{
    char *s = malloc(size + 3);
    size_t pre = strlen("{\"return\": \""), post = strlen("\"}");

    CHECK(s && size >= pre + post);
    memcpy(s, "{\"return\": \"", pre);
    memset(s + pre, 'x', size - pre - post);
    memcpy(s + size - post, "\"}", post);
    memcpy(s + size, "\r\n", 3);
    return s;
}

static void test_parser_oversized(void)
{
    const size_t max = 64;
    struct vm_qmp_parser p;
    struct got g = {0};
    char err[256];
    char *ok = msg_of_size(max), *big = msg_of_size(max + 1);

    /* Exactly max is fine, whole, with LF only, and split. */
    CHECK_INT(parse_all(ok, max + 2, max, &g, NULL, 0), ==, 0);
    CHECK_INT(parse_all(ok, max + 1, max, &g, NULL, 0), ==, 0); /* "\r" only: pending */
    ok[max] = '\n';
    CHECK_INT(parse_all(ok, max + 1, max, &g, NULL, 0), ==, 0);
    ok[max] = '\r';
    CHECK_INT(g.n, ==, 2);
    vm_qmp_parser_init(&p, max);
    for (size_t i = 0; i < max + 2; i++)
        CHECK_INT(vm_qmp_parser_feed(&p, ok + i, 1, collect, &g), ==, 0);
    CHECK_INT(g.n, ==, 3);
    CHECK(p.cap <= max + 1);
    vm_qmp_parser_fini(&p);
    got_free(&g);

    /* max + 1 is not: whole, or as soon as the partial message proves it. */
    CHECK_INT(parse_all(big, max + 3, max, &g, err, sizeof(err)), ==, VM_QMP_E_TOOBIG);
    CHECK_CONTAINS(err, "larger than 64 bytes");
    vm_qmp_parser_init(&p, max);
    CHECK_INT(vm_qmp_parser_feed(&p, big, max, collect, &g), ==, 0);
    CHECK_INT(vm_qmp_parser_feed(&p, big + max, 1, collect, &g), ==, VM_QMP_E_TOOBIG);
    CHECK_INT(vm_qmp_parser_pending(&p), ==, 0);
    CHECK_INT(vm_qmp_parser_feed(&p, "\r\n", 2, collect, &g), ==, VM_QMP_E_TOOBIG);
    vm_qmp_parser_fini(&p);
    CHECK_INT(g.n, ==, 0);
    free(ok);
    free(big);

    /* An endless message: memory stays bounded, the error comes at max. */
    const size_t max2 = 1000;
    char chunk[256];
    size_t fed = 0;
    int rc = 0;
    memset(chunk, ' ', sizeof(chunk));
    chunk[0] = '{';
    vm_qmp_parser_init(&p, max2);
    while (fed < (size_t)16 << 20 &&
           (rc = vm_qmp_parser_feed(&p, chunk, sizeof(chunk), collect, &g)) == 0) {
        fed += sizeof(chunk);
        CHECK(p.cap <= max2 + 1);
    }
    CHECK_INT(rc, ==, VM_QMP_E_TOOBIG);
    CHECK(fed <= max2 + 1);
    vm_qmp_parser_fini(&p);

    /* Default maximum: 1 MiB. */
    char *mib = msg_of_size(VM_QMP_DEFAULT_MAX_MSG),
         *mib1 = msg_of_size(VM_QMP_DEFAULT_MAX_MSG + 1);
    CHECK_INT(parse_all(mib, VM_QMP_DEFAULT_MAX_MSG + 2, 0, &g, NULL, 0), ==, 0);
    CHECK_INT(g.n, ==, 1);
    CHECK_INT(parse_all(mib1, VM_QMP_DEFAULT_MAX_MSG + 3, 0, &g, NULL, 0), ==, VM_QMP_E_TOOBIG);
    got_free(&g);
    free(mib);
    free(mib1);
}

static void test_parser_classify(void)
{
    /* input, expected type (-1 = protocol error), expected error text */
    static const struct {
        const char *in;
        int type;
        const char *err;
    } cases[] = {
        {"{\"QMP\": {\"version\": {}, \"capabilities\": []}}", VM_QMP_MSG_GREETING, NULL},
        {"{\"QMP\": {\"version\": {}, \"capabilities\": [], \"future\": 1}}", VM_QMP_MSG_GREETING,
         NULL},
        {"{\"QMP\": {\"version\": {}}}", -1, "\"capabilities\" is missing"},
        {"{\"QMP\": {\"capabilities\": []}}", -1, "\"version\" is missing"},
        {"{\"QMP\": {\"version\": {}, \"capabilities\": [1]}}", -1, "capability 0 is an integer"},
        {"{\"QMP\": {\"version\": {}, \"capabilities\": {}}}", -1, "not an array"},
        {"{\"QMP\": [], \"id\": 1}", -1, "unexpected member \"id\" in greeting"},
        {"{\"QMP\": []}", -1, "\"QMP\" is an array"},
        {"{\"return\": {}}", VM_QMP_MSG_RETURN, NULL},
        {"{\"return\": null, \"id\": 1}", VM_QMP_MSG_RETURN, NULL},
        {"{\"return\": [1, 2], \"id\": -5}", VM_QMP_MSG_RETURN, NULL},
        {"{\"return\": {}, \"id\": \"1\"}", -1, "id is a string, not an integer"},
        {"{\"return\": {}, \"id\": 1.0}", -1, "id is a real, not an integer"},
        {"{\"return\": {}, \"id\": null}", -1, "id is null, not an integer"},
        {"{\"return\": {}, \"id\": 1, \"extra\": 2}", -1, "unexpected member \"extra\" in return"},
        {"{\"return\": {}, \"error\": {}}", -1, "unexpected member \"error\" in return"},
        {"{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": 3}", VM_QMP_MSG_ERROR,
         NULL},
        {"{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\", \"data\": {}}}",
         VM_QMP_MSG_ERROR, NULL},
        {"{\"error\": {\"class\": \"GenericError\"}, \"id\": 3}", -1, "must be strings"},
        {"{\"error\": {\"class\": 1, \"desc\": \"x\"}}", -1, "must be strings"},
        {"{\"error\": \"boom\"}", -1, "\"error\" is a string, not an object"},
        {"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}",
         VM_QMP_MSG_EVENT, NULL},
        {"{\"event\": \"X\", \"data\": {}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}",
         VM_QMP_MSG_EVENT, NULL},
        {"{\"event\": \"STOP\"}", -1, "\"timestamp\" must be"},
        {"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1}}", -1, "\"timestamp\" must be"},
        {"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 1000000}}", -1,
         "\"timestamp\" must be"},
        {"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1.5, \"microseconds\": 0}}", -1,
         "\"timestamp\" must be"},
        {"{\"event\": \"\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}", -1,
         "non-empty string"},
        {"{\"event\": 7, \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}", -1,
         "non-empty string"},
        {"{\"event\": \"X\", \"data\": [], \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}",
         -1, "\"data\" is an array"},
        {"{\"event\": \"X\", \"id\": 1, \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}", -1,
         "unexpected member \"id\" in event"},
        {"{}", -1, "unrecognized message"},
        {"{\"execute\": \"quit\"}", -1, "unrecognized message"},
        {"{\"weird\\u0001key\": 1, \"return\": 1}", -1, "unexpected member \"weird\\x01key\""},
    };

    for (size_t i = 0; i < VM_ARRAY_LEN(cases); i++) {
        struct got g = {0};
        char err[256], line[512];
        snprintf(line, sizeof(line), "%s\r\n", cases[i].in);
        int rc = parse_str(line, &g, err, sizeof(err));
        if (cases[i].type >= 0) {
            if (rc != 0)
                CHECK_FAIL("case %zu (%s): rc %d: %s", i, cases[i].in, rc, err);
            CHECK_INT(g.n, ==, 1);
            CHECK_INT(g.type[0], ==, cases[i].type);
        } else {
            if (rc != VM_QMP_E_PROTO)
                CHECK_FAIL("case %zu (%s): rc %d, want VM_QMP_E_PROTO", i, cases[i].in, rc);
            CHECK_CONTAINS(err, "bad message 1");
            CHECK_CONTAINS(err, cases[i].err);
        }
        got_free(&g);
    }
}

static void test_parser_ids(void)
{
    struct got g = {0};

    CHECK_INT(
        parse_str(
            "{\"return\": {}}\r\n"
            "{\"return\": {}, \"id\": 0}\r\n"
            "{\"return\": {}, \"id\": 9223372036854775807}\r\n"
            "{\"error\": {\"class\": \"C\", \"desc\": \"d\"}, \"id\": -9223372036854775807}\r\n"
            "{\"error\": {\"class\": \"C\", \"desc\": \"d\"}}\r\n",
            &g, NULL, 0),
        ==, 0);
    CHECK_INT(g.n, ==, 5);
    CHECK_INT(g.has_id[0], ==, 0);
    CHECK_INT(g.has_id[1], ==, 1);
    CHECK_INT(g.id[1], ==, 0);
    CHECK(g.id[2] == INT64_MAX);
    CHECK(g.id[3] == -INT64_MAX);
    CHECK_INT(g.has_id[4], ==, 0);
    got_free(&g);
}

static void test_parser_duplicate_keys(void)
{
    static const char *const cases[] = {
        "{\"return\": {}, \"return\": {}}\r\n",
        "{\"return\": {}, \"id\": 1, \"id\": 2}\r\n",
        "{\"return\": {\"a\": 1, \"b\": {\"c\": 1, \"c\": 2}}, \"id\": 1}\r\n",
        ("{\"event\": \"A\", \"event\": \"B\", \"timestamp\": {\"seconds\": 1, "
         "\"microseconds\": 0}}\r\n"),
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(cases); i++) {
        struct got g = {0};
        char err[256];
        CHECK_INT(parse_str(cases[i], &g, err, sizeof(err)), ==, VM_QMP_E_PROTO);
        CHECK_CONTAINS(err, "duplicate object key");
        CHECK_INT(g.n, ==, 0);
    }
}

static char *nested(size_t depth)
{
    /* {"return": [[[...]]]} with depth arrays inside the top-level object */
    size_t n = 12 + 2 * depth + 4;
    char *s = malloc(n + 1), *o = s;

    CHECK(s);
    o += sprintf(o, "{\"return\": ");
    memset(o, '[', depth);
    o += depth;
    memset(o, ']', depth);
    o += depth;
    strcpy(o, "}\r\n");
    return s;
}

/* jansson stops at JSON_PARSER_MAX_DEPTH (2048) levels, counting the
 * top-level object; deeper input is a clean protocol error. */
static void test_parser_deep_nesting(void)
{
    struct got g = {0};
    char err[256];
    char *ok = nested(JSON_PARSER_MAX_DEPTH - 1), *deep = nested(JSON_PARSER_MAX_DEPTH);
    char *huge = nested(400000);

    CHECK_INT(parse_str(ok, &g, err, sizeof(err)), ==, 0);
    CHECK_INT(g.n, ==, 1);
    got_free(&g);
    CHECK_INT(parse_str(deep, &g, err, sizeof(err)), ==, VM_QMP_E_PROTO);
    CHECK_CONTAINS(err, "maximum parsing depth");
    CHECK_INT(parse_str(huge, &g, err, sizeof(err)), ==, VM_QMP_E_PROTO);
    CHECK_CONTAINS(err, "maximum parsing depth");
    free(ok);
    free(deep);
    free(huge);
}

static void test_parser_callback_stop(void)
{
    struct got g = {.stop_at = 2};

    CHECK_INT(parse_str(qemu_trace, &g, NULL, 0), ==, 7);
    CHECK_INT(g.n, ==, 2);
    got_free(&g);
}

static void test_strerror(void)
{
    CHECK_STR(vm_qmp_strerror(0), "success");
    CHECK_STR(vm_qmp_strerror(VM_QMP_E_PROTO), "QMP protocol error");
    CHECK_STR(vm_qmp_strerror(VM_QMP_E_TOOBIG), "QMP message too large");
    CHECK_STR(vm_qmp_strerror(VM_QMP_E_CLOSED), "QMP connection closed");
    CHECK_CONTAINS(vm_qmp_strerror(VM_QMP_E_NEGOTIATE), "negotiation");
    CHECK_STR(vm_qmp_strerror(UV_ETIMEDOUT), uv_strerror(UV_ETIMEDOUT));
    CHECK_STR(vm_qmp_strerror(UV_EOF), "end of file");
    CHECK_CONTAINS(vm_qmp_strerror(-123456), "nknown");
}

/* ---- Fake QMP server --------------------------------------------------- */

struct fake {
    char dir[32], path[64];
    int lfd, fd;
    pthread_t thr;
    void (*script)(struct fake *f);
    const char *arg;
    char buf[1 << 16];
    size_t len;
};

static void *fake_main(void *data)
{
    struct fake *f = data;
    struct pollfd pfd = {f->lfd, POLLIN, 0};

    if (poll(&pfd, 1, 10000) != 1)
        CHECK_FAIL("fake server: no client connected");
    f->fd = accept(f->lfd, NULL, NULL);
    CHECK(f->fd >= 0);
    f->script(f);
    close(f->fd);
    return NULL;
}

static void fake_start(struct fake *f, void (*script)(struct fake *), const char *arg)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    memset(f, 0, sizeof(*f));
    strcpy(f->dir, "/tmp/vmm-qmp-XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    snprintf(f->path, sizeof(f->path), "%s/qmp.sock", f->dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(f->lfd >= 0);
    CHECK_INT(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    CHECK_INT(listen(f->lfd, 4), ==, 0);
    f->script = script;
    f->arg = arg;
    CHECK_INT(pthread_create(&f->thr, NULL, fake_main, f), ==, 0);
}

static void fake_stop(struct fake *f)
{
    CHECK_INT(pthread_join(f->thr, NULL), ==, 0);
    close(f->lfd);
    unlink(f->path);
    CHECK_INT(rmdir(f->dir), ==, 0);
}

static void srv_send(struct fake *f, const char *s)
{
    size_t n = strlen(s);

    while (n > 0) {
        ssize_t k = write(f->fd, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        CHECK(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

__attribute__((format(printf, 2, 3))) static void srv_sendf(struct fake *f, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    CHECK(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    srv_send(f, s);
    free(s);
}

/* Read more from the client: 1 = got data, 0 = EOF, -1 = nothing for ms. */
static int srv_fill(struct fake *f, int ms)
{
    struct pollfd pfd = {f->fd, POLLIN, 0};
    ssize_t k;

    if (poll(&pfd, 1, ms) == 0)
        return -1;
    CHECK(f->len < sizeof(f->buf));
    k = read(f->fd, f->buf + f->len, sizeof(f->buf) - f->len);
    if (k == 0 || (k < 0 && errno == ECONNRESET))
        return 0;
    CHECK(k > 0);
    f->len += (size_t)k;
    return 1;
}

/* Next command from the client, or NULL at EOF. Commands come without a
 * terminator, like QEMU's own JSON streamer takes them. */
static json_t *srv_recv(struct fake *f)
{
    for (;;) {
        json_error_t jerr;
        json_t *j = NULL;
        if (f->len > 0)
            j = json_loadb(f->buf, f->len, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
        if (j) {
            size_t n = jerr.position;
            CHECK(n <= f->len);
            memmove(f->buf, f->buf + n, f->len - n);
            f->len -= n;
            return j;
        }
        int rc = srv_fill(f, 10000);
        if (rc < 0)
            CHECK_FAIL("fake server: no command from the client within 10 s");
        if (rc == 0)
            return NULL;
    }
}

/* Expect command name; return its id. *args_out (if given) gets a new
 * reference to the arguments or NULL. */
static json_int_t srv_expect(struct fake *f, const char *name, json_t **args_out)
{
    json_t *j = srv_recv(f), *id, *args;
    json_int_t v;

    if (!j)
        CHECK_FAIL("fake server: EOF, expected '%s'", name);
    CHECK_STR(json_string_value(json_object_get(j, "execute")), name);
    id = json_object_get(j, "id");
    CHECK(json_is_integer(id));
    v = json_integer_value(id);
    args = json_object_get(j, "arguments");
    if (args_out)
        *args_out = json_incref(args);
    else
        CHECK(args == NULL);
    CHECK_INT(json_object_size(j), ==, args ? 3 : 2);
    json_decref(j);
    return v;
}

static void srv_handshake(struct fake *f)
{
    srv_send(f, GREETING);
    json_int_t id = srv_expect(f, "qmp_capabilities", NULL);
    srv_sendf(f, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
}

/* Read (and ignore) until the client hangs up. */
static void srv_wait_eof(struct fake *f)
{
    for (;;) {
        int rc = srv_fill(f, 10000);
        if (rc < 0)
            CHECK_FAIL("fake server: the client did not hang up within 10 s");
        if (rc == 0)
            return;
        f->len = 0;
    }
}

/* ---- Client-side recorder ---------------------------------------------- */

static int seq; /* orders callbacks within one test */

struct slot {
    int calls, at;
    char *ret; /* compact JSON */
    char cls[64], desc[512];
    int code;
    void (*then)(struct vm_qmp *q, struct slot *s);
};

struct rec {
    int ready_calls, ready_status, ready_at;
    int close_calls, close_reason, close_at;
    char errmsg[512];
    int nevents;
    char ev[8][32];
    char *evdata[8];
    double evts[8];
    int ev_at[8];
    struct slot *slots;
    void (*ready_then)(struct vm_qmp *q, struct rec *r);
    void (*event_then)(struct vm_qmp *q, struct rec *r);
    uint64_t start_ms, close_ms;
    uv_loop_t *loop;
};

static void rec_ready(struct vm_qmp *q, int status, void *ud)
{
    struct rec *r = ud;

    CHECK(vm_qmp_userdata(q) == r);
    r->ready_calls++;
    r->ready_status = status;
    r->ready_at = ++seq;
    if (r->ready_then)
        r->ready_then(q, r);
}

static void rec_event(struct vm_qmp *q, const char *name, json_t *data, double ts, void *ud)
{
    struct rec *r = ud;
    int i = r->nevents++;

    CHECK(i < 8);
    snprintf(r->ev[i], sizeof(r->ev[i]), "%s", name);
    r->evdata[i] = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    r->evts[i] = ts;
    r->ev_at[i] = ++seq;
    if (r->event_then)
        r->event_then(q, r);
}

static void rec_close(struct vm_qmp *q, int reason, void *ud)
{
    struct rec *r = ud;

    r->close_calls++;
    r->close_reason = reason;
    r->close_at = ++seq;
    r->close_ms = uv_now(r->loop);
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", vm_qmp_errmsg(q));
    /* Everything is over: nothing may start any more. */
    CHECK_INT(vm_qmp_command(q, "query-status", json_object(), NULL, NULL), ==, VM_QMP_E_CLOSED);
    vm_qmp_close(q);
}

static const struct vm_qmp_callbacks rec_cbs = {rec_ready, rec_event, rec_close};

static void on_reply(struct vm_qmp *q, json_t *ret, const struct vm_qmp_error *err, void *data)
{
    struct slot *s = data;

    s->calls++;
    s->at = ++seq;
    CHECK((ret == NULL) != (err == NULL));
    if (ret) {
        s->ret = json_dumps(ret, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    } else {
        CHECK(err->error_class && err->desc);
        snprintf(s->cls, sizeof(s->cls), "%s", err->error_class);
        snprintf(s->desc, sizeof(s->desc), "%s", err->desc);
        s->code = err->code;
    }
    if (s->then)
        s->then(q, s);
}

static void slots_free(struct slot *s, int n)
{
    for (int i = 0; i < n; i++)
        free(s[i].ret);
}

static void rec_free(struct rec *r)
{
    for (int i = 0; i < r->nevents; i++)
        free(r->evdata[i]);
}

struct session {
    uv_loop_t loop;
    struct fake f;
    struct rec r;
    struct vm_qmp *q;
};

static void session_start(struct session *s, void (*script)(struct fake *), const char *arg,
                          struct slot *slots)
{
    memset(&s->r, 0, sizeof(s->r));
    seq = 0;
    CHECK_INT(uv_loop_init(&s->loop), ==, 0);
    s->r.loop = &s->loop;
    s->r.slots = slots;
    s->r.start_ms = uv_now(&s->loop);
    if (script)
        fake_start(&s->f, script, arg);
    s->q = vm_qmp_new(&s->loop, &rec_cbs, &s->r);
}

static void session_run(struct session *s, bool with_server)
{
    CHECK_INT(uv_run(&s->loop, UV_RUN_DEFAULT), ==, 0);
    if (with_server)
        fake_stop(&s->f);
    CHECK_INT(s->r.close_calls, ==, 1);
    CHECK_INT(uv_loop_close(&s->loop), ==, 0);
}

static void close_q(struct vm_qmp *q, struct slot *s)
{
    vm_qmp_close(q);
}

/* ---- Client tests ------------------------------------------------------ */

static void script_basic(struct fake *f)
{
    json_t *args;

    srv_send(f, GREETING);
    json_int_t caps = srv_expect(f, "qmp_capabilities", NULL);
    /* The command issued before ready waits for the negotiation. */
    CHECK_INT(f->len, ==, 0);
    CHECK_INT(srv_fill(f, 150), ==, -1);
    srv_sendf(f, "{\"return\": {}, \"id\": %lld}\r\n", (long long)caps);
    json_int_t a = srv_expect(f, "query-status", NULL);
    json_int_t b = srv_expect(f, "migrate-set-capabilities", &args);
    CHECK(caps != a && a != b && b != caps);
    char *s = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(s, "{\"capabilities\":[{\"capability\":\"xbzrle\",\"state\":true}]}");
    free(s);
    json_decref(args);

    /* One reply in three writes, then two events and a reply in one. */
    char *reply = NULL;
    CHECK(asprintf(&reply,
                   "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": %lld}\r\n",
                   (long long)a) > 0);
    size_t n = strlen(reply);
    char part[256];
    snprintf(part, sizeof(part), "%.*s", (int)(n / 3), reply);
    srv_send(f, part);
    usleep(20000);
    snprintf(part, sizeof(part), "%.*s", (int)(n / 3), reply + n / 3);
    srv_send(f, part);
    usleep(20000);
    srv_send(f, reply + 2 * (n / 3));
    free(reply);
    srv_sendf(f,
              "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250000}, \"event\": "
              "\"STOP\"}\r\n"
              "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 0}, \"event\": "
              "\"MIGRATION\", \"data\": {\"status\": \"active\"}}\r\n"
              "{\"return\": {}, \"id\": %lld}\r\n",
              (long long)b);
    srv_wait_eof(f);
}

static struct slot basic_slots[2];

static void basic_ready(struct vm_qmp *q, struct rec *r)
{
    json_t *g = vm_qmp_greeting(q);

    CHECK_INT(r->ready_status, ==, 0);
    CHECK(g != NULL);
    CHECK_INT(json_integer_value(
                  json_object_get(json_object_get(json_object_get(g, "version"), "qemu"), "major")),
              ==, 7);
    json_t *args = json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "xbzrle", "state", 1);
    CHECK_INT(vm_qmp_command(q, "migrate-set-capabilities", args, on_reply, &basic_slots[1]), ==,
              0);
}

static void test_client_basic(void)
{
    struct session s;

    memset(basic_slots, 0, sizeof(basic_slots));
    basic_slots[1].then = close_q;
    session_start(&s, script_basic, NULL, basic_slots);
    s.r.ready_then = basic_ready;
    CHECK(vm_qmp_greeting(s.q) == NULL);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, UV_EALREADY);
    CHECK_INT(vm_qmp_set_max_message(s.q, 100), ==, UV_EBUSY);
    /* Before ready: queued. */
    CHECK_INT(vm_qmp_command(s.q, "query-status", NULL, on_reply, &basic_slots[0]), ==, 0);
    session_run(&s, true);

    CHECK_INT(s.r.ready_calls, ==, 1);
    CHECK_INT(basic_slots[0].calls, ==, 1);
    CHECK_INT(basic_slots[1].calls, ==, 1);
    CHECK(s.r.ready_at < basic_slots[0].at);
    CHECK_STR(basic_slots[0].ret, "{\"running\":true,\"status\":\"running\"}");
    CHECK_STR(basic_slots[1].ret, "{}");
    CHECK_INT(s.r.nevents, ==, 2);
    CHECK_STR(s.r.ev[0], "STOP");
    CHECK(s.r.evdata[0] == NULL);
    CHECK(s.r.evts[0] == 1700000000.25);
    CHECK_STR(s.r.ev[1], "MIGRATION");
    CHECK_STR(s.r.evdata[1], "{\"status\":\"active\"}");
    CHECK(basic_slots[0].at < s.r.ev_at[0] && s.r.ev_at[1] < basic_slots[1].at);
    CHECK_INT(s.r.close_reason, ==, 0);
    CHECK_STR(s.r.errmsg, "");
    CHECK(s.r.close_at > basic_slots[1].at);
    slots_free(basic_slots, 2);
    rec_free(&s.r);
}

static void script_out_of_order(struct fake *f)
{
    srv_handshake(f);
    json_int_t a = srv_expect(f, "cmd-a", NULL);
    json_int_t b = srv_expect(f, "cmd-b", NULL);
    json_int_t c = srv_expect(f, "cmd-c", NULL);
    srv_sendf(f,
              "{\"return\": 3, \"id\": %lld}\r\n"
              "{\"id\": %lld, \"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}}\r\n"
              "{\"return\": [1, 2], \"id\": %lld}\r\n",
              (long long)c, (long long)a, (long long)b);
    srv_wait_eof(f);
}

static struct slot ooo_slots[3];

static void ooo_count(struct vm_qmp *q, struct slot *s)
{
    if (ooo_slots[0].calls + ooo_slots[1].calls + ooo_slots[2].calls == 3)
        vm_qmp_close(q);
}

static void ooo_ready(struct vm_qmp *q, struct rec *r)
{
    CHECK_INT(vm_qmp_command(q, "cmd-a", NULL, on_reply, &ooo_slots[0]), ==, 0);
    CHECK_INT(vm_qmp_command(q, "cmd-b", NULL, on_reply, &ooo_slots[1]), ==, 0);
    CHECK_INT(vm_qmp_command(q, "cmd-c", NULL, on_reply, &ooo_slots[2]), ==, 0);
}

static void test_client_out_of_order(void)
{
    struct session s;

    memset(ooo_slots, 0, sizeof(ooo_slots));
    for (int i = 0; i < 3; i++)
        ooo_slots[i].then = ooo_count;
    session_start(&s, script_out_of_order, NULL, ooo_slots);
    s.r.ready_then = ooo_ready;
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.close_reason, ==, 0);
    for (int i = 0; i < 3; i++)
        CHECK_INT(ooo_slots[i].calls, ==, 1);
    CHECK(ooo_slots[2].at < ooo_slots[0].at && ooo_slots[0].at < ooo_slots[1].at);
    CHECK(ooo_slots[0].ret == NULL);
    CHECK_STR(ooo_slots[0].cls, "GenericError");
    CHECK_STR(ooo_slots[0].desc, "boom");
    CHECK_INT(ooo_slots[0].code, ==, 0);
    CHECK_STR(ooo_slots[1].ret, "[1,2]");
    CHECK_STR(ooo_slots[2].ret, "3");
    slots_free(ooo_slots, 3);
    rec_free(&s.r);
}

static void script_mid_reply(struct fake *f)
{
    srv_handshake(f);
    json_int_t a = srv_expect(f, "cmd-a", NULL);
    json_int_t b = srv_expect(f, "cmd-b", NULL);
    srv_sendf(f, "{\"return\": {}, \"id\": %lld}\r\n{\"return\": {\"a\"", (long long)a);
    (void)b;
    /* Hang up in the middle of b's reply (close() in fake_main). */
}

static void test_client_server_closes_mid_reply(void)
{
    struct session s;
    struct slot sl[2] = {0};

    session_start(&s, script_mid_reply, NULL, sl);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-b", NULL, on_reply, &sl[1]), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.ready_status, ==, 0);
    CHECK_INT(sl[0].calls, ==, 1);
    CHECK_STR(sl[0].ret, "{}");
    CHECK_INT(sl[1].calls, ==, 1);
    CHECK_STR(sl[1].cls, "Closed");
    CHECK_INT(sl[1].code, ==, VM_QMP_E_CLOSED);
    CHECK_CONTAINS(sl[1].desc, "'cmd-b'");
    CHECK_INT(s.r.close_reason, ==, UV_EOF);
    CHECK_CONTAINS(s.r.errmsg, "in the middle of a message");
    CHECK(sl[1].at < s.r.close_at);
    slots_free(sl, 2);
}

static void script_eof(struct fake *f)
{
    srv_handshake(f);
}

static void test_client_server_closes(void)
{
    struct session s;

    session_start(&s, script_eof, NULL, NULL);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.ready_status, ==, 0);
    CHECK_INT(s.r.close_reason, ==, UV_EOF);
    CHECK_STR(s.r.errmsg, "QEMU closed the connection");
}

/* The server hangs up with our command unread: Linux reports a reset,
 * which the client treats as QEMU hanging up. */
static void script_reset(struct fake *f)
{
    struct pollfd pfd = {f->fd, POLLIN, 0};

    srv_handshake(f);
    CHECK_INT(poll(&pfd, 1, 10000), ==, 1); /* cmd-a arrived; leave it */
}

static void test_client_server_resets(void)
{
    struct session s;
    struct slot sl[1] = {0};

    session_start(&s, script_reset, NULL, sl);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.ready_status, ==, 0);
    CHECK_INT(s.r.close_reason, ==, UV_EOF);
    CHECK_STR(s.r.errmsg, "QEMU closed the connection before reading all commands");
    CHECK_STR(sl[0].cls, "Closed");
}

/* The server stops reading before it answers qmp_capabilities: flushing
 * the queued command fails with EPIPE, which ends the connection. */
static void script_shut_rd(struct fake *f)
{
    srv_send(f, GREETING);
    json_int_t id = srv_expect(f, "qmp_capabilities", NULL);
    CHECK_INT(shutdown(f->fd, SHUT_RD), ==, 0);
    srv_sendf(f, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
    /* read() now returns 0 at once: wait for the client's hang-up. */
    struct pollfd pfd = {f->fd, 0, 0};
    CHECK_INT(poll(&pfd, 1, 10000), ==, 1);
    CHECK(pfd.revents & POLLHUP);
}

static void test_client_write_error(void)
{
    struct session s;
    struct slot sl[1] = {0};

    session_start(&s, script_shut_rd, NULL, sl);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.ready_calls, ==, 1);
    CHECK_INT(s.r.close_reason, ==, UV_EPIPE);
    CHECK_CONTAINS(s.r.errmsg, "cannot write to QMP socket");
    CHECK_INT(sl[0].calls, ==, 1);
    CHECK_STR(sl[0].cls, "Closed");
}

/* Replies to a and b arrive in one read, then an event; a's callback closes
 * the client: b's reply and the event are dropped, b and c fail "Closed". */
static void script_close_in_cb(struct fake *f)
{
    srv_handshake(f);
    json_int_t a = srv_expect(f, "cmd-a", NULL);
    json_int_t b = srv_expect(f, "cmd-b", NULL);
    srv_expect(f, "cmd-c", NULL);
    srv_sendf(f,
              "{\"return\": {}, \"id\": %lld}\r\n{\"return\": {}, \"id\": %lld}\r\n"
              "{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}\r\n",
              (long long)a, (long long)b);
    srv_wait_eof(f);
}

static void close_twice_and_poke(struct vm_qmp *q, struct slot *s)
{
    vm_qmp_close(q);
    vm_qmp_close(q);
    CHECK_INT(vm_qmp_command(q, "late", json_object(), on_reply, s), ==, VM_QMP_E_CLOSED);
    CHECK_INT(vm_qmp_connect(q, "/nonexistent"), ==, VM_QMP_E_CLOSED);
}

static void test_client_close_in_reply_cb(void)
{
    struct session s;
    struct slot sl[3] = {{.then = close_twice_and_poke}};

    session_start(&s, script_close_in_cb, NULL, sl);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "cmd-%c", 'a' + i);
        CHECK_INT(vm_qmp_command(s.q, name, NULL, on_reply, &sl[i]), ==, 0);
    }
    session_run(&s, true);
    CHECK_INT(sl[0].calls, ==, 1);
    CHECK_STR(sl[0].ret, "{}");
    for (int i = 1; i < 3; i++) {
        CHECK_INT(sl[i].calls, ==, 1);
        CHECK_STR(sl[i].cls, "Closed");
        CHECK(sl[i].ret == NULL);
    }
    CHECK_INT(s.r.nevents, ==, 0);
    CHECK_INT(s.r.close_reason, ==, 0);
    slots_free(sl, 3);
}

static void script_event_then_wait(struct fake *f)
{
    srv_handshake(f);
    srv_expect(f, "cmd-a", NULL);
    srv_send(f, "{\"event\": \"SPICE_CONNECTED\", \"data\": {\"server\": {}, \"client\": {}}, "
                "\"timestamp\": {\"seconds\": 5, \"microseconds\": 6}}\r\n"
                "{\"event\": \"SPICE_DISCONNECTED\", \"data\": {}, "
                "\"timestamp\": {\"seconds\": 5, \"microseconds\": 7}}\r\n");
    srv_wait_eof(f);
}

static void close_on_event(struct vm_qmp *q, struct rec *r)
{
    vm_qmp_close(q);
}

static void test_client_close_in_event_cb(void)
{
    struct session s;
    struct slot sl[1] = {0};

    session_start(&s, script_event_then_wait, NULL, sl);
    s.r.event_then = close_on_event;
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.nevents, ==, 1);
    CHECK_STR(s.r.ev[0], "SPICE_CONNECTED");
    CHECK_STR(s.r.evdata[0], "{\"client\":{},\"server\":{}}");
    CHECK_INT(sl[0].calls, ==, 1);
    CHECK_STR(sl[0].cls, "Closed");
    CHECK(sl[0].at > s.r.ev_at[0] && sl[0].at < s.r.close_at);
    CHECK_INT(s.r.close_reason, ==, 0);
    rec_free(&s.r);
}

static void script_handshake_wait(struct fake *f)
{
    srv_handshake(f);
    srv_wait_eof(f);
}

static void close_on_ready(struct vm_qmp *q, struct rec *r)
{
    vm_qmp_close(q);
}

static void test_client_close_in_ready_cb(void)
{
    struct session s;
    struct slot sl[1] = {0};

    session_start(&s, script_handshake_wait, NULL, sl);
    s.r.ready_then = close_on_ready;
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.ready_calls, ==, 1);
    CHECK_INT(s.r.ready_status, ==, 0);
    CHECK_INT(sl[0].calls, ==, 1);
    CHECK_STR(sl[0].cls, "Closed");
    CHECK_INT(s.r.close_reason, ==, 0);
}

/* vm_qmp_close() before the loop even ran: on_ready(UV_ECANCELED). The
 * socket only listens; nobody accepts. */
static void test_client_close_while_connecting(void)
{
    struct session s;
    struct slot sl[1] = {0};
    char dir[64] = "/tmp/vmm-qmp-XXXXXX";
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int lfd;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/qmp.sock", dir);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_INT(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    CHECK_INT(listen(lfd, 4), ==, 0);

    session_start(&s, NULL, NULL, sl);
    CHECK_INT(vm_qmp_connect(s.q, sa.sun_path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    vm_qmp_close(s.q);
    CHECK_INT(s.r.ready_calls, ==, 0); /* nothing from inside vm_qmp_close() */
    CHECK_INT(sl[0].calls, ==, 0);
    session_run(&s, false);
    CHECK_INT(s.r.ready_calls, ==, 1);
    CHECK_INT(s.r.ready_status, ==, UV_ECANCELED);
    CHECK_INT(sl[0].calls, ==, 1);
    CHECK_STR(sl[0].cls, "Closed");
    CHECK(s.r.ready_at < sl[0].at && sl[0].at < s.r.close_at);
    CHECK_INT(s.r.close_reason, ==, 0);
    close(lfd);
    unlink(sa.sun_path);
    CHECK_INT(rmdir(dir), ==, 0);
}

static void test_client_connect_fails(void)
{
    struct session s;
    struct slot sl[1] = {0};

    session_start(&s, NULL, NULL, sl);
    CHECK_INT(vm_qmp_connect(s.q, "/nonexistent/vmm-qmp.sock"), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    session_run(&s, false);
    CHECK_INT(s.r.ready_calls, ==, 1);
    CHECK_INT(s.r.ready_status, ==, UV_ENOENT);
    CHECK_INT(s.r.close_reason, ==, UV_ENOENT);
    CHECK_CONTAINS(s.r.errmsg, "/nonexistent/vmm-qmp.sock");
    CHECK_INT(sl[0].calls, ==, 1);
    CHECK_STR(sl[0].cls, "Closed");
}

static void test_client_start_failures(void)
{
    struct session s;
    struct slot sl[2] = {0};
    char longpath[200];

    session_start(&s, NULL, NULL, sl);
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    CHECK_INT(vm_qmp_connect(s.q, ""), ==, UV_EINVAL);
    CHECK_INT(vm_qmp_connect(s.q, NULL), ==, UV_EINVAL);
    CHECK_INT(vm_qmp_connect(s.q, longpath), ==, UV_ENAMETOOLONG);
    /* Stolen arguments are freed even on failure (LeakSanitizer checks). */
    CHECK_INT(vm_qmp_command(s.q, "", json_object(), on_reply, &sl[0]), ==, UV_EINVAL);
    CHECK_INT(vm_qmp_command(s.q, NULL, NULL, on_reply, &sl[0]), ==, UV_EINVAL);
    CHECK_INT(vm_qmp_command(s.q, "x", json_array(), on_reply, &sl[0]), ==, UV_EINVAL);
    CHECK_INT(vm_qmp_command(s.q, "bad\xff", json_object(), on_reply, &sl[0]), ==, UV_EINVAL);
    CHECK_INT(vm_qmp_set_max_message(s.q, 4096), ==, 0);
    vm_qmp_set_timeout_ms(s.q, 1000);
    /* Accepted while unconnected: it fails "Closed" once closed. */
    CHECK_INT(vm_qmp_command(s.q, "ok", json_pack("{s:i}", "n", 1), on_reply, &sl[1]), ==, 0);
    vm_qmp_close(s.q);
    session_run(&s, false);
    CHECK_INT(s.r.ready_calls, ==, 0); /* connect never started */
    CHECK_INT(sl[0].calls, ==, 0);
    CHECK_INT(sl[1].calls, ==, 1);
    CHECK_STR(sl[1].cls, "Closed");
    CHECK_INT(s.r.close_reason, ==, 0);
}

static void script_bad_line(struct fake *f)
{
    srv_handshake(f);
    srv_expect(f, "cmd-a", NULL);
    srv_send(f, f->arg);
    srv_wait_eof(f);
}

static void test_client_protocol_errors(void)
{
    static const char *const cases[][2] = {
        {"{\"return\": {}, \"id\": 999}\r\n", "reply with unknown id 999"},
        {"{\"return\": {}, \"id\": \"1\"}\r\n", "id is a string, not an integer"},
        {"{\"return\": {}}\r\n", "reply without an id"},
        {"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n",
         "error reply without an id: GenericError: JSON parse error"},
        {GREETING, "unexpected second greeting"},
        {"{\"foo\": 1}\r\n", "unrecognized message"},
        {"this is not json\r\n", "malformed JSON"},
        {"{\"return\": {}, \"id\": 2, \"id\": 2}\r\n", "duplicate object key"},
    };

    for (size_t i = 0; i < VM_ARRAY_LEN(cases); i++) {
        struct session s;
        struct slot sl[1] = {0};
        session_start(&s, script_bad_line, cases[i][0], sl);
        CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
        CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
        session_run(&s, true);
        if (s.r.close_reason != VM_QMP_E_PROTO)
            CHECK_FAIL("case %zu: close reason %d (%s)", i, s.r.close_reason, s.r.errmsg);
        CHECK_CONTAINS(s.r.errmsg, cases[i][1]);
        CHECK_INT(s.r.ready_status, ==, 0);
        CHECK_INT(sl[0].calls, ==, 1);
        CHECK_STR(sl[0].cls, "Closed");
        CHECK_CONTAINS(sl[0].desc, cases[i][1]);
    }
}

static void script_reply_first(struct fake *f)
{
    srv_send(f, f->arg);
    srv_wait_eof(f);
}

static void test_client_greeting_errors(void)
{
    static const char *const cases[][3] = {
        {"{\"return\": {}, \"id\": 1}\r\n", "expected the QMP greeting, got return message", "P"},
        {"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}\r\n",
         "expected the QMP greeting, got event message", "P"},
        {"{\"QMP\": {\"version\": 7}}\r\n", "\"version\" is an integer", "P"},
        {"{\"QMP\": {\"version\": {}, \"capabilities\": [], \"pad\": \"xxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}"
         "\r\n",
         "larger than 256 bytes", "B"},
    };

    for (size_t i = 0; i < VM_ARRAY_LEN(cases); i++) {
        struct session s;
        int want = cases[i][2][0] == 'P' ? VM_QMP_E_PROTO : VM_QMP_E_TOOBIG;
        session_start(&s, script_reply_first, cases[i][0], NULL);
        CHECK_INT(vm_qmp_set_max_message(s.q, 256), ==, 0);
        CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
        session_run(&s, true);
        CHECK_INT(s.r.ready_calls, ==, 1);
        CHECK_INT(s.r.ready_status, ==, want);
        CHECK_INT(s.r.close_reason, ==, want);
        CHECK_CONTAINS(s.r.errmsg, cases[i][1]);
    }
}

static void script_oversized(struct fake *f)
{
    char big[600];

    srv_handshake(f);
    srv_expect(f, "cmd-a", NULL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "{\"return\": \"", 12);
    srv_send(f, big); /* no end in sight */
    srv_wait_eof(f);
}

static void test_client_oversized(void)
{
    struct session s;
    struct slot sl[1] = {0};

    session_start(&s, script_oversized, NULL, sl);
    CHECK_INT(vm_qmp_set_max_message(s.q, 256), ==, 0);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.close_reason, ==, VM_QMP_E_TOOBIG);
    CHECK_CONTAINS(s.r.errmsg, "larger than 256 bytes");
    CHECK_STR(sl[0].cls, "Closed");
}

static void script_caps_refused(struct fake *f)
{
    srv_send(f, GREETING);
    json_int_t id = srv_expect(f, "qmp_capabilities", NULL);
    srv_sendf(f,
              "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}, \"id\": %lld}\r\n",
              (long long)id);
    srv_wait_eof(f);
}

static void test_client_caps_refused(void)
{
    struct session s;
    struct slot sl[1] = {0};

    session_start(&s, script_caps_refused, NULL, sl);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "cmd-a", NULL, on_reply, &sl[0]), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.ready_calls, ==, 1);
    CHECK_INT(s.r.ready_status, ==, VM_QMP_E_NEGOTIATE);
    CHECK_INT(s.r.close_reason, ==, VM_QMP_E_NEGOTIATE);
    CHECK_CONTAINS(s.r.errmsg, "CommandNotFound: nope");
    CHECK_STR(sl[0].cls, "Closed");
}

static void script_silent_after_cmds(struct fake *f)
{
    srv_handshake(f);
    srv_expect(f, "slow", NULL);
    srv_expect(f, "slower", NULL);
    srv_wait_eof(f);
}

static void test_client_command_timeout(void)
{
    struct session s;
    struct slot sl[2] = {0};

    session_start(&s, script_silent_after_cmds, NULL, sl);
    vm_qmp_set_timeout_ms(s.q, 200);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "slow", NULL, on_reply, &sl[0]), ==, 0);
    CHECK_INT(vm_qmp_command(s.q, "slower", NULL, on_reply, &sl[1]), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.ready_status, ==, 0);
    CHECK_INT(s.r.close_reason, ==, UV_ETIMEDOUT);
    CHECK_CONTAINS(s.r.errmsg, "no reply to 'slow'");
    CHECK_STR(sl[0].cls, "Timeout");
    CHECK_INT(sl[0].code, ==, UV_ETIMEDOUT);
    CHECK_CONTAINS(sl[0].desc, "within 200 ms");
    CHECK_STR(sl[1].cls, "Closed");
    CHECK(s.r.close_ms - s.r.start_ms >= 200);
}

static void script_mute(struct fake *f)
{
    srv_wait_eof(f);
}

static void test_client_handshake_timeout(void)
{
    struct session s;

    session_start(&s, script_mute, NULL, NULL);
    vm_qmp_set_timeout_ms(s.q, 150);
    CHECK_INT(vm_qmp_connect(s.q, s.f.path), ==, 0);
    session_run(&s, true);
    CHECK_INT(s.r.ready_status, ==, UV_ETIMEDOUT);
    CHECK_INT(s.r.close_reason, ==, UV_ETIMEDOUT);
    CHECK_CONTAINS(s.r.errmsg, "no QMP handshake");
    CHECK(s.r.close_ms - s.r.start_ms >= 150);
}

/* A client with no callbacks at all, commands without reply callbacks,
 * and the server hanging up: the client frees itself. */
static void script_reply_and_leave(struct fake *f)
{
    srv_handshake(f);
    json_int_t a = srv_expect(f, "a", NULL);
    srv_expect(f, "b", NULL);
    srv_sendf(f,
              "{\"event\": \"X\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}\r\n"
              "{\"return\": {}, \"id\": %lld}\r\n",
              (long long)a);
}

static void test_client_no_callbacks(void)
{
    uv_loop_t loop;
    struct fake f;

    CHECK_INT(uv_loop_init(&loop), ==, 0);
    fake_start(&f, script_reply_and_leave, NULL);
    struct vm_qmp *q = vm_qmp_new(&loop, NULL, NULL);
    CHECK_INT(vm_qmp_connect(q, f.path), ==, 0);
    CHECK_INT(vm_qmp_command(q, "a", NULL, NULL, NULL), ==, 0);
    CHECK_INT(vm_qmp_command(q, "b", NULL, NULL, NULL), ==, 0);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), ==, 0);
    fake_stop(&f);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
}

/* ---- Real QEMU --------------------------------------------------------- */

static pid_t qemu_pid;
static char qemu_dir[64] = "/tmp/vmm-qemu-XXXXXX", qemu_sock[128];

/* atexit: also runs when a CHECK fails half-way. */
static void kill_qemu(void)
{
    if (qemu_pid > 0) {
        kill(qemu_pid, SIGKILL);
        waitpid(qemu_pid, NULL, 0);
        qemu_pid = 0;
    }
    if (qemu_sock[0]) {
        unlink(qemu_sock);
        rmdir(qemu_dir);
        qemu_sock[0] = '\0';
    }
}

enum { Q_STATUS1, Q_VERSION, Q_UNKNOWN, Q_STOP, Q_STATUS2, Q_CONT, Q_QUIT, Q_N };

struct qemu_run {
    struct slot s[Q_N];
    long long greet_major, greet_minor, greet_micro;
};

static struct qemu_run qr;

static void qemu_ready(struct vm_qmp *q, struct rec *r)
{
    json_t *v;

    if (r->ready_status != 0)
        CHECK_FAIL("QMP handshake with QEMU failed: %s (%s)", vm_qmp_strerror(r->ready_status),
                   vm_qmp_errmsg(q));
    v = json_object_get(json_object_get(vm_qmp_greeting(q), "version"), "qemu");
    qr.greet_major = json_integer_value(json_object_get(v, "major"));
    qr.greet_minor = json_integer_value(json_object_get(v, "minor"));
    qr.greet_micro = json_integer_value(json_object_get(v, "micro"));
    /* All at once: QEMU runs them in order. */
    CHECK_INT(vm_qmp_command(q, "query-status", NULL, on_reply, &qr.s[Q_STATUS1]), ==, 0);
    CHECK_INT(vm_qmp_command(q, "query-version", NULL, on_reply, &qr.s[Q_VERSION]), ==, 0);
    CHECK_INT(vm_qmp_command(q, "vmm-no-such-command", json_object(), on_reply, &qr.s[Q_UNKNOWN]),
              ==, 0);
    CHECK_INT(vm_qmp_command(q, "stop", NULL, on_reply, &qr.s[Q_STOP]), ==, 0);
    CHECK_INT(vm_qmp_command(q, "query-status", NULL, on_reply, &qr.s[Q_STATUS2]), ==, 0);
    CHECK_INT(vm_qmp_command(q, "cont", NULL, on_reply, &qr.s[Q_CONT]), ==, 0);
    CHECK_INT(vm_qmp_command(q, "quit", NULL, on_reply, &qr.s[Q_QUIT]), ==, 0);
}

/* Does a connection to the socket at PATH succeed? QEMU creates the socket
 * (bind) a moment before it listens: until then a connection is refused. */
static bool accepting(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    CHECK_INT(n, <, sizeof(a.sun_path));
    memcpy(a.sun_path, path, n + 1);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void test_real_qemu(void)
{
    const char *qemu = "qemu-system-x86_64";
    char *dir = qemu_dir, *sock = qemu_sock, chardev[160];
    struct rec r = {0};
    uv_loop_t loop;
    struct stat st;
    int status;

    memset(&qr, 0, sizeof(qr));
    CHECK(mkdtemp(dir) != NULL);
    atexit(kill_qemu);
    snprintf(sock, sizeof(qemu_sock), "%s/qmp.sock", dir);
    snprintf(chardev, sizeof(chardev), "unix:%s,server=on,wait=off", sock);

    qemu_pid = fork();
    CHECK(qemu_pid >= 0);
    if (qemu_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        execlp(qemu, qemu, "-M", "none", "-display", "none", "-nodefaults", "-qmp", chardev,
               (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", qemu, strerror(errno));
        _exit(127);
    }

    /* Wait for the socket to take connections; QEMU dying first (e.g. not
     * installed) fails. */
    for (int i = 0;; i++) {
        if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && accepting(sock))
            break;
        if (waitpid(qemu_pid, &status, WNOHANG) == qemu_pid) {
            qemu_pid = 0;
            CHECK_FAIL("%s exited (status 0x%x) before creating %s; it is required for this "
                       "test (is QEMU installed?)",
                       qemu, (unsigned)status, sock);
        }
        if (i > 1000)
            CHECK_FAIL("%s did not create %s within 10 s", qemu, sock);
        usleep(10000);
    }

    CHECK_INT(uv_loop_init(&loop), ==, 0);
    seq = 0;
    r.loop = &loop;
    r.ready_then = qemu_ready;
    struct vm_qmp *q = vm_qmp_new(&loop, &rec_cbs, &r);
    vm_qmp_set_timeout_ms(q, 20000);
    CHECK_INT(vm_qmp_connect(q, sock), ==, 0);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_INT(uv_loop_close(&loop), ==, 0);

    CHECK_INT(r.ready_calls, ==, 1);
    CHECK_INT(r.ready_status, ==, 0);
    CHECK(qr.greet_major >= 2);

    CHECK_INT(qr.s[Q_STATUS1].calls, ==, 1);
    CHECK_CONTAINS(qr.s[Q_STATUS1].ret, "\"running\":true");
    CHECK_CONTAINS(qr.s[Q_STATUS1].ret, "\"status\":\"running\"");

    char want[128];
    snprintf(want, sizeof(want), "{\"major\":%lld,\"micro\":%lld,\"minor\":%lld}", qr.greet_major,
             qr.greet_micro, qr.greet_minor);
    CHECK_CONTAINS(qr.s[Q_VERSION].ret, want);

    CHECK(qr.s[Q_UNKNOWN].ret == NULL);
    CHECK_STR(qr.s[Q_UNKNOWN].cls, "CommandNotFound");
    CHECK_CONTAINS(qr.s[Q_UNKNOWN].desc, "vmm-no-such-command");
    CHECK_INT(qr.s[Q_UNKNOWN].code, ==, 0);

    CHECK_STR(qr.s[Q_STOP].ret, "{}");
    CHECK_CONTAINS(qr.s[Q_STATUS2].ret, "\"running\":false");
    CHECK_CONTAINS(qr.s[Q_STATUS2].ret, "\"status\":\"paused\"");
    CHECK_STR(qr.s[Q_CONT].ret, "{}");
    /* QEMU replies to quit and then hangs up; a hang-up first is fine. */
    CHECK_INT(qr.s[Q_QUIT].calls, ==, 1);
    if (!qr.s[Q_QUIT].ret)
        CHECK_STR(qr.s[Q_QUIT].cls, "Closed");

    CHECK_INT(r.nevents, ==, 3);
    CHECK_STR(r.ev[0], "STOP");
    CHECK_STR(r.ev[1], "RESUME");
    CHECK_STR(r.ev[2], "SHUTDOWN");
    CHECK_CONTAINS(r.evdata[2], "\"reason\":\"host-qmp-quit\"");
    CHECK(r.ev_at[0] < qr.s[Q_STATUS2].at && qr.s[Q_STATUS2].at < r.ev_at[1]);
    double now = (double)time(NULL);
    CHECK(r.evts[0] > now - 120 && r.evts[0] < now + 120);
    CHECK(r.evts[0] <= r.evts[1] && r.evts[1] <= r.evts[2]);
    CHECK_INT(r.close_calls, ==, 1);
    if (r.close_reason != UV_EOF)
        CHECK_FAIL("QMP connection ended with %s (%s), want EOF after quit",
                   vm_qmp_strerror(r.close_reason), r.errmsg);
    CHECK(r.ev_at[2] < r.close_at);

    /* QEMU exits after quit; kill it by PID if it lingers. */
    for (int i = 0; i < 500 && waitpid(qemu_pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
    if (kill(qemu_pid, 0) == 0) {
        kill(qemu_pid, SIGKILL);
        waitpid(qemu_pid, &status, 0);
        CHECK_FAIL("QEMU did not exit after quit");
    }
    qemu_pid = 0;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink(sock);
    CHECK_INT(rmdir(dir), ==, 0);
    qemu_sock[0] = '\0';

    slots_free(qr.s, Q_N);
    rec_free(&r);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(100);
}

static const struct vm_test tests[] = {
    VM_TEST(test_strerror),
    VM_TEST(test_parser_qemu_trace),
    VM_TEST(test_parser_split),
    VM_TEST(test_parser_line_endings),
    VM_TEST(test_parser_malformed),
    VM_TEST(test_parser_non_object),
    VM_TEST(test_parser_oversized),
    VM_TEST(test_parser_classify),
    VM_TEST(test_parser_ids),
    VM_TEST(test_parser_duplicate_keys),
    VM_TEST(test_parser_deep_nesting),
    VM_TEST(test_parser_callback_stop),
    VM_TEST(test_client_basic),
    VM_TEST(test_client_out_of_order),
    VM_TEST(test_client_server_closes_mid_reply),
    VM_TEST(test_client_server_closes),
    VM_TEST(test_client_server_resets),
    VM_TEST(test_client_write_error),
    VM_TEST(test_client_close_in_reply_cb),
    VM_TEST(test_client_close_in_event_cb),
    VM_TEST(test_client_close_in_ready_cb),
    VM_TEST(test_client_close_while_connecting),
    VM_TEST(test_client_connect_fails),
    VM_TEST(test_client_start_failures),
    VM_TEST(test_client_protocol_errors),
    VM_TEST(test_client_greeting_errors),
    VM_TEST(test_client_oversized),
    VM_TEST(test_client_caps_refused),
    VM_TEST(test_client_command_timeout),
    VM_TEST(test_client_handshake_timeout),
    VM_TEST(test_client_no_callbacks),
    VM_TEST(test_real_qemu),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
