/* SPDX-License-Identifier: MIT */
/* run_report.c — the run's exit code and its final report (run_priv.h):
 * the options, the VMs (with what the plan said of each), the policy, the
 * plan and the journal. */
#include "run/run_priv.h"

#include <stdio.h>
#include <stdlib.h>

#include "journal/journal.h"
#include "policy/policy.h"
#include "report/report.h"
#include "run/run_records.h"
#include "util/exitcode.h"
#include "util/util.h"

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
    json_object_set_new(o, "connect_timeout_s", json_integer(spec->connect_timeout_s));
    json_object_set_new(o, "on_abort",
                        json_string(spec->on_abort == VM_ON_ABORT_FINISH ? "finish" : "rollback"));
    return o;
}

int run_exit_code(struct job *job, const char **result)
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
        [VM_EXIT_JOURNAL] = "journal",
    };
    int code = VM_EXIT_OK;
    if (job->error) {
        code = job->exit_code;
    } else {
        bool failed = false, unknown = false;
        for (int i = 0; i < job->nmigs; i++) {
            failed |= job->migs[i]->state != VM_MIG_STATE_DONE;
            unknown |=
                job->migs[i]->location == VM_MIG_LOCATION_UNKNOWN || job->migs[i]->source_left;
        }
        if (unknown || job->deinit_failures || job->unsettled)
            code = VM_EXIT_OPERATOR;
        else if (job->journal_failed)
            code = VM_EXIT_JOURNAL;
        else if (job->interrupted)
            code = VM_EXIT_INTERRUPTED;
        else if (job->policy_errors)
            code = VM_EXIT_POLICY;
        else if (failed || job->feature_failures || job->unreadable)
            code = VM_EXIT_FAILED;
        else if (job->spec->mode == VM_JOB_RUN && job->planned &&
                 vm_plan_count(&job->plan, VM_PLAN_MIGRATE) == 0)
            code = VM_EXIT_NOTHING;
    }
    *result = (size_t)code < VM_ARRAY_LEN(names) && names[code] ? names[code] : "internal";
    return code;
}

static char *plural(int n, const char *one, const char *many, const char *rest)
{
    return xasprintf("%d %s %s", n, n == 1 ? one : many, rest);
}

char *run_exit_why(struct job *job, int code)
{
    if (job->error)
        return NULL; /* the report's error, said with it */
    switch (code) {
    case VM_EXIT_OPERATOR:
        for (int i = 0; i < job->nmigs; i++) {
            const struct vm_mig *m = job->migs[i];
            if (m->location == VM_MIG_LOCATION_UNKNOWN)
                return xasprintf("where %s runs is unknown", m->name);
            if (m->source_left)
                return xasprintf("%s runs on the target, but its source copy may be left", m->name);
        }
        if (job->deinit_failures)
            return plural(job->deinit_failures, "feature cleanup step", "feature cleanup steps",
                          "failed");
        if (json_object_size(job->unsettled))
            return plural((int)json_object_size(job->unsettled), "migration of an earlier run",
                          "migrations of earlier runs",
                          "could not be settled: see 'vmmigrate recover'");
        return NULL;
    case VM_EXIT_POLICY:
        return job->policy_errors
                   ? plural(job->policy_errors, "policy error", "policy errors", "(fail closed)")
                   : NULL;
    case VM_EXIT_FAILED:
        if (job->unreadable)
            return plural(job->unreadable, "VM's domain XML", "VMs' domain XML",
                          "could not be read");
        if (job->feature_failures)
            return plural(job->feature_failures, "required feature", "required features",
                          "did not come up on the target");
        return NULL;
    default:
        return NULL;
    }
}

json_t *run_report(struct job *job, int code, const char *result)
{
    const struct vm_job_spec *spec = job->spec;
    json_t *opts = options_json(spec);
    struct vm_report_run run = {
        .command = spec->mode == VM_JOB_PLAN ? "plan" : "run",
        .run = job->run_id,
        .source_uri = spec->sources[0],
        .target_uri = spec->targets[0],
        .source_host = job->hosts[0].h->hostname,
        .target_host = run_host(job, spec->targets[0])->h->hostname,
        .started_wall_ms = job->started_wall_ms,
        .finished_wall_ms = vm_wall_ms(),
        .exit_code = code,
        .result = result,
        .error = job->error,
        .options = opts,
    };
    json_t *report = vm_run_report_json(&run, job->migs, job->nmigs);
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
    json_t *srcs = run_uri_list(spec->sources, spec->nsources);
    json_t *dsts = run_uri_list(spec->targets, spec->ntargets);
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
