/* SPDX-License-Identifier: MIT */
/* run_priv.h — what the files of run/ share about one run (job.h,
 * run_qemu.h): `struct job` (the run: its loop, signals, stage table,
 * hosts, plan, slots, sinks), `struct vm_slot` (one VM across its
 * attempts), the stage ids, and the functions one file offers the others.
 * Everything here runs on the loop thread.
 *
 * The spine (job.c) is the same for every kind of run: a `struct run_kind`
 * names its stage table (run_next()/run_stop(); the last stage reports) and
 * what SIGINT/SIGTERM do; run_open() sets up the sinks and the signals on
 * the job's loop. A libvirt run (job.c) and a QMP run (run_qemu.c) each
 * have their table.
 *
 * Ownership: the job owns its hosts, plan, preflight records, probes,
 * slots, sinks, journal and (QMP run) its migration; a slot owns its
 * attempts (struct vm_mig), their features and its source domain; all are
 * freed in run_free() (job.c). */
#ifndef VMM_RUN_PRIV_H
#define VMM_RUN_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "backend/libvirt/virt.h"
#include "feature/feature.h"
#include "journal/journal.h"
#include "migrate/mig.h"
#include "plan/plan.h"
#include "run/budget.h"
#include "run/job.h"

struct vm_qemu_spec;
struct vm_qmig;
struct vm_sinks;
struct vm_sinks_config;
struct job;

/* One stage: its name and what starts it; it ends with run_next() or
 * run_stop(). */
struct run_stage {
    const char *name;
    void (*start)(struct job *job);
};

/* A kind of run: its stage table (the last stage reports) and what a
 * SIGINT or SIGTERM does to what runs. */
struct run_kind {
    const struct run_stage *stages;
    int nstages;
    void (*interrupt)(struct job *job, int signum);
};

/* The stages of a libvirt run, in order (the table, stages[], is in job.c). */
enum run_stage_id {
    RUN_STAGE_CONNECT,
    RUN_STAGE_LOCK,
    RUN_STAGE_SETTLE,
    RUN_STAGE_INVENTORY,
    RUN_STAGE_PLAN,
    RUN_STAGE_PREFLIGHT,
    RUN_STAGE_PROBE,
    RUN_STAGE_SCHEDULE,
    RUN_STAGE_RESETTLE,
    RUN_STAGE_REPORT,
    RUN_STAGE_COUNT,
};

struct job_host {
    struct vm_virt_host *h;
    bool source, target;
    int lock_fd;  /* the source host's run lock, or -1 */
    json_t *info; /* vm_inv_host + "domains" (sources and targets) */
    struct vm_virt_task task;
    struct job *job;
};

struct preflight {
    struct vm_virt_task t;
    struct job *job;
    struct vm_plan_item *item; /* valid until the plan is re-sorted */
    json_t *vm;                /* the item's inventory object: stable */
    struct job_host *src, *dst;
    virDomainPtr dom; /* handed to the migration */
    char *refusal;    /* why the VM cannot go, or NULL */
};

/* A feature probe of one planned VM (preflight). */
struct probe {
    struct job *job;
    struct vm_plan_item *it; /* valid until the plan is re-sorted */
    json_t *vm;              /* the item's inventory object: stable */
    struct vm_features *f;
};

/* An attempt a retry replaced: kept for the report, freed with the job. */
struct vm_attempt {
    struct vm_mig *mig;
    struct vm_features *feats;
    struct vm_attempt *prev;
};

/* One VM of the run across its attempts: everything the scheduler and the
 * callbacks need about it. Its migration's ops data and its features'
 * callback data are the slot itself. Owned by the job (job->slots). */
struct vm_slot {
    struct job *job;
    int index;                  /* in job->slots and job->migs */
    struct vm_plan_item *item;  /* its plan item */
    struct vm_mig *mig;         /* the current attempt */
    const char *qmp;            /* --qmp-socket of this VM, or NULL */
    struct vm_features *feats;  /* its features (NULL if none) */
    virDomainPtr dom;           /* its source domain until started, kept for a retry */
    int attempts;               /* attempts started */
    bool started;               /* handed to vm_mig_start */
    bool retry;                 /* its failed attempt is to start again */
    struct vm_attempt *retired; /* earlier attempts, newest first */
    char wait[96];              /* queued: what holds it back ("" when nothing; sched.c) */
};

