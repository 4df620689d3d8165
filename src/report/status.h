/* status.h — what dashboards read while a run goes on: a status file (JSON,
 * schema/status.schema.json) and a node_exporter textfile-collector file
 * (Prometheus text format), each rewritten atomically (write + rename) at
 * most twice a second and at every state change.
 *
 * Borrows the migrations; the job owns the `struct vm_status` and frees it
 * with vm_status_free() (its timer closes asynchronously). */
#ifndef VMM_STATUS_H
#define VMM_STATUS_H

#include <stdbool.h>
#include <uv.h>

#include "migrate/mig.h"

struct vm_status;

/* NULL if neither path is given. */
struct vm_status *vm_status_new(uv_loop_t *loop, const char *status_path, const char *metrics_path,
                                const char *run_id);
void vm_status_set_run_id(struct vm_status *s, const char *run_id);
/* The migrations of the run (borrowed; may be called again as they appear). */
void vm_status_set_migs(struct vm_status *s, struct vm_mig *const *migs, int n);
/* Something changed: write now (rate-limited to 2/s; the timer catches up). */
void vm_status_touch(struct vm_status *s);
/* The run ended: a last write with its result and exit code. */
void vm_status_finish(struct vm_status *s, const char *result, int exit_code);
void vm_status_free(struct vm_status *s);

/* The texts, for tests. */
char *vm_status_json_text(struct vm_status *s);
char *vm_status_metrics_text(struct vm_status *s);

#endif
