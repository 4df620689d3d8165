/* job.c — see job.h.
 *
 * The policy file is loaded and checked before any host is contacted; then
 * the stages of the table (stages[]) run in order, each ending with
 * run_next() or run_stop() (straight to report):
 *   connect   every --source and --target host
 *   lock      (run) one run per source host
 *   settle    (run) what crashed runs left open, and the steps they owe
 *   inventory hosts' capacity and every domain of every host (inventory.h)
 *   plan      who goes where, in what order (plan.h: explicit VMs or the
 *             policy's decide()); explicit VMs must all be migratable, else
 *             the run stops here with nothing changed
 *   preflight per VM on the thread pool: the domain on the source, its CPU
 *             against the target's hypervisor (policy runs: a refused VM is
 *             left alone, the others go on)
 *   probe     can each feature work on its target at all
 *   schedule  one `struct vm_slot` per VM; at most `concurrency` at once,
 *             in plan order (plan mode stops before and prints the plan)
 *   report    disconnect; vm_job_run() then reports.
 * SIGINT/SIGTERM skip what has not started and abort what runs; the loop
 * goes on until every migration has reached a final state. */
#include "run/job.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt-qemu.h>

#include "backend/libvirt/evloop.h"
#include "feature/feature.h"
#include "migrate/gate.h"
#include "util/exitcode.h"
#include "backend/libvirt/inventory.h"
#include "journal/journal.h"
#include "report/notify.h"
#include "journal/owed.h"
#include "plan/plan.h"
#include "policy/policy.h"
#include "report/progress.h"
#include "journal/recover.h"
#include "report/report.h"
#include "report/status.h"
#include "util/util.h"
#include "backend/libvirt/virt.h"

/* The stages, in order (the table is in the entry section). */
enum run_stage_id {
    RUN_STAGE_CONNECT,
    RUN_STAGE_LOCK,
    RUN_STAGE_SETTLE,
    RUN_STAGE_INVENTORY,
    RUN_STAGE_PLAN,
    RUN_STAGE_PREFLIGHT,
    RUN_STAGE_PROBE,
    RUN_STAGE_SCHEDULE,
    RUN_STAGE_REPORT,
    RUN_STAGE_COUNT,
};

struct job_host {
    struct vm_virt_host *h;
    bool source, target;
    int out_running, in_running; /* migrations from / to this host now */
    int lock_fd;                 /* the source host's run lock, or -1 */
    json_t *info;                /* vm_inv_host + "domains" (sources and targets) */
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
    struct gate_budget *budget; /* while at the gate */
    int attempts;               /* attempts started */
    bool started;               /* handed to vm_mig_start */
    bool retry;                 /* its failed attempt is to start again */
    bool holds;                 /* it counts against --parallel, --max-out, --max-in */
    struct vm_attempt *retired; /* earlier attempts, newest first */
};

struct job {
    const struct vm_job_spec *spec;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    int stage; /* index in the stage table */
    bool done; /* every host closed */
    struct job_host *hosts;
    int nhosts;
    int pending;
    struct vm_policy *policy;
    struct vm_plan plan;
    bool planned;
    struct preflight *pre;
    int npre;
    struct vm_slot *slots;
    struct vm_mig **migs; /* slots[i].mig, for the report, status and progress */
    int nmigs, running;
    struct vm_journal *journal;
    struct probe *probes;
    int nprobes;
    int feature_failures; /* required features that failed after an urgent migration */
    int lock_warned;
    bool recovered; /* the journals were reconciled (run only) */
    int failures;   /* migrations that ended without moving their guest */
    bool stopping;  /* --max-failures or --deadline: start nothing more */
    uv_timer_t *deadline;
    struct vm_status *status;
    struct vm_notify *notify;
    int deinit_failures;
    json_t *settings;             /* what the policy's settings(run) set, or NULL */
    const char **settings_notify; /* the webhooks then: command line + policy's */
    struct vm_report_stream *events;
    struct vm_progress *progress;
    bool interrupted;
    bool aborting; /* ... and running migrations are being aborted */
    int policy_errors;
    int exit_code; /* set when the run fails before migrating */
    char *error;   /* run-level error for the report */
    uint64_t started_wall_ms;
};

/* Each stage ends with one of these: the next stage starts, or the run
 * goes to its last stage (report). */
static void run_next(struct job *job);
static void run_stop(struct job *job);
static void stage_lock(struct job *job);
static void job_schedule(struct job *job);
static struct vm_mig *mig_new(struct vm_slot *s, struct job_host *dst);
static struct vm_features *mig_features(struct vm_slot *s);
static int journal(struct job *job, struct vm_mig *m, const char *record, json_t *fields);
static void notify_vm(struct job *job, struct vm_mig *m, const char *event);

/* The command's name in messages. */
static const char *job_command(const struct vm_job_spec *spec)
{
    return spec->command ? spec->command : spec->mode == VM_JOB_PLAN ? "plan" : "run";
}

static json_t *uri_list(const char *const *uris, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(uris[i]));
    return a;
}

static void job_fail(struct job *job, int code, char *msg)
{
    if (!job->error) {
        job->exit_code = code;
        job->error = msg;
        vm_error("%s: %s", job_command(job->spec), msg);
    } else {
        free(msg);
    }
}

static void job_event(struct job *job, const char *vm, const char *host, const char *event,
                      json_t *details)
{
    vm_report_event(job->events, vm, host, event, details);
}

static struct job_host *host_by_uri(struct job *job, const char *uri)
{
    for (int i = 0; i < job->nhosts; i++)
        if (strcmp(job->hosts[i].h->uri, uri) == 0)
            return &job->hosts[i];
    return NULL;
}

/* ---- migrations ------------------------------------------------------- */

/* A feature step's result, on the log and the event stream. */
static void feature_event(struct job *job, const char *name, const char *feature,
                          const char *step, bool ok, const char *detail)
{
    if (!ok)
        vm_warn("%s: feature '%s' %s failed: %s", name ? name : "?", feature, step,
                detail ? detail : "no reason given");
    job_event(job, name, NULL, "feature",
              json_pack("{s:s, s:s, s:b, s:o}", "feature", feature, "step", step, "ok", ok,
                        "detail", detail ? json_string(detail) : json_null()));
}

static void slot_features_event(struct vm_features *f, const char *feature, const char *step,
                                bool ok, const char *detail, void *data)
{
    struct vm_slot *s = data;
    (void)f;
    feature_event(s->job, s->mig->name, feature, step, ok, detail);
}

/* After a step that ends a migration's features: the run may be over. */
static void features_settled(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_slot *s = data;
    (void)reason;
    /* The after steps ran: never owed again after a crash. */
    journal(s->job, s->mig, "after-done",
            json_pack("{s:b, s:o}", "ok", ok, "features", vm_features_to_json(f)));
    job_schedule(s->job);
}

static void deinit_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_slot *s = data;
    struct job *job = s->job;
    /* Done (or failed for an operator): never owed again after a crash. */
    journal(job, s->mig, "deinit-done",
            json_pack("{s:b, s:o}", "ok", ok, "features", vm_features_to_json(f)));
    if (!ok) {
        job->deinit_failures++;
        vm_error("%s: needs an operator: %s", s->mig->name, reason);
        notify_vm(job, s->mig, "needs-operator");
    }
    job_schedule(job);
}

/* Urgent migrations: features come up best-effort once the guest runs on
 * the target: prepare, gate, after. A required one failing does not move
 * the guest back; it is reported and makes the exit status 1. */
static void urgent_failed(struct vm_slot *s, const char *reason)
{
    s->job->feature_failures++;
    vm_error("%s: runs on the target, but a required feature did not come up: %s", s->mig->name,
             reason);
}

static void urgent_gate_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    if (!ok)
        urgent_failed(data, reason);
    vm_features_run(f, VM_FEATURE_AFTER, features_settled);
}

static void urgent_prepare_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    if (!ok)
        urgent_failed(data, reason);
    vm_features_run(f, VM_FEATURE_GATE, urgent_gate_done);
}

static const char *run_id(struct job *job)
{
    return job->journal ? vm_journal_run_id(job->journal) : "";
}

static void notify_vm(struct job *job, struct vm_mig *m, const char *event)
{
    vm_notify_send(job->notify, event, run_id(job),
                   json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "vm", m->name, "source", m->src->uri,
                             "target", m->dst->uri, "result", vm_mig_state_name(m->state),
                             "location", vm_mig_location_name(m->location), "error",
                             m->err.message   ? json_string(m->err.message)
                             : m->gate_reason ? json_string(m->gate_reason)
                                              : json_null()));
}

/* The slot's migration no longer counts against the concurrency budgets. */
static void release_slot(struct vm_slot *s)
{
    if (!s->holds)
        return;
    s->holds = false;
    struct job *job = s->job;
    job->running--;
    host_by_uri(job, s->mig->src->uri)->out_running--;
    host_by_uri(job, s->mig->dst->uri)->in_running--;
}

/* The guest runs on the target: the budgets are for moving memory, and
 * libvirt's clean-up of the source QEMU (a few hundred ms of waiting for it
 * to exit) need not hold back the next migration. */
static void mig_on_target(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    (void)m;
    if (s->holds) {
        release_slot(s);
        job_schedule(s->job);
    }
}

static int retries_for(const struct job *job, const struct vm_plan_item *it)
{
    return it->d.retries_set ? it->d.retries : job->spec->retries;
}

/* A migration that failed or rolled back with its guest verified on the
 * source may start again; aborted ones (signal, deadline, policy, timeout)
 * may not, nor anything once the run stops starting migrations. */
static bool retry_wanted(const struct vm_slot *s)
{
    const struct job *job = s->job;
    const struct vm_mig *m = s->mig;
    return (m->state == VM_MIG_STATE_FAILED || m->state == VM_MIG_STATE_ROLLED_BACK) &&
           m->location == VM_MIG_LOCATION_SOURCE && !m->abort_requested && !m->abort_reason &&
           !m->timeout_taken && !job->stopping && !job->interrupted &&
           s->attempts <= retries_for(job, s->item);
}