struct job {
    const struct vm_job_spec *spec; /* a libvirt run's (NULL in a QMP run) */
    const struct run_kind *kind;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    int stage;                       /* index in kind's stage table; -1 before the first */
    const struct vm_qemu_spec *qemu; /* a QMP run's (run_qemu.c), or NULL */
    struct vm_qmig *qmig;            /* ... and its migration */
    struct job_host *hosts;
    int nhosts;
    int pending;
    struct vm_policy *policy;
    struct vm_exec_hosts *exec_hosts; /* from spec->host_execs: every command's executor */
    struct vm_exec_share *probe_share; /* the probes' queries, shared (exec.h) */
    struct vm_plan plan;
    bool planned;
    struct preflight *pre;
    int npre;
    struct vm_slot *slots;
    struct vm_mig **migs; /* slots[i].mig, for the report, status and progress */
    int nmigs;
    struct vm_budget budget; /* --parallel, --max-out, --max-in: slot i is budget.slots[i] */
    struct vm_journal *journal;
    struct vm_guardian *guardian; /* guardian.h: while gated migrations may run, or NULL */
    struct probe *probes;
    int nprobes;
    int feature_failures; /* required features that failed after an urgent migration */
    int lock_warned;
    int settle_lock;     /* journal.h's settle lock while the settle stage holds it, or -1 */
    bool recovered;      /* the journals were reconciled (run only) */
    /* While settling: the settling's journal (created with its first
     * record), under an id of its own, not the run's: its records are about
     * earlier runs (of_run), and the run's own journal holds only its own
     * migrations. */
    struct vm_journal *settle_journal;
    json_t *host_index;  /* URI -> index in hosts (run_host) */
    json_t *target_active;  /* UUID -> [host index, domain index]: active on a target (plan) */
    json_t *explicit_names; /* the --vm names, as a set (plan) */
    json_t *unsettled;   /* UUID -> what recover found, for earlier migrations it could not
                          * settle: those VMs are left alone (owned) */
    int failures;        /* migrations that ended without moving their guest */
    bool stopping;       /* --max-failures, --deadline or the journal: start nothing more */
    bool journal_failed; /* a record could not be written: start nothing more */
    uv_timer_t *deadline;
    struct vm_sinks *sinks; /* every output: events, status, metrics, webhooks, meter, report */
    int unreadable;         /* VMs left alone: their domain XML could not be read */
    int deinit_failures;
    json_t *settings;             /* what the policy's settings(run) set, or NULL */
    const char **settings_notify; /* the webhooks then: command line + policy's */
    bool interrupted;
    bool aborting;           /* ... and running migrations are being aborted */
    bool connects_abandoned; /* the run stopped waiting for hosts still connecting */
    int policy_errors;
    int exit_code; /* set when the run fails before migrating */
    char *error;   /* run-level error for the report */
    uint64_t started_wall_ms;
    /* Made by run_open before anything else (vm_journal_new_run_id): on
     * every event, the report, the status file, the locks, the webhooks,
     * and the name of the journal the run opens later, if it opens one. */
    char run_id[VM_JOURNAL_RUN_ID_SIZE];
};

/* ---- job.c: the spine ------------------------------------------------ */

/* The run's id (job->run_id), the run's sinks from SCFG stamped with it (a
 * one-line error under CMD's name, then -1), then SIGINT/SIGTERM on the job's loop, handled by kind->interrupt. The
 * first run_next() starts the first stage. */
int run_open(struct job *job, const struct run_kind *kind, const struct vm_sinks_config *scfg,
             const char *cmd);
/* Each stage ends with one of these: the next stage starts, or the run
 * goes to its last stage (report). No-ops once the report stage began. */
void run_next(struct job *job);
void run_stop(struct job *job);
/* The report stage: no more signals (nor deadline). */
void run_close_signals(struct job *job);
/* Free what the job owns (not the job itself). */
void run_free(struct job *job);

