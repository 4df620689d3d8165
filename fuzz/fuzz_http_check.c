/* SPDX-License-Identifier: MIT */
/* fuzz_http_check.c — libFuzzer harness for the HTTP request policy
 * (vm_http_check in src/util/http.c): what a policy asks for, before libcurl
 * sees it.
 *
 * Input: byte 0 holds flags (bit 0 allow_http, bit 1 a body, bit 2 the
 * method from the input rather than from the list, bits 3-5 the method's
 * index); the rest splits at NUL bytes into the method (when from the
 * input), the url and up to 80 headers. Oracles beyond the sanitizers:
 *  - an accepted request has an allowed method, an https url (http only
 *    with allow_http) without blanks or control characters, and headers
 *    "token: value" with neither CR nor LF, none of them the client's own;
 *  - a refusal's message holds no control characters (it quotes input);
 *  - the verdict does not change when asked twice. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "get", NULL};

static void check_accepted(const struct vm_http_request *rq)
{
    bool known = false;
    for (int i = 0; i < 6; i++)
        known = known || strcmp(rq->method ? rq->method : "GET", methods[i]) == 0;
    if (!known)
        abort();
    const char *u = rq->url;
    if (strncasecmp(u, "https:", 6) != 0 && !(rq->allow_http && strncasecmp(u, "http:", 5) == 0))
        abort();
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            abort();
    for (const char *const *h = rq->headers; h && *h; h++) {
        if (strpbrk(*h, "\r\n"))
            abort();
        size_t n = strcspn(*h, ":");
        if (n == 0 || (*h)[n] != ':' || strcspn(*h, " \t") < n)
            abort();
        if (strncasecmp(*h, "Host:", 5) == 0 || strncasecmp(*h, "Content-Length:", 15) == 0 ||
            strncasecmp(*h, "Transfer-Encoding:", 18) == 0 || strncasecmp(*h, "Proxy-", 6) == 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    const char *fields[84];
    int n = 0;
    for (char *p = buf; n < 83 && p < buf + size - 1; p += strlen(p) + 1)
        fields[n++] = p;
    int i = 0;
    struct vm_http_request rq = {.allow_http = flags & 1};
    if (flags & 4)
        rq.method = i < n ? fields[i++] : NULL;
    else
        rq.method = methods[(flags >> 3) & 7]; /* NULL, index 7: the default */
    rq.url = i < n ? fields[i++] : NULL;
    const char *headers[84];
    int nh = 0;
    while (i < n && nh < 80)
        headers[nh++] = fields[i++];
    headers[nh] = NULL;
    rq.headers = headers;
    if (flags & 2) {
        rq.body = "x";
        rq.body_len = 1;
    }

    char *why = vm_http_check(&rq);
    if (!why) {
        check_accepted(&rq);
    } else {
        for (const unsigned char *p = (const unsigned char *)why; *p; p++)
            if (*p < ' ' || *p == 0x7f)
                abort();
    }
    char *again = vm_http_check(&rq);
    if (!why != !again || (why && strcmp(why, again) != 0))
        abort();
    free(why);
    free(again);
    free(buf);
    return 0;
}
