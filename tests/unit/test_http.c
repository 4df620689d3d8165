/* SPDX-License-Identifier: MIT */
/* test_http.c — HTTP requests on the loop (http.c) against a small HTTP
 * server on loopback run by this test on the same loop: GET/POST/PUT/...
 * with bodies and headers, status codes, redirects returned not followed,
 * timeouts, cancel, the body caps, connections cut mid-response, the policy
 * refusals (plain http, other schemes, header injection, methods), 50
 * requests at once, proxies from the environment, TLS verification (against
 * `openssl s_server` when present), closing with requests in flight, and
 * the loop closing cleanly. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "runner.h"
#include "util/http.h"
#include "util/util.h"

static uv_loop_t loop;
static struct vm_http *client;

/* ---- the server: one request per connection, answered by path ---- */

struct conn {
    uv_tcp_t tcp;
    char *buf;
    size_t len, cap;
    bool answered, closing;
    struct conn *prev, *next;
};

static struct {
    uv_tcp_t tcp;
    int port;
    int requests;          /* complete requests seen */
    char last_target[512]; /* request target of the last one */
    struct conn *conns;
} srv;

static void conn_closed(uv_handle_t *hd)
{
    struct conn *c = hd->data;
    free(c->buf);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

struct wr {
    uv_write_t req;
    char *buf;
};

static void written(uv_write_t *req, int status)
{
    struct wr *w = (struct wr *)req;
    struct conn *c = req->handle->data;
    free(w->buf);
    free(w);
    conn_close(c); /* Connection: close */
}

/* Send BUF (taken) and close the connection. */
static void send_raw(struct conn *c, char *buf, size_t len)
{
    struct wr *w = xmalloc(sizeof(*w));
    w->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, written) < 0) {
        free(buf);
        free(w);
        conn_close(c);
    }
}

/* A response; content_length < 0: the real length; with head, no body. */
static void reply(struct conn *c, int status, const char *extra, const char *body, size_t len,
                  long content_length, bool head)
{
    char *h = content_length == -2
                  ? xasprintf("HTTP/1.1 %d X\r\n%sConnection: close\r\n\r\n", status, extra)
                  : xasprintf("HTTP/1.1 %d X\r\n%sContent-Length: %ld\r\nConnection: close\r\n\r\n",
                              status, extra, content_length >= 0 ? content_length : (long)len);
    size_t hl = strlen(h);
    if (head)
        len = 0;
    char *buf = xrealloc(h, hl + len + 1);
    memcpy(buf + hl, body, len);
    send_raw(c, buf, hl + len);
}

static void answer(struct conn *c, const char *method, const char *target, const char *hdrs,
                   size_t hdrs_len, const char *body, size_t body_len)
{
    bool head = strcmp(method, "HEAD") == 0;
    snprintf(srv.last_target, sizeof(srv.last_target), "%s", target);
    if (strncmp(target, "http://", 7) == 0) { /* absolute form, from a proxy client */
        const char *slash = strchr(target + 7, '/');
        target = slash ? slash : "/";
    }
    srv.requests++;
    if (strcmp(target, "/hello") == 0) {
        reply(c, 200, "Content-Type: text/plain\r\n", "hello", 5, -1, head);
    } else if (strncmp(target, "/echo", 5) == 0) {
        /* "METHOD TARGET\n" + the request's header lines + "\n" + its body */
        size_t n = strlen(method) + strlen(target) + 2 + hdrs_len + 1 + body_len;
        char *e = xmalloc(n + 1);
        int k = sprintf(e, "%s %s\n", method, target);
        memcpy(e + k, hdrs, hdrs_len);
        e[k + hdrs_len] = '\n';
        memcpy(e + k + hdrs_len + 1, body, body_len);
        reply(c, 200, "Content-Type: application/x-echo\r\n", e, n, -1, head);
        free(e);
    } else if (strncmp(target, "/status/", 8) == 0) {
        int st = atoi(target + 8);
        char b[32];
        snprintf(b, sizeof(b), "status %d", st);
        reply(c, st, "", b, strlen(b), -1, head);
    } else if (strcmp(target, "/redirect") == 0) {
        reply(c, 302, "Location: /hello\r\n", "moved", 5, -1, head);
    } else if (strcmp(target, "/slow") == 0) {
        /* never answered: the client times out or cancels */
    } else if (strcmp(target, "/big") == 0 || strcmp(target, "/stream") == 0 ||
               strcmp(target, "/exact") == 0) {
        size_t n = strcmp(target, "/exact") == 0 ? VM_HTTP_MAX_BODY : 2 * VM_HTTP_MAX_BODY;
        char *b = xmalloc(n);
        memset(b, 'x', n);
        /* /stream: no Content-Length, the body ends when the connection does */
        reply(c, 200, "", b, n, strcmp(target, "/stream") == 0 ? -2 : -1, head);
        free(b);
    } else if (strcmp(target, "/cut") == 0) {
        reply(c, 200, "", "0123456789", 10, 100, head);
    } else if (strcmp(target, "/empty") == 0) {
        reply(c, 204, "", "", 0, -2, head);
    } else {
        reply(c, 404, "", "no such path", 12, -1, head);
    }
}

