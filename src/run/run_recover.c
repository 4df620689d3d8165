/* SPDX-License-Identifier: MIT */
/* run_recover.c — the settle stage (run only; run_priv.h): a re-run after
 * a crash first settles what the crashed run left open (recover.h), on the
 * thread pool, then runs the feature steps crashed runs owe (owed.h); VMs
 * it finds on a target are then simply no longer on the source. */
#include "run/run_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal.h"
#include "journal/owed.h"
#include "journal/recover.h"
#include "util/util.h"

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

/* How long a run waits for another recover of the same journals (a crashed
 * run's guardian, an operator's) before it gives up settling. */
#define SETTLE_LOCK_WAIT_MS 120000

static void recover_work(struct vm_virt_task *t)
{
    struct recover_task *rt = t->data;
    int fd = vm_journal_lock_settle(rt->job->spec->journal_dir, SETTLE_LOCK_WAIT_MS, &rt->err);
    if (fd == -1) {
        rt->needs_operator = -1;
        return;
    }
    rt->job->settle_lock = fd; /* read on the loop only after this task is done */
    rt->needs_operator =
        vm_recover(rt->job->spec->journal_dir, rt->job->settle_journal, &rt->out,
                   &rt->unreachable, &rt->err);
    /* Whatever the journals say (one may be torn): guests the run's hosts
     * show paused by a migration nobody runs. */
    const struct vm_job_spec *spec = rt->job->spec;
    if (rt->needs_operator >= 0) {
        if (!rt->out)
            rt->out = json_array();
        rt->needs_operator +=
            vm_recover_evidence(spec->journal_dir, rt->job->settle_journal, spec->sources, spec->nsources, spec->targets,
                                spec->ntargets, rt->out, &rt->unreachable);
    }
    if (rt->needs_operator >= 0)
        rt->owed = vm_recover_owed(rt->job->spec->journal_dir, &rt->err);
}

/* The settling is over: another recover of these journals may go on. */
static void settle_unlock(struct job *job)
{
    if (job->settle_lock >= 0)
        close(job->settle_lock);
    job->settle_lock = -1;
    vm_journal_close(job->settle_journal);
    job->settle_journal = NULL;
}

/* The feature steps crashed runs owed ran: on the record, then the drain
 * goes on. */
static void owed_done(json_t *results, int failed, void *data)
{
    struct job *job = data;
    settle_unlock(job);
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        char *event = xasprintf("recovered.%s", json_string_value(json_object_get(r, "step")));
        run_event(job, json_string_value(json_object_get(r, "vm")), NULL, event, json_incref(r));
        free(event);
    }
    if (failed) {
        job->deinit_failures += failed;
        vm_error("%s: %d earlier migration(s) still owe feature steps: an operator must "
                 "look (see 'vmmigrate recover --policy')",
                 run_command(job->spec), failed);
    }
    run_next(job);
}

/* This run's own migration with uuid, or NULL. */
static struct vm_mig *own_mig(struct job *job, const char *run, const char *uuid)
{
    const char *self = job->journal ? vm_journal_run_id(job->journal) : NULL;
    if (!self || !run || !uuid || strcmp(run, self) != 0)
        return NULL;
    for (int i = 0; i < job->nmigs; i++)
        if (strcmp(job->migs[i]->uuid, uuid) == 0)
            return job->migs[i];
    return NULL;
}

