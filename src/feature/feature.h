/* SPDX-License-Identifier: MIT */
/* feature.h — the features of one migration: named units that must (or
 * should) initialise on the target, with four steps:
 *   prepare  while memory is copied (slow work belongs here)
 *   gate     at the commit gate: complete or verify, fast
 *   after    once the guest runs on the target (clean up on the source)
 *   deinit   on rollback: undo, in reverse order, exactly once for every
 *            feature whose prepare or gate ran
 * Network-critical migrations run prepare at the start and gate at the gate
 * (a required feature that fails rolls the migration back); urgent ones run
 * prepare, gate and after best-effort once the guest runs on the target.
 *
 * Implementations: built in (the table in feature_builtin.c: announce,
 * spice, vdp, one file each) or defined by the policy with vmm.feature().
 * A `struct vm_features` belongs to the job, one per
 * migration; it borrows the plan item's declarations and the policy, and is
 * freed with vm_features_free() once vm_features_busy() is false. */
#ifndef VMM_FEATURE_H
#define VMM_FEATURE_H

#include <stdbool.h>

#include <jansson.h>
#include <uv.h>

#include "plan/decision.h"

struct vm_exec_hosts;
struct vm_exec_share;
struct vm_policy;
struct vm_features;

enum vm_feature_step {
    VM_FEATURE_PROBE, /* preflight: can it work on that target at all? no side effects */
    VM_FEATURE_PREPARE,
    VM_FEATURE_GATE,
    VM_FEATURE_AFTER,
    VM_FEATURE_DEINIT,
};

/* Is NAME a feature this build or the policy implements? */
bool vm_feature_known(const char *name, const struct vm_policy *policy);
/* Is NAME built in? (Then it is reserved: a policy cannot define it.) */
bool vm_feature_builtin(const char *name);
/* The I-th built-in's name (0..), or NULL past the end. */
const char *vm_feature_builtin_name(int i);
/* "announce, spice, vdp": the built-ins, for messages (malloc'd). */
char *vm_feature_builtin_names(void);
/* Must a later run do STEP (VM_FEATURE_DEINIT or VM_FEATURE_AFTER) of
 * NAME for us if we crash before it ran? (a built-in: as its row in
 * the table says; a policy feature: if it defined the step.) */
bool vm_feature_owed_after_crash(const char *name, enum vm_feature_step step,
                                 const struct vm_policy *policy);

/* Called when a step finished for every feature: ok = every required one
 * succeeded; reason = the first required failure (borrowed), or NULL. */
typedef void (*vm_features_done_cb)(struct vm_features *f, bool ok, const char *reason, void *data);
/* Every step result, for the event stream: (feature, step, ok, detail). */
typedef void (*vm_features_event_cb)(struct vm_features *f, const char *feature, const char *step,
                                     bool ok, const char *detail, void *data);

/* What the features act on: the two hosts (URIs, for vmm.exec) and how
 * commands reach them (hosts: exec.h, borrowed from the run, NULL: no
 * overrides), whether the migration is gated, and what built-ins ask of
 * the backend (each in a backend's own way: libvirt or QMP; NULL: this
 * backend cannot, the step fails). The run fills it in. announce: run QEMU's announce-self on the
 * target, then vm_features_announced(). */
struct vm_feature_env {
    const char *source, *target;
    const struct vm_exec_hosts *hosts;
    /* where a read-only query (a probe) may join the same query of another
     * VM on the same host (exec.h), or NULL */
    struct vm_exec_share *share;
    bool gated;
    void (*announce)(struct vm_features *f, void *ctx);
    /* spice: count the SPICE channels clients hold on the source (then
     * vm_features_spice_counted()); how many are initialised on the target */
    void (*spice_count)(struct vm_features *f, void *ctx);
    int (*spice_target_ready)(void *ctx);
    void *ctx;
};

struct vm_features *vm_features_new(uv_loop_t *loop, const struct vm_feature_env *env, json_t *vm,
                                    const struct vm_feature_decl *decls, int n,
                                    struct vm_policy *policy, vm_features_event_cb on_event,
                                    void *data);
/* The backend's announce finished (ok, or why not). */
void vm_features_announced(struct vm_features *f, bool ok, const char *detail);
/* The backend counted N SPICE channels on the source (N < 0: failed, why). */
void vm_features_spice_counted(struct vm_features *f, int n, const char *why);
/* Run STEP over the features (deinit: in reverse, only those owed); done is
 * called once, possibly before this returns. */
void vm_features_run(struct vm_features *f, enum vm_feature_step step, vm_features_done_cb done);
bool vm_features_busy(const struct vm_features *f);
/* The steps to come run again: a crash left unknown whether they ran
 * (a step-started record without its -done). A policy's steps see
 * ctx.redo = true. */
void vm_features_set_redo(struct vm_features *f, bool redo);
/* Every feature owes its deinit (a crashed run's prepare may have run). */
void vm_features_owe_deinit(struct vm_features *f);
/* Stop the step in progress (the gate was decided without it): a running
 * command is killed, the step counts as failed, done runs. A built-in's
 * blocking call cannot be stopped: it finishes, and its result is dropped. */
void vm_features_cancel(struct vm_features *f);
/* [{name, required, probe, prepare, gate, after, deinit}] with each step's outcome
 * ("ok", "failed: ...", "skipped: ...") or null if it did not run. */
json_t *vm_features_to_json(const struct vm_features *f);
void vm_features_free(struct vm_features *f);
/* Take STEP's outcomes from another instance of the same declarations (the
 * preflight probe's). */
void vm_features_adopt(struct vm_features *dst, const struct vm_features *src,
                       enum vm_feature_step step);

#endif