static void srv_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = hd->data;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->buf = xrealloc(c->buf, c->cap);
    }
    buf->base = c->buf + c->len;
    buf->len = c->cap - c->len - 1;
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (c->answered || c->len == 0)
        return;
    if (c->buf[0] < 'A' || c->buf[0] > 'Z') { /* not HTTP (a TLS hello): hang up */
        conn_close(c);
        return;
    }
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return;
    size_t body_at = (size_t)(end - c->buf) + 4, clen = 0;
    for (char *p = strstr(c->buf, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            clen = strtoul(p + 17, NULL, 10);
    }
    if (c->len < body_at + clen)
        return;
    c->answered = true;
    char method[16] = "", target[4096] = "";
    sscanf(c->buf, "%15s %4095s", method, target);
    char *hdrs = strstr(c->buf, "\r\n") + 2;
    answer(c, method, target, hdrs, (size_t)(end + 2 - hdrs), c->buf + body_at, clen);
}

static void srv_connection(uv_stream_t *server, int status)
{
    CHECK_INT(status, ==, 0);
    struct conn *c = xcalloc(1, sizeof(*c));
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    CHECK_INT(uv_accept(server, (uv_stream_t *)&c->tcp), ==, 0);
    c->next = srv.conns;
    if (srv.conns)
        srv.conns->prev = c;
    srv.conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
}

static void srv_start(void)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &srv.tcp);
    CHECK_INT(uv_tcp_bind(&srv.tcp, (const struct sockaddr *)&a, 0), ==, 0);
    CHECK_INT(uv_listen((uv_stream_t *)&srv.tcp, 128, srv_connection), ==, 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&srv.tcp, (struct sockaddr *)&got, &len);
    srv.port = ntohs(got.sin_port);
}

static void srv_stop(void)
{
    while (srv.conns)
        conn_close(srv.conns);
    uv_close((uv_handle_t *)&srv.tcp, NULL);
}

/* ---- the client side ---- */

struct res {
    int calls;
    long status;
    char *body;
    size_t body_len;
    char *ctype, *error;
    bool truncated;
};

static void res_cb(const struct vm_http_response *r, void *data)
{
    struct res *x = data;
    x->calls++;
    CHECK_INT(x->calls, ==, 1);
    CHECK(r->body);
    CHECK_INT(r->body[r->body_len], ==, '\0');
    CHECK_INT(!!r->error, ==, r->status == 0);
    x->status = r->status;
    x->body = xmalloc(r->body_len + 1);
    memcpy(x->body, r->body, r->body_len + 1);
    x->body_len = r->body_len;
    x->ctype = r->content_type ? xstrdup(r->content_type) : NULL;
    x->error = r->error ? xstrdup(r->error) : NULL;
    x->truncated = r->truncated;
}

static void res_free(struct res *x)
{
    free(x->body);
    free(x->ctype);
    free(x->error);
    memset(x, 0, sizeof(*x));
}

static void wait_calls(const int *calls, int n)
{
    while (*calls < n)
        uv_run(&loop, UV_RUN_ONCE);
}

static char *url(const char *path)
{
    return xasprintf("http://127.0.0.1:%d%s", srv.port, path);
}

/* Run RQ (its url a path on the server, made absolute) to completion. */
static struct res run(struct vm_http_request rq)
{
    char *u = rq.url[0] == '/' ? url(rq.url) : xstrdup(rq.url);
    rq.url = u;
    struct res x = {0};
    vm_http_start(client, &rq, res_cb, &x);
    wait_calls(&x.calls, 1);
    free(u);
    return x;
}

