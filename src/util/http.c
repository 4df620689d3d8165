/* SPDX-License-Identifier: MIT */
/* http.c — see http.h.
 *
 * libcurl tells us which sockets to watch (sock_cb: one uv_poll_t each) and
 * when to call it back (timer_cb: the one uv_timer_t); libuv tells libcurl
 * what happened (curl_multi_socket_action); after each action the finished
 * transfers are collected (after_action). No user callback ever runs inside
 * a libcurl callback: they run from after_action, vm_http_cancel,
 * vm_http_close or vm_http_start, so they may call back into this module.
 * libcurl announces CURL_POLL_REMOVE before it closes a socket, so a poll
 * handle is stopped while its descriptor is still the one it watched. */
#include "util/http.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct vm_http *h;
    bool closing;
    struct sock *prev, *next; /* h->socks until closing */
};

struct vm_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct vm_http_req *reqs; /* in flight */
    struct sock *socks;       /* watched */
    int in_flight;
    int handles;     /* uv handles not yet closed: the timer and every sock */
    int dispatching; /* inside after_action, cancel or close: teardown waits */
    bool closing, torn_down;
    void (*closed)(void *);
    void *closed_data;
};

struct vm_http_req {
    struct vm_http *h;
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* the response body, NUL-terminated */
    size_t len, cap;
    bool truncated, done;
    int poll_error; /* libuv could not watch one of its sockets */
    vm_http_cb cb;
    void *data;
    struct vm_http_req *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- the request: policy checks ---- */

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};

/* Headers that frame the message or the connection: the client's own. */
static const char *const reserved[] = {"Host",    "Content-Length", "Transfer-Encoding",
                                       "TE",      "Trailer",        "Connection",
                                       "Upgrade", "Expect",         "Keep-Alive"};

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static char *check_header(const char *hd, int i)
{
    size_t len = strlen(hd);
    if (len > VM_HTTP_MAX_HEADER_LEN)
        return xasprintf("header %d is longer than %d bytes", i + 1, VM_HTTP_MAX_HEADER_LEN);
    size_t n = 0;
    while (is_tchar((unsigned char)hd[n]))
        n++;
    if (n == 0 || hd[n] != ':')
        return xasprintf("header %d is not 'Name: value'", i + 1);
    for (const unsigned char *p = (const unsigned char *)hd + n + 1; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return xasprintf("header '%.*s' contains a control character (0x%02x)", (int)n, hd, *p);
    }
    for (size_t k = 0; k < VM_ARRAY_LEN(reserved); k++) {
        if (strlen(reserved[k]) == n && strncasecmp(hd, reserved[k], n) == 0)
            return xasprintf("header '%.*s' is set by the HTTP client", (int)n, hd);
    }
    if (n >= 6 && strncasecmp(hd, "Proxy-", 6) == 0)
        return xasprintf("header '%.*s' is set by the HTTP client", (int)n, hd);
    return NULL;
}

static char *check_url(const char *url, bool allow_http)
{
    if (!url || !*url)
        return xstrdup("no url");
    if (strlen(url) > VM_HTTP_MAX_URL)
        return xasprintf("url longer than %d bytes", VM_HTTP_MAX_URL);
    CURLU *u = curl_url();
    if (!u)
        return xstrdup("cannot parse url: out of memory");
    char *why = NULL, *scheme = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        why = xasprintf("bad url: %s", curl_url_strerror(uc));
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        why = xstrdup("bad url: no scheme");
    } else if (strcasecmp(scheme, "http") == 0) {
        if (!allow_http)
            why = xstrdup("plain http refused: https only (allow_http permits http)");
    } else if (strcasecmp(scheme, "https") != 0) {
        why = xasprintf("scheme '%s' refused: https only (or http with allow_http)", scheme);
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return why;
}

