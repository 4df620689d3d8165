/* SPDX-License-Identifier: MIT */
/* uri.c — see uri.h. The URI is parsed by libcurl's URL API, which takes
 * libvirt's schemes (qemu+ssh, test) with CURLU_NON_SUPPORT_SCHEME. */
#include "util/uri.h"

#include <curl/curl.h>
#include <string.h>

#include "util/util.h"

char *vm_uri_host(const char *uri)
{
    const char *auth = uri ? strstr(uri, "://") : NULL;
    /* No authority ("test:///default"): libcurl would take the path's first
     * segment for a host. */
    if (!auth || auth[3] == '/' || auth[3] == '\0')
        return NULL;
    CURLU *u = curl_url();
    char *host = NULL, *out = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, uri, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host)
        out = xstrdup(host);
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

char *vm_host_short(const char *uri, const char *hostname)
{
    if (hostname && *hostname)
        return xstrdup(hostname);
    char *host = vm_uri_host(uri);
    return host ? host : xstrdup(uri ? uri : "-");
}
