/* SPDX-License-Identifier: MIT */
/* job.c — see job.h; and the run's spine every kind of run shares
 * (run_priv.h): the loop's sinks and signals, the stage table's
 * run_next()/run_stop(), the end of the run and its freeing. The QMP run
 * (run_qemu.c) has its own, shorter table on the same spine.
 *
 * The policy file is loaded and checked before any host is contacted; then
 * the stages of the table (stages[]) run in order, each ending with
 * run_next() or run_stop() (straight to report):
 *   connect   every --source and --target host, each within
 *             --connect-timeout (on threads of their own, virt.h); the
 *             first that fails ends the stage: the others are abandoned
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
 * goes on until every migration has reached a final state. Before the
 * schedule nothing runs: a signal ends the run (exit 5) at once, or when
 * the libvirt calls in flight return; hosts still connecting are
 * abandoned. */
#include "run/job.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/libvirt/evloop.h"
#include "backend/libvirt/inventory.h"
#include "backend/libvirt/virt_checks.h"
#include "journal/journal.h"
#include "migrate/qmp_mig.h"
#include "policy/policy.h"
#include "report/report.h"
#include "report/sinks.h"
#include "run/lock.h"
#include "run/run_priv.h"
#include "run/guardian.h"
#include "util/exec.h"
#include "util/exitcode.h"
#include "util/util.h"

static void stage_lock(struct job *job);

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
        run_fail(job, VM_EXIT_UNREACHABLE,
                 xasprintf("cannot read the inventory of '%s': %s", jh->h->uri,
                           t->err.message ? t->err.message : "unknown error"));
    vm_virt_err_clear(&t->err);
    if (--job->pending > 0)
        return;
    if (job->error || job->interrupted) {
        if (job->interrupted)
            run_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
        run_stop(job);
        return;
    }
    run_next(job);
}

/* One run per source host (lock.h): 0 (locked, or going on without the
 * lock), or -1 with the holder's PID in *holder (0 if unknown). */