static void test_get(void)
{
    struct res x = run((struct vm_http_request){.url = "/hello", .allow_http = true});
    CHECK_INT(x.status, ==, 200);
    CHECK_STR(x.body, "hello");
    CHECK_INT(x.body_len, ==, 5);
    CHECK_STR(x.ctype, "text/plain");
    CHECK(!x.error && !x.truncated);
    res_free(&x);

    x = run(
        (struct vm_http_request){.method = "GET", .url = "/echo?a=1&b=%20", .allow_http = true});
    CHECK_INT(x.status, ==, 200);
    CHECK_CONTAINS(x.body, "GET /echo?a=1&b=%20\n");
    CHECK_CONTAINS(x.body, "User-Agent: vmmigrate/");
    CHECK_STR(x.ctype, "application/x-echo");
    res_free(&x);

    x = run((struct vm_http_request){.url = "/empty", .allow_http = true});
    CHECK_INT(x.status, ==, 204);
    CHECK_INT(x.body_len, ==, 0);
    CHECK_STR(x.body, "");
    CHECK(!x.ctype);
    res_free(&x);
}

static void test_post_and_headers(void)
{
    static const char body[] = "{\"a\":1}\0binary\r\n";
    const char *headers[] = {"Content-Type: application/json", "X-Test:1",
                             "X-Spaces:  two  words ",         "X-Empty:",
                             "User-Agent: policy/1",           NULL};
    struct res x = run((struct vm_http_request){.method = "POST",
                                                .url = "/echo",
                                                .headers = headers,
                                                .body = body,
                                                .body_len = sizeof(body) - 1,
                                                .allow_http = true});
    CHECK_INT(x.status, ==, 200);
    CHECK_CONTAINS(x.body, "POST /echo\n");
    CHECK_CONTAINS(x.body, "\r\nContent-Type: application/json\r\n");
    CHECK_CONTAINS(x.body, "\r\nX-Test:1\r\n");
    CHECK_CONTAINS(x.body, "\r\nX-Spaces:  two  words \r\n");
    CHECK_CONTAINS(x.body, "\r\nX-Empty:\r\n"); /* sent empty, not dropped */
    CHECK_CONTAINS(x.body, "\r\nUser-Agent: policy/1\r\n");
    CHECK(!strstr(x.body, "vmmigrate/"));
    CHECK_CONTAINS(x.body, "Content-Length: 16\r\n");
    CHECK(!strstr(x.body, "Expect:"));
    CHECK_INT(x.body_len, >, sizeof(body) - 1);
    CHECK(memcmp(x.body + x.body_len - (sizeof(body) - 1), body, sizeof(body) - 1) == 0);
    res_free(&x);

    /* A body of exactly the cap goes out whole. */
    char *big = xmalloc(VM_HTTP_MAX_BODY);
    memset(big, 'b', VM_HTTP_MAX_BODY);
    x = run((struct vm_http_request){.method = "PUT",
                                     .url = "/status/201",
                                     .body = big,
                                     .body_len = VM_HTTP_MAX_BODY,
                                     .allow_http = true});
    CHECK_INT(x.status, ==, 201);
    res_free(&x);
    free(big);
}

static void test_methods(void)
{
    const char *with_body[] = {"PUT", "PATCH", "DELETE", "POST"};
    for (size_t i = 0; i < VM_ARRAY_LEN(with_body); i++) {
        struct res x = run((struct vm_http_request){.method = with_body[i],
                                                    .url = "/echo",
                                                    .body = "x=1",
                                                    .body_len = 3,
                                                    .allow_http = true});
        CHECK_INT(x.status, ==, 200);
        char *want = xasprintf("%s /echo\n", with_body[i]);
        CHECK_INT(strncmp(x.body, want, strlen(want)), ==, 0);
        CHECK_CONTAINS(x.body, "Content-Length: 3\r\n");
        CHECK_CONTAINS(x.body, "\n\nx=1");
        free(want);
        res_free(&x);
    }
    struct res x =
        run((struct vm_http_request){.method = "DELETE", .url = "/echo", .allow_http = true});
    CHECK_INT(strncmp(x.body, "DELETE /echo\n", 13), ==, 0);
    CHECK(!strstr(x.body, "Content-Length"));
    res_free(&x);
    x = run((struct vm_http_request){.method = "PUT", .url = "/echo", .allow_http = true});
    CHECK_INT(strncmp(x.body, "PUT /echo\n", 10), ==, 0);
    CHECK_CONTAINS(x.body, "Content-Length: 0\r\n");
    res_free(&x);
    x = run((struct vm_http_request){.method = "HEAD", .url = "/echo", .allow_http = true});
    CHECK_INT(x.status, ==, 200);
    CHECK_INT(x.body_len, ==, 0);
    CHECK_STR(x.ctype, "application/x-echo");
    res_free(&x);
}

