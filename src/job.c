/* job.c — see job.h.
 *
 * The run, in order: connect to both hosts -> preflight (same host? every VM
 * exists, runs, is not on the target yet) -> migrations, at most
 * `concurrency` at once -> disconnect -> report. Nothing is changed before
 * preflight passed. SIGINT/SIGTERM skip what has not started and abort what
 * runs; the loop goes on until every migration has reached a final state. */
#include "job.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evloop.h"
#include "exitcode.h"
#include "progress.h"
#include "report.h"
#include "util.h"
#include "virt.h"

enum job_stage {
    JOB_STAGE_CONNECT,
    JOB_STAGE_PREFLIGHT,
    JOB_STAGE_MIGRATE,
    JOB_STAGE_CLOSE,
    JOB_STAGE_DONE,
};

struct inspect {
    struct vm_virt_task t;
    struct job *job;
    int index;
    virDomainPtr dom; /* handed to the migration */
    int state, reason;
    unsigned long memory_kib;
    bool found;
    int dst_state;   /* -1 if absent on the target */
    char uuid[VIR_UUID_STRING_BUFLEN];
};

struct job {
    const struct vm_job_spec *spec;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    enum job_stage stage;
    struct vm_virt_host *src, *dst;
    int pending; /* outstanding host opens/closes or inspections */
    struct inspect *inspects;
    struct vm_mig **migs;
    int nmigs, running, next;
    struct vm_report_stream *events;
    struct vm_progress *progress;
    bool interrupted;
    int exit_code;   /* set when the run fails before migrating */
    char *error;     /* run-level error for the report */
    uint64_t started_wall_ms;
};

static void job_close_hosts(struct job *job);

static void job_fail(struct job *job, int code, char *msg)
{
    if (!job->error) {
        job->exit_code = code;
        job->error = msg;
    } else {
        free(msg);
    }
}

static void job_event(struct job *job, const char *vm, const char *host, const char *event,
                      json_t *details)
{
    vm_report_event(job->events, vm, host, event, details);
}

/* ---- scheduling ------------------------------------------------------- */

static void job_schedule(struct job *job)
{
    while (!job->interrupted && job->running < job->spec->concurrency && job->next < job->nmigs) {
        int i = job->next++;
        struct vm_mig *m = job->migs[i];
        const char *qmp = NULL;
        for (int k = 0; k < job->spec->nqmp; k++)
            if (strcmp(job->spec->qmp[k].vm, m->name) == 0)
                qmp = job->spec->qmp[k].path;
        job->running++;
        struct inspect *in = &job->inspects[i];
        virDomainPtr dom = in->dom;
        in->dom = NULL;
        vm_info("%s: migrating to %s", m->name, job->dst->uri);
        vm_mig_start(m, dom, qmp);
    }
    bool all_final = true;
    for (int i = 0; i < job->nmigs; i++)
        all_final &= vm_mig_final(job->migs[i]);
    if (all_final && job->stage == JOB_STAGE_MIGRATE)
        job_close_hosts(job);
}

static void mig_on_state(struct vm_mig *m, void *data)
{
    struct job *job = data;
    if (!vm_mig_final(m))
        return;
    if (m->state != VM_MIG_STATE_SKIPPED)
        job->running--;
    switch (m->state) {
    case VM_MIG_STATE_DONE:
        vm_info("%s: migrated in %llu ms", m->name,
                (unsigned long long)(m->end_mono_ms - m->start_mono_ms));
        break;
    case VM_MIG_STATE_SKIPPED:
        vm_info("%s: not started (%s)", m->name, m->abort_reason ? m->abort_reason : "skipped");
        break;
    default:
        vm_error("%s: %s, guest runs on %s: %s", m->name, vm_mig_state_name(m->state),
                 m->location == VM_MIG_LOCATION_SOURCE   ? "the source"
                 : m->location == VM_MIG_LOCATION_TARGET ? "the target"
                                                         : "an unknown host (check it!)",
                 m->err.message ? m->err.message : "no error message");
        break;
    }
    job_schedule(job);
}

static void mig_on_event(struct vm_mig *m, const char *host, const char *event, json_t *details,
                         void *data)
{
    job_event(data, m->name, host, event, details);
}

static const struct vm_mig_ops job_mig_ops = {
    .on_state = mig_on_state,
    .on_event = mig_on_event,
};

static void host_event(struct vm_virt_host *h, const struct vm_virt_event *ev, void *data)
{
    struct job *job = data;
    for (int i = 0; i < job->nmigs; i++) {
        struct vm_mig *m = job->migs[i];
        if (m->state != VM_MIG_STATE_QUEUED && strcmp(m->uuid, ev->uuid) == 0) {
            vm_mig_domain_event(m, h, ev);
            return;
        }
    }
}

