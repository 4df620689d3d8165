/* SPDX-License-Identifier: MIT */
/* sched_events.c — what a slot's migration and features report back
 * (run_priv.h): state changes, progress and the policy's on_progress
 * actions, events, the commit gate's run side (the features' gate steps,
 * the decision recorded before it is carried out; migrate/commit.h owns the
 * budget and the decision), the feature
 * choreography of urgent and network-critical migrations, and the routing
 * of libvirt domain events. Every callback gets its slot as its data. */
#include "run/run_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/libvirt/virt_checks.h"
#include "journal/journal.h"
#include "policy/policy.h"
#include "report/report.h"
#include "util/fault.h"
#include "util/util.h"

static void slot_features_event(struct vm_features *f, const char *feature, const char *step,
                                bool ok, const char *detail, void *data)
{
    struct vm_slot *s = data;
    (void)f;
    run_feature_event(s->job, s->mig->name, feature, step, ok, detail);
}

/* After a step that ends a migration's features: the run may be over. */
static void features_settled(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_slot *s = data;
    (void)reason;
    /* The steps ran, their record is not written: a crash here makes them
     * run again (ctx.redo). */
    vm_fault("after-step");
    /* The after steps ran: never owed again after a crash. */
    run_journal(s->job, s->mig, "after-done",
                json_pack("{s:b, s:o}", "ok", ok, "features", vm_features_to_json(f)));
    run_schedule(s->job);
}

static void deinit_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_slot *s = data;
    struct job *job = s->job;
    vm_fault("after-step");
    /* Done (or failed for an operator): never owed again after a crash. */
    run_journal(job, s->mig, "deinit-done",
                json_pack("{s:b, s:o}", "ok", ok, "features", vm_features_to_json(f)));
    if (!ok) {
        job->deinit_failures++;
        vm_error("%s: needs an operator: %s", s->mig->name, reason);
        run_notify_vm(job, s->mig, "needs-operator");
    }
    run_schedule(job);
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

/* The guest runs on the target: the budgets are for moving memory, and
 * libvirt's clean-up of the source QEMU (a few hundred ms of waiting for it
 * to exit) need not hold back the next migration. */
static void mig_on_target(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    (void)m;
    if (run_slot_release(s)) {
        run_state(s->job, s); /* in flight no more (the metrics) */
        run_schedule(s->job);
    }
}

static void mig_on_state(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    struct job *job = s->job;
    run_state(job, s);
    bool retry = vm_mig_final(m) && run_slot_retry_wanted(s);
    if (retry)
        s->retry = true; /* job_retry(), once its features are idle */
    else if (m->state == VM_MIG_STATE_FAILED || m->state == VM_MIG_STATE_ABORTED ||
             m->state == VM_MIG_STATE_ROLLED_BACK)
        run_vm_failed(job, m);
    if (vm_mig_final(m) && m->location == VM_MIG_LOCATION_UNKNOWN)
        run_notify_vm(job, m, "needs-operator");
    if (!vm_mig_final(m))
        return;
    run_slot_release(s);
    /* Not settled (where the guest runs is unknown, or a source copy may be
     * left): the migration stays open for recover. */
    run_journal(job, m, "finished",
                json_pack("{s:s, s:s, s:b}", "result", vm_mig_state_name(m->state), "location",
                          vm_mig_location_name(m->location), "settled",
                          !m->source_left && m->location != VM_MIG_LOCATION_UNKNOWN));
    struct vm_features *f = s->feats;
    /* A gated migration's after and deinit steps are owed after a crash:
     * journaled before they begin, so that a run after a crash between
     * this record and their -done knows it redoes them (ctx.redo). */
    if (f && m->state == VM_MIG_STATE_DONE) {
        if (m->gated)
            run_journal(job, m, "step-started", json_pack("{s:s}", "step", "after"));
        vm_features_run(f, m->gated ? VM_FEATURE_AFTER : VM_FEATURE_PREPARE,
                        m->gated ? features_settled : urgent_prepare_done);
    } else if (f && m->gated && m->state != VM_MIG_STATE_SKIPPED) {
        run_journal(job, m, "step-started", json_pack("{s:s}", "step", "deinit"));
        vm_features_run(f, VM_FEATURE_DEINIT, deinit_done);
    }
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
    run_schedule(job);
}