char *vm_http_check(const struct vm_http_request *rq)
{
    const char *method = rq->method ? rq->method : "GET";
    bool known = false;
    for (size_t i = 0; i < VM_ARRAY_LEN(methods); i++)
        known = known || strcmp(method, methods[i]) == 0;
    if (!known) {
        char *m = vm_utf8_cut(method, 32);
        for (char *p = m; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        char *why = xasprintf("method '%s' not allowed (GET, HEAD, POST, PUT, PATCH or DELETE)", m);
        free(m);
        return why;
    }
    char *why = check_url(rq->url, rq->allow_http);
    if (why)
        return why;
    int n = 0;
    for (const char *const *hd = rq->headers; hd && *hd; hd++, n++) {
        if (n == VM_HTTP_MAX_HEADERS)
            return xasprintf("more than %d headers", VM_HTTP_MAX_HEADERS);
        if ((why = check_header(*hd, n)))
            return why;
    }
    if (!rq->body && rq->body_len)
        return xstrdup("body_len without a body");
    if (rq->body_len > VM_HTTP_MAX_BODY)
        return xasprintf("request body of %zu bytes exceeds %d bytes", rq->body_len,
                         VM_HTTP_MAX_BODY);
    if (rq->body_len && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
        return xasprintf("%s request with a body", method);
    if (rq->timeout_ms > VM_HTTP_MAX_TIMEOUT_MS)
        return xasprintf("timeout_ms %" PRIu64 " exceeds %d", rq->timeout_ms,
                         VM_HTTP_MAX_TIMEOUT_MS);
    return NULL;
}

/* ---- the client: libuv driving libcurl ---- */

static void maybe_free(struct vm_http *h)
{
    if (!h->torn_down || h->handles > 0)
        return;
    void (*closed)(void *) = h->closed;
    void *data = h->closed_data;
    free(h);
    curl_global_cleanup();
    if (closed)
        closed(data);
}

static void handle_closed(uv_handle_t *hd)
{
    struct vm_http *h = hd->data;
    h->handles--;
    maybe_free(h);
}

static void sock_closed(uv_handle_t *hd)
{
    struct sock *k = hd->data;
    struct vm_http *h = k->h;
    free(k);
    h->handles--;
    maybe_free(h);
}

static void sock_close(struct sock *k)
{
    if (k->closing)
        return;
    k->closing = true;
    struct vm_http *h = k->h;
    if (k->prev)
        k->prev->next = k->next;
    else
        h->socks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    uv_close((uv_handle_t *)&k->poll, sock_closed);
}

/* Once closing and no longer inside a dispatch (whose loop still uses the
 * CURLM), let libcurl go and close the uv handles; maybe_free finishes. */
static void maybe_teardown(struct vm_http *h)
{
    if (!h->closing || h->dispatching || h->torn_down)
        return;
    h->torn_down = true;
    while (h->socks) /* none expected: removing the transfers removed them */
        sock_close(h->socks);
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    uv_close((uv_handle_t *)&h->timer, handle_closed);
}

static void finish(struct vm_http_req *r, CURLcode rc, const char *why);

/* Collect finished transfers, then the requests libuv could not watch. */
static void after_action(struct vm_http *h)
{
    h->dispatching++;
    CURLMsg *m;
    int left;
    while (!h->closing && (m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *p = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        finish((struct vm_http_req *)p, m->data.result, NULL);
    }
    for (struct vm_http_req *r = h->reqs; r && !h->closing;) {
        if (!r->poll_error) {
            r = r->next;
            continue;
        }
        char *why = xasprintf("cannot watch a socket: %s", uv_strerror(r->poll_error));
        finish(r, CURLE_OK, why); /* its callback may cancel others: rescan */
        free(why);
        r = h->reqs;
    }
    h->dispatching--;
    maybe_teardown(h);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct sock *k = p->data;
    struct vm_http *h = k->h;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(h->multi, k->fd, flags, &running);
    after_action(h);
}

static void timeout_cb(uv_timer_t *t)
{
    struct vm_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    after_action(h);
}

/* CURLMOPT_TIMERFUNCTION: call libcurl back in ms (-1: never). */
static int timer_cb(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    struct vm_http *h = userp;
    if (ms < 0 || h->torn_down)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, timeout_cb, (uint64_t)ms, 0);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch S for WHAT, or stop (CURL_POLL_REMOVE,
 * announced before libcurl closes S). */
static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct vm_http *h = userp;
    struct sock *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k)
            sock_close(k);
        return 0;
    }
    if (!k) {
        k = xcalloc(1, sizeof(*k));
        int rc = uv_poll_init_socket(h->loop, &k->poll, s);
        if (rc < 0) {
            /* Returning -1 would stop every transfer: fail this one from
             * after_action instead. */
            free(k);
            char *p = NULL;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
            struct vm_http_req *r = (struct vm_http_req *)p;
            if (r && !r->poll_error)
                r->poll_error = rc;
            return 0;
        }
        k->fd = s;
        k->h = h;
        k->poll.data = k;
        k->next = h->socks;
        if (h->socks)
            h->socks->prev = k;
        h->socks = k;
        h->handles++;
        curl_multi_assign(h->multi, s, k);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&k->poll, events, poll_cb);
    return 0;
}