static void test_status_and_redirect(void)
{
    const int codes[] = {201, 400, 404, 500, 503};
    for (size_t i = 0; i < VM_ARRAY_LEN(codes); i++) {
        char path[32];
        snprintf(path, sizeof(path), "/status/%d", codes[i]);
        struct res x = run((struct vm_http_request){.url = path, .allow_http = true});
        CHECK_INT(x.status, ==, codes[i]);
        CHECK(!x.error);
        char want[32];
        snprintf(want, sizeof(want), "status %d", codes[i]);
        CHECK_STR(x.body, want);
        res_free(&x);
    }
    int before = srv.requests;
    struct res x = run((struct vm_http_request){.url = "/redirect", .allow_http = true});
    CHECK_INT(x.status, ==, 302);
    CHECK_STR(x.body, "moved");
    CHECK_INT(srv.requests, ==, before + 1); /* /hello was not asked for */
    res_free(&x);
}

/* Refused before anything is sent: cb runs inside vm_http_start. */
static void refused(struct vm_http_request rq, const char *why)
{
    int before = srv.requests;
    struct res x = {0};
    CHECK(!vm_http_start(client, &rq, res_cb, &x));
    CHECK_INT(x.calls, ==, 1);
    CHECK_INT(x.status, ==, 0);
    CHECK_CONTAINS(x.error, why);
    char *check = vm_http_check(&rq);
    CHECK_STR(check, x.error);
    free(check);
    res_free(&x);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_INT(srv.requests, ==, before);
}

static void test_refused(void)
{
    char *u = url("/hello");
    refused((struct vm_http_request){.url = u}, "plain http refused");
    refused((struct vm_http_request){.url = "HTTP://127.0.0.1/"}, "plain http refused");
    refused((struct vm_http_request){.url = "ftp://127.0.0.1/x", .allow_http = true},
            "scheme 'ftp' refused");
    refused((struct vm_http_request){.url = "file:///etc/passwd", .allow_http = true},
            "scheme 'file' refused");
    refused((struct vm_http_request){.url = "gopher://127.0.0.1/", .allow_http = true},
            "scheme 'gopher' refused");
    refused((struct vm_http_request){.url = "dict://127.0.0.1/"}, "scheme 'dict' refused");
    refused((struct vm_http_request){.url = "127.0.0.1/hello", .allow_http = true}, "bad url");
    refused((struct vm_http_request){.url = "http://127.0.0.1/a b", .allow_http = true}, "bad url");
    refused((struct vm_http_request){.url = "http://127.0.0.1/\r\nX: 1", .allow_http = true},
            "bad url");
    refused((struct vm_http_request){.url = ""}, "no url");
    refused((struct vm_http_request){.url = NULL}, "no url");
    char *longurl = xmalloc(VM_HTTP_MAX_URL + 32);
    sprintf(longurl, "https://example.org/");
    memset(longurl + 20, 'a', VM_HTTP_MAX_URL);
    longurl[VM_HTTP_MAX_URL + 20] = '\0';
    refused((struct vm_http_request){.url = longurl}, "url longer than");
    free(longurl);

    refused((struct vm_http_request){.method = "get", .url = u, .allow_http = true},
            "method 'get' not allowed");
    refused((struct vm_http_request){.method = "CONNECT", .url = u, .allow_http = true},
            "method 'CONNECT' not allowed");
    refused((struct vm_http_request){.method = "GET\r\nX", .url = u, .allow_http = true},
            "method 'GET??X' not allowed");
    refused((struct vm_http_request){.method = "TRACE", .url = u, .allow_http = true},
            "not allowed");

    const char *inject[] = {"X-A: b\r\nX-Injected: 1", NULL};
    refused((struct vm_http_request){.url = u, .headers = inject, .allow_http = true},
            "header 'X-A' contains a control character (0x0d)");
    const char *lf[] = {"X-Ok: 1", "X-A: b\nc", NULL};
    refused((struct vm_http_request){.url = u, .headers = lf, .allow_http = true},
            "header 'X-A' contains a control character (0x0a)");
    const char *nocolon[] = {"NoColon", NULL};
    refused((struct vm_http_request){.url = u, .headers = nocolon, .allow_http = true},
            "header 1 is not 'Name: value'");
    const char *noname[] = {": v", NULL};
    refused((struct vm_http_request){.url = u, .headers = noname, .allow_http = true},
            "header 1 is not 'Name: value'");
    const char *space[] = {"X-Ok: 1", "Bad Name: v", NULL};
    refused((struct vm_http_request){.url = u, .headers = space, .allow_http = true},
            "header 2 is not 'Name: value'");
    const char *crname[] = {"\r\nX: v", NULL};
    refused((struct vm_http_request){.url = u, .headers = crname, .allow_http = true},
            "header 1 is not 'Name: value'");
    const char *semicolon[] = {"X-A;", NULL};
    refused((struct vm_http_request){.url = u, .headers = semicolon, .allow_http = true},
            "header 1 is not 'Name: value'");
    const char *host[] = {"host: evil.example", NULL};
    refused((struct vm_http_request){.url = u, .headers = host, .allow_http = true},
            "header 'host' is set by the HTTP client");
    const char *cl[] = {"Content-Length: 0", NULL};
    refused((struct vm_http_request){.url = u, .headers = cl, .allow_http = true},
            "header 'Content-Length' is set by the HTTP client");
    const char *te[] = {"Transfer-Encoding: chunked", NULL};
    refused((struct vm_http_request){.url = u, .headers = te, .allow_http = true},
            "is set by the HTTP client");
    const char *pa[] = {"Proxy-Authorization: Basic eDp5", NULL};
    refused((struct vm_http_request){.url = u, .headers = pa, .allow_http = true},
            "header 'Proxy-Authorization' is set by the HTTP client");
    const char *many[VM_HTTP_MAX_HEADERS + 2];
    for (int i = 0; i < VM_HTTP_MAX_HEADERS + 1; i++)
        many[i] = "X-Many: 1";
    many[VM_HTTP_MAX_HEADERS + 1] = NULL;
    refused((struct vm_http_request){.url = u, .headers = many, .allow_http = true},
            "more than 64 headers");
    char *longhd = xmalloc(VM_HTTP_MAX_HEADER_LEN + 16);
    sprintf(longhd, "X-Long: ");
    memset(longhd + 8, 'v', VM_HTTP_MAX_HEADER_LEN);
    longhd[VM_HTTP_MAX_HEADER_LEN + 8] = '\0';
    const char *lh[] = {longhd, NULL};
    refused((struct vm_http_request){.url = u, .headers = lh, .allow_http = true},
            "header 1 is longer than 8192 bytes");
    free(longhd);

    refused((struct vm_http_request){.method = "POST",
                                     .url = u,
                                     .body = "x",
                                     .body_len = VM_HTTP_MAX_BODY + 1,
                                     .allow_http = true},
            "request body of 1048577 bytes exceeds 1048576 bytes");
    refused((struct vm_http_request){.method = "POST", .url = u, .body_len = 3, .allow_http = true},
            "body_len without a body");
    refused((struct vm_http_request){.url = u, .body = "x", .body_len = 1, .allow_http = true},
            "GET request with a body");
    refused(
        (struct vm_http_request){
            .method = "HEAD", .url = u, .body = "x", .body_len = 1, .allow_http = true},
        "HEAD request with a body");
    refused((struct vm_http_request){.url = u,
                                     .timeout_ms = VM_HTTP_MAX_TIMEOUT_MS + 1,
                                     .allow_http = true},
            "timeout_ms 300001 exceeds 300000");

    /* And these pass. */
    const char *ok[] = {"X-A: b", "X-Tab:\tv", "X-Obs: caf\xc3\xa9", "!#$%&'*+-.^_`|~: v", NULL};
    struct vm_http_request good = {
        .url = u, .headers = ok, .allow_http = true, .timeout_ms = VM_HTTP_MAX_TIMEOUT_MS};
    CHECK(!vm_http_check(&good));
    good = (struct vm_http_request){.url = "https://example.org/x?y#z"};
    CHECK(!vm_http_check(&good));
    free(u);
}

