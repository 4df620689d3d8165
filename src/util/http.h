/* SPDX-License-Identifier: MIT */
/* http.h — HTTP(S) requests on the loop, for policies (libcurl's multi
 * interface, driven by libuv as in libcurl's docs/examples/multi-uv.c).
 *
 * A `struct vm_http` (one per loop) owns a CURLM, one uv_timer_t for
 * libcurl's timeouts and one uv_poll_t per socket libcurl asks to watch.
 * Nothing blocks the loop: names are resolved in libcurl's resolver threads
 * (cancelling a lookup does not wait for it). vm_http_close() cancels what
 * is still in flight and frees the client in its close callbacks; closed()
 * runs after the last one. A `struct vm_http_req` belongs to its client and
 * frees itself after its callback returned; the response and every string
 * in it are borrowed for the duration of the callback only.
 *
 * The requests come from policies run as root, so the client is strict, and
 * nothing in this API loosens TLS:
 *   - https only; plain http only with allow_http; every other scheme (ftp,
 *     file, gopher, ...) is refused before anything is sent;
 *   - methods GET, HEAD, POST, PUT, PATCH, DELETE (upper case); GET and HEAD
 *     carry no body; a body is sent with Content-Length (libcurl adds
 *     "Content-Type: application/x-www-form-urlencoded" unless a
 *     Content-Type header is given);
 *   - headers are "Name: value": a token name, a value without control
 *     characters (no CR/LF injection), at most VM_HTTP_MAX_HEADERS of at most
 *     VM_HTTP_MAX_HEADER_LEN bytes; headers that frame the message or the
 *     connection (Host, Content-Length, Transfer-Encoding, TE, Trailer,
 *     Connection, Upgrade, Expect, Proxy-*) are the client's and refused;
 *     "Name:" sends an empty value (it does not remove a header);
 *   - request and response bodies at most VM_HTTP_MAX_BODY bytes: a larger
 *     response fails the request (error set, truncated true, body holds the
 *     first VM_HTTP_MAX_BODY bytes, or none when Content-Length announced
 *     too much) so a caller never mistakes a cut body for a whole one;
 *   - redirects are not followed: a 3xx is the response;
 *   - total timeout timeout_ms (0: VM_HTTP_DEFAULT_TIMEOUT_MS, at most
 *     VM_HTTP_MAX_TIMEOUT_MS), connecting at most VM_HTTP_CONNECT_TIMEOUT_MS
 *     of it;
 *   - TLS peer and host verified against the system CA store, always;
 *   - no cookies, no .netrc, no HSTS or alt-svc files, no content decoding;
 *   - proxies: the operator's environment is honoured as libcurl reads it
 *     (http_proxy, https_proxy/HTTPS_PROXY, all_proxy/ALL_PROXY,
 *     no_proxy/NO_PROXY; never upper-case HTTP_PROXY). It is vmmigrate's
 *     environment, not the policy's: a policy cannot choose a proxy;
 *   - at most VM_HTTP_MAX_IN_FLIGHT requests per client at once;
 *   - User-Agent "vmmigrate/VERSION" unless a header sets another.
 * Error strings never contain the URL (it may carry credentials). */
#ifndef VMM_HTTP_H
#define VMM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define VM_HTTP_MAX_BODY (1024 * 1024) /* request and response bodies */
#define VM_HTTP_MAX_URL 8192
#define VM_HTTP_MAX_HEADERS 64
#define VM_HTTP_MAX_HEADER_LEN 8192
#define VM_HTTP_DEFAULT_TIMEOUT_MS 10000
#define VM_HTTP_MAX_TIMEOUT_MS 300000
#define VM_HTTP_CONNECT_TIMEOUT_MS 5000
#define VM_HTTP_MAX_IN_FLIGHT 256

struct vm_http;
struct vm_http_req;

/* All borrowed by vm_http_start (copied before it returns). */
struct vm_http_request {
    const char *method; /* NULL: "GET" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value", or NULL */
    const char *body;           /* body_len bytes (may hold NULs), or NULL */
    size_t body_len;
    uint64_t timeout_ms; /* 0: VM_HTTP_DEFAULT_TIMEOUT_MS */
    bool allow_http;     /* permit plain http:// */
};

struct vm_http_response {
    long status;      /* HTTP status; 0 exactly when error is set */
    const char *body; /* never NULL; NUL-terminated after body_len;
                         empty when error is set, unless truncated */
    size_t body_len;
    const char *content_type; /* the Content-Type header, or NULL */
    const char *error;        /* why there is no response, or NULL */
    bool truncated;           /* the body exceeded VM_HTTP_MAX_BODY (error set) */
};

typedef void (*vm_http_cb)(const struct vm_http_response *r, void *data);

/* Never NULL: when libcurl cannot start, the process aborts (as xmalloc). */
struct vm_http *vm_http_new(uv_loop_t *loop);
/* Every request still in flight is cancelled (its callback runs, before this
 * returns, with error "cancelled"); the client then frees itself in its
 * close callbacks and calls closed(data) (closed may be NULL). h is invalid
 * once this is called; NULL is ignored, a second call does nothing. May be
 * called from a request's callback. */
void vm_http_close(struct vm_http *h, void (*closed)(void *), void *data);

/* Why RQ would be refused (the caller frees the string), or NULL. */
char *vm_http_check(const struct vm_http_request *rq);

/* Start RQ. cb runs exactly once, on the loop: when the response is in,
 * when the transfer fails, when cancelled; or before this returns when RQ
 * is refused (vm_http_check) or the client is closing or full, and then
 * NULL is returned. Otherwise returns the request, valid until its
 * callback returns. Callbacks may start, cancel and close. */
struct vm_http_req *vm_http_start(struct vm_http *h, const struct vm_http_request *rq,
                                  vm_http_cb cb, void *data);
/* Cancel R: its callback runs before this returns, with error "cancelled".
 * NULL, or R whose callback is running, is ignored. */
void vm_http_cancel(struct vm_http_req *r);

#endif
