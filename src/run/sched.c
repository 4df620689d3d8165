/* SPDX-License-Identifier: MIT */
/* sched.c — the schedule stage (run_priv.h): one `struct vm_slot` per VM
 * to migrate; which starts when (--parallel, --max-out, --max-in, plan
 * order), retries (--retries: where the next attempt goes), --max-failures
 * and --deadline. The slots and their attempts belong to the job. */
#include "run/run_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/libvirt/virt_checks.h"
#include "journal/journal.h"
#include "run/guardian.h"
#include "policy/policy.h"
#include "report/sinks.h"
#include "util/exitcode.h"
#include "util/uri.h"
#include "util/util.h"

static int retries_for(const struct job *job, const struct vm_plan_item *it)
{
    return it->d.retries_set ? it->d.retries : job->spec->retries;
}

/* The slot's migration no longer counts against the concurrency budgets. */
bool run_slot_release(struct vm_slot *s)
{
    return vm_budget_release(&s->job->budget, s->index);
}

/* A migration that failed or rolled back with its guest verified on the
 * source may start again; aborted ones (signal, deadline, policy, timeout)
 * may not, nor anything once the run stops starting migrations. */
bool run_slot_retry_wanted(const struct vm_slot *s)
{
    const struct job *job = s->job;
    const struct vm_mig *m = s->mig;
    return (m->state == VM_MIG_STATE_FAILED || m->state == VM_MIG_STATE_ROLLED_BACK) &&
           m->location == VM_MIG_LOCATION_SOURCE && !m->abort_requested && !m->abort_reason &&
           !m->timeout_taken && !job->stopping && !job->interrupted &&
           s->attempts <= retries_for(job, s->item);
}

/* A VM failed for good: counted, and the webhooks told. */
void run_vm_failed(struct job *job, struct vm_mig *m)
{
    job->failures++;
    run_notify_vm(job, m, m->state == VM_MIG_STATE_ROLLED_BACK ? "vm.rolled-back" : "vm.failed");
}

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
    struct job_host *last = run_host(job, old->dst->uri), *best = NULL;
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
    struct job *job = s->job;
    struct vm_budget_slot *b = &job->budget.slots[s->index];
    b->src = (int)(run_host(job, m->src->uri) - job->hosts);
    b->dst = (int)(run_host(job, m->dst->uri) - job->hosts);
    s->mig = m;
    s->job->migs[s->index] = m;
    run_state(s->job, s); /* a new attempt: the status file and the meter see it */
}

/* A new attempt of the slot's VM, to dst. */
static struct vm_mig *mig_new(struct vm_slot *s, struct job_host *dst)
{
    struct vm_plan_item *it = s->item;
    struct vm_mig *m = vm_mig_new(&s->job->loop, it->name, run_host(s->job, it->source)->h, dst->h,
                                  &it->params, &run_mig_ops, s);
    snprintf(m->uuid, sizeof(m->uuid), "%s", it->uuid ? it->uuid : "");
    m->gated = it->d.class == VM_CLASS_NETWORK_CRITICAL;
    m->gate_budget_ms = it->d.gate_timeout_ms; /* 0: migrate/commit.h's default */
    m->memory_kib = (unsigned long)(it->memory_bytes / 1024);
    return m;
}

/* Start the slot's VM again, as a new attempt (the failed one is kept for
 * the report as an earlier attempt). */
static void job_retry(struct vm_slot *s)
{
    struct job *job = s->job;
    s->retry = false;
    struct vm_mig *old = s->mig;
    if (job->stopping || job->interrupted) {
        run_vm_failed(job, old);
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
        run_vm_failed(job, old);
        return;
    }
    struct vm_attempt *a = xmalloc(sizeof(*a));
    *a = (struct vm_attempt){.mig = old, .feats = s->feats, .prev = s->retired};
    s->retired = a;
    slot_set_mig(s, mig_new(s, dst));
    s->mig->attempts = attempts;
    s->feats = run_slot_features(s);
    s->started = false;
    struct vm_mig *m = s->mig;
    vm_warn("%s: attempt %d of %d, to %s", m->name, s->attempts + 1, retries_for(job, s->item) + 1,
            dst->h->uri);
    run_event(job, m->name, dst->h->uri, "retry",
              json_pack("{s:i, s:s, s:s, s:o}", "attempt", s->attempts + 1, "target", dst->h->uri,
                        "previous_target", old->dst->uri, "reason",
                        why ? json_string(why) : json_null()));
}

