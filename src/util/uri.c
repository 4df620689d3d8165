/* SPDX-License-Identifier: MIT */
/* uri.c — see uri.h. The URI is parsed by libcurl's URL API, which takes
 * libvirt's schemes (qemu+ssh, test) with CURLU_NON_SUPPORT_SCHEME. */
#include "util/uri.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
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

char *vm_host_label(const char *hostname, const char *uri)
{
    if (hostname && *hostname)
        return xstrndup(hostname, strcspn(hostname, "."));
    return vm_host_short(uri, NULL);
}

/* Host i's name at level 0 (hostname), 1 (the URI's host) or 2 (the URI). */
static char *name_at(const char *uri, const char *hostname, int level)
{
    char *host = level < 2 ? vm_uri_host(uri) : NULL;
    if (level == 0 && hostname && *hostname) {
        free(host);
        return xstrdup(hostname);
    }
    return host ? host : xstrdup(uri ? uri : "-");
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

void vm_host_names(size_t n, const char *const *uris, const char *const *hostnames, char **names)
{
    int *level = xcalloc(n ? n : 1, sizeof(*level));
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n; i++)
            names[i] = name_at(uris[i], hostnames ? hostnames[i] : NULL, level[i]);
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (strcmp(names[i], names[j]) == 0 && !same(uris[i], uris[j])) {
                    for (size_t k = 0; k < 2; k++) {
                        size_t h = k ? j : i;
                        if (level[h] < 2) {
                            level[h]++;
                            changed = true;
                        }
                    }
                }
        /* Equal URIs move together: the same host keeps one name. */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                if (same(uris[i], uris[j]) && level[j] > level[i]) {
                    level[i] = level[j];
                    changed = true;
                }
        if (changed)
            for (size_t i = 0; i < n; i++)
                free(names[i]);
    }
    free(level);
}
