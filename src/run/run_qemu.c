/* SPDX-License-Identifier: MIT */
/* run_qemu.c — see run_qemu.h. The stages of a QMP run, on the spine of
 * job.c (run_priv.h):
 *   journal   open the migration's journal (without one nothing migrates)
 *   migrate   the QMP state machine (migrate/qmp_mig.h) from connect to
 *             its end
 *   report    no more signals; vm_qemu_migrate() then reports.
 * SIGINT/SIGTERM cancel the migration while memory is copied and roll it
 * back at the gate. */
#include "run/run_qemu.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "backend/qemu/qmp_sync.h"
#include "journal/journal.h"
#include "policy/policy.h"
#include "report/report.h"
#include "report/sinks.h"
#include "run/run_priv.h"
#include "util/exitcode.h"
#include "util/util.h"

/* An event about the migration (the run's are about it too). */
static void qrun_event(struct job *job, const char *event, json_t *details)
{
    vm_sinks_trace(job->sinks, job->qemu->mig.name, NULL, event, details);
}

/* ---- what the migration reports (vm_qmig_ops; data: the job) ---------- */

static void on_event(struct vm_qmig *q, const char *event, json_t *details, void *data)
{
    (void)q;
    qrun_event(data, event, details);
}

/* Where the VM stands, as a plain record for the sinks. */
static void on_state(struct vm_qmig *q, enum vm_mig_state state, void *data)
{
    struct job *job = data;
    const struct vm_qmig_spec *spec = &job->qemu->mig;
    const struct vm_qmig_outcome *o = vm_qmig_outcome(q);
    struct vm_state_rec r = {
        .name = spec->name,
        .uuid = "",
        .state = (int)state,
        .result = vm_mig_state_name(state),
        .location = o->location ? o->location : "source",
        .final = state >= VM_MIG_STATE_DONE,
        .source = spec->source_qmp,
        .target = spec->target_qmp,
        .start_mono_ms = o->start_ms,
        .end_mono_ms = o->end_ms,
        .gated = spec->gated,
        .gate_reason = o->gate_reason,
        .gate_commit = o->commit,
        .gate_ms = o->gate_ms,
        .error_message = o->error,
    };
    vm_sinks_state(job->sinks, &r);
}

/* One journal record, the source and target named after their QMP sockets. */
static int on_record(struct vm_qmig *q, const char *record, json_t *fields, void *data)
{
    struct job *job = data;
    if (!job->journal) {
        json_decref(fields);
        return 0;
    }
    const char *uuid = vm_qmig_outcome(q)->uuid;
    char *src = vm_qmp_uri(job->qemu->mig.source_qmp);
    char *dst = vm_qmp_uri(job->qemu->mig.target_qmp);
    int rc = vm_journal_write(job->journal, job->qemu->mig.name, uuid ? uuid : "", src, dst, record,
                              fields);
    free(src);
    free(dst);
    return rc;
}

static void on_done(struct vm_qmig *q, void *data)
{
    (void)q;
    run_stop(data);
}

static const struct vm_qmig_ops qrun_ops = {on_event, on_state, on_record, on_done};

/* ---- the stages -------------------------------------------------------- */

static void stage_journal(struct job *job)
{
    const char *dir = job->qemu->journal_dir;
    if (!(job->journal = vm_journal_open_as(dir, job->run_id))) {
        char *msg = xasprintf(
            "cannot write the journal in '%s' (see --journal-dir): nothing migrated", dir);
        vm_error("qemu: %s", msg);
        vm_qmig_fail(job->qmig, msg); /* ends in run_stop() */
        free(msg);
        return;
    }
    vm_info("journal: %s", vm_journal_path(job->journal));
    qrun_event(job, "journal",
               json_pack("{s:s, s:s}", "run", vm_journal_run_id(job->journal), "path",
                         vm_journal_path(job->journal)));
    run_next(job);
}

static void stage_migrate(struct job *job)
{
    vm_qmig_start(job->qmig); /* ends in run_stop() */
}

static void stage_report(struct job *job)
{
    run_close_signals(job);
}

static void interrupt_qmig(struct job *job, int signum)
{
    if (vm_qmig_outcome(job->qmig)->interrupted)
        return;
    job->interrupted = true;
    vm_warn("%s: cancelling the migration", signum == SIGINT ? "interrupted" : "terminated");
    vm_qmig_cancel(job->qmig, "interrupted");
}