/* A VM failed for good: counted, and the webhooks told. */
static void vm_failed(struct job *job, struct vm_mig *m)
{
    job->failures++;
    notify_vm(job, m, m->state == VM_MIG_STATE_ROLLED_BACK ? "vm.rolled-back" : "vm.failed");
}

static void mig_on_state(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    struct job *job = s->job;
    vm_status_touch(job->status);
    bool retry = vm_mig_final(m) && retry_wanted(s);
    if (retry)
        s->retry = true; /* job_retry(), once its features are idle */
    else if (m->state == VM_MIG_STATE_FAILED || m->state == VM_MIG_STATE_ABORTED ||
             m->state == VM_MIG_STATE_ROLLED_BACK)
        vm_failed(job, m);
    if (vm_mig_final(m) && m->location == VM_MIG_LOCATION_UNKNOWN)
        notify_vm(job, m, "needs-operator");
    if (!vm_mig_final(m))
        return;
    release_slot(s);
    journal(job, m, "finished",
            json_pack("{s:s, s:s}", "result", vm_mig_state_name(m->state), "location",
                      vm_mig_location_name(m->location)));
    struct vm_features *f = s->feats;
    if (f && m->state == VM_MIG_STATE_DONE)
        vm_features_run(f, m->gated ? VM_FEATURE_AFTER : VM_FEATURE_PREPARE,
                        m->gated ? features_settled : urgent_prepare_done);
    else if (f && m->gated && m->state != VM_MIG_STATE_SKIPPED)
        vm_features_run(f, VM_FEATURE_DEINIT, deinit_done);
    switch (m->state) {
    case VM_MIG_STATE_DONE:
        vm_info("%s: migrated in %llu ms", m->name,
                (unsigned long long)(m->end_mono_ms - m->start_mono_ms));
        break;
    case VM_MIG_STATE_SKIPPED:
        vm_info("%s: not started (%s)", m->name, m->abort_reason ? m->abort_reason : "skipped");
        break;
    case VM_MIG_STATE_ROLLED_BACK:
        vm_log(retry ? VM_LOG_WARN : VM_LOG_ERROR,
               "%s: rolled back at the commit gate, guest runs on the source: %s%s", m->name,
               m->gate_reason, retry ? " (will retry)" : "");
        break;
    default:
        vm_log(retry ? VM_LOG_WARN : VM_LOG_ERROR, "%s: %s, guest runs on %s: %s%s", m->name,
               vm_mig_state_name(m->state),
               m->location == VM_MIG_LOCATION_SOURCE   ? "the source"
               : m->location == VM_MIG_LOCATION_TARGET ? "the target"
                                                       : "an unknown host (check it!)",
               m->err.message ? m->err.message : "no error message", retry ? " (will retry)" : "");
        break;
    }
    job_schedule(job);
}

static void apply_action(struct job *job, struct vm_mig *m, struct vm_plan_item *it,
                         struct vm_action *a)
{
    if (a->kind == VM_ACTION_CONTINUE)
        return;
    job_event(job, m->name, NULL, "policy.action",
              json_pack("{s:s, s:I, s:o}", "action", vm_action_name(a->kind), "downtime_ms",
                        (json_int_t)a->downtime_ms, "reason",
                        a->reason ? json_string(a->reason) : json_null()));
    switch (a->kind) {
    case VM_ACTION_SET_DOWNTIME:
        vm_info("%s: policy raises max downtime to %llu ms", m->name,
                (unsigned long long)a->downtime_ms);
        vm_mig_set_max_downtime(m, a->downtime_ms);
        break;
    case VM_ACTION_POSTCOPY:
        if (!it->params.postcopy || m->gated) {
            /* A generic ladder asks every migration; this one may not switch. */
            vm_info("%s: post-copy not allowed for this migration (postcopy = false or "
                    "network-critical): going on",
                    m->name);
        } else {
            vm_info("%s: policy switches to post-copy", m->name);
            vm_mig_postcopy(m);
        }
        break;
    case VM_ACTION_ABORT:
        vm_warn("%s: policy aborts the migration: %s", m->name,
                a->reason ? a->reason : "no reason given");
        vm_mig_abort(m, "policy");
        break;
    default:
        break;
    }
}

static void mig_on_progress(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    struct job *job = s->job;
    vm_status_touch(job->status);
    if (!job->policy || !vm_policy_has_hook(job->policy, "on_progress") || m->abort_requested)
        return;
    struct vm_plan_item *it = s->item;
    const struct vm_mig_progress *p = &m->progress;
    json_t *pj = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "iteration", (json_int_t)p->iteration,
        "elapsed_ms", (json_int_t)(vm_mono_ms() - m->start_mono_ms), "data_total",
        (json_int_t)p->data_total, "data_processed", (json_int_t)p->data_processed,
        "data_remaining", (json_int_t)p->data_remaining, "bandwidth_bps", (json_int_t)p->mem_bps,
        "dirty_rate", (json_int_t)p->dirty_rate, "max_downtime_ms",
        (json_int_t)m->params.max_downtime_ms, "postcopy", p->postcopy_active);
    struct vm_action a;
    char *err = NULL;
    int rc = vm_policy_progress(job->policy, it->vm, pj, &a, &err);
    json_decref(pj);
    if (rc < 0) {
        job->policy_errors++;
        vm_error("%s: on_progress failed, aborting the migration (fail closed): %s", m->name, err);
        job_event(job, m->name, NULL, "policy.error",
                  json_pack("{s:s, s:s}", "hook", "on_progress", "error", err));
        free(err);
        vm_mig_abort(m, "policy error");
        return;
    }
    apply_action(job, m, it, &a);
    vm_action_clear(&a);
}

static void mig_on_event(struct vm_mig *m, const char *host, const char *event, json_t *details,
                         void *data)
{
    struct vm_slot *s = data;
    job_event(s->job, m->name, host, event, details);
}

static int journal(struct job *job, struct vm_mig *m, const char *record, json_t *fields)
{
    if (!job->journal) {
        json_decref(fields);
        return 0;
    }
    return vm_journal_write(job->journal, m->name, m->uuid, m->src->uri, m->dst->uri, record,
                            fields);
}

/* ---- the gate budget: the gate costs guest downtime one for one ------- */

struct gate_budget {
    uv_timer_t timer;
    struct vm_mig *m;
};

static void gate_budget_closed(uv_handle_t *h)
{
    free(h->data);
}

static void gate_budget_fired(uv_timer_t *t)
{
    struct gate_budget *gb = t->data;
    struct vm_mig *m = gb->m;
    if (m->state == VM_MIG_STATE_GATE) {
        char *why = xasprintf("the gate budget of %llu ms ran out before every required feature "
                              "was ready",
                              (unsigned long long)(vm_mono_ms() - m->gate_enter_ms));
        vm_mig_gate_decide(m, false, why); /* closes the timer (mig_on_decision) */
        free(why);
    }
}

/* Roll m back if it is still at the gate after MS. */
static struct gate_budget *gate_budget_start(uv_loop_t *loop, struct vm_mig *m, uint64_t ms)
{
    struct gate_budget *gb = xcalloc(1, sizeof(*gb));
    gb->m = m;
    uv_timer_init(loop, &gb->timer);
    gb->timer.data = gb;
    uv_timer_start(&gb->timer, gate_budget_fired, ms, 0);
    return gb;
}

/* The gate was decided: the budget is spent (*gb NULL afterwards). */
static void gate_budget_stop(struct gate_budget **gb)
{
    if (*gb) {
        uv_close((uv_handle_t *)&(*gb)->timer, gate_budget_closed);
        *gb = NULL;
    }
}

/* ---- the gate: features' gate steps, then the decision ----------------- */

static void gate_features_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_slot *s = data;
    (void)f;
    vm_mig_gate_decide(s->mig, ok, ok ? "every required feature is ready on the target" : reason);
}

static bool mig_on_decision(struct vm_mig *m, bool commit, void *data)
{
    struct vm_slot *s = data;
    gate_budget_stop(&s->budget);
    if (vm_features_busy(s->feats))
        vm_features_cancel(s->feats); /* decided without them (budget, signal) */
    return journal(s->job, m, commit ? "commit-decided" : "rollback-decided",
                   json_pack("{s:s}", "reason", m->gate_reason)) == 0;
}

static void gate_features(struct vm_slot *s)
{
    if (!s->feats) {
        vm_mig_gate_decide(s->mig, true, "no features to wait for");
        return;
    }
    if (vm_features_busy(s->feats))
        return; /* prepare still runs: prepare_done comes back here */
    vm_features_run(s->feats, VM_FEATURE_GATE, gate_features_done);
}

/* Network-critical: prepare runs while memory is copied; if it is still
 * running when the gate is reached, the gate step waits for it. */
static void prepare_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_slot *s = data;
    struct vm_mig *m = s->mig;
    (void)f, (void)ok, (void)reason;
    if (m->state == VM_MIG_STATE_GATE && !m->gate_reason)
        gate_features(s);
    else
        job_schedule(s->job);
}

static void mig_on_gate(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    journal(s->job, m, "gate-reached", NULL);
    s->budget = gate_budget_start(&s->job->loop, m,
                                  s->item->d.gate_timeout_ms ? s->item->d.gate_timeout_ms : 30000);
    gate_features(s);
}

static const struct vm_mig_ops job_mig_ops = {
    .on_state = mig_on_state,
    .on_progress = mig_on_progress,
    .on_event = mig_on_event,
    .on_gate = mig_on_gate,
    .on_decision = mig_on_decision,
    .on_target = mig_on_target,
};

/* What a later run needs to finish this migration's features if this run
 * crashes before their deinit (guest back on the source) or after (guest on
 * the target) steps ran (owed.h): the decision, which features have such a
 * step, and the VM as we see it. */
static void owed_on_crash(struct job *job, struct vm_plan_item *it, json_t *started)
{
    json_t *owed = json_pack("{s:[], s:[]}", "deinit", "after");
    for (int k = 0; k < it->d.nfeatures; k++) {
        const char *name = it->d.features[k].name;
        if (vm_feature_owed_after_crash(name, VM_FEATURE_DEINIT, job->policy))
            json_array_append_new(json_object_get(owed, "deinit"), json_string(name));
        if (vm_feature_owed_after_crash(name, VM_FEATURE_AFTER, job->policy))
            json_array_append_new(json_object_get(owed, "after"), json_string(name));
    }
    json_object_set_new(started, "decision", vm_decision_to_json(&it->d));
    json_object_set_new(started, "owed_on_crash", owed);
    json_object_set(started, "inventory", it->vm);
}

