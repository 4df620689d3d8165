/* SPDX-License-Identifier: MIT */
/* status.h — what dashboards read while a run goes on: a status file (JSON,
 * schema/status.schema.json) and a node_exporter textfile-collector file
 * (Prometheus text format), each rewritten atomically (write + rename) at
 * most twice a second and at every state change.
 *
 * Fed records, as the "status" sink (vm_status_sink_new, sinks.c's table)
 * or one by one (vm_status_put). The owner frees it with vm_status_free()
 * (its timer closes asynchronously). */
#ifndef VMM_STATUS_H
#define VMM_STATUS_H

#include <stdbool.h>
#include <uv.h>

#include "report/sink.h"

struct vm_status;

/* NULL if neither path is given. sources: as vm_status_set_sources. */
struct vm_status *vm_status_new(uv_loop_t *loop, const char *status_path, const char *metrics_path,
                                const char *run_id, const char *const *sources, int nsources);
void vm_status_set_run_id(struct vm_status *s, const char *run_id);
/* The run's source URIs (copied): every metrics series carries its source
 * host's as the source label; a VM record's own source is added to them. */
void vm_status_set_sources(struct vm_status *s, const char *const *sources, int n);
/* Where one VM stands now (copied, kept by rec->index), then a write
 * (rate-limited, as vm_status_touch). */
void vm_status_put(struct vm_status *s, const struct vm_state_rec *rec);
/* Something changed: write now (rate-limited to 2/s; the timer catches up). */
void vm_status_touch(struct vm_status *s);
/* The run ended: a last write with its result and exit code. */
void vm_status_finish(struct vm_status *s, const char *result, int exit_code);
void vm_status_free(struct vm_status *s);

/* The sink: on_state keeps the VM's record and writes (rate-limited),
 * on_event takes the run id, on_finish writes the last time. */
int vm_status_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err);

/* The texts, for tests. */
char *vm_status_json_text(struct vm_status *s);
char *vm_status_metrics_text(struct vm_status *s);

#endif
