/* SPDX-License-Identifier: MIT */
/* uri.h — the short name of a host for the human tables (plan, status): its
 * libvirt hostname where one is known, else the host part of its URI, else
 * the URI. Owns nothing; returned strings are the caller's (free()). */
#ifndef VMM_URI_H
#define VMM_URI_H

#include <stddef.h>

/* The host part of a connection URI, without user or port ("hv12" of
 * "qemu+ssh://root@hv12:22/system"); NULL when the URI names no host
 * ("qemu:///system", "test:///default") or is not a URI. */
char *vm_uri_host(const char *uri);

/* hostname if non-empty, else vm_uri_host(uri), else uri (never NULL; a
 * NULL uri gives "-"). */
char *vm_host_short(const char *uri, const char *hostname);

/* A host's name for a narrow column (the progress meter, a queued VM's
 * reason): the first label of its libvirt hostname ("hv13.example.org" ->
 * "hv13"), else its URI's host (whole: it may be an address), else the
 * URI. Either may be NULL. */
char *vm_host_label(const char *hostname, const char *uri);

/* The short names of n hosts (uris[i]; hostnames NULL or its [i] NULL where
 * none is known) for one table: each vm_host_short's, unless hosts of
 * different URIs would share it (one machine's hostname for several
 * daemons; two ports of one address); those are named by their URI's host,
 * and where that is shared too, by their URI. Equal URIs get equal names.
 * names[i]: new strings, the caller's. */
void vm_host_names(size_t n, const char *const *uris, const char *const *hostnames, char **names);

#endif
