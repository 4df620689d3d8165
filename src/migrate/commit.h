/* SPDX-License-Identifier: MIT */
/* commit.h — the commit gate's one decision path, for every backend.
 *
 * A gated (network-critical) migration holds the guest paused on both sides
 * between the copy and the switch-over. A `struct vm_commit` owns that
 * moment for one migration, whichever backend carries it (libvirt's
 * protocol v3 in migrate/mig.c, QMP in migrate/qmp_mig.c):
 *
 *   - the gate budget: a timer started when the gate is reached; the guest's
 *     downtime grows one for one with the time spent here, so when it runs
 *     out the migration rolls back;
 *   - the features' gate steps, started through ops->steps (the owner knows
 *     its features; a prepare still running is waited for: the owner calls
 *     vm_commit_steps() again when it ends);
 *   - the decision, taken exactly once, whoever asks first (every required
 *     feature ready or one failed, the budget, a signal, a lost host), then in
 *     this order: ops->announce (events), ops->cancel (steps still running are
 *     stopped), ops->record (durably, before anything acts on it: a commit
 *     that cannot be recorded becomes a rollback, since a crash could then
 *     run the guest twice), ops->carry_out (the backend switches over or
 *     resumes the source).
 *
 * Everything runs on the loop thread. The owner creates it when its
 * migration reaches the gate and frees it with vm_commit_free() (NULL is
 * fine) once the migration left the gate; the timer is closed then and the
 * memory released in its close callback, so the loop must run once more. */
#ifndef VMM_COMMIT_H
#define VMM_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

/* The gate budget when a decision names none. */
#define VM_COMMIT_DEFAULT_BUDGET_MS 30000

struct vm_commit_ops {
    /* Start the features' gate steps; each outcome comes back through
     * vm_commit_decide(). Return false when there is nothing to wait for
     * (then the gate commits at once). Returning true while a prepare still
     * runs is fine: call vm_commit_steps() when it ended. NULL: no steps. */
    bool (*steps)(void *data);
    /* The decision is taken: stop the steps still running (optional). */
    void (*cancel)(void *data);
    /* Tell observers (optional): the decision, why, how long the guest was
     * held at the gate. */
    void (*announce)(void *data, bool commit, const char *reason, uint64_t held_ms);
    /* Record the decision durably before it is carried out; false: it could
     * not be recorded (optional: NULL records nothing). */
    bool (*record)(void *data, bool commit, const char *reason);
    /* Carry the decision out (required). */
    void (*carry_out)(void *data, bool commit, const char *reason);
};

struct vm_commit;

/* The gate is reached now; budget_ms 0 means VM_COMMIT_DEFAULT_BUDGET_MS.
 * ops must outlive the session; data is the owner's. Nothing starts yet. */
struct vm_commit *vm_commit_new(uv_loop_t *loop, uint64_t budget_ms,
                                const struct vm_commit_ops *ops, void *data);
/* Start the budget and the features' gate steps. */
void vm_commit_enter(struct vm_commit *c);
/* Start the gate steps again, if the gate is still undecided (a prepare
 * that was still running when the gate was reached has ended). */
void vm_commit_steps(struct vm_commit *c);
/* Decide (commit or roll back, and why; reason is copied). Only the first
 * call counts: it returns true; later ones return false and do nothing. */
bool vm_commit_decide(struct vm_commit *c, bool commit, const char *reason);
bool vm_commit_decided(const struct vm_commit *c);
/* The decision carried out (valid once decided): commit or not, why. */
bool vm_commit_committed(const struct vm_commit *c);
const char *vm_commit_reason(const struct vm_commit *c);
/* How long the guest has been (or was, once decided) held at the gate. */
uint64_t vm_commit_held_ms(const struct vm_commit *c);
void vm_commit_free(struct vm_commit *c);

#endif
