/* SPDX-License-Identifier: MIT */
/* qmp_sync.h — blocking QMP sessions, one command at a time, for code that
 * does nothing else meanwhile (recover). A session runs the loop-only client
 * (qmp.h) on a private libuv loop of its own, so it may be used from any
 * thread (one at a time): recover runs on the run's thread pool too.
 *
 * A QEMU process that libvirt does not manage is named in the journal by
 * its QMP socket: VM_QMP_URI_PREFIX followed by the socket's absolute path
 * ("qemu+qmp:///run/vm1.qmp"), never to be taken for a libvirt URI.
 *
 * A session owns its loop and client; vm_qmp_sync_close() (NULL is fine)
 * frees everything. Strings handed back through char **err are the
 * caller's. */
#ifndef VMM_QMP_SYNC_H
#define VMM_QMP_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define VM_QMP_URI_PREFIX "qemu+qmp://"

/* The journal's name for the QMP socket at PATH (a relative PATH is made
 * absolute); the caller frees it. */
char *vm_qmp_uri(const char *path);
/* The socket path of such a name (pointing into uri), or NULL if uri is
 * not one (a libvirt URI). */
const char *vm_qmp_uri_path(const char *uri);

struct vm_qmp_sync;

/* Connect to the socket at PATH and negotiate, within timeout_ms (the
 * bound of each command too). NULL and *err if that fails; *gone then
 * says whether nothing listens there at all (no socket file, or the
 * connection refused): the QEMU process is gone. */
struct vm_qmp_sync *vm_qmp_sync_open(const char *path, uint64_t timeout_ms, bool *gone,
                                     char **err);
/* Run CMD with ARGS (NULL or an object, stolen) and wait for the reply:
 * its "return" (new reference), or NULL and *err ("Class: description";
 * *closed true when the connection ended before a reply came, as it does
 * after "quit"). closed may be NULL. */
json_t *vm_qmp_sync_command(struct vm_qmp_sync *s, const char *cmd, json_t *args, bool *closed,
                            char **err);
void vm_qmp_sync_close(struct vm_qmp_sync *s);

#endif