/* Memory free on target t for slot `except`: what the inventory saw, less
 * what the other migrations to it hold (queued, running or arrived). */
static int64_t target_room(struct job *job, struct job_host *t, const struct vm_slot *except)
{
    int64_t room = (int64_t)json_integer_value(json_object_get(t->info, "free_memory_bytes"));
    for (int i = 0; i < job->nmigs; i++) {
        struct vm_mig *m = job->slots[i].mig;
        if (&job->slots[i] != except && m->dst == t->h && m->state <= VM_MIG_STATE_DONE)
            room -= (int64_t)m->memory_kib * 1024;
    }
    return room;
}

static bool tried(json_t *attempts, const char *uri)
{
    size_t k;
    json_t *a;
    json_array_foreach(attempts, k, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "target")), uri) == 0)
            return true;
    }
    return false;
}

/* Where a retry goes: the policy's target if it named one; else the target
 * not tried yet with the most room, else the last one if it still has room. */
static struct job_host *retry_target(struct vm_slot *s, json_t *attempts)
{
    struct job *job = s->job;
    struct vm_mig *old = s->mig;
    struct job_host *last = host_by_uri(job, old->dst->uri), *best = NULL;
    if (!s->item->placed_by_default)
        return last;
    int64_t need = (int64_t)old->memory_kib * 1024, best_room = 0;
    for (int k = 0; k < job->nhosts; k++) {
        struct job_host *t = &job->hosts[k];
        if (!t->target || t->h == old->src || tried(attempts, t->h->uri))
            continue;
        int64_t room = target_room(job, t, s);
        if (room >= need && (!best || room > best_room)) {
            best = t;
            best_room = room;
        }
    }
    if (!best && target_room(job, last, s) >= need)
        best = last;
    return best;
}

static void slot_set_mig(struct vm_slot *s, struct vm_mig *m)
{
    s->mig = m;
    s->job->migs[s->index] = m;
}

/* Start the slot's VM again, as a new attempt (the failed one is kept for
 * the report as an earlier attempt). */
static void job_retry(struct vm_slot *s)
{
    struct job *job = s->job;
    s->retry = false;
    struct vm_mig *old = s->mig;
    if (job->stopping || job->interrupted) {
        vm_failed(job, old);
        return;
    }
    json_t *attempts = old->attempts ? json_incref(old->attempts) : json_array();
    const char *why = old->err.message ? old->err.message : old->gate_reason;
    json_array_append_new(attempts,
                          json_pack("{s:i, s:s, s:s, s:o}", "attempt", s->attempts, "target",
                                    old->dst->uri, "result", vm_mig_state_name(old->state), "error",
                                    why ? json_string(why) : json_null()));
    struct job_host *dst = retry_target(s, attempts);
    if (!dst) {
        vm_error("%s: no target has room for another attempt", old->name);
        json_decref(attempts);
        vm_failed(job, old);
        return;
    }
    struct vm_attempt *a = xmalloc(sizeof(*a));
    *a = (struct vm_attempt){.mig = old, .feats = s->feats, .prev = s->retired};
    s->retired = a;
    slot_set_mig(s, mig_new(s, dst));
    s->mig->attempts = attempts;
    s->feats = mig_features(s);
    s->started = false;
    struct vm_mig *m = s->mig;
    vm_warn("%s: attempt %d of %d, to %s", m->name, s->attempts + 1,
            retries_for(job, s->item) + 1, dst->h->uri);
    job_event(job, m->name, dst->h->uri, "retry",
              json_pack("{s:i, s:s, s:s, s:o}", "attempt", s->attempts + 1, "target",
                        dst->h->uri, "previous_target", old->dst->uri, "reason",
                        why ? json_string(why) : json_null()));
}

/* Start the slot's migration: it takes the budgets the caller checked. */
static void slot_start(struct vm_slot *s, struct job_host *src, struct job_host *dst)
{
    struct job *job = s->job;
    struct vm_mig *m = s->mig;
    s->started = true;
    s->holds = true;
    src->out_running++;
    dst->in_running++;
    job->running++;
    /* The migration adopts a reference; keep one for a retry. */
    virDomainPtr dom = s->dom;
    if (!dom || retries_for(job, s->item) == 0 || virDomainRef(dom) < 0)
        s->dom = NULL;
    s->attempts++;
    vm_info("%s: migrating to %s", m->name, m->dst->uri);
    /* Network-critical: features prepare first (now, while nothing has
     * moved yet); the gate step waits for the gate. */
    json_t *started = json_pack("{s:b, s:o, s:i}", "gated", m->gated, "features",
                                vm_features_to_json(s->feats), "attempt", s->attempts);
    if (m->gated && s->feats)
        owed_on_crash(job, s->item, started);
    journal(job, m, "started", started);
    if (m->gated && s->feats)
        vm_features_run(s->feats, VM_FEATURE_PREPARE, prepare_done);
    vm_mig_start(m, dom, s->qmp);
}

static void job_schedule(struct job *job)
{
    /* The next migration, in plan order, whose hosts have a free slot:
     * at most --parallel at once, --max-out per source host, --max-in per
     * target host. It starts the moment a slot frees (no batches). A
     * failed one to retry takes its place in that order again once its
     * features are done (deinit). */
    for (int i = 0; i < job->nmigs; i++)
        if (job->slots[i].retry && !vm_features_busy(job->slots[i].feats))
            job_retry(&job->slots[i]);
    if (!job->stopping && job->spec->max_failures && job->failures >= job->spec->max_failures) {
        job->stopping = true;
        vm_error("%s: %d migrations failed: starting no more (--max-failures)",
                 job_command(job->spec), job->failures);
        for (int i = 0; i < job->nmigs; i++)
            if (job->slots[i].mig->state == VM_MIG_STATE_QUEUED)
                vm_mig_abort(job->slots[i].mig, "max-failures");
    }
    for (int i = 0; !job->interrupted && !job->stopping && job->running < job->spec->concurrency &&
                    i < job->nmigs;
         i++) {
        struct vm_slot *s = &job->slots[i];
        if (s->mig->state != VM_MIG_STATE_QUEUED || s->started)
            continue;
        struct job_host *src = host_by_uri(job, s->mig->src->uri);
        struct job_host *dst = host_by_uri(job, s->mig->dst->uri);
        if ((job->spec->max_out && src->out_running >= job->spec->max_out) ||
            (job->spec->max_in && dst->in_running >= job->spec->max_in))
            continue;
        slot_start(s, src, dst);
    }
    bool all_final = true;
    for (int i = 0; i < job->nmigs; i++) {
        const struct vm_slot *s = &job->slots[i];
        all_final &= vm_mig_final(s->mig) && !vm_features_busy(s->feats) && !s->retry;
    }
    if (all_final && job->stage == RUN_STAGE_SCHEDULE)
        run_next(job);
}

static void host_event(struct vm_virt_host *h, const struct vm_virt_event *ev, void *data)
{
    struct job *job = data;
    for (int i = 0; i < job->nmigs; i++) {
        struct vm_mig *m = job->slots[i].mig;
        if (m->state != VM_MIG_STATE_QUEUED && (m->src == h || m->dst == h) &&
            strcmp(m->uuid, ev->uuid) == 0) {
            vm_mig_domain_event(m, h, ev);
            return;
        }
    }
}

/* The built-in announce for libvirt guests: QEMU's announce-self on the
 * target, through libvirt's monitor passthrough, on the thread pool. */
struct announce_task {
    struct vm_virt_task t;
    struct vm_features *f;
    struct vm_mig *m;
};

static void announce_work(struct vm_virt_task *t)
{
    struct announce_task *a = t->data;
    virDomainPtr d = virDomainLookupByUUIDString(a->m->dst->conn, a->m->uuid);
    char *result = NULL;
    if (!d || virDomainQemuMonitorCommand(d,
                                          "{\"execute\":\"announce-self\",\"arguments\":"
                                          "{\"initial\":50,\"max\":550,\"rounds\":5,"
                                          "\"step\":100}}",
                                          &result, 0) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
    }
    free(result);
    if (d)
        virDomainFree(d);
}

static void announce_done(struct vm_virt_task *t)
{
    struct announce_task *a = t->data;
    vm_features_announced(a->f, t->rc == 0, t->rc < 0 ? t->err.message : NULL);
    vm_virt_err_clear(&t->err);
    free(a);
}

/* spice: the SPICE channels clients hold on the source, from QEMU's
 * query-spice through libvirt (before the migration starts). */
struct spice_task {
    struct vm_virt_task t;
    struct vm_features *f;
    virConnectPtr conn;
    char uuid[VIR_UUID_STRING_BUFLEN];
    int n;
};

static void spice_count_work(struct vm_virt_task *t)
{
    struct spice_task *st = t->data;
    virDomainPtr d = virDomainLookupByUUIDString(st->conn, st->uuid);
    char *result = NULL;
    st->n = 0;
    if (!d || virDomainQemuMonitorCommand(d, "{\"execute\":\"query-spice\"}", &result, 0) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
    } else {
        json_t *j = json_loads(result, 0, NULL);
        json_t *ret = json_object_get(j, "return");
        if (json_is_true(json_object_get(ret, "enabled")))
            st->n = (int)json_array_size(json_object_get(ret, "channels"));
        json_decref(j);
    }
    free(result);
    if (d)
        virDomainFree(d);
}

static void spice_count_done(struct vm_virt_task *t)
{
    struct spice_task *st = t->data;
    vm_features_spice_counted(st->f, t->rc == 0 ? st->n : -1, t->err.message);
    vm_virt_err_clear(&t->err);
    free(st);
}