static void cancel_cb(uv_timer_t *t)
{
    vm_http_cancel(t->data);
}

static void test_timeout_and_cancel(void)
{
    uint64_t t0 = uv_hrtime();
    struct res x =
        run((struct vm_http_request){.url = "/slow", .timeout_ms = 200, .allow_http = true});
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    CHECK_INT(x.status, ==, 0);
    CHECK_CONTAINS(x.error, "timed out");
    CHECK_INT(ms, >=, 190);
    CHECK_INT(ms, <, 3000);
    res_free(&x);

    /* Nobody listening: refused quickly, with libcurl's words. */
    uv_tcp_t t;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &t);
    uv_tcp_bind(&t, (const struct sockaddr *)&a, 0);
    int len = sizeof(a);
    uv_tcp_getsockname(&t, (struct sockaddr *)&a, &len);
    uv_close((uv_handle_t *)&t, NULL); /* bound, never listening: connect refused */
    char *closed = xasprintf("http://127.0.0.1:%d/", ntohs(a.sin_port));
    x = run((struct vm_http_request){.url = closed, .allow_http = true});
    CHECK_INT(x.status, ==, 0);
    CHECK(x.error);
    res_free(&x);
    free(closed);

    /* Cancel while the server sits on it. */
    char *u = url("/slow");
    struct vm_http_request rq = {.url = u, .allow_http = true};
    x = (struct res){0};
    struct vm_http_req *r = vm_http_start(client, &rq, res_cb, &x);
    CHECK(r);
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    timer.data = r;
    uv_timer_start(&timer, cancel_cb, 100, 0);
    t0 = uv_hrtime();
    wait_calls(&x.calls, 1);
    CHECK_STR(x.error, "cancelled");
    CHECK_INT(x.status, ==, 0);
    CHECK_INT((uv_hrtime() - t0) / 1000000, <, 3000);
    uv_close((uv_handle_t *)&timer, NULL);
    res_free(&x);

    /* Cancel at once: the callback runs inside vm_http_cancel. */
    r = vm_http_start(client, &rq, res_cb, &x);
    CHECK(r);
    CHECK_INT(x.calls, ==, 0);
    vm_http_cancel(r);
    CHECK_INT(x.calls, ==, 1);
    CHECK_STR(x.error, "cancelled");
    res_free(&x);
    vm_http_cancel(NULL);

    /* At most VM_HTTP_MAX_IN_FLIGHT at once (nothing connects before the
     * loop runs, so no sockets are spent). */
    static struct res many[VM_HTTP_MAX_IN_FLIGHT];
    static struct vm_http_req *reqs[VM_HTTP_MAX_IN_FLIGHT];
    for (int i = 0; i < VM_HTTP_MAX_IN_FLIGHT; i++)
        CHECK((reqs[i] = vm_http_start(client, &rq, res_cb, &many[i])));
    CHECK(!vm_http_start(client, &rq, res_cb, &x));
    CHECK_STR(x.error, "more than 256 HTTP requests in flight");
    res_free(&x);
    for (int i = 0; i < VM_HTTP_MAX_IN_FLIGHT; i++) {
        vm_http_cancel(reqs[i]);
        CHECK_STR(many[i].error, "cancelled");
        res_free(&many[i]);
    }
    free(u);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_body_caps(void)
{
    /* Content-Length announces too much: refused before the body is read. */
    struct res x = run((struct vm_http_request){.url = "/big", .allow_http = true});
    CHECK_INT(x.status, ==, 0);
    CHECK_STR(x.error, "response body exceeds 1048576 bytes");
    CHECK(x.truncated);
    CHECK_INT(x.body_len, <=, VM_HTTP_MAX_BODY);
    res_free(&x);

    /* No Content-Length: read up to the cap, then stop. */
    x = run((struct vm_http_request){.url = "/stream", .allow_http = true});
    CHECK_INT(x.status, ==, 0);
    CHECK_STR(x.error, "response body exceeds 1048576 bytes");
    CHECK(x.truncated);
    CHECK_INT(x.body_len, ==, VM_HTTP_MAX_BODY);
    CHECK_INT(x.body[0], ==, 'x');
    CHECK_INT(x.body[VM_HTTP_MAX_BODY - 1], ==, 'x');
    res_free(&x);

    /* HEAD of something large is fine: no body comes. */
    x = run((struct vm_http_request){.method = "HEAD", .url = "/big", .allow_http = true});
    CHECK_INT(x.status, ==, 200);
    CHECK(!x.error && !x.truncated);
    CHECK_INT(x.body_len, ==, 0);
    res_free(&x);

    x = run((struct vm_http_request){.url = "/exact", .allow_http = true});
    CHECK_INT(x.status, ==, 200);
    CHECK(!x.error && !x.truncated);
    CHECK_INT(x.body_len, ==, VM_HTTP_MAX_BODY);
    res_free(&x);
}