static int lock_source(struct job *job, struct job_host *jh, pid_t *holder)
{
    const char *key = jh->h->host_uuid[0] ? jh->h->host_uuid : jh->h->uri;
    int fd = vm_lock_take(job->spec->lock_dir, key, holder);
    if (fd == -1)
        return -1;
    if (fd >= 0) {
        jh->lock_fd = fd;
        vm_lock_note(fd, jh->h->uri, jh->h->hostname, job->run_id);
    }
    return 0;
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
        run_fail(job, VM_EXIT_LOCKED,
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
    /* Another spelling of one host is still the same host (targets by
     * host UUID, once: a fleet has thousands of hosts). */
    json_t *target_uuids = json_object();
    for (int k = 0; k < job->nhosts; k++)
        if (job->hosts[k].target && job->hosts[k].h->host_uuid[0])
            json_object_set_new(target_uuids, job->hosts[k].h->host_uuid, json_integer(k));
    for (int i = 0; i < job->nhosts; i++) {
        struct vm_virt_host *a = job->hosts[i].h;
        json_t *k = a->host_uuid[0] && job->hosts[i].source
                        ? json_object_get(target_uuids, a->host_uuid)
                        : NULL;
        if (k)
            run_fail(job, VM_EXIT_PREFLIGHT,
                     xasprintf("source '%s' and target '%s' are the same host (host UUID "
                               "%s)",
                               a->uri, job->hosts[json_integer_value(k)].h->uri, a->host_uuid));
    }
    json_decref(target_uuids);
    if (job->error || job->interrupted) {
        if (job->interrupted)
            run_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
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

/* Stop waiting for the hosts still connecting (their threads close what
 * they open late, virt.h): the run has failed, or was interrupted. */
static void abandon_connects(struct job *job, const char *why)
{
    job->connects_abandoned = true;
    for (int i = 0; i < job->nhosts && job->stage == RUN_STAGE_CONNECT; i++)
        vm_virt_host_abandon(job->hosts[i].h, why);
}

static void host_opened(struct vm_virt_host *h, void *data)
{
    struct job *job = data;
    if (h->conn) {
        vm_info("connected to %s (%s)", h->uri, h->hostname);
        run_event(job, NULL, h->uri, "connected",
                  json_pack("{s:s, s:s}", "hostname", h->hostname, "host_uuid", h->host_uuid));
    } else if (h->timed_out) {
        run_fail(job, VM_EXIT_UNREACHABLE,
                 xasprintf("cannot connect to '%s' within %u s: no answer (see --connect-timeout)",
                           h->uri, h->open_timeout_s));
    } else if (!job->connects_abandoned) {
        /* A host name where a URI belongs ("hv13"): libvirt finds no driver
         * or cannot parse it (unless libvirt.conf aliases the name, and then
         * the error is another); say what was meant. */
        bool no_driver = h->err.code == VIR_ERR_NO_CONNECT || h->err.code == VIR_ERR_INTERNAL_ERROR;
        char *guess = no_driver ? vm_virt_uri_suggest(h->uri) : NULL;
        if (guess)
            run_fail(job, VM_EXIT_UNREACHABLE,
                     xasprintf("cannot connect to '%s': not a libvirt URI (no driver); did you "
                               "mean '%s'?",
                               h->uri, guess));
        else
            run_fail(job, VM_EXIT_UNREACHABLE,
                     xasprintf("cannot connect to '%s': %s", h->uri,
                               h->err.message ? h->err.message : "unknown error"));
        free(guess);
    }
    if (--job->pending > 0) {
        /* The run cannot go on: it does not wait for the other hosts. */
        if (job->error && !job->connects_abandoned)
            abandon_connects(job, "another host failed");
        return;
    }
    if (job->error || job->interrupted) {
        if (job->interrupted)
            run_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
        run_stop(job);
        return;
    }
    run_next(job);
}

/* Stage connect: every --source and --target host, each within
 * --connect-timeout. */
static void stage_connect(struct job *job)
{
    job->pending = job->nhosts;
    for (int i = 0; i < job->nhosts; i++) {
        vm_info("connecting to %s", job->hosts[i].h->uri);
        vm_virt_host_open(job->hosts[i].h, job->spec->connect_timeout_s, host_opened, job);
    }
}

static void signal_close(uv_handle_t *h)
{
    (void)h;
}

void run_close_signals(struct job *job)
{
    if (job->deadline) {
        uv_close((uv_handle_t *)job->deadline, (uv_close_cb)free);
        job->deadline = NULL;
    }
    uv_close((uv_handle_t *)&job->sigint, signal_close);
    uv_close((uv_handle_t *)&job->sigterm, signal_close);
}

/* After the report: the webhooks' grace, the handles' close callbacks.
 * Every host is closed now, so a libvirt call still on the thread pool is
 * one on a host that stopped answering (vm_virt_tasks_in_flight): it
 * would hold the loop until that host answers. A tick every 100 ms ends
 * the wait once nothing else has been left for 2 s, no active handle but
 * its own. */
struct drain {
    uv_timer_t tick;
    bool others, stuck;
    int idle; /* ticks in a row with only calls left: a healthy host answers
                 within a few, a late stats call included */
};

static void drain_walk(uv_handle_t *h, void *arg)
{
    struct drain *d = arg;
    if (h != (uv_handle_t *)&d->tick && (uv_is_closing(h) || (uv_is_active(h) && uv_has_ref(h))))
        d->others = true;
}

static void drain_tick(uv_timer_t *t)
{
    struct drain *d = t->data;
    if (vm_virt_tasks_in_flight() == 0) {
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    d->others = false;
    uv_walk(t->loop, drain_walk, d);
    d->idle = d->others ? 0 : d->idle + 1;
    if (d->idle < 20)
        return;
    d->stuck = true;
    vm_warn("%d libvirt call(s) on a host that stopped answering never returned: not waiting "
            "for them",
            vm_virt_tasks_in_flight());
    uv_close((uv_handle_t *)t, NULL);
    uv_stop(t->loop);
}

/* Runs the loop to its end; true if it stopped with calls left behind
 * (then the loop cannot be closed and the process must not join them). */
static bool run_drain(uv_loop_t *loop)
{
    struct drain d = {0};
    d.tick.data = &d;
    uv_timer_init(loop, &d.tick);
    uv_timer_start(&d.tick, drain_tick, 0, 100);
    uv_run(loop, UV_RUN_DEFAULT);
    if (d.stuck)
        return true;
    if (!uv_is_closing((uv_handle_t *)&d.tick)) { /* stopped by someone else */
        uv_close((uv_handle_t *)&d.tick, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    return false;
}

static void host_closed(struct vm_virt_host *h, void *data)
{
    struct job *job = data;
    (void)h;
    if (--job->pending > 0)
        return;
    run_close_signals(job);
    /* The run is over even if webhooks still retry: report now; they get
     * their grace time afterwards (vm_sinks_finish). */
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

/* SIGINT/SIGTERM in a libvirt run. */
static void interrupt_migs(struct job *job, int signum)
{
    const char *how = signum == SIGINT ? "interrupted" : "terminated";
    const char *sig = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (job->stage < RUN_STAGE_SCHEDULE) {
        /* Nothing has started: the run ends now, or (a call on the thread
         * pool in flight, bounded by keepalive) when that call returns. */
        if (job->interrupted)
            return;
        run_event(job, NULL, NULL, "signal",
                  json_pack("{s:s, s:s}", "signal", sig, "running", "none"));
        job->interrupted = true;
        const struct job_host *jh = NULL;
        for (int i = 0; i < job->nhosts && !jh; i++)
            if (job->stage == RUN_STAGE_CONNECT && vm_virt_host_connecting(job->hosts[i].h))
                jh = &job->hosts[i];
        run_fail(job, VM_EXIT_INTERRUPTED,
                 jh ? xasprintf("interrupted by %s while connecting to '%s'; nothing migrated", sig,
                                jh->h->uri)
                    : xasprintf("interrupted by %s before any migration; nothing migrated", sig));
        if (jh)
            abandon_connects(job, "interrupted");
        return;
    }
    /* on_abort = finish: the first signal only stops new starts; a second
     * one aborts what runs, as with rollback. */
    bool finish = job->spec->on_abort == VM_ON_ABORT_FINISH && !job->interrupted;
    if (job->interrupted && job->aborting) {
        vm_warn("still aborting running migrations; waiting for libvirt to finish");
        return;
    }
    run_event(job, NULL, NULL, "signal",
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
        run_schedule(job);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct job *job = s->data;
    job->kind->interrupt(job, signum);
}

/* ---- the stage table ------------------------------------------------- */

static const struct run_stage stages[RUN_STAGE_COUNT] = {
    [RUN_STAGE_CONNECT] = {"connect", stage_connect},
    [RUN_STAGE_LOCK] = {"lock", stage_lock},
    [RUN_STAGE_SETTLE] = {"settle", run_stage_settle},
    [RUN_STAGE_INVENTORY] = {"inventory", stage_inventory},
    [RUN_STAGE_PLAN] = {"plan", run_stage_plan},
    [RUN_STAGE_PREFLIGHT] = {"preflight", run_stage_preflight},
    [RUN_STAGE_PROBE] = {"probe", run_stage_probe},
    [RUN_STAGE_SCHEDULE] = {"schedule", run_stage_schedule},
    [RUN_STAGE_RESETTLE] = {"resettle", run_stage_resettle},
    [RUN_STAGE_REPORT] = {"report", stage_report},
};

static const struct run_kind libvirt_run = {stages, RUN_STAGE_COUNT, interrupt_migs};

void run_next(struct job *job)
{
    if (job->stage >= job->kind->nstages - 1)
        return;
    job->stage++;
    job->kind->stages[job->stage].start(job);
}

void run_stop(struct job *job)
{
    if (job->stage >= job->kind->nstages - 1)
        return;
    job->stage = job->kind->nstages - 1;
    job->kind->stages[job->stage].start(job);
}

int run_open(struct job *job, const struct run_kind *kind, const struct vm_sinks_config *scfg,
             const char *cmd)
{
    char *serr = NULL;
    vm_journal_new_run_id(job->run_id);
    struct vm_sinks_config cfg = *scfg;
    cfg.run_id = job->run_id;
    if (!(job->sinks = vm_sinks_new(&cfg, &serr))) {
        if (serr)
            vm_error("%s: %s", cmd, serr);
        free(serr);
        return -1;
    }
    job->kind = kind;
    job->stage = -1;
    uv_signal_init(&job->loop, &job->sigint);
    uv_signal_init(&job->loop, &job->sigterm);
    job->sigint.data = job->sigterm.data = job;
    uv_signal_start(&job->sigint, on_signal, SIGINT);
    uv_signal_start(&job->sigterm, on_signal, SIGTERM);
    return 0;
}

/* ---- entry ------------------------------------------------------------ */

static void policy_log(void *data, const char *level, const char *where, const char *msg)
{
    run_event(data, NULL, NULL, "policy.log",
              json_pack("{s:s, s:s, s:s}", "level", level, "where", where, "message", msg));
}

/* A policy hook stuck where the sandbox cannot stop it (policy.h): the loop
 * is inside it, holding the run's lock, deaf to SIGTERM, so the run ends
 * from the watchdog's thread (write and _exit only): the journal makes that
 * a crash the next run settles, instead of a hang. */
void vm_job_policy_stuck(void *data, const char *what)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg),
                     "vmmigrate: error: %s: exiting; the next run, or 'vmmigrate recover', "
                     "settles what this one left\n",
                     what);
    ssize_t w = n > 0 ? write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1) : 0;
    (void)w;
    _exit(VM_EXIT_POLICY);
}

static void set_threadpool_size(int concurrency, int nhosts)
{
    /* Each running migration holds one pool thread for its whole duration
     * (the blocking migrate call); stats and aborts need one more each.
     * Every host may hold one with a call to a peer that stopped answering
     * (inventory, preflight, close: until keepalive fails it, ~8 s, or for
     * good when libvirt does not wake it: virt.h), so one per host
     * besides; opening a connection takes no pool thread (virt.h). At most
     * libuv's limit. */
    if (getenv("UV_THREADPOOL_SIZE"))
        return;
    int n = concurrency * 2 + nhosts + 4;
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", n > 1024 ? 1024 : n);
    setenv("UV_THREADPOOL_SIZE", buf, 1);
}

void run_free(struct job *job)
{
    vm_qmig_free(job->qmig);
    json_decref(job->settings);
    json_decref(job->unsettled);
    json_decref(job->host_index);
    json_decref(job->target_active);
    json_decref(job->explicit_names);
    free(job->settings_notify);
    for (int i = 0; i < job->nmigs; i++)
        run_slot_clear(&job->slots[i]);
    free(job->slots);
    vm_budget_free(&job->budget);
    for (int i = 0; i < job->nprobes; i++)
        vm_features_free(job->probes[i].f);
    free(job->probes);
    for (int i = 0; i < job->npre; i++) {
        vm_virt_domain_free(job->pre[i].dom);
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
    vm_exec_hosts_free(job->exec_hosts);
    vm_exec_share_free(job->probe_share);
    vm_journal_close(job->journal);
    if (job->settle_lock >= 0)
        close(job->settle_lock);
    vm_journal_close(job->settle_journal);
    vm_sinks_free(job->sinks);
    free(job->error);
}

static void add_host(struct job *job, const char *uri, bool source)
{
    struct job_host *jh = run_host(job, uri);
    if (!jh) {
        json_object_set_new(job->host_index, uri, json_integer(job->nhosts));
        jh = &job->hosts[job->nhosts++];
        jh->h = vm_virt_host_new(&job->loop, uri, run_host_event, job);
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
    struct job job_storage = {.settle_lock = -1}, *job = &job_storage;
    job->spec = spec;
    job->started_wall_ms = vm_wall_ms();
    const char *cmd = run_command(spec);

    json_t *given = json_object();
    for (int k = 0; k < spec->ntargets; k++)
        json_object_set_new(given, spec->targets[k], json_true());
    for (int i = 0; i < spec->nsources; i++)
        if (json_object_get(given, spec->sources[i])) {
            vm_error("%s: '%s' is given as both --source and --target", cmd, spec->sources[i]);
            json_decref(given);
            return VM_EXIT_USAGE;
        }
    json_decref(given);
    vm_policy_set_stuck(vm_job_policy_stuck, NULL);
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
        int prc = run_settings_apply(job, spec, cmd, &eff);
        if (prc != 0) {
            vm_policy_free(job->policy);
            return prc;
        }
        spec = job->spec = &eff;
    }
    set_threadpool_size(spec->concurrency, spec->nsources + spec->ntargets);
    job->exec_hosts = vm_exec_hosts_new(spec->host_execs);
    job->probe_share = vm_exec_share_new();
    vm_virt_global_init();
    int rc = uv_loop_init(&job->loop);
    if (rc == 0)
        rc = vm_evloop_register(&job->loop);
    if (rc < 0) {
        vm_error("cannot set up the event loop: %s", uv_strerror(rc));
        run_free(job);
        return VM_EXIT_INTERNAL;
    }
    /* The outputs: the event stream first (a bad --events path ends the
     * run before anything else is written), then status, metrics,
     * webhooks, the meter and the printed report (run mode). */
    struct vm_sinks_config scfg = {
        .loop = &job->loop, .events_path = spec->events_path, .print_report = spec->json};
    if (spec->mode == VM_JOB_RUN) {
        scfg.status_path = spec->status_path;
        scfg.metrics_path = spec->metrics_path;
        scfg.sources = (const char *const *)spec->sources;
        scfg.nsources = spec->nsources;
        scfg.notify_urls = spec->notify_urls;
        scfg.nnotify = spec->nnotify;
        scfg.notify_token_file = spec->notify_token_file;
        scfg.notify_grace_ms = 5000;
        scfg.progress = spec->progress && vm_log_get_level() <= VM_LOG_WARN;
    }
    if (run_open(job, &libvirt_run, &scfg, cmd) < 0) {
        vm_evloop_shutdown();
        uv_run(&job->loop, UV_RUN_DEFAULT);
        uv_loop_close(&job->loop);
        run_free(job);
        return VM_EXIT_USAGE;
    }
    json_t *srcs = run_uri_list(spec->sources, spec->nsources);
    json_t *dsts = run_uri_list(spec->targets, spec->ntargets);
    run_event(job, NULL, NULL, "run.started",
              json_pack("{s:s, s:o, s:o, s:i, s:o}", "command", cmd, "sources", srcs, "targets",
                        dsts, "vms", spec->nvms, "policy",
                        spec->policy_path ? json_string(spec->policy_path) : json_null()));

    job->hosts = xcalloc((size_t)(spec->nsources + spec->ntargets), sizeof(*job->hosts));
    job->host_index = json_object();
    for (int i = 0; i < spec->nsources; i++)
        add_host(job, spec->sources[i], true);
    for (int i = 0; i < spec->ntargets; i++)
        add_host(job, spec->targets[i], false);
    run_next(job);

    uv_run(&job->loop, UV_RUN_DEFAULT);
    /* Every migration is final: the guardian has nothing to guard. */
    vm_guardian_stop(job->guardian);
    job->guardian = NULL;

    /* Every migration is final and every connection closed: report. */
    const char *result;
    int code = run_exit_code(job, &result);
    json_t *report = run_report(job, code, result);
    vm_sinks_notice(job->sinks, NULL, "run.finished",
                    json_pack("{s:s, s:i, s:O}", "result", result, "exit_code", code, "summary",
                              json_object_get(report, "summary")));
    run_event(job, NULL, NULL, "run.finished",
              json_pack("{s:s, s:i, s:O}", "result", result, "exit_code", code, "summary",
                        json_object_get(report, "summary")));
    char *why = run_exit_why(job, code);
    vm_sinks_finish(
        job->sinks,
        &(struct vm_finish_rec){.result = result, .exit_code = code, .why = why, .report = report});
    free(why);
    if (spec->mode == VM_JOB_PLAN && !spec->json && job->planned)
        vm_plan_print(&job->plan, stdout, spec->wide);
    json_decref(report);

    vm_policy_shutdown(job->policy);
    vm_evloop_shutdown();
    if (run_drain(&job->loop)) {
        /* What is left holds its thread until its host answers, and
         * exit() would join it (libuv's threads): everything is written
         * (the journal record by record, the outputs flushed here). */
        fflush(NULL);
        _exit(code);
    }
    if (uv_loop_close(&job->loop) != 0)
        vm_debug("event loop closed with handles still open");
    run_free(job);
    return code;
}