/* The stages' start functions (the table is in job.c). */
void run_stage_settle(struct job *job);    /* run_recover.c */
void run_stage_resettle(struct job *job);  /* run_recover.c */
void run_stage_plan(struct job *job);      /* run_plan.c */
void run_stage_preflight(struct job *job); /* preflight.c */
void run_stage_probe(struct job *job);     /* preflight.c */
void run_stage_schedule(struct job *job);  /* sched.c */

/* ---- run.c: the run's context ------------------------------------------ */

/* The command's name in messages: run, plan, drain. */
const char *run_command(const struct vm_job_spec *spec);
/* A new JSON array of the URIs. */
json_t *run_uri_list(const char *const *uris, int n);
/* The run fails with CODE: the first message (owned, taken) is logged and
 * kept for the report; later ones are freed. */
void run_fail(struct job *job, int code, char *msg);
/* An event on the NDJSON stream (details: reference stolen). */
void run_event(struct job *job, const char *vm, const char *host, const char *event,
               json_t *details);
struct job_host *run_host(struct job *job, const char *uri);
/* A feature step's result (vm: its name, or NULL), on the log and the stream. */
void run_feature_event(struct job *job, const char *vm, const char *feature, const char *step,
                       bool ok, const char *detail);
/* The run's id (job->run_id): its journal's too, once that is open. */
const char *run_id(struct job *job);
/* Tell the webhooks about m (event: vm.failed, needs-operator, ...). */
void run_notify_vm(struct job *job, struct vm_mig *m, const char *event);
/* The slot's migration as it stands, to the sinks (status file, meter). */
void run_state(struct job *job, const struct vm_slot *s);
/* A journal record of m (fields: reference stolen); 0 without a journal,
 * -1 if it could not be written (logged): the run then starts no more
 * migrations (journal_failed, run_schedule). */
int run_journal(struct job *job, struct vm_mig *m, const char *record, json_t *fields);

/* ---- sched.c: slots, budgets, retries, deadline ------------------------ */

/* Start what the budgets allow, retry what is due, and end the stage once
 * every slot is final. Called after every change. */
void run_schedule(struct job *job);
/* The slot's migration no longer counts against the budgets; false if it
 * held nothing. */
bool run_slot_release(struct vm_slot *s);
/* Is the slot's final attempt to start again? */
bool run_slot_retry_wanted(const struct vm_slot *s);
/* A VM failed for good: counted, and the webhooks told. */
void run_vm_failed(struct job *job, struct vm_mig *m);
/* Free what the slot owns (its attempts, features, domain). */
void run_slot_clear(struct vm_slot *s);

/* ---- sched_events.c: what migrations and features report --------------- */

extern const struct vm_mig_ops run_mig_ops; /* data: the slot */
/* The features of the slot's current attempt (NULL if it names none). */
struct vm_features *run_slot_features(struct vm_slot *s);
/* Network-critical: the features' prepare step ended (data: the slot). */
void run_prepare_done(struct vm_features *f, bool ok, const char *reason, void *data);
/* A libvirt domain event: to the migration it concerns (data: the job). */
void run_host_event(struct vm_virt_host *h, const struct vm_virt_event *ev, void *data);

/* ---- run_report.c, settings.c ------------------------------------------ */

/* The exit code and its name (*result) of the run as it ended. */
int run_exit_code(struct job *job, const char **result);
/* What made that code, in a sentence for the meter's summary, beyond the
 * VMs' own results and the run's error (both said already): "1 migration
 * of an earlier run needs an operator ...", or NULL. Caller frees. */
char *run_exit_why(struct job *job, int code);
/* The final report (new reference). */
json_t *run_report(struct job *job, int code, const char *result);
/* Call the policy's settings(run) and make *eff: the spec with the
 * policy's values where the command line gave none (webhooks: both).
 * Returns 0, or an exit code after a one-line error (the policy failed:
 * nothing has been touched). */
int run_settings_apply(struct job *job, const struct vm_job_spec *spec, const char *cmd,
                       struct vm_job_spec *eff);

#endif