static void test_cut_and_not_tls(void)
{
    struct res x = run((struct vm_http_request){.url = "/cut", .allow_http = true});
    CHECK_INT(x.status, ==, 0);
    CHECK_CONTAINS(x.error, "90 bytes remaining");
    CHECK(!x.truncated);
    CHECK_INT(x.body_len, ==, 0); /* what arrived is not passed on */
    res_free(&x);

    /* https to a server that does not speak TLS: an error, never plain http. */
    char *u = xasprintf("https://127.0.0.1:%d/hello", srv.port);
    int before = srv.requests;
    x = run((struct vm_http_request){.url = u});
    CHECK_INT(x.status, ==, 0);
    CHECK(x.error);
    CHECK_INT(srv.requests, ==, before);
    res_free(&x);
    free(u);
}

static void test_concurrent(void)
{
    enum { N = 50 };
    struct res xs[N];
    char *urls[N];
    memset(xs, 0, sizeof(xs));
    for (int i = 0; i < N; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/echo?i=%d", i);
        urls[i] = url(path);
        struct vm_http_request rq = {.url = urls[i], .allow_http = true};
        CHECK(vm_http_start(client, &rq, res_cb, &xs[i]));
    }
    for (int i = 0; i < N; i++)
        wait_calls(&xs[i].calls, 1);
    for (int i = 0; i < N; i++) {
        CHECK_INT(xs[i].status, ==, 200);
        char want[32];
        snprintf(want, sizeof(want), "GET /echo?i=%d\n", i);
        CHECK_INT(strncmp(xs[i].body, want, strlen(want)), ==, 0);
        res_free(&xs[i]);
        free(urls[i]);
    }
}