static void libvirt_spice_count(struct vm_features *f, void *ctx)
{
    struct probe *pr = ctx;
    struct spice_task *st = xcalloc(1, sizeof(*st));
    st->f = f;
    st->conn = host_by_uri(pr->job, pr->it->source)->h->conn;
    snprintf(st->uuid, sizeof(st->uuid), "%s", pr->it->uuid ? pr->it->uuid : "");
    st->t = (struct vm_virt_task){.work = spice_count_work, .done = spice_count_done, .data = st};
    int rc = vm_virt_submit(&pr->job->loop, &st->t);
    if (rc < 0) {
        free(st);
        vm_features_spice_counted(f, -1, uv_strerror(rc));
    }
}

static int libvirt_spice_ready(void *ctx)
{
    struct vm_mig *m = ctx;
    return m->graphics_target_ready;
}

static void libvirt_announce(struct vm_features *f, void *ctx)
{
    struct announce_task *a = xcalloc(1, sizeof(*a));
    a->f = f;
    a->m = ctx;
    a->t = (struct vm_virt_task){.work = announce_work, .done = announce_done, .data = a};
    int rc = vm_virt_submit(a->m->loop, &a->t);
    if (rc < 0) {
        free(a);
        vm_features_announced(f, false, uv_strerror(rc));
    }
}

/* --deadline: the run is out of time. Nothing new starts; what runs is
 * aborted (or rolled back at the gate); the guests stay where they are. */
static void deadline_fired(uv_timer_t *t)
{
    struct job *job = t->data;
    job->stopping = true;
    vm_error("%s: the deadline of %u s is reached: aborting what runs, starting nothing more",
             job_command(job->spec), job->spec->deadline_s);
    job_event(job, NULL, NULL, "deadline",
              json_pack("{s:i}", "deadline_s", (int)job->spec->deadline_s));
    for (int i = 0; i < job->nmigs; i++)
        vm_mig_abort(job->slots[i].mig, "deadline");
    job_schedule(job);
}

/* A new attempt of the slot's VM, to dst. */
static struct vm_mig *mig_new(struct vm_slot *s, struct job_host *dst)
{
    struct vm_plan_item *it = s->item;
    struct vm_mig *m = vm_mig_new(&s->job->loop, it->name, host_by_uri(s->job, it->source)->h,
                                  dst->h, &it->params, &job_mig_ops, s);
    snprintf(m->uuid, sizeof(m->uuid), "%s", it->uuid ? it->uuid : "");
    m->gated = it->d.class == VM_CLASS_NETWORK_CRITICAL;
    m->memory_kib = (unsigned long)(it->memory_bytes / 1024);
    return m;
}

/* The features of the slot's migration (NULL if the decision names none). */
static struct vm_features *mig_features(struct vm_slot *s)
{
    struct vm_plan_item *it = s->item;
    struct vm_mig *m = s->mig;
    if (!it->d.nfeatures)
        return NULL;
    struct vm_feature_env env = {.source = m->src->uri,
                                 .target = m->dst->uri,
                                 .gated = m->gated,
                                 .announce = libvirt_announce,
                                 .spice_target_ready = libvirt_spice_ready,
                                 .ctx = m};
    return vm_features_new(&s->job->loop, &env, it->vm, it->d.features, it->d.nfeatures,
                           s->job->policy, slot_features_event, s);
}

/* Slot i for plan item it: its first attempt, its features (with the
 * probe's outcomes), the domain its preflight looked up. */
static void slot_init(struct job *job, int i, struct vm_plan_item *it)
{
    struct vm_slot *s = &job->slots[i];
    s->job = job;
    s->index = i;
    s->item = it;
    for (int k = 0; k < job->spec->nqmp; k++)
        if (strcmp(job->spec->qmp[k].vm, it->name) == 0)
            s->qmp = job->spec->qmp[k].path;
    for (int k = 0; k < job->npre; k++)
        if (job->pre[k].vm == it->vm) {
            s->dom = job->pre[k].dom;
            job->pre[k].dom = NULL;
        }
    slot_set_mig(s, mig_new(s, host_by_uri(job, it->target)));
    s->feats = mig_features(s);
    for (int k = 0; s->feats && k < job->nprobes; k++)
        if (job->probes[k].vm == it->vm)
            vm_features_adopt(s->feats, job->probes[k].f, VM_FEATURE_PROBE);
}

static void slot_clear(struct vm_slot *s)
{
    vm_mig_free(s->mig);
    vm_features_free(s->feats);
    if (s->dom)
        virDomainFree(s->dom);
    while (s->retired) {
        struct vm_attempt *a = s->retired;
        s->retired = a->prev;
        vm_mig_free(a->mig);
        vm_features_free(a->feats);
        free(a);
    }
}

/* Stage schedule: open the journal, make a slot per VM to migrate, start
 * them as budgets allow; run_next once every slot is final. */
static void stage_schedule(struct job *job)
{
    if (vm_plan_count(&job->plan, VM_PLAN_MIGRATE) == 0) {
        vm_warn("%s: nothing to migrate", job_command(job->spec));
        run_stop(job);
        return;
    }
    job->journal = vm_journal_open(job->spec->journal_dir);
    if (!job->journal) {
        job_fail(job, VM_EXIT_USAGE,
                 xasprintf("cannot write the journal in '%s' (see --journal-dir): nothing "
                           "migrated",
                           job->spec->journal_dir));
        run_stop(job);
        return;
    }
    vm_info("journal: %s", vm_journal_path(job->journal));
    vm_status_set_run_id(job->status, vm_journal_run_id(job->journal));
    vm_notify_send(job->notify, "run.started", run_id(job),
                   json_pack("{s:i, s:o}", "vms", vm_plan_count(&job->plan, VM_PLAN_MIGRATE),
                             "plan", vm_plan_to_json(&job->plan)));
    job_event(job, NULL, NULL, "journal",
              json_pack("{s:s, s:s}", "run", vm_journal_run_id(job->journal), "path",
                        vm_journal_path(job->journal)));

    int n = vm_plan_count(&job->plan, VM_PLAN_MIGRATE);
    job->slots = xcalloc((size_t)n, sizeof(*job->slots));
    job->migs = xcalloc((size_t)n, sizeof(*job->migs));
    for (int i = 0; i < job->plan.n; i++) {
        struct vm_plan_item *it = &job->plan.items[i];
        if (it->status == VM_PLAN_MIGRATE)
            slot_init(job, job->nmigs++, it);
    }
    if (job->spec->progress && vm_log_get_level() <= VM_LOG_WARN)
        job->progress = vm_progress_start(&job->loop, job->migs, job->nmigs);
    if (job->spec->deadline_s) {
        uint64_t spent = vm_wall_ms() - job->started_wall_ms;
        uint64_t left = (uint64_t)job->spec->deadline_s * 1000;
        job->deadline = xmalloc(sizeof(*job->deadline));
        uv_timer_init(&job->loop, job->deadline);
        job->deadline->data = job;
        uv_timer_start(job->deadline, deadline_fired, left > spent ? left - spent : 0, 0);
        uv_unref((uv_handle_t *)job->deadline);
    }
    vm_status_set_migs(job->status, job->migs, job->nmigs);
    job_schedule(job);
}

/* ---- preflight -------------------------------------------------------- */

/* The <cpu>...</cpu> element of a domain XML, or NULL (none, or nothing to
 * compare: host-passthrough / host-model without a model). */
static char *cpu_xml(const char *xml)
{
    const char *a = strstr(xml, "<cpu");
    while (a && a[4] != ' ' && a[4] != '>' && a[4] != '/')
        a = strstr(a + 4, "<cpu");
    if (!a)
        return NULL;
    const char *gt = strchr(a, '>');
    if (!gt || gt[-1] == '/')
        return NULL; /* <cpu .../>: no model */
    const char *end = strstr(gt, "</cpu>");
    if (!end)
        return NULL;
    char *s = xstrndup(a, (size_t)(end + 6 - a));
    if (!strstr(s, "<model") || strstr(s, "host-passthrough")) {
        free(s);
        return NULL;
    }
    return s;
}

static void preflight_work(struct vm_virt_task *t)
{
    struct preflight *pf = t->data;
    struct vm_plan_item *it = pf->item;
    pf->dom = virDomainLookupByUUIDString(pf->src->h->conn, it->uuid);
    if (!pf->dom) {
        vm_virt_err_capture(&t->err);
        pf->refusal =
            xasprintf("cannot look up '%s' on '%s': %s", it->name, it->source, t->err.message);
        return;
    }
    int state, reason;
    if (virDomainGetState(pf->dom, &state, &reason, 0) < 0 || state != VIR_DOMAIN_RUNNING) {
        virResetLastError();
        pf->refusal = xasprintf("'%s' is no longer running on '%s'", it->name, it->source);
        return;
    }
    char *xml = virDomainGetXMLDesc(pf->dom, 0);
    char *cpu = xml ? cpu_xml(xml) : NULL;
    free(xml);
    if (!cpu) {
        virResetLastError(); /* no CPU model to compare */
        return;
    }
    const char *arch = json_string_value(json_object_get(pf->dst->info, "arch"));
    const char *type = json_string_value(json_object_get(it->vm, "type"));
    int r = virConnectCompareHypervisorCPU(pf->dst->h->conn, NULL, arch, NULL, type, cpu, 0);
    if (r == VIR_CPU_COMPARE_INCOMPATIBLE) {
        pf->refusal =
            xasprintf("the CPU of '%s' is not compatible with '%s'", it->name, it->target);
    } else if (r < 0) {
        /* Comparison not possible (no model known to the target): the
         * migration itself will tell. */
        virResetLastError();
    }
    free(cpu);
}

static void preflight_done(struct vm_virt_task *t)
{
    struct preflight *pf = t->data;
    struct job *job = pf->job;
    if (pf->refusal) {
        job_event(job, pf->item->name, pf->item->source, "preflight.refused",
                  json_pack("{s:s}", "reason", pf->refusal));
        if (job->spec->policy_path) {
            vm_warn("%s: left alone: %s", pf->item->name, pf->refusal);
            vm_plan_refuse(&job->plan, pf->item, xstrdup(pf->refusal));
        } else {
            job_fail(job, VM_EXIT_PREFLIGHT, xstrdup(pf->refusal));
        }
        if (pf->dom) {
            virDomainFree(pf->dom);
            pf->dom = NULL;
        }
    }
    vm_virt_err_clear(&t->err);
    if (--job->pending == 0)
        run_next(job);
}