struct vm_http *vm_http_new(uv_loop_t *loop)
{
    CURLcode grc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (grc != CURLE_OK) {
        vm_error("cannot initialise libcurl: %s", curl_easy_strerror(grc));
        abort(); /* as on out of memory: nothing else can fail it */
    }
    struct vm_http *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi) {
        vm_error("cannot initialise libcurl: curl_multi_init failed");
        abort();
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->handles = 1;
    return h;
}

/* ---- one request ---- */

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct vm_http_req *r = userp;
    size_t len = size * n;
    size_t room = VM_HTTP_MAX_BODY - r->len;
    size_t take = len < room ? len : room;
    if (r->len + take + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + take + 1)
            cap *= 2;
        if (cap > VM_HTTP_MAX_BODY + 1)
            cap = VM_HTTP_MAX_BODY + 1;
        r->body = xrealloc(r->body, cap);
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, take);
    r->len += take;
    r->body[r->len] = '\0';
    if (take < len) {
        r->truncated = true;
        return 0; /* CURLE_WRITE_ERROR: stop reading */
    }
    return len;
}

static char *error_text(struct vm_http_req *r, CURLcode rc)
{
    if (rc == CURLE_FILESIZE_EXCEEDED || (rc == CURLE_WRITE_ERROR && r->truncated)) {
        r->truncated = true;
        return xasprintf("response body exceeds %d bytes", VM_HTTP_MAX_BODY);
    }
    if (r->errbuf[0]) {
        size_t n = strlen(r->errbuf);
        while (n && (r->errbuf[n - 1] == '\n' || r->errbuf[n - 1] == ' '))
            r->errbuf[--n] = '\0';
        return xstrdup(r->errbuf);
    }
    return xstrdup(curl_easy_strerror(rc));
}

/* Report R and free it. WHY overrides RC. */
static void finish(struct vm_http_req *r, CURLcode rc, const char *why)
{
    struct vm_http *h = r->h;
    r->done = true;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    h->in_flight--;

    struct vm_http_response resp = {0};
    char *error = NULL, *ctype = NULL;
    if (why) {
        error = xstrdup(why);
    } else if (rc != CURLE_OK) {
        error = error_text(r, rc);
    } else {
        char *ct = NULL;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
        ctype = ct ? xstrdup(ct) : NULL;
        if (resp.status == 0)
            error = xstrdup("no HTTP status in the response");
    }
    if (error)
        resp.status = 0;
    /* Done with libcurl before the callback: it may close the client. */
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);

    if (error && !r->truncated)
        r->len = 0; /* a part of a body is no body */
    resp.body = r->body && r->len ? r->body : "";
    resp.body_len = r->len;
    resp.content_type = ctype;
    resp.error = error;
    resp.truncated = r->truncated;
    r->cb(&resp, r->data);
    free(error);
    free(ctype);
    free(r->body);
    free(r);
}

static void refuse(vm_http_cb cb, void *data, const char *why)
{
    struct vm_http_response resp = {.body = "", .error = why};
    cb(&resp, data);
}

/* libcurl options for RQ (already checked) on E; CURLE_OK or the first
 * option libcurl refused. */