/* ---- preflight -------------------------------------------------------- */

static void inspect_work(struct vm_virt_task *t)
{
    struct inspect *in = t->data;
    struct job *job = in->job;
    const char *name = job->spec->vms[in->index];
    in->dst_state = -1;
    in->dom = virDomainLookupByName(job->src->conn, name);
    if (!in->dom) {
        virErrorPtr e = virGetLastError();
        if (e && e->code == VIR_ERR_NO_DOMAIN) {
            virResetLastError();
            return; /* found = false */
        }
        vm_virt_err_capture(&t->err);
        t->rc = -1;
        return;
    }
    in->found = true;
    if (virDomainGetState(in->dom, &in->state, &in->reason, 0) < 0 ||
        virDomainGetUUIDString(in->dom, in->uuid) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
        return;
    }
    in->memory_kib = virDomainGetMaxMemory(in->dom);
    virDomainPtr td = virDomainLookupByUUIDString(job->dst->conn, in->uuid);
    if (td) {
        int reason;
        if (virDomainGetState(td, &in->dst_state, &reason, 0) < 0)
            in->dst_state = VIR_DOMAIN_NOSTATE;
        virDomainFree(td);
    }
    virResetLastError();
}

static void job_start_migrations(struct job *job)
{
    job->stage = JOB_STAGE_MIGRATE;
    job->migs = xcalloc((size_t)job->spec->nvms, sizeof(*job->migs));
    job->nmigs = job->spec->nvms;
    for (int i = 0; i < job->nmigs; i++) {
        job->migs[i] = vm_mig_new(&job->loop, job->spec->vms[i], job->src, job->dst,
                                  &job->spec->params, &job_mig_ops, job);
        memcpy(job->migs[i]->uuid, job->inspects[i].uuid, sizeof(job->migs[i]->uuid));
        job->migs[i]->memory_kib = job->inspects[i].memory_kib;
    }
    if (job->spec->progress && vm_log_get_level() <= VM_LOG_WARN)
        job->progress = vm_progress_start(&job->loop, job->migs, job->nmigs);
    job_event(job, NULL, NULL, "preflight",
              json_pack("{s:b, s:i}", "ok", 1, "vms", job->nmigs));
    job_schedule(job);
}

static void inspect_done(struct vm_virt_task *t)
{
    struct inspect *in = t->data;
    struct job *job = in->job;
    const char *name = job->spec->vms[in->index];
    if (t->rc < 0) {
        job_fail(job, VM_EXIT_UNREACHABLE,
                 xasprintf("cannot inspect VM '%s' on '%s': %s", name, job->src->uri,
                           t->err.message));
        vm_error("run: %s", job->error ? job->error : t->err.message);
    } else if (!in->found) {
        char *msg = xasprintf("VM '%s' not found on '%s'", name, job->src->uri);
        vm_error("run: %s", msg);
        job_fail(job, VM_EXIT_PREFLIGHT, msg);
    } else if (in->state != VIR_DOMAIN_RUNNING) {
        char *msg = xasprintf("VM '%s' is not running on '%s' (state: %s)", name, job->src->uri,
                              vm_virt_state_name(in->state));
        vm_error("run: %s", msg);
        job_fail(job, VM_EXIT_PREFLIGHT, msg);
    } else if (in->dst_state == VIR_DOMAIN_RUNNING || in->dst_state == VIR_DOMAIN_PAUSED) {
        char *msg = xasprintf("VM '%s' is already active on the target '%s' (state: %s)", name,
                              job->dst->uri, vm_virt_state_name(in->dst_state));
        vm_error("run: %s", msg);
        job_fail(job, VM_EXIT_PREFLIGHT, msg);
    }
    vm_virt_err_clear(&t->err);
    if (--job->pending > 0)
        return;
    if (job->error || job->interrupted) {
        if (job->interrupted)
            job_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
        job_event(job, NULL, NULL, "preflight",
                  json_pack("{s:b, s:s}", "ok", 0, "error", job->error));
        job_close_hosts(job);
        return;
    }
    job_start_migrations(job);
}