/* Stage preflight: per VM to migrate, on the thread pool, the checks of
 * preflight_work; a refused VM is left alone (policy) or stops the run. */
static void stage_preflight(struct job *job)
{
    int n = vm_plan_count(&job->plan, VM_PLAN_MIGRATE);
    job->pre = xcalloc(n ? (size_t)n : 1, sizeof(*job->pre));
    for (int i = 0; i < job->plan.n; i++) {
        struct vm_plan_item *it = &job->plan.items[i];
        if (it->status != VM_PLAN_MIGRATE)
            continue;
        struct preflight *pf = &job->pre[job->npre++];
        pf->job = job;
        pf->item = it;
        pf->src = host_by_uri(job, it->source);
        pf->dst = host_by_uri(job, it->target);
        pf->t.work = preflight_work;
        pf->t.done = preflight_done;
        pf->t.data = pf;
    }
    if (job->npre == 0) {
        run_next(job);
        return;
    }
    job->pending = job->npre;
    for (int i = 0; i < job->npre; i++) {
        int rc = vm_virt_submit(&job->loop, &job->pre[i].t);
        if (rc < 0) {
            job->pre[i].refusal = xasprintf("cannot queue preflight: %s", uv_strerror(rc));
            preflight_done(&job->pre[i].t);
        }
    }
}

/* ---- feature probes: can each feature work on that target at all? ---- */

static void probe_features_event(struct vm_features *f, const char *feature, const char *step,
                                 bool ok, const char *detail, void *data)
{
    struct probe *pr = data;
    (void)f;
    feature_event(pr->job, json_string_value(json_object_get(pr->vm, "name")), feature, step, ok,
                  detail);
}

static void probes_finished(struct job *job);

static void probe_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct probe *pr = data;
    struct job *job = pr->job;
    (void)f;
    if (!ok) {
        char *note = xasprintf("'%s': %s (probe on '%s')", pr->it->name, reason, pr->it->target);
        job_event(job, pr->it->name, pr->it->target, "preflight.refused",
                  json_pack("{s:s}", "reason", note));
        if (job->spec->policy_path) {
            vm_warn("%s: left alone: %s", pr->it->name, note);
            vm_plan_refuse(&job->plan, pr->it, note);
        } else {
            job_fail(job, VM_EXIT_PREFLIGHT, note);
        }
    }
    /* the features are freed with the job: we are inside their callback */
    if (--job->pending == 0)
        probes_finished(job);
}

/* Stage probe: every feature of every VM to migrate probes its target
 * (skipped once the run failed or was interrupted); then the plan is
 * final. */
static void stage_probe(struct job *job)
{
    if (job->error || job->interrupted) {
        probes_finished(job);
        return;
    }
    int n = 0;
    for (int i = 0; i < job->plan.n; i++)
        n += job->plan.items[i].status == VM_PLAN_MIGRATE && job->plan.items[i].d.nfeatures;
    job->probes = xcalloc(n ? (size_t)n : 1, sizeof(*job->probes));
    job->nprobes = 0;
    for (int i = 0; i < job->plan.n; i++) {
        struct vm_plan_item *it = &job->plan.items[i];
        if (it->status != VM_PLAN_MIGRATE || !it->d.nfeatures)
            continue;
        struct probe *pr = &job->probes[job->nprobes++];
        pr->job = job;
        pr->it = it;
        pr->vm = it->vm;
        struct vm_feature_env env = {.source = it->source,
                                     .target = it->target,
                                     .gated = it->d.class == VM_CLASS_NETWORK_CRITICAL,
                                     .spice_count = libvirt_spice_count,
                                     .ctx = pr};
        pr->f = vm_features_new(&job->loop, &env, it->vm, it->d.features, it->d.nfeatures,
                                job->policy, probe_features_event, pr);
    }
    if (job->nprobes == 0) {
        probes_finished(job);
        return;
    }
    job->pending = job->nprobes;
    for (int i = 0; i < job->nprobes; i++) {
        vm_features_run(job->probes[i].f, VM_FEATURE_PROBE, probe_done);
    }
}

static void probes_finished(struct job *job)
{
    /* Refusals reorder the plan (items are sorted in place): from here on
     * preflight records are matched to items by their inventory object. */
    for (int i = 0; i < job->npre; i++)
        job->pre[i].vm = job->pre[i].item->vm;
    vm_plan_finish(&job->plan);
    job_event(job, NULL, NULL, "plan", vm_plan_to_json(&job->plan));
    if (job->error || job->interrupted || job->spec->mode == VM_JOB_PLAN) {
        if (job->interrupted)
            job_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
        run_stop(job);
        return;
    }
    run_next(job);
}

/* ---- plan ------------------------------------------------------------- */

/* Explicit VMs: the named ones move (default placement), nothing else. */
static int explicit_decide(void *ctx, json_t *vm, json_t **decision, char **err)
{
    struct job *job = ctx;
    const char *name = json_string_value(json_object_get(vm, "name"));
    (void)err;
    *decision = NULL;
    for (int i = 0; i < job->spec->nvms; i++)
        if (name && strcmp(name, job->spec->vms[i]) == 0)
            *decision = json_object();
    return 0;
}

/* Is the VM with this UUID active on a target host? Which one? */
static const char *active_on_target(struct job *job, const char *uuid, const char **state)
{
    for (int i = 0; uuid && i < job->nhosts; i++) {
        if (!job->hosts[i].target)
            continue;
        size_t k;
        json_t *d;
        json_array_foreach(json_object_get(job->hosts[i].info, "domains"), k, d)
        {
            const char *u = json_string_value(json_object_get(d, "uuid"));
            if (u && strcmp(u, uuid) == 0 && json_is_true(json_object_get(d, "active"))) {
                *state = json_string_value(json_object_get(d, "state"));
                return job->hosts[i].h->uri;
            }
        }
    }
    return NULL;
}

/* Does the target offer the migration transport of this URI ("tcp://...")?
 * Unknown (no list) counts as yes: the migration itself will tell. */
static bool transport_offered(json_t *host_info, const char *migrate_uri)
{
    json_t *list = json_object_get(json_object_get(host_info, "migration"), "transports");
    const char *colon = strchr(migrate_uri, ':');
    if (!colon || json_array_size(list) == 0)
        return true;
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        const char *name = json_string_value(t);
        if (name && strlen(name) == (size_t)(colon - migrate_uri) &&
            strncmp(name, migrate_uri, (size_t)(colon - migrate_uri)) == 0)
            return true;
    }
    return false;
}

/* A required feature that neither this build nor the policy implements. */
static char *unknown_required_feature(struct job *job, struct vm_plan_item *it)
{
    for (int k = 0; k < it->d.nfeatures; k++) {
        const struct vm_feature_decl *d = &it->d.features[k];
        if (d->required && !vm_feature_known(d->name, job->policy))
            return xasprintf(
                "'%s' requires feature '%s', which is not available (built in: " VM_FEATURE_BUILTINS
                "; or define it with vmm.feature())",
                it->name, d->name);
    }
    return NULL;
}

/* What the plan cannot know from decisions alone (plan ops' vet). */
static char *job_vet(void *ctx, struct vm_plan_item *it)
{
    struct job *job = ctx;
    if (!it->d.class_set)
        it->d.class = (enum vm_class)job->spec->default_class;
    const char *state = json_string_value(json_object_get(it->vm, "state"));
    const char *tstate = NULL, *on, *no_gate = NULL;
    char *note;
    if (!state || strcmp(state, "running") != 0)
        return xasprintf("'%s' is not running (state: %s)", it->name, state ? state : "unknown");
    if ((on = active_on_target(job, it->uuid, &tstate)))
        return xasprintf("'%s' is already active on '%s' (state: %s)", it->name, on,
                         tstate ? tstate : "unknown");
    if (!it->uuid)
        return xasprintf("'%s' has no UUID", it->name);
    if ((note = unknown_required_feature(job, it)))
        return note;
    if (it->d.class == VM_CLASS_NETWORK_CRITICAL && !vm_gate_available(&no_gate))
        return xasprintf("'%s' is network-critical but this libvirt offers no commit gate (%s "
                         "is missing)",
                         it->name, no_gate);
    if (it->d.class == VM_CLASS_NETWORK_CRITICAL && it->params.postcopy)
        return xasprintf("'%s' is network-critical: post-copy would resume it on the target "
                         "before the commit gate (set postcopy = false)",
                         it->name);
    return NULL;
}