static CURLcode configure(struct vm_http_req *r, const struct vm_http_request *rq)
{
    CURL *e = r->easy;
    const char *method = rq->method ? rq->method : "GET";
    uint64_t timeout = rq->timeout_ms ? rq->timeout_ms : VM_HTTP_DEFAULT_TIMEOUT_MS;
    uint64_t connect = timeout < VM_HTTP_CONNECT_TIMEOUT_MS ? timeout : VM_HTTP_CONNECT_TIMEOUT_MS;
    const char *protocols = rq->allow_http ? "http,https" : "https";
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_QUICK_EXIT, 1L); /* never wait for a resolver thread */
    SET(CURLOPT_PROTOCOLS_STR, protocols);
    SET(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    SET(CURLOPT_DEFAULT_PROTOCOL, "https");
    SET(CURLOPT_URL, rq->url);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_MAXREDIRS, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
    SET(CURLOPT_TIMEOUT_MS, (long)timeout);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_USERAGENT, "vmmigrate/" VMM_VERSION);
    /* A Content-Length over the cap fails at once (write_cb enforces the
     * cap when none is given); not for HEAD, which gets no body. */
    if (strcmp(method, "HEAD") != 0)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)VM_HTTP_MAX_BODY);
    if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
        if (rq->body_len || strcmp(method, "DELETE") != 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
            SET(CURLOPT_COPYPOSTFIELDS, rq->body_len ? rq->body : "");
        }
    }
    /* libcurl drops a header given as "Name:" (only blanks after the colon):
     * send it as "Name;", its spelling for an empty value. */
    for (const char *const *hd = rq->headers; hd && *hd; hd++) {
        const char *colon = strchr(*hd, ':');
        char *copy = NULL;
        if (colon[strspn(colon + 1, " \t") + 1] == '\0')
            copy = xasprintf("%.*s;", (int)(colon - *hd), *hd);
        struct curl_slist *l = curl_slist_append(r->headers, copy ? copy : *hd);
        free(copy);
        if (!l) {
            rc = CURLE_OUT_OF_MEMORY;
            break;
        }
        r->headers = l;
    }
    SET(CURLOPT_HTTPHEADER, r->headers);
#undef SET
    return rc;
}

struct vm_http_req *vm_http_start(struct vm_http *h, const struct vm_http_request *rq,
                                  vm_http_cb cb, void *data)
{
    char *why = NULL;
    if (h->closing)
        why = xstrdup("HTTP client closing");
    else if (h->in_flight >= VM_HTTP_MAX_IN_FLIGHT)
        why = xasprintf("more than %d HTTP requests in flight", VM_HTTP_MAX_IN_FLIGHT);
    else
        why = vm_http_check(rq);
    if (why) {
        refuse(cb, data, why);
        free(why);
        return NULL;
    }
    struct vm_http_req *r = xcalloc(1, sizeof(*r));
    r->h = h;
    r->cb = cb;
    r->data = data;
    r->easy = curl_easy_init();
    CURLcode rc = r->easy ? configure(r, rq) : CURLE_OUT_OF_MEMORY;
    CURLMcode mc = CURLM_OK;
    if (rc == CURLE_OK)
        mc = curl_multi_add_handle(h->multi, r->easy);
    if (rc != CURLE_OK || mc != CURLM_OK) {
        why = rc != CURLE_OK
                  ? xasprintf("libcurl refused the request: %s", curl_easy_strerror(rc))
                  : xasprintf("libcurl refused the request: %s", curl_multi_strerror(mc));
        curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r);
        refuse(cb, data, why);
        free(why);
        return NULL;
    }
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    h->in_flight++;
    return r;
}

void vm_http_cancel(struct vm_http_req *r)
{
    if (!r || r->done)
        return;
    struct vm_http *h = r->h;
    h->dispatching++;
    finish(r, CURLE_OK, "cancelled");
    h->dispatching--;
    maybe_teardown(h);
}

void vm_http_close(struct vm_http *h, void (*closed)(void *), void *data)
{
    if (!h || h->closing)
        return;
    h->closing = true;
    h->closed = closed;
    h->closed_data = data;
    h->dispatching++;
    while (h->reqs)
        finish(h->reqs, CURLE_OK, "cancelled");
    h->dispatching--;
    maybe_teardown(h);
}