static void job_preflight(struct job *job)
{
    job->stage = JOB_STAGE_PREFLIGHT;
    if (job->interrupted) {
        job_fail(job, VM_EXIT_INTERRUPTED, xstrdup("interrupted before any migration"));
        job_close_hosts(job);
        return;
    }
    bool same = strcmp(job->src->uri, job->dst->uri) == 0 ||
                (job->src->host_uuid[0] &&
                 strcmp(job->src->host_uuid, job->dst->host_uuid) == 0);
    if (same) {
        char *msg = job->src->host_uuid[0]
                        ? xasprintf("source '%s' and target '%s' are the same host (host UUID %s)",
                                    job->src->uri, job->dst->uri, job->src->host_uuid)
                        : xasprintf("source '%s' and target '%s' are the same host",
                                    job->src->uri, job->dst->uri);
        vm_error("run: %s", msg);
        job_fail(job, VM_EXIT_PREFLIGHT, msg);
        job_close_hosts(job);
        return;
    }
    job->inspects = xcalloc((size_t)job->spec->nvms, sizeof(*job->inspects));
    job->pending = job->spec->nvms;
    for (int i = 0; i < job->spec->nvms; i++) {
        struct inspect *in = &job->inspects[i];
        in->job = job;
        in->index = i;
        in->t.work = inspect_work;
        in->t.done = inspect_done;
        in->t.data = in;
        int rc = vm_virt_submit(&job->loop, &in->t);
        if (rc < 0) {
            in->t.rc = -1;
            vm_virt_err_set(&in->t.err, VIR_ERR_INTERNAL_ERROR, "%s", uv_strerror(rc));
            inspect_done(&in->t);
        }
    }
}

/* ---- connections ------------------------------------------------------ */

static void host_opened(struct vm_virt_host *h, void *data)
{
    struct job *job = data;
    if (!h->conn) {
        char *msg = xasprintf("cannot connect to '%s': %s", h->uri,
                              h->err.message ? h->err.message : "unknown error");
        vm_error("run: %s", msg);
        job_fail(job, VM_EXIT_UNREACHABLE, msg);
    } else {
        vm_info("connected to %s (%s)", h->uri, h->hostname);
        job_event(job, NULL, h->uri, "connected",
                  json_pack("{s:s, s:s}", "hostname", h->hostname, "host_uuid", h->host_uuid));
    }
    if (--job->pending > 0)
        return;
    if (job->error) {
        job_close_hosts(job);
        return;
    }
    job_preflight(job);
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
    job->stage = JOB_STAGE_DONE;
    vm_progress_stop(job->progress);
    job->progress = NULL;
    uv_close((uv_handle_t *)&job->sigint, signal_close);
    uv_close((uv_handle_t *)&job->sigterm, signal_close);
}

