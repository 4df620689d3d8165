/* SPDX-License-Identifier: MIT */
/* notify.h — webhooks: run started/finished, a VM failed or rolled back, an
 * operator is needed. Each event is POSTed as JSON to every --notify URL
 * with libcurl on the loop (http.h), retried with backoff (1 s, 2 s, 4 s),
 * never waited for by a migration; at the end of the run the last ones get
 * a few seconds, then are given up (and logged). A bearer token comes from
 * an owner-only file and is never logged.
 *
 * The job owns the `struct vm_notify`; vm_notify_close() ends it (its
 * handles close asynchronously; the loop must run on). */
#ifndef VMM_NOTIFY_H
#define VMM_NOTIFY_H

#include <jansson.h>
#include <uv.h>

#include "report/sink.h"

struct vm_notify;

/* NULL when no URL. token_file may be NULL; if given it must be a regular
 * file not readable by group or others: else NULL and *err. */
struct vm_notify *vm_notify_new(uv_loop_t *loop, const char *const *urls, int n,
                                const char *token_file, char **err);
/* Post {schema_version, event, time, run, details} (details stolen). */
void vm_notify_send(struct vm_notify *nf, const char *event, const char *run_id, json_t *details);
/* Give what is still pending until grace_ms, then cancel; free afterwards. */
void vm_notify_close(struct vm_notify *nf, uint64_t grace_ms);

/* The "webhooks" sink: posts every notice event (vm_event_rec.cls ==
 * VM_EVENT_CLASS_NOTICE) with the record's run id; on_finish closes with
 * cfg->notify_grace_ms (0 = 5000 ms). */
int vm_notify_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err);
/* The details of a VM's notice ("vm.failed", "vm.rolled-back",
 * "needs-operator"): vm, source, target, result, location, error. */
json_t *vm_notify_vm_details(const struct vm_state_rec *r);

#endif