/* The operator's http_proxy is honoured (a policy cannot set one). */
static void test_proxy_env(void)
{
    char *proxy = xasprintf("http://127.0.0.1:%d", srv.port);
    setenv("http_proxy", proxy, 1);
    struct res x =
        run((struct vm_http_request){.url = "http://vmm-test.invalid/hello", .allow_http = true});
    unsetenv("http_proxy");
    CHECK_INT(x.status, ==, 200);
    CHECK_STR(x.body, "hello");
    CHECK_STR(srv.last_target, "http://vmm-test.invalid/hello");
    res_free(&x);
    free(proxy);
}

/* ---- TLS: a self-signed server is refused (needs openssl(1)) ---- */

static struct {
    uv_process_t proc;
    uv_pipe_t out;
    char buf[4096];
    size_t len;
    bool ready, exited;
} ssl;

static void ssl_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    buf->base = ssl.buf + ssl.len;
    buf->len = sizeof(ssl.buf) - 1 - ssl.len;
}

static void ssl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        uv_read_stop(s);
        ssl.ready = true; /* gone: let the test fail on the request */
        return;
    }
    ssl.len += (size_t)n;
    ssl.buf[ssl.len] = '\0';
    if (strstr(ssl.buf, "ACCEPT"))
        ssl.ready = true;
    if (ssl.len >= sizeof(ssl.buf) - 1)
        ssl.len = 0;
}

static void ssl_exit(uv_process_t *p, int64_t status, int sig)
{
    ssl.exited = true;
    uv_close((uv_handle_t *)p, NULL);
}

static void test_tls_verification(void)
{
    if (access("/usr/bin/openssl", X_OK) != 0) {
        fprintf(stderr, "   skipped: no /usr/bin/openssl\n");
        return;
    }
    char dir[] = "/tmp/vmm-test-http-XXXXXX";
    CHECK(mkdtemp(dir));
    char *cmd = xasprintf("cd %s && /usr/bin/openssl req -x509 -newkey ec -pkeyopt "
                          "ec_paramgen_curve:prime256v1 -nodes -keyout k.pem -out c.pem "
                          "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 "
                          ">/dev/null 2>&1",
                          dir);
    CHECK_INT(system(cmd), ==, 0);
    free(cmd);

    /* A free port: bind port 0, note it, let it go. */
    uv_tcp_t t;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &t);
    CHECK_INT(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), ==, 0);
    int len = sizeof(a);
    uv_tcp_getsockname(&t, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);

    char *listen_at = xasprintf("127.0.0.1:%d", port);
    char *cert = xasprintf("%s/c.pem", dir), *key = xasprintf("%s/k.pem", dir);
    char *args[] = {"/usr/bin/openssl",
                    "s_server",
                    "-accept",
                    listen_at,
                    "-cert",
                    cert,
                    "-key",
                    key,
                    "-www",
                    NULL};
    uv_pipe_init(&loop, &ssl.out, 0);
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&ssl.out},
        {.flags = UV_IGNORE},
    };
    uv_process_options_t opts = {
        .exit_cb = ssl_exit, .file = args[0], .args = args, .stdio_count = 3, .stdio = stdio};
    CHECK_INT(uv_spawn(&loop, &ssl.proc, &opts), ==, 0);
    uv_read_start((uv_stream_t *)&ssl.out, ssl_alloc, ssl_read);
    while (!ssl.ready)
        uv_run(&loop, UV_RUN_ONCE);

    char *u = xasprintf("https://127.0.0.1:%d/", port);
    struct res x = run((struct vm_http_request){.url = u, .timeout_ms = 5000});
    CHECK_INT(x.status, ==, 0);
    CHECK_CONTAINS(x.error, "certificate");
    res_free(&x);

    uv_process_kill(&ssl.proc, SIGTERM);
    while (!ssl.exited)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ssl.out, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    free(u);
    free(listen_at);
    free(key);
    cmd = xasprintf("rm -rf %s", dir);
    CHECK_INT(system(cmd), ==, 0);
    free(cmd);
    free(cert);
}

