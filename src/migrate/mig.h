/* SPDX-License-Identifier: MIT */
/* mig.h — the per-VM migration state machine.
 *
 * One `struct vm_mig` per VM of a job. It is created by job.c (which owns
 * and frees it with vm_mig_free after it reached a final state), drives
 * the libvirt backend (virt.h) through the thread pool, and tells the job
 * about every state change through `vm_mig_ops`. Everything here runs on the
 * loop thread.
 *
 *   QUEUED -> STARTING -> MIGRATING -> VERIFYING -> DONE
 *                 |            |            \-> FAILED (guest on source)
 *                 |            \-> (abort) -> VERIFYING -> ABORTED
 *                 \-> FAILED
 *   QUEUED -> SKIPPED (run interrupted before it started)
 *
 * A gated migration (gate.h; network-critical) stops between Perform and
 * Finish:
 *   ... MIGRATING -> GATE -(commit)-> VERIFYING -> DONE
 *                        \-(rollback)-> VERIFYING -> ROLLED_BACK (on source)
 * A connection lost while an ungated migration is aborted or verified
 * (the ssh process carrying it killed with vmmigrate's process group, say)
 * is opened again, within VM_MIG_REPAIR_BUDGET_MS, and the step is done
 * again: the abort on the source, then the verification, which also waits
 * while a migration job still runs on the source (a peer-to-peer
 * migration goes on without its client; when aborting, it is aborted).
 * Verification waits for the aborts and reconnects under way.
 *
 * At the gate, migrate/commit.h decides, once: the gate budget runs, the
 * job's features run their gate steps (ops->gate_steps) and report with
 * vm_mig_gate_decide() (so do signals, a target that stops and a lost
 * connection to the target, vm_mig_lost_action);
 * ops->on_decision records the decision durably before it is carried out.
 */
#ifndef VMM_MIG_H
#define VMM_MIG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libvirt/libvirt.h>

#include "backend/libvirt/virt.h"
#include "migrate/converge.h"
#include "plan/params.h"

enum vm_mig_state {
    VM_MIG_STATE_QUEUED,
    VM_MIG_STATE_STARTING,
    VM_MIG_STATE_MIGRATING,
    VM_MIG_STATE_GATE,
    VM_MIG_STATE_VERIFYING,
    /* final states from here on */
    VM_MIG_STATE_DONE,
    VM_MIG_STATE_FAILED,
    VM_MIG_STATE_ABORTED,
    VM_MIG_STATE_SKIPPED,
    VM_MIG_STATE_ROLLED_BACK,
    VM_MIG_STATE_COUNT,
};

/* Where the guest runs, as last observed. */
enum vm_mig_location {
    VM_MIG_LOCATION_UNKNOWN,
    VM_MIG_LOCATION_SOURCE,
    VM_MIG_LOCATION_TARGET,
};

/* What the migration looks like now (from job stats and events). */
struct vm_mig_progress {
    uint64_t data_total, data_processed, data_remaining;
    uint64_t mem_total, mem_processed, mem_remaining;
    uint64_t mem_bps;    /* bytes per second */
    uint64_t dirty_rate; /* pages per second */
    uint64_t page_size;  /* bytes (4096 when libvirt does not say) */
    uint64_t iteration;
    uint64_t downtime_ms; /* final, from the completed job */
    uint64_t setup_ms;
    bool has_downtime;
    bool postcopy_active;
    bool not_converging; /* the dirty rate keeps up with the transfer (converge.h) */
};

struct vm_mig_phase {
    const char *name;
    uint64_t wall_ms;
};

struct vm_mig;

struct vm_mig_ops {
    void (*on_state)(struct vm_mig *m, void *data);    /* any state change */
    void (*on_progress)(struct vm_mig *m, void *data); /* fresh job stats */
    /* an event worth recording: name and details (reference stolen) */
    void (*on_event)(struct vm_mig *m, const char *host, const char *event, json_t *details,
                     void *data);
    /* gated migrations: both sides wait at the gate (record it); then the
     * gate budget starts and gate_steps is called (migrate/commit.h) */
    void (*on_gate)(struct vm_mig *m, void *data);
    /* start the features' gate steps and report with vm_mig_gate_decide();
     * false: nothing to wait for (commit at once); true while a prepare
     * still runs is fine: call vm_mig_gate_steps() when it ended. NULL: no
     * steps */
    bool (*gate_steps)(struct vm_mig *m, void *data);
    /* the gate is decided: stop the gate steps still running */
    void (*gate_cancel)(struct vm_mig *m, void *data);
    /* the decision is about to be carried out: record it durably first;
     * false (could not record) turns a commit into a rollback */
    bool (*on_decision)(struct vm_mig *m, bool commit, void *data);
    /* the guest runs on the target (libvirt resumed it there, not in
     * post-copy): what is left is clean-up on the source (libvirt stops the
     * source QEMU, which takes a few hundred ms) and verification */
    void (*on_target)(struct vm_mig *m, void *data);
};

struct vm_mig {
    char *name;
    char uuid[VIR_UUID_STRING_BUFLEN];
    struct vm_virt_host *src, *dst; /* borrowed from the job */
    virDomainPtr dom;               /* source domain, owned */
    unsigned long memory_kib;
    struct vm_mig_params params;
    char *qmp_path; /* optional extra monitor on the source */

