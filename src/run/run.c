/* SPDX-License-Identifier: MIT */
/* run.c — the run's context, shared by the stages (run_priv.h): messages,
 * run-level errors, events, hosts by URI, journal records, webhooks. */
#include "run/run_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "report/notify.h"
#include "report/sinks.h"
#include "run/run_records.h"
#include "util/util.h"

/* The command's name in messages. */
const char *run_command(const struct vm_job_spec *spec)
{
    return spec->command ? spec->command : spec->mode == VM_JOB_PLAN ? "plan" : "run";
}

json_t *run_uri_list(const char *const *uris, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(uris[i]));
    return a;
}

void run_fail(struct job *job, int code, char *msg)
{
    if (!job->error) {
        job->exit_code = code;
        job->error = msg;
        vm_error("%s: %s", run_command(job->spec), msg);
    } else {
        free(msg);
    }
}

void run_event(struct job *job, const char *vm, const char *host, const char *event,
               json_t *details)
{
    vm_sinks_trace(job->sinks, vm, host, event, details);
}

struct job_host *run_host(struct job *job, const char *uri)
{
    json_t *i = uri ? json_object_get(job->host_index, uri) : NULL;
    return i ? &job->hosts[json_integer_value(i)] : NULL;
}

/* A feature step's result, on the log and the event stream. */
void run_feature_event(struct job *job, const char *name, const char *feature, const char *step,
                       bool ok, const char *detail)
{
    if (!ok)
        vm_warn("%s: feature '%s' %s failed: %s", name ? name : "?", feature, step,
                detail ? detail : "no reason given");
    run_event(job, name, NULL, "feature",
              json_pack("{s:s, s:s, s:b, s:o}", "feature", feature, "step", step, "ok", ok,
                        "detail", detail ? json_string(detail) : json_null()));
}

const char *run_id(struct job *job)
{
    return job->run_id;
}

void run_notify_vm(struct job *job, struct vm_mig *m, const char *event)
{
    struct vm_state_rec r;
    vm_run_state_of(m, 0, &r);
    vm_sinks_notice(job->sinks, m->name, event, vm_notify_vm_details(&r));
}

void run_state(struct job *job, const struct vm_slot *s)
{
    struct vm_state_rec r;
    vm_run_state_of(s->mig, s->index, &r);
    r.holds_slot = job->budget.slots[s->index].holds;
    r.wait_reason = s->mig->state == VM_MIG_STATE_QUEUED && s->wait[0] ? s->wait : NULL;
    vm_sinks_state(job->sinks, &r);
}

int run_journal(struct job *job, struct vm_mig *m, const char *record, json_t *fields)
{
    if (!job->journal) {
        json_decref(fields);
        return 0;
    }
    if (vm_journal_write(job->journal, m->name, m->uuid, m->src->uri, m->dst->uri, record,
                         fields) == 0)
        return 0;
    job->journal_failed = true; /* run_schedule() starts nothing more */
    return -1;
}
