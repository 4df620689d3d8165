/* SPDX-License-Identifier: MIT */
/* qmp_mig.h — one live migration between two QEMU processes that libvirt
 * does not manage, addressed by their QMP sockets and a migration URI, with
 * the same commit gate as libvirt guests (commit.h): QEMU's
 * pause-before-switchover stops the source (guest paused, everything sent)
 * at "pre-switchover"; the features' gate steps run; migrate-continue
 * commits, migrate_cancel rolls back (the source resumes by itself, the
 * target QEMU exits). The target must have been started with
 * `-incoming defer`.
 *
 * The state machine runs on a loop it is given and owns no signal, no loop
 * and no output: what it has to say goes to its owner through
 * `vm_qmig_ops` — trace events, state changes, journal records (written,
 * and fsync'd, before the decision they record is carried out: a commit
 * that cannot be recorded becomes a rollback) and the end. The run of it
 * (run/run_qemu.h) owns the loop, the signals, the journal and the sinks.
 *
 * Journal records it asks for: started (with "backend": "qemu", the
 * features and, for a network-critical migration with features, what a
 * crash leaves owed), gate-reached, commit-decided or rollback-decided,
 * finished, deinit-done or after-done.
 *
 * Ownership: vm_qmig_new() borrows the loop, the spec and the ops' data for
 * the migration's life; the migration owns its QMP connections, its
 * features and its gate. vm_qmig_free() (NULL is fine) after the loop has
 * run out. */
#ifndef VMM_QMP_MIG_H
#define VMM_QMP_MIG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "migrate/mig.h"
#include "plan/decision.h"

struct vm_policy;
struct vm_qmig;

struct vm_qmig_spec {
    const char *name; /* for reports */
    const char *source_qmp, *target_qmp;
    const char *uri; /* e.g. tcp:127.0.0.1:4444 */
    bool gated;      /* network-critical */
    uint64_t bandwidth_mibs, max_downtime_ms, gate_timeout_ms, timeout_s;
    const struct vm_feature_decl *features;
    int nfeatures;
    struct vm_policy *policy; /* implements the features (may be NULL) */
};

struct vm_qmig_ops {
    /* a trace event: name and details (reference stolen) */
    void (*on_event)(struct vm_qmig *q, const char *event, json_t *details, void *data);
    /* where the migration stands now */
    void (*on_state)(struct vm_qmig *q, enum vm_mig_state state, void *data);
    /* a journal record (fields stolen): 0, or -1 if it could not be written */
    int (*on_record)(struct vm_qmig *q, const char *record, json_t *fields, void *data);
    /* the migration is over: connections closed, features done */
    void (*on_done)(struct vm_qmig *q, void *data);
};

/* What the migration came to (valid until vm_qmig_free). */
struct vm_qmig_outcome {
    const char *result;   /* migrated, failed, rolled-back, aborted; NULL until known */
    const char *location; /* source, target, unknown; NULL until known */
    const char *uuid;     /* the source QEMU's (query-uuid), or NULL before */
    char *error;          /* the first failure, or NULL */
    char *gate_reason;    /* why the gate decided as it did, or NULL */
    bool decided, commit; /* the gate's decision */
    bool interrupted;     /* cancelled: vm_qmig_cancel or --timeout */
    uint64_t start_ms, end_ms, gate_ms;
};

struct vm_qmig *vm_qmig_new(uv_loop_t *loop, const struct vm_qmig_spec *spec,
                            const struct vm_qmig_ops *ops, void *data);
/* Connect both QMP sockets and migrate; ops->on_done tells the end. */
void vm_qmig_start(struct vm_qmig *q);
/* End before starting: failed with MSG, the guest on the source. */
void vm_qmig_fail(struct vm_qmig *q, const char *msg);
/* Stop what runs: roll back at the gate, cancel while copying. */
void vm_qmig_cancel(struct vm_qmig *q, const char *reason);
const struct vm_qmig_outcome *vm_qmig_outcome(const struct vm_qmig *q);
/* The report's "vm" object (new reference); a migration that never ended
 * counts as failed, the guest's location unknown. */
json_t *vm_qmig_report(struct vm_qmig *q);
void vm_qmig_free(struct vm_qmig *q);

#endif
