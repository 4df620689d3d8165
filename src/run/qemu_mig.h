/* qemu_mig.h — the QMP backend: one live migration between two QEMU
 * processes that libvirt does not manage, addressed by their QMP sockets and
 * a migration URI, with the same commit gate as libvirt guests: QEMU's
 * pause-before-switchover stops the source (guest paused, everything sent)
 * at "pre-switchover"; the features' gate steps run; migrate-continue
 * commits, migrate_cancel rolls back (the source resumes by itself, the
 * target QEMU exits). The target must have been started with
 * `-incoming defer`.
 *
 * vm_qemu_migrate() runs its own loop to the end and owns everything it
 * creates; the spec is borrowed. Everything it tells the outside goes
 * through the sinks (report/sinks.h): trace events, the VM's state records,
 * the finish record with the report.
 *
 * It journals like a run (journal/journal.h), one journal per migration in
 * spec->journal_dir, the source and target named by their QMP sockets
 * (backend/qemu/qmp_sync.h: "qemu+qmp:///path"): started (with "backend":
 * "qemu", the features and, for a network-critical migration with
 * features, what a crash leaves owed), gate-reached, commit-decided or
 * rollback-decided (fsync'd before the decision is carried out: a commit
 * that cannot be recorded becomes a rollback), finished, deinit-done or
 * after-done. `vmmigrate recover` settles what a crash leaves open
 * (journal/recover.c), `vmmigrate status` shows it. */
#ifndef VMM_QEMU_MIG_H
#define VMM_QEMU_MIG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "plan/decision.h"

struct vm_policy;

struct vm_qemu_spec {
    const char *name; /* for reports */
    const char *source_qmp, *target_qmp;
    const char *uri; /* e.g. tcp:127.0.0.1:4444 */
    bool gated;      /* network-critical */
    uint64_t bandwidth_mibs, max_downtime_ms, gate_timeout_ms, timeout_s;
    const struct vm_feature_decl *features;
    int nfeatures;
    struct vm_policy *policy; /* implements the features (may be NULL) */
    const char *events_path;
    const char *journal_dir; /* required */
};

/* Returns a VM_EXIT_* code; *report (new reference) describes the outcome. */
int vm_qemu_migrate(const struct vm_qemu_spec *spec, json_t **report);

#endif