/* ---- closing ---- */

static void set_flag(void *data)
{
    (*(int *)data)++;
}

static void test_close_pending(void)
{
    struct vm_http *h = vm_http_new(&loop);
    enum { N = 5 };
    struct res xs[N];
    memset(xs, 0, sizeof(xs));
    char *u = url("/slow");
    struct vm_http_request rq = {.url = u, .allow_http = true};
    for (int i = 0; i < N; i++)
        CHECK(vm_http_start(h, &rq, res_cb, &xs[i]));
    /* Let them connect and send. */
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    int closed = 0;
    vm_http_close(h, set_flag, &closed);
    for (int i = 0; i < N; i++) {
        CHECK_INT(xs[i].calls, ==, 1);
        CHECK_STR(xs[i].error, "cancelled");
        res_free(&xs[i]);
    }
    CHECK_INT(closed, ==, 0); /* in its close callbacks */
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    free(u);

    /* A client never used. */
    closed = 0;
    vm_http_close(vm_http_new(&loop), set_flag, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    vm_http_close(NULL, NULL, NULL);
}

/* Callbacks that start, cancel and close from inside: a's callback cancels
 * c and closes the client, which cancels b, whose callback tries to start
 * another request. */
static struct {
    struct vm_http *h;
    struct vm_http_req *c_req;
    struct res a, b, c, late;
    int closed;
    char *slow_url;
} reent;

static void late_cb(const struct vm_http_response *r, void *data)
{
    res_cb(r, data);
    CHECK_STR(r->error, "HTTP client closing");
}

static void b_cb(const struct vm_http_response *r, void *data)
{
    res_cb(r, data);
    struct vm_http_request rq = {.url = reent.slow_url, .allow_http = true};
    CHECK(!vm_http_start(reent.h, &rq, late_cb, &reent.late));
}

static void a_cb(const struct vm_http_response *r, void *data)
{
    res_cb(r, data);
    CHECK_INT(r->status, ==, 200);
    CHECK_INT(reent.c.calls, ==, 0);
    vm_http_cancel(reent.c_req);
    CHECK_INT(reent.c.calls, ==, 1);
    vm_http_close(reent.h, set_flag, &reent.closed);
    CHECK_INT(reent.b.calls, ==, 1);
    vm_http_close(reent.h, set_flag, &reent.closed); /* again: nothing */
}

static void test_close_from_callback(void)
{
    reent.h = vm_http_new(&loop);
    reent.slow_url = url("/slow");
    char *hello = url("/hello");
    struct vm_http_request slow = {.url = reent.slow_url, .allow_http = true};
    struct vm_http_request fast = {.url = hello, .allow_http = true};
    CHECK(vm_http_start(reent.h, &slow, b_cb, &reent.b));
    reent.c_req = vm_http_start(reent.h, &slow, res_cb, &reent.c);
    CHECK(reent.c_req);
    CHECK(vm_http_start(reent.h, &fast, a_cb, &reent.a));
    while (!reent.closed)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(reent.closed, ==, 1);
    CHECK_INT(reent.a.calls, ==, 1);
    CHECK_STR(reent.b.error, "cancelled");
    CHECK_STR(reent.c.error, "cancelled");
    CHECK_INT(reent.late.calls, ==, 1);
    res_free(&reent.a);
    res_free(&reent.b);
    res_free(&reent.c);
    res_free(&reent.late);
    free(reent.slow_url);
    free(hello);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(100);
    /* Requests to loopback must not leave through a proxy of the caller's. */
    const char *proxies[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                             "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
    for (size_t i = 0; i < VM_ARRAY_LEN(proxies); i++)
        unsetenv(proxies[i]);
    CHECK_INT(uv_loop_init(&loop), ==, 0);
    srv_start();
    client = vm_http_new(&loop);
}

static void teardown(void)
{
    int closed = 0;
    vm_http_close(client, set_flag, &closed);
    srv_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(closed, ==, 1);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
}

static const struct vm_test tests[] = {
    VM_TEST(test_get),
    VM_TEST(test_post_and_headers),
    VM_TEST(test_methods),
    VM_TEST(test_status_and_redirect),
    VM_TEST(test_refused),
    VM_TEST(test_timeout_and_cancel),
    VM_TEST(test_body_caps),
    VM_TEST(test_cut_and_not_tls),
    VM_TEST(test_concurrent),
    VM_TEST(test_proxy_env),
    VM_TEST(test_tls_verification),
    VM_TEST(test_close_pending),
    VM_TEST(test_close_from_callback),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup, .teardown = teardown};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