static void job_close_hosts(struct job *job)
{
    if (job->stage == JOB_STAGE_CLOSE || job->stage == JOB_STAGE_DONE)
        return;
    job->stage = JOB_STAGE_CLOSE;
    job->pending = 2;
    vm_virt_host_close(job->src, host_closed, job);
    vm_virt_host_close(job->dst, host_closed, job);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct job *job = s->data;
    if (job->interrupted) {
        vm_warn("still aborting running migrations; waiting for libvirt to finish");
        return;
    }
    job->interrupted = true;
    vm_warn("%s: aborting running migrations, starting no new ones",
            signum == SIGINT ? "interrupted" : "terminated");
    job_event(job, NULL, NULL, "signal",
              json_pack("{s:s}", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM"));
    for (int i = 0; i < job->nmigs; i++)
        vm_mig_abort(job->migs[i], "interrupted");
    /* Skipped migrations may have finished the run. */
    if (job->stage == JOB_STAGE_MIGRATE)
        job_schedule(job);
}

/* ---- the report ------------------------------------------------------- */

static json_t *options_json(const struct vm_job_spec *spec)
{
    const struct vm_mig_params *p = &spec->params;
    static const char *const actions[] = {"abort", "suspend", "postcopy"};
    return json_pack("{s:s, s:i, s:I, s:I, s:b, s:b, s:i, s:o, s:b, s:b, s:b, s:b, s:o, s:I, "
                     "s:s}",
                     "mode", p->p2p ? "p2p" : "direct", "parallel", spec->concurrency,
                     "bandwidth_mibs", (json_int_t)p->bandwidth_mibs, "max_downtime_ms",
                     (json_int_t)p->max_downtime_ms, "auto_converge", p->auto_converge,
                     "postcopy", p->postcopy, "parallel_connections", p->parallel, "compression",
                     p->compression ? json_string(p->compression) : json_null(), "tls", p->tls,
                     "persistent", p->persistent, "undefine_source", p->undefine_source,
                     "unsafe", p->unsafe, "migrate_uri",
                     p->migrate_uri ? json_string(p->migrate_uri) : json_null(), "timeout_s",
                     (json_int_t)p->timeout_s, "timeout_action", actions[p->timeout_action]);
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
        if (unknown)
            code = VM_EXIT_OPERATOR;
        else if (job->interrupted)
            code = VM_EXIT_INTERRUPTED;
        else if (failed)
            code = VM_EXIT_FAILED;
    }
    *result = (size_t)code < VM_ARRAY_LEN(names) && names[code] ? names[code] : "internal";
    return code;
}

/* ---- entry ------------------------------------------------------------ */

static void set_threadpool_size(int concurrency)
{
    /* Each running migration holds one pool thread for its whole duration
     * (the blocking migrate call); stats, aborts and verification need more. */
    if (getenv("UV_THREADPOOL_SIZE"))
        return;
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", concurrency * 2 + 4);
    setenv("UV_THREADPOOL_SIZE", buf, 1);
}

int vm_job_run(const struct vm_job_spec *spec)
{
    struct job job_storage = {0}, *job = &job_storage;
    job->spec = spec;
    job->started_wall_ms = vm_wall_ms();

    if (spec->events_path) {
        job->events = vm_report_stream_open(spec->events_path);
        if (!job->events)
            return VM_EXIT_USAGE;
    }
    set_threadpool_size(spec->concurrency);
    vm_virt_global_init();
    int rc = uv_loop_init(&job->loop);
    if (rc < 0) {
        vm_error("cannot create event loop: %s", uv_strerror(rc));
        vm_report_stream_close(job->events);
        return VM_EXIT_INTERNAL;
    }
    rc = vm_evloop_register(&job->loop);
    if (rc < 0) {
        vm_error("cannot register libvirt event loop: %s", uv_strerror(rc));
        uv_loop_close(&job->loop);
        vm_report_stream_close(job->events);
        return VM_EXIT_INTERNAL;
    }
    uv_signal_init(&job->loop, &job->sigint);
    uv_signal_init(&job->loop, &job->sigterm);
    job->sigint.data = job->sigterm.data = job;
    uv_signal_start(&job->sigint, on_signal, SIGINT);
    uv_signal_start(&job->sigterm, on_signal, SIGTERM);

    job_event(job, NULL, NULL, "run.started",
              json_pack("{s:s, s:s, s:s, s:i}", "command", "run", "source", spec->source_uri,
                        "target", spec->target_uri, "vms", spec->nvms));
    job->src = vm_virt_host_new(&job->loop, spec->source_uri, host_event, job);
    job->dst = vm_virt_host_new(&job->loop, spec->target_uri, host_event, job);
    job->stage = JOB_STAGE_CONNECT;
    job->pending = 2;
    vm_virt_host_open(job->src, host_opened, job);
    vm_virt_host_open(job->dst, host_opened, job);

    uv_run(&job->loop, UV_RUN_DEFAULT);

    /* Every migration is final and both connections are closed: report. */
    const char *result;
    int code = job_exit_code(job, &result);
    json_t *opts = options_json(spec);
    struct vm_report_run run = {
        .command = "run",
        .source_uri = spec->source_uri,
        .target_uri = spec->target_uri,
        .source_host = job->src->hostname,
        .target_host = job->dst->hostname,
        .started_wall_ms = job->started_wall_ms,
        .finished_wall_ms = vm_wall_ms(),
        .exit_code = code,
        .result = result,
        .error = job->error,
        .options = opts,
    };
    json_t *report = vm_report_run_json(&run, job->migs, job->nmigs);
    job_event(job, NULL, NULL, "run.finished",
              json_pack("{s:s, s:i, s:O}", "result", result, "exit_code", code, "summary",
                        json_object_get(report, "summary")));
    if (spec->json)
        vm_report_print(report);
    json_decref(report);
    json_decref(opts);

    /* Tear down: nothing may be left on the loop. */
    for (int i = 0; i < job->nmigs; i++) {
        if (job->inspects && job->inspects[i].dom)
            virDomainFree(job->inspects[i].dom);
        vm_mig_free(job->migs[i]);
    }
    if (job->inspects && !job->migs)
        for (int i = 0; i < spec->nvms; i++)
            if (job->inspects[i].dom)
                virDomainFree(job->inspects[i].dom);
    free(job->migs);
    free(job->inspects);
    vm_evloop_shutdown();
    uv_run(&job->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&job->loop) != 0)
        vm_debug("event loop closed with handles still open");
    vm_virt_host_free(job->src);
    vm_virt_host_free(job->dst);
    vm_report_stream_close(job->events);
    free(job->error);
    return code;
}