/* Start the slot's migration: it takes the budgets the caller checked.
 * Its "started" record is written and fsync'd first, once the journal's
 * filesystem has room for its records (reserved): a migration the journal
 * does not know never starts (it is skipped, and the run starts nothing
 * more; the run's first record failing fails the run). */
static void slot_start(struct vm_slot *s)
{
    struct job *job = s->job;
    struct vm_mig *m = s->mig;
    /* Network-critical: features prepare first (now, while nothing has
     * moved yet); the gate step waits for the gate. */
    json_t *started = json_pack("{s:b, s:o, s:i}", "gated", m->gated, "features",
                                vm_features_to_json(s->feats), "attempt", s->attempts + 1);
    if (m->gated && s->feats)
        owed_on_crash(job, s->item, started);
    bool first = job->journal && vm_journal_count(job->journal) == 0;
    if (job->journal && !vm_journal_reserve(job->journal)) {
        job->journal_failed = true;
        json_decref(started);
        started = NULL;
    }
    if (!started || run_journal(job, m, "started", started) < 0) {
        if (first)
            run_fail(job, VM_EXIT_JOURNAL,
                     xasprintf("cannot write the first record of the journal '%s': nothing "
                               "migrated",
                               vm_journal_path(job->journal)));
        s->started = true;
        vm_mig_abort(m, "journal"); /* skipped: never started */
        return;
    }
    s->started = true;
    vm_budget_take(&job->budget, s->index);
    /* The migration adopts a reference; keep one for a retry. */
    virDomainPtr dom = s->dom;
    if (!dom || retries_for(job, s->item) == 0 || vm_virt_domain_ref(dom) < 0)
        s->dom = NULL;
    s->attempts++;
    vm_info("%s: migrating to %s", m->name, m->dst->uri);
    if (m->gated && s->feats)
        vm_features_run(s->feats, VM_FEATURE_PREPARE, run_prepare_done);
    vm_mig_start(m, dom, s->qmp);
}

/* What holds a queued slot back now, as its record's wait_reason (the
 * meter's row): the budget it waits for; a record when that changes. */
static void note_wait(struct job *job, struct vm_slot *s)
{
    const struct vm_job_spec *spec = job->spec;
    const struct vm_budget_slot *b = &job->budget.slots[s->index];
    char why[sizeof(s->wait)] = "";
    char *host = NULL;
    if (s->mig->state == VM_MIG_STATE_QUEUED && !s->started && !job->stopping &&
        !job->interrupted) {
        switch (vm_budget_why(&job->budget, s->index)) {
        case VM_BUDGET_PARALLEL:
            snprintf(why, sizeof(why), "a slot (--parallel %d)", spec->concurrency);
            break;
        case VM_BUDGET_MAX_OUT:
            host = vm_host_label(job->hosts[b->src].h->hostname, job->hosts[b->src].h->uri);
            snprintf(why, sizeof(why), "a slot out of %s (--max-out %d)", host, spec->max_out);
            break;
        case VM_BUDGET_MAX_IN:
            host = vm_host_label(job->hosts[b->dst].h->hostname, job->hosts[b->dst].h->uri);
            snprintf(why, sizeof(why), "a slot into %s (--max-in %d)", host, spec->max_in);
            break;
        case VM_BUDGET_FREE:
        default:
            break;
        }
    }
    free(host);
    if (strcmp(why, s->wait) != 0) {
        memcpy(s->wait, why, sizeof(why));
        run_state(job, s);
    }
}

