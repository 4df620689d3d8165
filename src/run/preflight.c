/* SPDX-License-Identifier: MIT */
/* preflight.c — the preflight and probe stages (run_priv.h): per VM to
 * migrate, on the thread pool, the domain on the source and its CPU against
 * the target; then every feature's probe on its target. A refused VM is
 * left alone (policy runs) or stops the run (explicit VMs). The preflight
 * records and probes belong to the job. */
#include "run/run_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/libvirt/virt_checks.h"
#include "util/exec.h"
#include "util/exitcode.h"
#include "util/util.h"

/* ---- preflight -------------------------------------------------------- */

/* On the thread pool: the domain on the source and its CPU against the
 * target (virt_checks.h). */
static void preflight_work(struct vm_virt_task *t)
{
    struct preflight *pf = t->data;
    struct vm_plan_item *it = pf->item;
    const char *arch = json_string_value(json_object_get(pf->dst->info, "arch"));
    const char *type = json_string_value(json_object_get(it->vm, "type"));
    switch (vm_virt_check_domain(pf->src->h->conn, pf->dst->h->conn, it->uuid, arch, type, &pf->dom,
                                 &t->err)) {
    case VM_VIRT_CHECK_NO_DOMAIN:
        pf->refusal =
            xasprintf("cannot look up '%s' on '%s': %s", it->name, it->source, t->err.message);
        break;
    case VM_VIRT_CHECK_NOT_RUNNING:
        pf->refusal = xasprintf("'%s' is no longer running on '%s'", it->name, it->source);
        break;
    case VM_VIRT_CHECK_CPU_INCOMPATIBLE:
        pf->refusal =
            xasprintf("the CPU of '%s' is not compatible with '%s'", it->name, it->target);
        break;
    case VM_VIRT_CHECK_OK:
        break;
    }
}

static void preflight_done(struct vm_virt_task *t)
{
    struct preflight *pf = t->data;
    struct job *job = pf->job;
    if (pf->refusal) {
        run_event(job, pf->item->name, pf->item->source, "preflight.refused",
                  json_pack("{s:s}", "reason", pf->refusal));
        if (job->spec->policy_path) {
            vm_warn("%s: left alone: %s", pf->item->name, pf->refusal);
            vm_plan_refuse(&job->plan, pf->item, xstrdup(pf->refusal));
        } else {
            run_fail(job, VM_EXIT_PREFLIGHT, xstrdup(pf->refusal));
        }
        vm_virt_domain_free(pf->dom);
        pf->dom = NULL;
    }
    vm_virt_err_clear(&t->err);
    if (--job->pending == 0)
        run_next(job);
}

/* Stage preflight: per VM to migrate, on the thread pool, the checks of
 * preflight_work; a refused VM is left alone (policy) or stops the run. */
void run_stage_preflight(struct job *job)
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
        pf->src = run_host(job, it->source);
        pf->dst = run_host(job, it->target);
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
    run_feature_event(pr->job, json_string_value(json_object_get(pr->vm, "name")), feature, step,
                      ok, detail);
}

/* spice's probe: the SPICE channels clients hold on the source (ctx: the
 * probe). */
static void spice_counted(int n, const char *why, void *data)
{
    vm_features_spice_counted(data, n, why);
}

static void probe_spice_count(struct vm_features *f, void *ctx)
{
    struct probe *pr = ctx;
    vm_virt_spice_count(&pr->job->loop, run_host(pr->job, pr->it->source)->h->conn, pr->it->uuid,
                        spice_counted, f);
}

static void probes_finished(struct job *job);

static void probe_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct probe *pr = data;
    struct job *job = pr->job;
    (void)f;
    if (!ok) {
        char *note = xasprintf("'%s': %s (probe on '%s')", pr->it->name, reason, pr->it->target);
        run_event(job, pr->it->name, pr->it->target, "preflight.refused",
                  json_pack("{s:s}", "reason", note));
        if (job->spec->policy_path) {
            vm_warn("%s: left alone: %s", pr->it->name, note);
            vm_plan_refuse(&job->plan, pr->it, note);
        } else {
            run_fail(job, VM_EXIT_PREFLIGHT, note);
        }
    }
    /* the features are freed with the job: we are inside their callback */
    if (--job->pending == 0)
        probes_finished(job);
}

/* Stage probe: every feature of every VM to migrate probes its target
 * (skipped once the run failed or was interrupted); then the plan is
 * final. */
void run_stage_probe(struct job *job)
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
                                     .hosts = job->exec_hosts,
                                     .share = job->probe_share,
                                     .gated = it->d.class == VM_CLASS_NETWORK_CRITICAL,
                                     .spice_count = probe_spice_count,
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
    long started, joined;
    vm_exec_share_counts(job->probe_share, &started, &joined);
    if (joined)
        vm_info("probes: %ld command(s) answered %ld queries", started, started + joined);
    /* Refusals reorder the plan (items are sorted in place): from here on
     * preflight records are matched to items by their inventory object. */
    for (int i = 0; i < job->npre; i++)
        job->pre[i].vm = job->pre[i].item->vm;
    vm_plan_finish(&job->plan);
    run_event(job, NULL, NULL, "plan", vm_plan_to_json(&job->plan));
    if (job->error || job->interrupted || job->spec->mode == VM_JOB_PLAN) {
        if (job->interrupted)
            run_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
        run_stop(job);
        return;
    }
    run_next(job);
}