static void apply_action(struct job *job, struct vm_mig *m, struct vm_plan_item *it,
                         struct vm_action *a)
{
    if (a->kind == VM_ACTION_CONTINUE)
        return;
    run_event(job, m->name, NULL, "policy.action",
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
    run_state(job, s);
    if (!job->policy || !vm_policy_has_hook(job->policy, "on_progress") || m->abort_requested)
        return;
    struct vm_plan_item *it = s->item;
    const struct vm_mig_progress *p = &m->progress;
    json_t *pj = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b}", "iteration", (json_int_t)p->iteration,
        "elapsed_ms", (json_int_t)(vm_mono_ms() - m->start_mono_ms), "data_total",
        (json_int_t)p->data_total, "data_processed", (json_int_t)p->data_processed,
        "data_remaining", (json_int_t)p->data_remaining, "bandwidth_bps", (json_int_t)p->mem_bps,
        "dirty_rate", (json_int_t)p->dirty_rate, "max_downtime_ms",
        (json_int_t)m->params.max_downtime_ms, "postcopy", p->postcopy_active, "not_converging",
        p->not_converging);
    struct vm_action a;
    char *err = NULL;
    int rc = vm_policy_progress(job->policy, it->vm, pj, &a, &err);
    json_decref(pj);
    if (rc < 0) {
        job->policy_errors++;
        vm_error("%s: on_progress failed, aborting the migration (fail closed): %s", m->name, err);
        run_event(job, m->name, NULL, "policy.error",
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
    run_event(s->job, m->name, host, event, details);
    if (strcmp(event, "phase") == 0)
        run_state(s->job, s); /* the phases are part of the VM's record */
}

/* ---- the gate: the features' gate steps; migrate/commit.h decides ------ */

static void gate_features_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_slot *s = data;
    (void)f;
    vm_mig_gate_decide(s->mig, ok, ok ? "every required feature is ready on the target" : reason);
}

static bool mig_gate_steps(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    (void)m;
    if (!s->feats)
        return false;
    if (!vm_features_busy(s->feats)) /* else prepare still runs: run_prepare_done */
        vm_features_run(s->feats, VM_FEATURE_GATE, gate_features_done);
    return true;
}

static void mig_gate_cancel(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    (void)m;
    if (vm_features_busy(s->feats))
        vm_features_cancel(s->feats); /* decided without them (budget, signal) */
}

static bool mig_on_decision(struct vm_mig *m, bool commit, void *data)
{
    struct vm_slot *s = data;
    /* The gate is decided, not yet on record: a crash here must settle as
     * if nothing was decided (the source resumes). */
    vm_fault("before-record");
    return run_journal(s->job, m, commit ? "commit-decided" : "rollback-decided",
                       json_pack("{s:s}", "reason", m->gate_reason)) == 0;
}

/* Network-critical: prepare runs while memory is copied; if it is still
 * running when the gate is reached, the gate step waits for it. */
void run_prepare_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_slot *s = data;
    struct vm_mig *m = s->mig;
    (void)f, (void)ok, (void)reason;
    if (m->state == VM_MIG_STATE_GATE)
        vm_mig_gate_steps(m);
    else
        run_schedule(s->job);
}

static void mig_on_gate(struct vm_mig *m, void *data)
{
    struct vm_slot *s = data;
    run_journal(s->job, m, "gate-reached", NULL);
    vm_fault("at-gate"); /* held on both hosts, undecided, on record */
}

const struct vm_mig_ops run_mig_ops = {
    .on_state = mig_on_state,
    .on_progress = mig_on_progress,
    .on_event = mig_on_event,
    .on_gate = mig_on_gate,
    .gate_steps = mig_gate_steps,
    .gate_cancel = mig_gate_cancel,
    .on_decision = mig_on_decision,
    .on_target = mig_on_target,
};

void run_host_event(struct vm_virt_host *h, const struct vm_virt_event *ev, void *data)
{
    struct job *job = data;
    if (ev->kind == VM_VIRT_EVENT_CONNECTION_LOST) {
        /* Host-wide: every migration from or to h that is under way. */
        for (int i = 0; i < job->nmigs; i++) {
            struct vm_mig *m = job->slots[i].mig;
            if (m->state != VM_MIG_STATE_QUEUED && !vm_mig_final(m) && (m->src == h || m->dst == h))
                vm_mig_domain_event(m, h, ev);
        }
        return;
    }
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
 * target (virt_checks.h). ctx: the slot. */
static void announced(bool ok, const char *why, void *data)
{
    vm_features_announced(data, ok, why);
}

static void libvirt_announce(struct vm_features *f, void *ctx)
{
    struct vm_slot *s = ctx;
    vm_virt_announce_self(&s->job->loop, s->mig->dst->conn, s->mig->uuid, announced, f);
}

/* spice: how many SPICE channels are initialised on the target. */
static int libvirt_spice_ready(void *ctx)
{
    struct vm_slot *s = ctx;
    return s->mig->graphics_target_ready;
}

/* The features of the slot's migration (NULL if the decision names none). */
struct vm_features *run_slot_features(struct vm_slot *s)
{
    struct vm_plan_item *it = s->item;
    struct vm_mig *m = s->mig;
    if (!it->d.nfeatures)
        return NULL;
    struct vm_feature_env env = {.source = m->src->uri,
                                 .target = m->dst->uri,
                                 .hosts = s->job->exec_hosts,
                                 .gated = m->gated,
                                 .announce = libvirt_announce,
                                 .spice_target_ready = libvirt_spice_ready,
                                 .ctx = s};
    return vm_features_new(&s->job->loop, &env, it->vm, it->d.features, it->d.nfeatures,
                           s->job->policy, slot_features_event, s);
}