void run_schedule(struct job *job)
{
    /* The next migration, in plan order, whose hosts have a free slot:
     * at most --parallel at once, --max-out per source host, --max-in per
     * target host. It starts the moment a slot frees (no batches). A
     * failed one to retry takes its place in that order again once its
     * features are done (deinit). */
    for (int i = 0; i < job->nmigs; i++)
        if (job->slots[i].retry && !vm_features_busy(job->slots[i].feats))
            job_retry(&job->slots[i]);
    if (!job->stopping && job->journal_failed) {
        job->stopping = true;
        if (!job->error) /* else: its first record, said then */
            vm_error("%s: the journal '%s' cannot be written: starting no more migrations",
                     run_command(job->spec), vm_journal_path(job->journal));
        for (int i = 0; i < job->nmigs; i++)
            if (job->slots[i].mig->state == VM_MIG_STATE_QUEUED && !job->slots[i].started)
                vm_mig_abort(job->slots[i].mig, "journal");
    }
    if (!job->stopping && job->spec->max_failures && job->failures >= job->spec->max_failures) {
        job->stopping = true;
        vm_error("%s: %d migrations failed: starting no more (--max-failures)",
                 run_command(job->spec), job->failures);
        for (int i = 0; i < job->nmigs; i++)
            if (job->slots[i].mig->state == VM_MIG_STATE_QUEUED)
                vm_mig_abort(job->slots[i].mig, "max-failures");
    }
    struct vm_budget *b = &job->budget;
    for (int i = 0; i < job->nmigs; i++)
        b->slots[i].waiting =
            job->slots[i].mig->state == VM_MIG_STATE_QUEUED && !job->slots[i].started;
    for (int i = vm_budget_next(b, 0);
         i >= 0 && !job->interrupted && !job->stopping && !job->journal_failed;
         i = vm_budget_next(b, i + 1))
        slot_start(&job->slots[i]);
    for (int i = 0; i < job->nmigs; i++)
        note_wait(job, &job->slots[i]);
    bool all_final = true;
    for (int i = 0; i < job->nmigs; i++) {
        const struct vm_slot *s = &job->slots[i];
        all_final &= vm_mig_final(s->mig) && !vm_features_busy(s->feats) && !s->retry;
    }
    if (all_final && job->stage == RUN_STAGE_SCHEDULE) {
        /* A journal whose disk filled meanwhile, even if the records of
         * what ran still fit (reserved): what comes next (recover, the
         * next run) cannot record anything there. */
        if (job->journal && !job->journal_failed && !vm_journal_reserve(job->journal)) {
            job->journal_failed = true;
            vm_error("%s: the journal's filesystem filled during the run: free room in '%s'",
                     run_command(job->spec), job->spec->journal_dir);
        }
        run_next(job);
    }
}

/* --deadline: the run is out of time. Nothing new starts; what runs is
 * aborted (or rolled back at the gate); the guests stay where they are. */
static void deadline_fired(uv_timer_t *t)
{
    struct job *job = t->data;
    job->stopping = true;
    vm_error("%s: the deadline of %u s is reached: aborting what runs, starting nothing more",
             run_command(job->spec), job->spec->deadline_s);
    run_event(job, NULL, NULL, "deadline",
              json_pack("{s:i}", "deadline_s", (int)job->spec->deadline_s));
    for (int i = 0; i < job->nmigs; i++)
        vm_mig_abort(job->slots[i].mig, "deadline");
    run_schedule(job);
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
    slot_set_mig(s, mig_new(s, run_host(job, it->target)));
    s->feats = run_slot_features(s);
    for (int k = 0; s->feats && k < job->nprobes; k++)
        if (job->probes[k].vm == it->vm)
            vm_features_adopt(s->feats, job->probes[k].f, VM_FEATURE_PROBE);
}

void run_slot_clear(struct vm_slot *s)
{
    vm_mig_free(s->mig);
    vm_features_free(s->feats);
    vm_virt_domain_free(s->dom);
    while (s->retired) {
        struct vm_attempt *a = s->retired;
        s->retired = a->prev;
        vm_mig_free(a->mig);
        vm_features_free(a->feats);
        free(a);
    }
}

