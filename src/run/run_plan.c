/* SPDX-License-Identifier: MIT */
/* run_plan.c — the plan stage (run_priv.h): explicit VMs (all must be
 * migratable) or the policy's decide(), vetted against what the plan
 * cannot know from decisions alone (state, a copy on a target, features,
 * the commit gate, transports). The plan belongs to the job. */
#include "run/run_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/gate.h"
#include "policy/policy.h"
#include "util/exitcode.h"
#include "util/util.h"

/* ---- plan ------------------------------------------------------------- */

/* Explicit VMs: the named ones move (default placement), nothing else.
 * ctx: the job; job->explicit_names is the set of names. */
static int explicit_decide(void *ctx, json_t *vm, json_t **decision, char **err)
{
    struct job *job = ctx;
    const char *name = json_string_value(json_object_get(vm, "name"));
    (void)err;
    *decision = name && json_object_get(job->explicit_names, name) ? json_object() : NULL;
    return 0;
}

/* Index, once per plan, the domains active on the targets: UUID -> the
 * index in job->hosts of the first target (in host order) it is active on. */
static void index_target_active(struct job *job)
{
    json_decref(job->target_active);
    job->target_active = json_object();
    for (int i = 0; i < job->nhosts; i++) {
        if (!job->hosts[i].target)
            continue;
        size_t k;
        json_t *d;
        json_array_foreach(json_object_get(job->hosts[i].info, "domains"), k, d)
        {
            const char *u = json_string_value(json_object_get(d, "uuid"));
            if (u && json_is_true(json_object_get(d, "active")) &&
                !json_object_get(job->target_active, u))
                json_object_set_new(job->target_active, u, json_pack("[i,I]", i, (json_int_t)k));
        }
    }
}

/* Is the VM with this UUID active on a target host? Which one? */
static const char *active_on_target(struct job *job, const char *uuid, const char **state)
{
    json_t *at = uuid ? json_object_get(job->target_active, uuid) : NULL;
    if (!at)
        return NULL;
    struct job_host *jh = &job->hosts[json_integer_value(json_array_get(at, 0))];
    json_t *d = json_array_get(json_object_get(jh->info, "domains"),
                               (size_t)json_integer_value(json_array_get(at, 1)));
    *state = json_string_value(json_object_get(d, "state"));
    return jh->h->uri;
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
        if (d->required && !vm_feature_known(d->name, job->policy)) {
            char *builtins = vm_feature_builtin_names();
            char *msg = xasprintf("'%s' requires feature '%s', which is not available (built in: "
                                  "%s; or define it with vmm.feature())",
                                  it->name, d->name, builtins);
            free(builtins);
            return msg;
        }
    }
    return NULL;
}

/* What recover found about this VM's earlier migration, if it could not
 * settle it (run_recover.c), or NULL. */
static json_t *unsettled_of(const struct job *job, const struct vm_plan_item *it)
{
    return job->unsettled && it->uuid ? json_object_get(job->unsettled, it->uuid) : NULL;
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
    json_t *open_mig = unsettled_of(job, it);
    if (open_mig)
        return xasprintf("'%s': the migration of run %s is not settled (%s): left alone until "
                         "an operator runs 'vmmigrate recover'",
                         it->name, json_string_value(json_object_get(open_mig, "run")),
                         json_string_value(json_object_get(open_mig, "action")));
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
void run_stage_plan(struct job *job)
{
    const struct vm_job_spec *spec = job->spec;
    json_t *sources = json_array(), *targets = json_array();
    json_t *run_sources = json_array(), *run_targets = json_array();
    for (int i = 0; i < job->nhosts; i++) {
        struct job_host *jh = &job->hosts[i];
        json_t *bare = json_copy(jh->info); /* shares the values: only its keys change */
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
    index_target_active(job);
    json_t *by_name = json_object();
    if (spec->nvms) {
        json_decref(job->explicit_names);
        job->explicit_names = json_object();
        size_t k;
        json_t *d;
        json_array_foreach(json_object_get(job->hosts[0].info, "domains"), k, d)
        {
            const char *n = json_string_value(json_object_get(d, "name"));
            if (n)
                json_object_set(by_name, n, d); /* the last of a name, as before */
        }
    }
    for (int v = 0; v < spec->nvms; v++) {
        json_t *found = json_object_get(by_name, spec->vms[v]);
        json_object_set_new(job->explicit_names, spec->vms[v], json_true());
        const char *state = found ? json_string_value(json_object_get(found, "state")) : NULL;
        const char *tstate = NULL, *on = NULL;
        if (!found)
            run_fail(job, VM_EXIT_PREFLIGHT,
                     xasprintf("VM '%s' not found on '%s'", spec->vms[v], spec->sources[0]));
        else if (!state || strcmp(state, "running") != 0)
            run_fail(job, VM_EXIT_PREFLIGHT,
                     xasprintf("VM '%s' is not running on '%s' (state: %s)", spec->vms[v],
                               spec->sources[0], state ? state : "unknown"));
        else if ((on = active_on_target(job, json_string_value(json_object_get(found, "uuid")),
                                        &tstate)))
            run_fail(job, VM_EXIT_PREFLIGHT,
                     xasprintf("VM '%s' is already active on the target '%s' (state: %s)",
                               spec->vms[v], on, tstate ? tstate : "unknown"));
    }
    json_decref(by_name);
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
        } else if (it->status == VM_PLAN_REFUSED && job->policy &&
                   (json_object_get(it->vm, "unreadable") || unsettled_of(job, it))) {
            /* Left alone for what it is, not for the policy's choice: named
             * here (explicit VMs are named by run_fail below). */
            if (json_object_get(it->vm, "unreadable"))
                job->unreadable++;
            vm_error("%s: %s", run_command(spec), it->note);
        } else if (it->status == VM_PLAN_MIGRATE && it->params.migrate_uri &&
                   !transport_offered(run_host(job, it->target)->info, it->params.migrate_uri)) {
            vm_plan_refuse(&job->plan, it,
                           xasprintf("target '%s' does not offer the transport of '%s'", it->target,
                                     it->params.migrate_uri));
        }
    }
    if (!job->policy && vm_plan_count(&job->plan, VM_PLAN_MIGRATE) != spec->nvms) {
        for (int i = 0; i < job->plan.n; i++)
            if (job->plan.items[i].status == VM_PLAN_REFUSED)
                run_fail(job, VM_EXIT_PREFLIGHT, xstrdup(job->plan.items[i].note));
    }
    if (job->error) {
        run_stop(job);
        return;
    }
    run_next(job);
}