static void recover_done(struct vm_virt_task *t)
{
    struct recover_task *rt = t->data;
    struct job *job = rt->job;
    if (rt->needs_operator < 0) {
        vm_warn("%s: cannot read the journals: %s", run_command(job->spec), rt->err);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(rt->out, i, r)
        {
            struct vm_mig *own = own_mig(job, json_string_value(json_object_get(r, "run")),
                                         json_string_value(json_object_get(r, "uuid")));
            vm_warn("%s: settled %s %s: %s", run_command(job->spec),
                    own ? "this run's" : "an earlier run's",
                    json_string_value(json_object_get(r, "vm")),
                    json_string_value(json_object_get(r, "action")));
            /* One of ours the run could not settle by itself: now it is
             * where the hosts say. */
            const char *loc = json_string_value(json_object_get(r, "location"));
            if (own && json_is_true(json_object_get(r, "ok")) && loc) {
                own->source_left = false;
                own->location = strcmp(loc, "target") == 0   ? VM_MIG_LOCATION_TARGET
                                : strcmp(loc, "source") == 0 ? VM_MIG_LOCATION_SOURCE
                                                             : VM_MIG_LOCATION_UNKNOWN;
            }
            run_event(job, json_string_value(json_object_get(r, "vm")), NULL, "recovered",
                      json_incref(r));
            const char *uuid = json_string_value(json_object_get(r, "uuid"));
            if (uuid && !json_is_true(json_object_get(r, "ok"))) {
                if (!job->unsettled)
                    job->unsettled = json_object();
                json_object_set(job->unsettled, uuid, r);
            }
        }
        if (rt->needs_operator)
            vm_error("%s: %d migration(s) of %s need an operator: see 'vmmigrate recover'",
                     run_command(job->spec), rt->needs_operator,
                     job->stage == RUN_STAGE_RESETTLE ? "this run or earlier ones"
                                                      : "earlier runs");
    }
    json_t *owed = rt->owed;
    json_decref(rt->out);
    free(rt->err);
    vm_virt_err_clear(&t->err);
    free(rt);
    job->recovered = true;
    if (json_array_size(owed) > 0 && !job->interrupted)
        vm_owed_run(&job->loop, job->spec->journal_dir, job->settle_journal, owed, job->policy, job->exec_hosts,
                    owed_done, job);
    else {
        settle_unlock(job);
        run_next(job);
    }
    json_decref(owed);
}

/* Stage settle (run only): what crashed runs left open, then the feature
 * steps they owe. */
void run_stage_settle(struct job *job)
{
    if (job->spec->mode != VM_JOB_RUN || job->recovered) {
        run_next(job);
        return;
    }
    char id[VM_JOURNAL_RUN_ID_SIZE];
    vm_journal_new_run_id(id);
    job->settle_journal = vm_journal_new(job->spec->journal_dir, id);
    struct recover_task *rt = xcalloc(1, sizeof(*rt));
    rt->job = job;
    rt->t = (struct vm_virt_task){.work = recover_work, .done = recover_done, .data = rt};
    if (vm_virt_submit(&job->loop, &rt->t) < 0) {
        free(rt);
        settle_unlock(job);
        job->recovered = true;
        run_next(job);
    }
}

/* Stage resettle (run only): what this run's migrations left unsettled —
 * where a guest runs is unknown, or a source copy is not confirmed gone
 * (a host's libvirtd died at the wrong moment) — is settled as recover
 * would, on fresh connections, once more before the report: often the
 * host is back by then. What still cannot be settled stays open in the
 * journal (exit 9), for the next run or recover. */
void run_stage_resettle(struct job *job)
{
    int open = 0;
    for (int i = 0; i < job->nmigs; i++)
        open += job->migs[i]->source_left || job->migs[i]->location == VM_MIG_LOCATION_UNKNOWN;
    if (!open || !job->journal || job->spec->mode != VM_JOB_RUN) {
        run_next(job);
        return;
    }
    vm_warn("%s: %d migration(s) not settled: looking at the hosts once more",
            run_command(job->spec), open);
    /* A host whose connection died under this run (its keepalive gave up,
     * libvirt closed it before telling us) gets a short look: hung, it
     * would hold the report for the whole connect deadline. */
    for (int i = 0; i < job->nhosts; i++)
        if (!vm_virt_host_alive(job->hosts[i].h))
            vm_recover_host_hung(job->hosts[i].h->uri);
    job->recovered = false;
    run_stage_settle(job);
}