static const struct run_stage qemu_stages[] = {
    {"journal", stage_journal},
    {"migrate", stage_migrate},
    {"report", stage_report},
};

static const struct run_kind qemu_run = {qemu_stages, (int)VM_ARRAY_LEN(qemu_stages),
                                         interrupt_qmig};

/* ---- entry ------------------------------------------------------------ */

/* The exit code of the migration as it ended. */
static int qrun_exit_code(struct job *job, const struct vm_qmig_outcome *o)
{
    return !job->journal                         ? VM_EXIT_USAGE
           : strcmp(o->result, "migrated") == 0  ? VM_EXIT_OK
           : strcmp(o->location, "unknown") == 0 ? VM_EXIT_OPERATOR
           : o->interrupted                      ? VM_EXIT_INTERRUPTED
                                                 : VM_EXIT_FAILED;
}

int vm_qemu_migrate(const struct vm_qemu_spec *spec, json_t **report)
{
    struct job job_storage = {0}, *job = &job_storage;
    job->qemu = spec;
    uv_loop_init(&job->loop);
    struct vm_sinks_config scfg = {.loop = &job->loop, .events_path = spec->events_path};
    if (run_open(job, &qemu_run, &scfg, "qemu") < 0) {
        uv_loop_close(&job->loop);
        run_free(job);
        return VM_EXIT_USAGE;
    }
    job->qmig = vm_qmig_new(&job->loop, &spec->mig, &qrun_ops, job);
    uint64_t t0 = vm_wall_ms();
    qrun_event(job, "run.started",
               json_pack("{s:s, s:s, s:s}", "command", "qemu", "source", spec->mig.source_qmp,
                         "target", spec->mig.target_qmp));
    on_state(job->qmig, VM_MIG_STATE_QUEUED, job);
    run_next(job);

    uv_run(&job->loop, UV_RUN_DEFAULT);

    /* The migration ended and its connections are closed: report. */
    json_t *vm = vm_qmig_report(job->qmig);
    const struct vm_qmig_outcome *o = vm_qmig_outcome(job->qmig);
    int code = qrun_exit_code(job, o);
    char ts[32], te[32];
    *report =
        json_pack("{s:i, s:s, s:s, s:s, s:i, s:s, s:s, s:o}", "schema_version",
                  VM_REPORT_SCHEMA_VERSION, "command", "qemu", "run", job->run_id, "result",
                  code == VM_EXIT_OK ? "ok" : "failed", "exit_code", code, "started_at", vm_rfc3339(t0, ts, sizeof(ts)), "finished_at",
                  vm_rfc3339(vm_wall_ms(), te, sizeof(te)), "vm", vm);
    json_object_set_new(*report, "journal",
                        job->journal ? json_string(vm_journal_path(job->journal)) : json_null());
    /* The run's summary as a libvirt run's (event.schema.json): one VM. */
    json_t *summary = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "total", 1, "migrated",
                                strcmp(o->result, "migrated") == 0, "failed",
                                strcmp(o->result, "failed") == 0, "aborted",
                                strcmp(o->result, "aborted") == 0, "skipped", 0, "rolled_back",
                                strcmp(o->result, "rolled-back") == 0);
    qrun_event(job, "run.finished",
               json_pack("{s:s, s:i, s:o}", "result", o->result, "exit_code", code, "summary",
                         summary));
    vm_sinks_finish(job->sinks,
                    &(struct vm_finish_rec){.result = code == VM_EXIT_OK ? "ok" : "failed",
                                            .exit_code = code,
                                            .report = *report});
    if (code != VM_EXIT_OK && job->journal)
        vm_error("qemu: %s: %s, guest runs on %s: %s", spec->mig.name, o->result, o->location,
                 o->error         ? o->error
                 : o->gate_reason ? o->gate_reason
                                  : "no reason given");
    vm_policy_shutdown(spec->mig.policy);
    uv_run(&job->loop, UV_RUN_DEFAULT);
    vm_sinks_free(job->sinks);
    job->sinks = NULL;
    uv_loop_close(&job->loop);
    run_free(job);
    return code;
}