/* A run with gated migrations has a guardian (guardian.h): if this process
 * stops answering or dies while a guest is held at its gate, the guardian
 * ends it and settles its migrations as `vmmigrate recover` would, with the
 * run's policy (its features' owed steps) and --host-exec. Without one (it
 * could not start) the run goes on, said once. */
static void start_guardian(struct job *job)
{
    bool gated = false;
    for (int i = 0; i < job->nmigs; i++)
        gated |= job->slots[i].mig->gated;
    if (!gated)
        return;
    const struct vm_job_spec *spec = job->spec;
    int nexec = 0, n = 0;
    while (spec->host_execs && spec->host_execs[nexec])
        nexec++;
    const char **args = xcalloc((size_t)(2 * nexec + 3), sizeof(*args));
    for (int k = 0; k < nexec; k++) {
        args[n++] = "--host-exec";
        args[n++] = spec->host_execs[k];
    }
    if (spec->policy_path) {
        args[n++] = "--policy";
        args[n++] = spec->policy_path;
    }
    char *err = NULL;
    job->guardian =
        vm_guardian_start(&job->loop, spec->journal_dir, vm_journal_path(job->journal), args, &err);
    if (!job->guardian) {
        vm_warn("%s: %s: a gate is bounded only while this process runs", run_command(spec), err);
        free(err);
    }
    free(args);
}

/* Stage schedule: open the journal, make a slot per VM to migrate, start
 * them as budgets allow; run_next once every slot is final. */
void run_stage_schedule(struct job *job)
{
    if (vm_plan_count(&job->plan, VM_PLAN_MIGRATE) == 0) {
        vm_warn("%s: nothing to migrate", run_command(job->spec));
        run_stop(job);
        return;
    }
    job->journal = vm_journal_open_as(job->spec->journal_dir, job->run_id);
    if (!job->journal) {
        run_fail(job, VM_EXIT_JOURNAL,
                 xasprintf("cannot write the journal in '%s' (see --journal-dir): nothing "
                           "migrated",
                           job->spec->journal_dir));
        run_stop(job);
        return;
    }
    vm_info("journal: %s", vm_journal_path(job->journal));
    vm_sinks_notice(job->sinks, NULL, "run.started",
                    json_pack("{s:i, s:o}", "vms", vm_plan_count(&job->plan, VM_PLAN_MIGRATE),
                              "plan", vm_plan_to_json(&job->plan)));
    run_event(job, NULL, NULL, "journal",
              json_pack("{s:s, s:s}", "run", vm_journal_run_id(job->journal), "path",
                        vm_journal_path(job->journal)));

    int n = vm_plan_count(&job->plan, VM_PLAN_MIGRATE);
    job->slots = xcalloc((size_t)n, sizeof(*job->slots));
    vm_budget_init(&job->budget,
                   &(struct vm_budget_limits){.parallel = job->spec->concurrency,
                                              .max_out = job->spec->max_out,
                                              .max_in = job->spec->max_in},
                   n, job->nhosts);
    job->migs = xcalloc((size_t)n, sizeof(*job->migs));
    for (int i = 0; i < job->plan.n; i++) {
        struct vm_plan_item *it = &job->plan.items[i];
        if (it->status == VM_PLAN_MIGRATE)
            slot_init(job, job->nmigs++, it);
    }
    start_guardian(job);
    if (job->spec->deadline_s) {
        uint64_t spent = vm_wall_ms() - job->started_wall_ms;
        uint64_t left = (uint64_t)job->spec->deadline_s * 1000;
        job->deadline = xmalloc(sizeof(*job->deadline));
        uv_timer_init(&job->loop, job->deadline);
        job->deadline->data = job;
        uv_timer_start(job->deadline, deadline_fired, left > spent ? left - spent : 0, 0);
        uv_unref((uv_handle_t *)job->deadline);
    }
    run_schedule(job);
}