/* Stage plan: who goes where, in what order (explicit VMs or the policy). */
static void stage_plan(struct job *job)
{
    const struct vm_job_spec *spec = job->spec;
    json_t *sources = json_array(), *targets = json_array();
    json_t *run_sources = json_array(), *run_targets = json_array();
    for (int i = 0; i < job->nhosts; i++) {
        struct job_host *jh = &job->hosts[i];
        json_t *bare = json_deep_copy(jh->info);
        json_object_del(bare, "domains");
        if (jh->source) {
            json_array_append(sources, jh->info);
            json_array_append(run_sources, bare);
        }
        if (jh->target) {
            json_object_set_new(bare, "planned_memory_bytes", json_integer(0));
            json_array_append(targets, bare);
            json_array_append(run_targets, bare);
        }
        json_decref(bare);
    }

    /* Explicit VMs must all exist on the source, run, and not run on a
     * target already: otherwise stop with nothing changed. */
    for (int v = 0; v < spec->nvms; v++) {
        json_t *found = NULL;
        size_t k;
        json_t *d;
        json_array_foreach(json_object_get(job->hosts[0].info, "domains"), k, d)
        {
            const char *n = json_string_value(json_object_get(d, "name"));
            if (n && strcmp(n, spec->vms[v]) == 0)
                found = d;
        }
        const char *state = found ? json_string_value(json_object_get(found, "state")) : NULL;
        const char *tstate = NULL, *on = NULL;
        if (!found)
            job_fail(job, VM_EXIT_PREFLIGHT,
                     xasprintf("VM '%s' not found on '%s'", spec->vms[v], spec->sources[0]));
        else if (!state || strcmp(state, "running") != 0)
            job_fail(job, VM_EXIT_PREFLIGHT,
                     xasprintf("VM '%s' is not running on '%s' (state: %s)", spec->vms[v],
                               spec->sources[0], state ? state : "unknown"));
        else if ((on = active_on_target(job, json_string_value(json_object_get(found, "uuid")),
                                        &tstate)))
            job_fail(job, VM_EXIT_PREFLIGHT,
                     xasprintf("VM '%s' is already active on the target '%s' (state: %s)",
                               spec->vms[v], on, tstate ? tstate : "unknown"));
    }
    if (job->error) {
        json_decref(sources);
        json_decref(targets);
        json_decref(run_sources);
        json_decref(run_targets);
        run_stop(job);
        return;
    }

    struct vm_plan_ops ops = {.decide = explicit_decide, .ctx = job};
    if (job->policy) {
        json_t *run = json_pack("{s:o, s:o, s:i}", "sources", run_sources, "targets", run_targets,
                                "parallel", spec->concurrency);
        vm_policy_set_run(job->policy, run);
        json_decref(run);
        vm_policy_plan_ops(job->policy, &ops);
    } else {
        json_decref(run_sources);
        json_decref(run_targets);
    }
    ops.vet = job_vet;
    ops.vet_ctx = job;
    vm_plan_build(&job->plan, sources, targets, &spec->params, spec->concurrency,
                  spec->estimate_mibs, &ops);
    job->planned = true;
    json_decref(sources);
    json_decref(targets);

    for (int i = 0; i < job->plan.n; i++) {
        struct vm_plan_item *it = &job->plan.items[i];
        if (it->status == VM_PLAN_ERROR) {
            job->policy_errors++;
            vm_error("%s: policy error, left alone (fail closed): %s", it->name, it->note);
        } else if (it->status == VM_PLAN_MIGRATE && it->params.migrate_uri &&
                   !transport_offered(host_by_uri(job, it->target)->info, it->params.migrate_uri)) {
            vm_plan_refuse(&job->plan, it,
                           xasprintf("target '%s' does not offer the transport of '%s'", it->target,
                                     it->params.migrate_uri));
        }
    }
    if (!job->policy && vm_plan_count(&job->plan, VM_PLAN_MIGRATE) != spec->nvms) {
        for (int i = 0; i < job->plan.n; i++)
            if (job->plan.items[i].status == VM_PLAN_REFUSED)
                job_fail(job, VM_EXIT_PREFLIGHT, xstrdup(job->plan.items[i].note));
    }
    if (job->error) {
        run_stop(job);
        return;
    }
    run_next(job);
}

/* ---- inventory -------------------------------------------------------- */

static void inventory_work(struct vm_virt_task *t)
{
    struct job_host *jh = t->data;
    jh->info = vm_inv_host(jh->h->conn, jh->h->uri, &t->err);
    if (!jh->info) {
        t->rc = -1;
        return;
    }
    json_t *domains = vm_inv_domains(jh->h->conn, 0, &t->err);
    if (!domains) {
        t->rc = -1;
        return;
    }
    json_object_set_new(jh->info, "domains", domains);
}

static void inventory_done(struct vm_virt_task *t)
{
    struct job_host *jh = t->data;
    struct job *job = jh->job;
    if (t->rc < 0)
        job_fail(job, VM_EXIT_UNREACHABLE,
                 xasprintf("cannot read the inventory of '%s': %s", jh->h->uri,
                           t->err.message ? t->err.message : "unknown error"));
    vm_virt_err_clear(&t->err);
    if (--job->pending > 0)
        return;
    if (job->error || job->interrupted) {
        if (job->interrupted)
            job_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
        run_stop(job);
        return;
    }
    run_next(job);
}

/* One run per source host: an exclusive flock on LOCKDIR/<host UUID>.lock
 * (held until we exit, released by the kernel even after kill -9). Returns
 * 0, or -1 with the holder's PID in *holder (0 if unknown). */
static int lock_source(struct job *job, struct job_host *jh, pid_t *holder)
{
    const char *dir = job->spec->lock_dir;
    mkdir(dir, 0755);
    const char *key = jh->h->host_uuid[0] ? jh->h->host_uuid : jh->h->uri;
    char *name = xstrdup(key);
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            *c = '_';
    char *path = xasprintf("%s/%s.lock", dir, name);
    free(name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    *holder = 0;
    if (fd < 0) {
        vm_warn("cannot open the lock '%s': %s (going on without it)", path, strerror(errno));
        free(path);
        return 0;
    }
    free(path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n > 0)
            *holder = (pid_t)atoi(buf);
        close(fd);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) < 0)
        vm_debug("cannot write our PID into the lock");
    jh->lock_fd = fd;
    return 0;
}

/* A re-run after a crash first settles what the crashed run left open
 * (recover.h), on the thread pool; VMs it finds on a target are then simply
 * no longer on the source, and the drain goes on. */
struct recover_task {
    struct vm_virt_task t;
    struct job *job;
    json_t *out, *owed;
    int needs_operator, unreachable;
    char *err;
};

static void recover_work(struct vm_virt_task *t)
{
    struct recover_task *rt = t->data;
    rt->needs_operator =
        vm_recover(rt->job->spec->journal_dir, &rt->out, &rt->unreachable, &rt->err);
    if (rt->needs_operator >= 0)
        rt->owed = vm_recover_owed(rt->job->spec->journal_dir, &rt->err);
}

/* The feature steps crashed runs owed ran: on the record, then the drain
 * goes on. */
static void owed_done(json_t *results, int failed, void *data)
{
    struct job *job = data;
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        char *event = xasprintf("recovered.%s", json_string_value(json_object_get(r, "step")));
        job_event(job, json_string_value(json_object_get(r, "vm")), NULL, event, json_incref(r));
        free(event);
    }
    if (failed) {
        job->deinit_failures += failed;
        vm_error("%s: %d earlier migration(s) still owe feature steps: an operator must "
                 "look (see 'vmmigrate recover --policy')",
                 job_command(job->spec), failed);
    }
    run_next(job);
}

static void recover_done(struct vm_virt_task *t)
{
    struct recover_task *rt = t->data;
    struct job *job = rt->job;
    if (rt->needs_operator < 0) {
        vm_warn("%s: cannot read the journals: %s", job_command(job->spec), rt->err);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(rt->out, i, r)
        {
            vm_warn("%s: settled an earlier run's %s: %s", job_command(job->spec),
                    json_string_value(json_object_get(r, "vm")),
                    json_string_value(json_object_get(r, "action")));
            job_event(job, json_string_value(json_object_get(r, "vm")), NULL, "recovered",
                      json_incref(r));
        }
        if (rt->needs_operator)
            vm_error("%s: %d migration(s) of earlier runs need an operator: see 'vmmigrate "
                     "recover'",
                     job_command(job->spec), rt->needs_operator);
    }
    json_t *owed = rt->owed;
    json_decref(rt->out);
    free(rt->err);
    vm_virt_err_clear(&t->err);
    free(rt);
    job->recovered = true;
    if (json_array_size(owed) > 0 && !job->interrupted)
        vm_owed_run(&job->loop, job->spec->journal_dir, owed, job->policy, owed_done, job);
    else
        run_next(job);
    json_decref(owed);
}

/* Stage settle (run only): what crashed runs left open, then the feature
 * steps they owe. */
static void stage_settle(struct job *job)
{
    if (job->spec->mode != VM_JOB_RUN || job->recovered) {
        run_next(job);
        return;
    }
    struct recover_task *rt = xcalloc(1, sizeof(*rt));
    rt->job = job;
    rt->t = (struct vm_virt_task){.work = recover_work, .done = recover_done, .data = rt};
    if (vm_virt_submit(&job->loop, &rt->t) < 0) {
        free(rt);
        job->recovered = true;
        run_next(job);
    }
}

static void lock_retry(uv_timer_t *t)
{
    struct job *job = t->data;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    stage_lock(job);
}

/* Stage lock (run only): every source host's lock, or wait for it
 * (--wait-lock), or stop. */
static void stage_lock(struct job *job)
{
    for (int i = 0; job->spec->mode == VM_JOB_RUN && i < job->nhosts; i++) {
        struct job_host *jh = &job->hosts[i];
        pid_t holder;
        if (!jh->source || jh->lock_fd >= 0 || lock_source(job, jh, &holder) == 0)
            continue;
        if (job->spec->wait_lock && !job->interrupted) {
            if (!job->lock_warned++)
                vm_warn("waiting for the run of PID %d on source '%s' to end", (int)holder,
                        jh->h->uri);
            uv_timer_t *t = xmalloc(sizeof(*t));
            uv_timer_init(&job->loop, t);
            t->data = job;
            uv_timer_start(t, lock_retry, 500, 0);
            return;
        }
        job_fail(job, VM_EXIT_LOCKED,
                 holder ? xasprintf("another vmmigrate run (PID %d) is working on source '%s'",
                                    (int)holder, jh->h->uri)
                        : xasprintf("another vmmigrate run is working on source '%s'", jh->h->uri));
        run_stop(job);
        return;
    }
    run_next(job);
}

/* Stage inventory: hosts' capacity and every domain of every host. */
static void stage_inventory(struct job *job)
{
    /* Another spelling of one host is still the same host. */
    for (int i = 0; i < job->nhosts; i++)
        for (int k = 0; k < job->nhosts; k++) {
            struct vm_virt_host *a = job->hosts[i].h, *b = job->hosts[k].h;
            if (job->hosts[i].source && job->hosts[k].target && a->host_uuid[0] &&
                strcmp(a->host_uuid, b->host_uuid) == 0)
                job_fail(job, VM_EXIT_PREFLIGHT,
                         xasprintf("source '%s' and target '%s' are the same host (host UUID "
                                   "%s)",
                                   a->uri, b->uri, a->host_uuid));
        }
    if (job->error || job->interrupted) {
        if (job->interrupted)
            job_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
        run_stop(job);
        return;
    }
    job->pending = job->nhosts;
    for (int i = 0; i < job->nhosts; i++) {
        struct job_host *jh = &job->hosts[i];
        jh->task.work = inventory_work;
        jh->task.done = inventory_done;
        jh->task.data = jh;
        int rc = vm_virt_submit(&job->loop, &jh->task);
        if (rc < 0) {
            jh->task.rc = -1;
            vm_virt_err_set(&jh->task.err, VIR_ERR_INTERNAL_ERROR, "%s", uv_strerror(rc));
            inventory_done(&jh->task);
        }
    }
}