    enum vm_mig_state state;
    enum vm_mig_location location;
    struct vm_mig_progress progress;
    struct vm_converge converge; /* judges progress.not_converging */
    struct vm_mig_phase phases[16];
    int nphases;
    uint64_t start_mono_ms, end_mono_ms;
    uint64_t start_wall_ms, end_wall_ms;
    struct vm_virt_err err;    /* the first error that decided the result */
    bool gated;                /* run through the commit gate (set before start) */
    uint64_t gate_budget_ms;   /* ... how long it may hold there (0: the default) */
    bool on_target;            /* the guest was resumed on the target (phase on-target) */
    bool source_left;          /* runs on the target, but its source copy is not confirmed gone (the
                                  source could not tell): not settled, recover's to finish */
    int graphics_target_ready; /* graphics (SPICE) channels initialised on the target */
    uint64_t gate_enter_ms, gate_ms; /* when the gate was reached; time until the decision */
    bool gate_commit;                /* the decision taken at the gate */
    char *gate_reason;               /* why it was taken (owned) */
    const char *abort_reason;        /* "interrupted", "timeout"; NULL if not aborted */
    const char *timeout_taken;       /* the --timeout action taken, if any */
    char *target_lost; /* the target's connection was lost on the way to the gate: roll back
                          there at once, for this reason (owned); NULL if not */
    json_t *attempts;  /* earlier attempts in this run (retries): [{attempt, target, result,
                          error}], owned; NULL if this is the first */

    /* private */
    const struct vm_mig_ops *ops;
    void *ops_data;
    uv_loop_t *loop;
    uv_timer_t *stats_timer, *timeout_timer;
    uv_timer_t *probe_timer; /* a rollback waits for the source to answer (mig.c) */
    struct vm_qmp *qmp;
    struct vm_gate_session *gate;
    struct vm_commit *commit; /* the gate's decision (migrate/commit.h), while at the gate */
    int busy;                 /* outstanding thread-pool tasks */
    bool stats_inflight, migrate_returned, abort_requested, completed_event;
    /* a connection lost while aborting or verifying (not gated): connected
     * again (virt.h, vm_virt_host_reconnect) and the step done again */
    bool migrate_lost;         /* the migration call failed on a lost connection */
    bool abort_again;          /* the abort did not reach the source: again once connected */
    bool verify_wanted;        /* verification waits for `repair` to reach 0 */
    bool src_absent;           /* looked up again on a new connection: the source has no domain */
    int repair;                /* aborts, reconnects and look-ups under way */
    int reconnects;            /* reconnects asked for (bounded) */
    unsigned reconnect_failed; /* 1: the source's attempts are spent, 2: the target's */
    unsigned dom_gen;          /* the source connection's generation dom belongs to */
    uint64_t repair_until_ms;  /* vm_mono_ms(): no reconnect or look again past this (0: unset) */
    virDomainPtr *old_doms;    /* dom as it was on lost connections (other tasks may still hold
                                  one): freed with m */
    int nold_doms;
};

/* How long connecting again and looking again may take, per migration. */
#define VM_MIG_REPAIR_BUDGET_MS 60000
/* How many reconnects one migration may ask for. */
#define VM_MIG_RECONNECTS_MAX 6

struct vm_mig *vm_mig_new(uv_loop_t *loop, const char *name, struct vm_virt_host *src,
                          struct vm_virt_host *dst, const struct vm_mig_params *params,
                          const struct vm_mig_ops *ops, void *ops_data);
/* Start the migration (QUEUED -> STARTING). dom is adopted. */
void vm_mig_start(struct vm_mig *m, virDomainPtr dom, const char *qmp_path);
/* Abort a running migration (reason: "interrupted", ...); QUEUED ones are
 * SKIPPED. Safe to call in any state; idempotent. */
void vm_mig_abort(struct vm_mig *m, const char *reason);
/* At the gate: commit (the guest resumes on the target) or roll back (it
 * resumes on the source); reason is copied. No-op outside the GATE state. */
void vm_mig_gate_decide(struct vm_mig *m, bool commit, const char *reason);
/* At the gate: start the gate steps again (a prepare that was still running
 * when the gate was reached has ended). No-op elsewhere or once decided. */
void vm_mig_gate_steps(struct vm_mig *m);

/* Reactions while migrating (no-ops once the migration call returned):
 * raise the allowed downtime; switch to post-copy (needs params.postcopy,
 * which the caller checks). */
void vm_mig_set_max_downtime(struct vm_mig *m, uint64_t ms);
void vm_mig_postcopy(struct vm_mig *m);
/* Feed a libvirt domain event that concerns this VM (from job.c's routing). */
void vm_mig_domain_event(struct vm_mig *m, struct vm_virt_host *host,
                         const struct vm_virt_event *ev);
bool vm_mig_final(const struct vm_mig *m);

/* What a lost connection to host h (VM_VIRT_EVENT_CONNECTION_LOST, fed
 * through vm_mig_domain_event) does to m. */
enum vm_mig_lost_action {
    VM_MIG_LOST_NOTHING,  /* not gated, not m's host, or past the gate's decision: libvirt's
                             own calls fail and the verification finds out */
    VM_MIG_LOST_ROLLBACK, /* the target, at the undecided gate: roll back now */
    VM_MIG_LOST_AT_GATE,  /* the target, on the way to the gate: roll back once there */
    VM_MIG_LOST_KEEP,     /* the source, at the undecided gate: logged, the gate goes on */
};
enum vm_mig_lost_action vm_mig_lost_action(const struct vm_mig *m, const struct vm_virt_host *h);
const char *vm_mig_lost_action_name(enum vm_mig_lost_action a);
void vm_mig_free(struct vm_mig *m);

const char *vm_mig_state_name(enum vm_mig_state s);
const char *vm_mig_location_name(enum vm_mig_location l);

#endif