/* ---- connections ------------------------------------------------------ */

static void host_opened(struct vm_virt_host *h, void *data)
{
    struct job *job = data;
    if (!h->conn) {
        job_fail(job, VM_EXIT_UNREACHABLE,
                 xasprintf("cannot connect to '%s': %s", h->uri,
                           h->err.message ? h->err.message : "unknown error"));
    } else {
        vm_info("connected to %s (%s)", h->uri, h->hostname);
        job_event(job, NULL, h->uri, "connected",
                  json_pack("{s:s, s:s}", "hostname", h->hostname, "host_uuid", h->host_uuid));
    }
    if (--job->pending > 0)
        return;
    if (job->error) {
        run_stop(job);
        return;
    }
    run_next(job);
}

/* Stage connect: every --source and --target host. */
static void stage_connect(struct job *job)
{
    job->pending = job->nhosts;
    for (int i = 0; i < job->nhosts; i++)
        vm_virt_host_open(job->hosts[i].h, host_opened, job);
}

static void signal_close(uv_handle_t *h)
{
    (void)h;
}

static void host_closed(struct vm_virt_host *h, void *data)
{
    struct job *job = data;
    (void)h;
    if (--job->pending > 0)
        return;
    job->done = true;
    if (job->deadline) {
        uv_close((uv_handle_t *)job->deadline, (uv_close_cb)free);
        job->deadline = NULL;
    }
    vm_progress_stop(job->progress);
    job->progress = NULL;
    uv_close((uv_handle_t *)&job->sigint, signal_close);
    uv_close((uv_handle_t *)&job->sigterm, signal_close);
    /* The run is over even if webhooks still retry: report now; they get
     * their grace time afterwards (vm_notify_close). */
    uv_stop(&job->loop);
}

/* Stage report: disconnect; the loop stops once every host is closed and
 * vm_job_run() reports. */
static void stage_report(struct job *job)
{
    job->pending = job->nhosts;
    for (int i = 0; i < job->nhosts; i++)
        vm_virt_host_close(job->hosts[i].h, host_closed, job);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct job *job = s->data;
    const char *how = signum == SIGINT ? "interrupted" : "terminated";
    /* on_abort = finish: the first signal only stops new starts; a second
     * one aborts what runs, as with rollback. */
    bool finish = job->spec->on_abort == VM_ON_ABORT_FINISH && !job->interrupted;
    if (job->interrupted && job->aborting) {
        vm_warn("still aborting running migrations; waiting for libvirt to finish");
        return;
    }
    job_event(job, NULL, NULL, "signal",
              json_pack("{s:s, s:s}", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM", "running",
                        finish ? "finish" : "abort"));
    if (finish)
        vm_warn("%s: starting no new migrations; the running ones finish (on_abort = finish; "
                "signal again to abort them)",
                how);
    else
        vm_warn("%s: aborting running migrations, starting no new ones", how);
    job->interrupted = true;
    job->aborting = !finish;
    for (int i = 0; i < job->nmigs; i++)
        if (!finish || job->migs[i]->state == VM_MIG_STATE_QUEUED)
            vm_mig_abort(job->migs[i], "interrupted");
    /* Skipped migrations may have finished the run. */
    if (job->stage == RUN_STAGE_SCHEDULE)
        job_schedule(job);
}

/* ---- the stage table ------------------------------------------------- */

static const struct run_stage {
    const char *name;
    void (*start)(struct job *job);
} stages[RUN_STAGE_COUNT] = {
    [RUN_STAGE_CONNECT] = {"connect", stage_connect},
    [RUN_STAGE_LOCK] = {"lock", stage_lock},
    [RUN_STAGE_SETTLE] = {"settle", stage_settle},
    [RUN_STAGE_INVENTORY] = {"inventory", stage_inventory},
    [RUN_STAGE_PLAN] = {"plan", stage_plan},
    [RUN_STAGE_PREFLIGHT] = {"preflight", stage_preflight},
    [RUN_STAGE_PROBE] = {"probe", stage_probe},
    [RUN_STAGE_SCHEDULE] = {"schedule", stage_schedule},
    [RUN_STAGE_REPORT] = {"report", stage_report},
};

static void run_next(struct job *job)
{
    if (job->stage >= RUN_STAGE_REPORT)
        return;
    job->stage++;
    stages[job->stage].start(job);
}

static void run_stop(struct job *job)
{
    if (job->stage >= RUN_STAGE_REPORT)
        return;
    job->stage = RUN_STAGE_REPORT;
    stages[job->stage].start(job);
}

/* ---- the report ------------------------------------------------------- */

static json_t *options_json(const struct vm_job_spec *spec)
{
    const struct vm_mig_params *p = &spec->params;
    static const char *const actions[] = {"abort", "suspend", "postcopy"};
    json_t *o = json_pack(
        "{s:s, s:i, s:i, s:i, s:I, s:I, s:b, s:b, s:i, s:o, s:b, s:b, s:b, s:b, "
        "s:o, s:I, s:s}",
        "mode", p->p2p ? "p2p" : "direct", "parallel", spec->concurrency, "max_out", spec->max_out,
        "max_in", spec->max_in, "bandwidth_mibs", (json_int_t)p->bandwidth_mibs, "max_downtime_ms",
        (json_int_t)p->max_downtime_ms, "auto_converge", p->auto_converge, "postcopy", p->postcopy,
        "parallel_connections", p->parallel, "compression",
        p->compression ? json_string(p->compression) : json_null(), "tls", p->tls, "persistent",
        p->persistent, "undefine_source", p->undefine_source, "unsafe", p->unsafe, "migrate_uri",
        p->migrate_uri ? json_string(p->migrate_uri) : json_null(), "timeout_s",
        (json_int_t)p->timeout_s, "timeout_action", actions[p->timeout_action]);
    json_object_set_new(o, "max_failures", json_integer(spec->max_failures));
    json_object_set_new(o, "retries", json_integer(spec->retries));
    json_object_set_new(o, "deadline_s", json_integer(spec->deadline_s));
    json_object_set_new(o, "on_abort",
                        json_string(spec->on_abort == VM_ON_ABORT_FINISH ? "finish" : "rollback"));
    return o;
}

static int job_exit_code(struct job *job, const char **result)
{
    static const char *const names[] = {
        [VM_EXIT_OK] = "ok",
        [VM_EXIT_FAILED] = "failed",
        [VM_EXIT_USAGE] = "usage",
        [VM_EXIT_PREFLIGHT] = "preflight",
        [VM_EXIT_UNREACHABLE] = "unreachable",
        [VM_EXIT_INTERRUPTED] = "interrupted",
        [VM_EXIT_POLICY] = "policy",
        [VM_EXIT_LOCKED] = "locked",
        [VM_EXIT_NOTHING] = "nothing",
        [VM_EXIT_OPERATOR] = "operator",
    };
    int code = VM_EXIT_OK;
    if (job->error) {
        code = job->exit_code;
    } else {
        bool failed = false, unknown = false;
        for (int i = 0; i < job->nmigs; i++) {
            failed |= job->migs[i]->state != VM_MIG_STATE_DONE;
            unknown |= job->migs[i]->location == VM_MIG_LOCATION_UNKNOWN;
        }
        if (unknown || job->deinit_failures)
            code = VM_EXIT_OPERATOR;
        else if (job->interrupted)
            code = VM_EXIT_INTERRUPTED;
        else if (job->policy_errors)
            code = VM_EXIT_POLICY;
        else if (failed || job->feature_failures)
            code = VM_EXIT_FAILED;
        else if (job->spec->mode == VM_JOB_RUN && job->planned &&
                 vm_plan_count(&job->plan, VM_PLAN_MIGRATE) == 0)
            code = VM_EXIT_NOTHING;
    }
    *result = (size_t)code < VM_ARRAY_LEN(names) && names[code] ? names[code] : "internal";
    return code;
}

static json_t *job_report(struct job *job, int code, const char *result)
{
    const struct vm_job_spec *spec = job->spec;
    json_t *opts = options_json(spec);
    struct vm_report_run run = {
        .command = spec->mode == VM_JOB_PLAN ? "plan" : "run",
        .source_uri = spec->sources[0],
        .target_uri = spec->targets[0],
        .source_host = job->hosts[0].h->hostname,
        .target_host = host_by_uri(job, spec->targets[0])->h->hostname,
        .started_wall_ms = job->started_wall_ms,
        .finished_wall_ms = vm_wall_ms(),
        .exit_code = code,
        .result = result,
        .error = job->error,
        .options = opts,
    };
    json_t *report = vm_report_run_json(&run, job->migs, job->nmigs);
    json_decref(opts);
    /* Per VM, what the plan said (class, features) */
    json_t *vms = json_object_get(report, "vms");
    for (int i = 0; i < job->nmigs; i++) {
        json_t *v = json_array_get(vms, (size_t)i);
        json_t *pj = vm_plan_item_to_json(job->slots[i].item);
        json_object_set(v, "class", json_object_get(pj, "class"));
        json_object_set(v, "features", json_object_get(pj, "features"));
        json_object_set_new(v, "feature_results", vm_features_to_json(job->slots[i].feats));
        json_object_set(v, "source", json_object_get(pj, "source"));
        json_decref(pj);
    }
    json_t *srcs = uri_list(spec->sources, spec->nsources);
    json_t *dsts = uri_list(spec->targets, spec->ntargets);
    json_object_set_new(report, "sources", srcs);
    json_object_set_new(report, "targets", dsts);
    json_object_set_new(report, "policy",
                        job->policy
                            ? json_pack("{s:s, s:o, s:O}", "path", vm_policy_path(job->policy),
                                        "hooks", vm_policy_hooks(job->policy), "settings",
                                        job->settings ? job->settings : json_null())
                            : json_null());
    json_object_set_new(report, "plan", job->planned ? vm_plan_to_json(&job->plan) : json_null());
    json_object_set_new(report, "journal",
                        job->journal ? json_string(vm_journal_path(job->journal)) : json_null());
    return report;
}

/* ---- entry ------------------------------------------------------------ */

static void policy_log(void *data, const char *level, const char *where, const char *msg)
{
    job_event(data, NULL, NULL, "policy.log",
              json_pack("{s:s, s:s, s:s}", "level", level, "where", where, "message", msg));
}

/* Call the policy's settings(run) and make *eff: the spec with the
 * policy's values where the command line gave none (webhooks: both).
 * Returns 0, or an exit code after a one-line error (the policy failed:
 * nothing has been touched). */
static int apply_settings(struct job *job, const struct vm_job_spec *spec, const char *cmd,
                          struct vm_job_spec *eff)
{
    json_t *run = json_pack("{s:s, s:o, s:o}", "command", cmd, "sources",
                            uri_list(spec->sources, spec->nsources), "targets",
                            uri_list(spec->targets, spec->ntargets));
    char *err = NULL;
    struct vm_run_settings st;
    int rc = vm_policy_settings(job->policy, run, &st, &err);
    json_decref(run);
    if (rc < 0) {
        vm_error("%s: %s", cmd, err);
        free(err);
        return VM_EXIT_POLICY;
    }
    *eff = *spec;
    unsigned use = st.set & ~spec->given;
    if (use & VM_SET_PARALLEL)
        eff->concurrency = st.parallel;
    if (use & VM_SET_MAX_OUT)
        eff->max_out = st.max_out;
    if (use & VM_SET_MAX_IN)
        eff->max_in = st.max_in;
    if (use & VM_SET_MAX_FAILURES)
        eff->max_failures = st.max_failures;
    if (use & VM_SET_RETRIES)
        eff->retries = st.retries;
    if (use & VM_SET_DEADLINE)
        eff->deadline_s = st.deadline_s;
    if (use & VM_SET_ON_ABORT)
        eff->on_abort = st.on_abort;
    /* Kept for the report; the webhook URLs below point into it. */
    job->settings = vm_settings_to_json(&st);
    vm_settings_clear(&st);
    json_t *policy_urls = json_object_get(job->settings, "notify");
    if (policy_urls) {
        /* The policy's webhooks and the command line's: all of them. */
        size_t n = json_array_size(policy_urls);
        const char **urls = xcalloc((size_t)spec->nnotify + n + 1, sizeof(*urls));
        for (int i = 0; i < spec->nnotify; i++)
            urls[i] = spec->notify_urls[i];
        for (size_t i = 0; i < n; i++)
            urls[(size_t)spec->nnotify + i] = json_string_value(json_array_get(policy_urls, i));
        eff->notify_urls = urls;
        eff->nnotify = spec->nnotify + (int)n;
        job->settings_notify = urls;
    }
    char *txt = json_dumps(job->settings, JSON_COMPACT);
    vm_info("%s: settings from the policy: %s", cmd, txt ? txt : "{}");
    free(txt);
    return 0;
}

static void set_threadpool_size(int concurrency, int nhosts)
{
    /* Each running migration holds one pool thread for its whole duration
     * (the blocking migrate call); stats, aborts, inventories need more. */
    if (getenv("UV_THREADPOOL_SIZE"))
        return;
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", concurrency * 2 + (nhosts > 4 ? 4 : nhosts) + 4);
    setenv("UV_THREADPOOL_SIZE", buf, 1);
}

static void job_free(struct job *job)
{
    json_decref(job->settings);
    free(job->settings_notify);
    for (int i = 0; i < job->nmigs; i++)
        slot_clear(&job->slots[i]);
    free(job->slots);
    for (int i = 0; i < job->nprobes; i++)
        vm_features_free(job->probes[i].f);
    free(job->probes);
    for (int i = 0; i < job->npre; i++) {
        if (job->pre[i].dom)
            virDomainFree(job->pre[i].dom);
        free(job->pre[i].refusal);
    }
    free(job->pre);
    free(job->migs);
    if (job->planned)
        vm_plan_clear(&job->plan);
    for (int i = 0; i < job->nhosts; i++) {
        if (job->hosts[i].lock_fd >= 0)
            close(job->hosts[i].lock_fd);
        vm_virt_host_free(job->hosts[i].h);
        json_decref(job->hosts[i].info);
        vm_virt_err_clear(&job->hosts[i].task.err);
    }
    free(job->hosts);
    vm_policy_free(job->policy);
    vm_journal_close(job->journal);
    vm_report_stream_close(job->events);
    free(job->error);
}

static void add_host(struct job *job, const char *uri, bool source)
{
    struct job_host *jh = NULL;
    for (int i = 0; i < job->nhosts; i++)
        if (strcmp(job->hosts[i].h->uri, uri) == 0)
            jh = &job->hosts[i];
    if (!jh) {
        jh = &job->hosts[job->nhosts++];
        jh->h = vm_virt_host_new(&job->loop, uri, host_event, job);
        jh->job = job;
        jh->lock_fd = -1;
    }
    if (source)
        jh->source = true;
    else
        jh->target = true;
}

int vm_job_run(const struct vm_job_spec *spec)
{
    struct job job_storage = {0}, *job = &job_storage;
    job->spec = spec;
    job->started_wall_ms = vm_wall_ms();
    const char *cmd = job_command(spec);

    for (int i = 0; i < spec->nsources; i++)
        for (int k = 0; k < spec->ntargets; k++)
            if (strcmp(spec->sources[i], spec->targets[k]) == 0) {
                vm_error("%s: '%s' is given as both --source and --target", cmd, spec->sources[i]);
                return VM_EXIT_USAGE;
            }
    if (spec->policy_path) {
        char *err = NULL;
        job->policy = vm_policy_load(spec->policy_path, &err);
        if (!job->policy) {
            vm_error("%s: %s", cmd, err);
            free(err);
            return VM_EXIT_POLICY;
        }
        vm_policy_set_logger(job->policy, policy_log, job);
    }
    /* The policy's run settings, under what the command line gave. */
    struct vm_job_spec eff;
    if (job->policy && vm_policy_has_hook(job->policy, "settings")) {
        int prc = apply_settings(job, spec, cmd, &eff);
        if (prc != 0) {
            vm_policy_free(job->policy);
            return prc;
        }
        spec = job->spec = &eff;
    }
    if (spec->events_path) {
        job->events = vm_report_stream_open(spec->events_path);
        if (!job->events) {
            vm_policy_free(job->policy);
            json_decref(job->settings);
            free(job->settings_notify);
            return VM_EXIT_USAGE;
        }
    }
    set_threadpool_size(spec->concurrency, spec->nsources + spec->ntargets);
    vm_virt_global_init();
    int rc = uv_loop_init(&job->loop);
    if (rc == 0)
        rc = vm_evloop_register(&job->loop);
    if (rc < 0) {
        vm_error("cannot set up the event loop: %s", uv_strerror(rc));
        job_free(job);
        return VM_EXIT_INTERNAL;
    }
    uv_signal_init(&job->loop, &job->sigint);
    uv_signal_init(&job->loop, &job->sigterm);
    job->sigint.data = job->sigterm.data = job;
    uv_signal_start(&job->sigint, on_signal, SIGINT);
    uv_signal_start(&job->sigterm, on_signal, SIGTERM);
    if (spec->mode == VM_JOB_RUN) {
        job->status = vm_status_new(&job->loop, spec->status_path, spec->metrics_path, NULL);
        char *nerr = NULL;
        job->notify = vm_notify_new(&job->loop, spec->notify_urls, spec->nnotify,
                                    spec->notify_token_file, &nerr);
        if (nerr) {
            vm_error("%s: %s", job_command(job->spec), nerr);
            free(nerr);
            vm_status_free(job->status);
            uv_close((uv_handle_t *)&job->sigint, NULL);
            uv_close((uv_handle_t *)&job->sigterm, NULL);
            vm_evloop_shutdown();
            uv_run(&job->loop, UV_RUN_DEFAULT);
            uv_loop_close(&job->loop);
            job_free(job);
            return VM_EXIT_USAGE;
        }
    }

    json_t *srcs = uri_list(spec->sources, spec->nsources);
    json_t *dsts = uri_list(spec->targets, spec->ntargets);
    job_event(job, NULL, NULL, "run.started",
              json_pack("{s:s, s:o, s:o, s:i, s:o}", "command", cmd, "sources", srcs, "targets",
                        dsts, "vms", spec->nvms, "policy",
                        spec->policy_path ? json_string(spec->policy_path) : json_null()));

    job->hosts = xcalloc((size_t)(spec->nsources + spec->ntargets), sizeof(*job->hosts));
    for (int i = 0; i < spec->nsources; i++)
        add_host(job, spec->sources[i], true);
    for (int i = 0; i < spec->ntargets; i++)
        add_host(job, spec->targets[i], false);
    job->stage = RUN_STAGE_CONNECT;
    stages[job->stage].start(job);

    uv_run(&job->loop, UV_RUN_DEFAULT);

    /* Every migration is final and every connection closed: report. */
    const char *result;
    int code = job_exit_code(job, &result);
    json_t *report = job_report(job, code, result);
    vm_status_finish(job->status, result, code);
    vm_notify_send(job->notify, "run.finished", run_id(job),
                   json_pack("{s:s, s:i, s:O}", "result", result, "exit_code", code, "summary",
                             json_object_get(report, "summary")));
    vm_notify_close(job->notify, 5000);
    job->notify = NULL;
    vm_status_free(job->status);
    job->status = NULL;
    job_event(job, NULL, NULL, "run.finished",
              json_pack("{s:s, s:i, s:O}", "result", result, "exit_code", code, "summary",
                        json_object_get(report, "summary")));
    if (spec->mode == VM_JOB_PLAN) {
        if (spec->json)
            vm_report_print(report);
        else if (job->planned)
            vm_plan_print(&job->plan, stdout);
    } else if (spec->json) {
        vm_report_print(report);
    }
    json_decref(report);

    vm_policy_shutdown(job->policy);
    vm_evloop_shutdown();
    uv_run(&job->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&job->loop) != 0)
        vm_debug("event loop closed with handles still open");
    job_free(job);
    return code;
}
