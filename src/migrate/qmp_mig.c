/* SPDX-License-Identifier: MIT */
/* qmp_mig.c — see qmp_mig.h. */
#include "migrate/qmp_mig.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backend/qemu/qmp.h"
#include "feature/feature.h"
#include "migrate/commit.h"
#include "util/fault.h"
#include "util/util.h"

enum qm_state {
    QM_CONNECTING,
    QM_STARTING,
    QM_MIGRATING,
    QM_GATE,
    QM_FINISHING,
    QM_DONE,
};

struct vm_qmig {
    const struct vm_qmig_spec *spec;
    const struct vm_qmig_ops *ops;
    void *data;
    uv_loop_t *loop;
    uv_timer_t timer;           /* --timeout while copying */
    struct vm_commit *commit_s; /* the gate's decision, from the gate on */
    struct vm_qmp *src, *dst;
    int ready;
    enum qm_state state;
    struct vm_features *feats;
    json_t *vm;
    char *uuid;                     /* the source QEMU's (query-uuid) */
    enum vm_feature_step last_step; /* the features' step that ends them */
    bool journaled;                 /* "started" is on record */
    struct vm_qmig_outcome out;
    uint64_t gate_enter_ms;
    json_t *stats; /* query-migrate of the completed migration */
    int stats_tries;
};

static void qm_event(struct vm_qmig *q, const char *event, json_t *details)
{
    q->ops->on_event(q, event, details, q->data);
}

/* One journal record about this migration (fields stolen). */
static int qm_journal(struct vm_qmig *q, const char *record, json_t *fields)
{
    return q->ops->on_record(q, record, fields, q->data);
}

static void qm_state(struct vm_qmig *q, enum vm_mig_state state)
{
    q->ops->on_state(q, state, q->data);
}

/* A result of the QMP path as a migration state. */
static enum vm_mig_state result_state(const char *result)
{
    return strcmp(result, "migrated") == 0      ? VM_MIG_STATE_DONE
           : strcmp(result, "rolled-back") == 0 ? VM_MIG_STATE_ROLLED_BACK
           : strcmp(result, "aborted") == 0     ? VM_MIG_STATE_ABORTED
                                                : VM_MIG_STATE_FAILED;
}

static void qm_fail(struct vm_qmig *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void qm_fail(struct vm_qmig *q, const char *fmt, ...)
{
    if (q->out.error)
        return;
    va_list ap;
    va_start(ap, fmt);
    q->out.error = xvasprintf(fmt, ap);
    va_end(ap);
}

static void qm_close_all(struct vm_qmig *q)
{
    if (q->state == QM_DONE)
        return;
    q->state = QM_DONE;
    q->out.end_ms = vm_mono_ms();
    if (q->src)
        vm_qmp_close(q->src);
    if (q->dst)
        vm_qmp_close(q->dst);
    q->src = q->dst = NULL;
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, NULL);
    vm_commit_free(q->commit_s);
    q->commit_s = NULL;
    q->ops->on_done(q, q->data);
}

/* The end: run the features' last step (journaled: a crash no longer owes
 * it), then close. */
static void features_over(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_qmig *q = data;
    (void)reason;
    if (q->last_step == VM_FEATURE_AFTER || q->last_step == VM_FEATURE_DEINIT)
        qm_journal(q, q->last_step == VM_FEATURE_AFTER ? "after-done" : "deinit-done",
                   json_pack("{s:b, s:o}", "ok", ok, "features", vm_features_to_json(f)));
    qm_close_all(q);
}

static void qm_run_last(struct vm_qmig *q, enum vm_feature_step step)
{
    q->last_step = step;
    /* Before they begin: a crash before their -done leaves them to run
     * again, told so (ctx.redo). */
    if (step == VM_FEATURE_AFTER || step == VM_FEATURE_DEINIT)
        qm_journal(q, "step-started",
                   json_pack("{s:s}", "step", step == VM_FEATURE_AFTER ? "after" : "deinit"));
    vm_features_run(q->feats, step, features_over);
}

static void qm_finish(struct vm_qmig *q, const char *result, const char *location)
{
    if (q->out.result)
        return;
    q->out.result = result;
    q->out.location = location;
    qm_event(q, "result", json_pack("{s:s, s:s}", "result", result, "location", location));
    qm_state(q, result_state(result));
    if (q->journaled)
        qm_journal(q, "finished",
                   json_pack("{s:s, s:s}", "result", vm_mig_state_name(result_state(result)),
                             "location", location));
    if (q->feats && strcmp(result, "migrated") == 0)
        qm_run_last(q, q->spec->gated ? VM_FEATURE_AFTER : VM_FEATURE_PREPARE);
    else if (q->feats && q->spec->gated && !vm_features_busy(q->feats))
        qm_run_last(q, VM_FEATURE_DEINIT);
    else
        qm_close_all(q);
}

static bool is_error(const struct vm_qmp_error *err, struct vm_qmig *q, const char *what)
{
    if (!err)
        return false;
    qm_fail(q, "%s: %s: %s", what, err->error_class, err->desc ? err->desc : "");
    return true;
}

/* -- completion: ask query-migrate (again if it answers zeros) -- */

static void after_target_status(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err,
                                void *data)
{
    struct vm_qmig *q = data;
    (void)c;
    const char *st = json_string_value(json_object_get(ret, "status"));
    if (err || !st || strcmp(st, "running") != 0) {
        qm_fail(q, "migration completed but the target is %s", st ? st : "not answering");
        qm_finish(q, "failed", "unknown");
        return;
    }
    qm_finish(q, "migrated", "target");
}

static void after_query_migrate(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err,
                                void *data)
{
    struct vm_qmig *q = data;
    json_t *ram = json_object_get(ret, "ram");
    if (!err && json_integer_value(json_object_get(ram, "transferred")) == 0 &&
        q->stats_tries++ < 3) {
        vm_qmp_command(c, "query-migrate", NULL, after_query_migrate, q);
        return;
    }
    if (!err) {
        json_decref(q->stats);
        q->stats = json_incref(ret);
    }
    if (q->dst)
        vm_qmp_command(q->dst, "query-status", NULL, after_target_status, q);
    else
        qm_finish(q, "migrated", "target");
}

static void after_source_status(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err,
                                void *data)
{
    struct vm_qmig *q = data;
    (void)c;
    const char *st = json_string_value(json_object_get(ret, "status"));
    bool running = !err && st && strcmp(st, "running") == 0;
    const char *result = q->out.decided && !q->out.commit ? "rolled-back"
                         : q->out.interrupted             ? "aborted"
                                                          : "failed";
    if (!running)
        qm_fail(q, "the source is %s after the migration ended", st ? st : "not answering");
    qm_finish(q, running ? result : "failed", running ? "source" : "unknown");
}

/* -- the gate -- */

static void decide(struct vm_qmig *q, bool commit, const char *reason);

static void gate_features_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    (void)f;
    decide(data, ok, ok ? "every required feature is ready on the target" : reason);
}

static void continue_sent(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err, void *data)
{
    struct vm_qmig *q = data;
    (void)c, (void)ret;
    if (is_error(err, q, q->out.commit ? "migrate-continue" : "migrate_cancel"))
        vm_qmp_command(q->src, "query-status", NULL, after_source_status, q);
}

/* The gate's decision (migrate/commit.h) carried out over QMP. */
static bool commit_steps(void *data)
{
    struct vm_qmig *q = data;
    if (!q->feats)
        return false;
    vm_features_run(q->feats, VM_FEATURE_GATE, gate_features_done);
    return true;
}

static void commit_cancel(void *data)
{
    struct vm_qmig *q = data;
    if (q->feats && vm_features_busy(q->feats))
        vm_features_cancel(q->feats);
}

static void commit_announce(void *data, bool commit, const char *reason, uint64_t held_ms)
{
    struct vm_qmig *q = data;
    q->out.decided = true;
    q->out.commit = commit;
    free(q->out.gate_reason);
    q->out.gate_reason = xstrdup(reason);
    q->out.gate_ms = held_ms;
    qm_event(q, "gate.decided",
             json_pack("{s:s, s:s, s:I}", "decision", commit ? "commit" : "rollback", "reason",
                       reason, "held_ms", (json_int_t)q->out.gate_ms));
}

/* Durably, before it is carried out (commit.h). */
static bool commit_record(void *data, bool commit, const char *reason)
{
    struct vm_qmig *q = data;
    if (qm_journal(q, commit ? "commit-decided" : "rollback-decided",
                   json_pack("{s:s}", "reason", reason)) < 0)
        return false;
    if (commit)
        vm_fault("commit-decided");
    return true;
}

static void commit_carry_out(void *data, bool commit, const char *reason)
{
    struct vm_qmig *q = data;
    (void)reason;
    q->out.commit = commit;
    q->state = QM_FINISHING;
    if (commit)
        vm_qmp_command(q->src, "migrate-continue", json_pack("{s:s}", "state", "pre-switchover"),
                       continue_sent, q);
    else
        vm_qmp_command(q->src, "migrate_cancel", NULL, continue_sent, q);
}

static const struct vm_commit_ops qm_commit_ops = {
    .steps = commit_steps,
    .cancel = commit_cancel,
    .announce = commit_announce,
    .record = commit_record,
    .carry_out = commit_carry_out,
};

static void decide(struct vm_qmig *q, bool commit, const char *reason)
{
    if (q->state == QM_GATE)
        vm_commit_decide(q->commit_s, commit, reason);
}

/* --timeout while memory is copied (the gate has its own budget). */
static void migrate_timeout(uv_timer_t *t)
{
    struct vm_qmig *q = t->data;
    if (q->state == QM_MIGRATING) {
        qm_fail(q, "still migrating after %llu s: cancelled",
                (unsigned long long)q->spec->timeout_s);
        q->out.interrupted = true;
        vm_qmp_command(q->src, "migrate_cancel", NULL, NULL, NULL);
    }
}

static void on_src_event(struct vm_qmp *c, const char *name, json_t *data, double ts, void *ud)
{
    struct vm_qmig *q = ud;
    (void)c;
    json_t *d = json_object();
    json_object_set_new(d, "data", data ? json_deep_copy(data) : json_object());
    json_object_set_new(d, "qemu_time", json_real(ts));
    char *ev = xasprintf("qmp.%s", name);
    qm_event(q, ev, d);
    free(ev);
    if (strcmp(name, "MIGRATION") != 0)
        return;
    const char *st = json_string_value(json_object_get(data, "status"));
    if (!st)
        return;
    if (strcmp(st, "pre-switchover") == 0 && q->state == QM_MIGRATING) {
        q->state = QM_GATE;
        q->gate_enter_ms = vm_mono_ms();
        uv_timer_stop(&q->timer); /* --timeout is over: the gate budget takes over */
        q->commit_s = vm_commit_new(q->loop, q->spec->gate_timeout_ms, &qm_commit_ops, q);
        qm_event(q, "phase", json_pack("{s:s}", "phase", "gate"));
        qm_state(q, VM_MIG_STATE_GATE);
        qm_journal(q, "gate-reached", NULL);
        vm_fault("gate-reached");
        if (q->out.interrupted) {
            decide(q, false, "interrupted");
            return;
        }
        vm_commit_enter(q->commit_s);
    } else if (strcmp(st, "completed") == 0) {
        uv_timer_stop(&q->timer);
        vm_qmp_command(q->src, "query-migrate", NULL, after_query_migrate, q);
    } else if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0) {
        uv_timer_stop(&q->timer);
        if (strcmp(st, "failed") == 0)
            qm_fail(q, "QEMU reports the migration failed");
        else if (!q->out.decided)
            qm_fail(q, "the migration was cancelled");
        vm_qmp_command(q->src, "query-status", NULL, after_source_status, q);
    }
}

/* -- start -- */

static void migrate_sent(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err, void *data)
{
    struct vm_qmig *q = data;
    (void)c, (void)ret;
    if (is_error(err, q, "migrate")) {
        qm_finish(q, "failed", "source");
        return;
    }
    q->state = QM_MIGRATING;
    qm_event(q, "phase", json_pack("{s:s}", "phase", "migrating"));
    qm_state(q, VM_MIG_STATE_MIGRATING);
    if (q->spec->timeout_s)
        uv_timer_start(&q->timer, migrate_timeout, q->spec->timeout_s * 1000, 0);
}

static void caps_set(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err, void *data)
{
    struct vm_qmig *q = data;
    (void)c, (void)ret;
    if (is_error(err, q, "migrate-set-capabilities")) {
        qm_finish(q, "failed", "source");
        return;
    }
    json_t *params = json_object();
    if (q->spec->bandwidth_mibs)
        json_object_set_new(params, "max-bandwidth",
                            json_integer((json_int_t)(q->spec->bandwidth_mibs << 20)));
    if (q->spec->max_downtime_ms)
        json_object_set_new(params, "downtime-limit",
                            json_integer((json_int_t)q->spec->max_downtime_ms));
    if (json_object_size(params))
        vm_qmp_command(q->src, "migrate-set-parameters", params, NULL, NULL);
    else
        json_decref(params);
    if (q->feats && q->spec->gated)
        vm_features_run(q->feats, VM_FEATURE_PREPARE, NULL);
    vm_qmp_command(q->src, "migrate", json_pack("{s:s}", "uri", q->spec->uri), migrate_sent, q);
}

static void incoming_set(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err, void *data)
{
    struct vm_qmig *q = data;
    (void)c, (void)ret;
    if (is_error(err, q, "migrate-incoming on the target (started with -incoming defer?)")) {
        qm_finish(q, "failed", "source");
        return;
    }
    json_t *caps =
        json_pack("{s:[{s:s, s:b}, {s:s, s:b}]}", "capabilities", "capability", "events", "state",
                  1, "capability", "pause-before-switchover", "state", q->spec->gated);
    vm_qmp_command(q->src, "migrate-set-capabilities", caps, caps_set, q);
}

/* What a later run needs to finish the features if this one crashes before
 * their deinit (guest back on the source) or after (guest on the target)
 * steps ran (journal/owed.h): the features as a decision, which of them
 * have such a step, and the VM as the features see it. */
static void owed_on_crash(struct vm_qmig *q, json_t *started)
{
    const struct vm_qmig_spec *spec = q->spec;
    json_t *owed = json_pack("{s:[], s:[]}", "deinit", "after");
    static const enum vm_feature_step steps[] = {VM_FEATURE_DEINIT, VM_FEATURE_AFTER};
    for (int k = 0; k < spec->nfeatures; k++)
        for (size_t i = 0; i < VM_ARRAY_LEN(steps); i++)
            if (vm_feature_owed_after_crash(spec->features[k].name, steps[i], spec->policy))
                json_array_append_new(json_object_get(owed, i ? "after" : "deinit"),
                                      json_string(spec->features[k].name));
    struct vm_decision d = {
        .class = VM_CLASS_NETWORK_CRITICAL,
        .class_set = true,
        .features = (struct vm_feature_decl *)spec->features,
        .nfeatures = spec->nfeatures,
        .gate_timeout_ms = spec->gate_timeout_ms,
    };
    json_object_set_new(started, "decision", vm_decision_to_json(&d));
    json_object_set_new(started, "owed_on_crash", owed);
    json_object_set(started, "inventory", q->vm);
}

/* Both sides answer: journal the start (with the source QEMU's UUID), then
 * the target listens. */
static void uuid_known(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err, void *data)
{
    struct vm_qmig *q = data;
    (void)c;
    const char *uuid = err ? NULL : json_string_value(json_object_get(ret, "UUID"));
    q->uuid = xstrdup(uuid ? uuid : "00000000-0000-0000-0000-000000000000");
    q->out.uuid = q->uuid;
    json_t *started = json_pack("{s:b, s:s, s:o, s:i, s:s}", "gated", q->spec->gated, "backend",
                                "qemu", "features", vm_features_to_json(q->feats), "attempt", 1,
                                "migration_uri", q->spec->uri);
    if (q->spec->gated && q->feats)
        owed_on_crash(q, started);
    q->journaled = true;
    qm_journal(q, "started", started);
    vm_qmp_command(q->dst, "migrate-incoming", json_pack("{s:s}", "uri", q->spec->uri),
                   incoming_set, q);
}

static void on_ready(struct vm_qmp *c, int status, void *ud)
{
    struct vm_qmig *q = ud;
    if (status < 0) {
        qm_fail(q, "cannot talk to QMP at '%s': %s",
                c == q->src ? q->spec->source_qmp : q->spec->target_qmp, vm_qmp_strerror(status));
        return; /* on_close follows */
    }
    if (++q->ready < 2)
        return;
    q->state = QM_STARTING;
    q->out.start_ms = vm_mono_ms();
    vm_qmp_command(q->src, "query-uuid", NULL, uuid_known, q);
}

static void on_close(struct vm_qmp *c, int reason, void *ud)
{
    struct vm_qmig *q = ud;
    bool was_src = c == q->src;
    if (was_src)
        q->src = NULL;
    else if (c == q->dst)
        q->dst = NULL;
    else
        return;
    if (q->state == QM_DONE || reason == 0)
        return;
    /* The target exits after a rollback: expected. Anything else ends us. */
    if (!was_src && q->out.decided && !q->out.commit)
        return;
    if (q->state == QM_CONNECTING) {
        qm_finish(q, "failed", "source");
        return;
    }
    if (was_src) {
        qm_fail(q, "the source QMP connection closed: %s", vm_qmp_strerror(reason));
        qm_finish(q, "failed", "unknown");
    } else if (q->state != QM_FINISHING || q->out.commit) {
        /* the source will report the failure with a MIGRATION event */
        qm_fail(q, "the target QMP connection closed: %s", vm_qmp_strerror(reason));
    }
}

static const struct vm_qmp_callbacks src_cbs = {on_ready, on_src_event, on_close};
static const struct vm_qmp_callbacks dst_cbs = {on_ready, NULL, on_close};

/* announce-self on the target, through its QMP connection. */
static void announced(struct vm_qmp *c, json_t *ret, const struct vm_qmp_error *err, void *data)
{
    struct vm_qmig *q = data;
    (void)c, (void)ret;
    vm_features_announced(q->feats, !err, err ? err->desc : NULL);
}

static void qmp_announce(struct vm_features *f, void *ctx)
{
    struct vm_qmig *q = ctx;
    if (!q->dst) {
        vm_features_announced(f, false, "no QMP connection to the target");
        return;
    }
    vm_qmp_command(
        q->dst, "announce-self",
        json_pack("{s:i, s:i, s:i, s:i}", "initial", 50, "max", 550, "rounds", 5, "step", 100),
        announced, q);
}

static void feature_event(struct vm_features *f, const char *feature, const char *step, bool ok,
                          const char *detail, void *data)
{
    (void)f;
    qm_event(data, "feature",
             json_pack("{s:s, s:s, s:b, s:o}", "feature", feature, "step", step, "ok", ok, "detail",
                       detail ? json_string(detail) : json_null()));
}

struct vm_qmig *vm_qmig_new(uv_loop_t *loop, const struct vm_qmig_spec *spec,
                            const struct vm_qmig_ops *ops, void *data)
{
    struct vm_qmig *q = xcalloc(1, sizeof(*q));
    q->spec = spec;
    q->ops = ops;
    q->data = data;
    q->loop = loop;
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    q->vm = json_pack("{s:s, s:s, s:s}", "name", spec->name, "source_qmp", spec->source_qmp,
                      "target_qmp", spec->target_qmp);
    if (spec->nfeatures) {
        struct vm_feature_env env = {.source = "qemu:///system",
                                     .target = "qemu:///system",
                                     .gated = spec->gated,
                                     .announce = qmp_announce,
                                     .ctx = q};
        q->feats = vm_features_new(loop, &env, q->vm, spec->features, spec->nfeatures, spec->policy,
                                   feature_event, q);
    }
    q->src = vm_qmp_new(loop, &src_cbs, q);
    q->dst = vm_qmp_new(loop, &dst_cbs, q);
    return q;
}

void vm_qmig_start(struct vm_qmig *q)
{
    if (vm_qmp_connect(q->src, q->spec->source_qmp) < 0 ||
        vm_qmp_connect(q->dst, q->spec->target_qmp) < 0) {
        qm_fail(q, "cannot connect to the QMP sockets '%s' and '%s'", q->spec->source_qmp,
                q->spec->target_qmp);
        qm_finish(q, "failed", "source");
    }
}

void vm_qmig_fail(struct vm_qmig *q, const char *msg)
{
    qm_fail(q, "%s", msg);
    qm_finish(q, "failed", "source");
}

void vm_qmig_cancel(struct vm_qmig *q, const char *reason)
{
    if (q->out.interrupted)
        return;
    q->out.interrupted = true;
    if (q->state == QM_GATE)
        decide(q, false, reason);
    else if (q->state == QM_MIGRATING && q->src)
        vm_qmp_command(q->src, "migrate_cancel", NULL, NULL, NULL);
}

const struct vm_qmig_outcome *vm_qmig_outcome(const struct vm_qmig *q)
{
    return &q->out;
}

json_t *vm_qmig_report(struct vm_qmig *q)
{
    if (!q->out.result) {
        q->out.result = "failed";
        q->out.location = "unknown";
    }
    json_t *ram = json_object_get(q->stats, "ram");
    json_t *downtime = json_object_get(q->stats, "downtime");
    return json_pack(
        "{s:s, s:s, s:s, s:b, s:o, s:o, s:I, s:o, s:o, s:o}", "name", q->spec->name, "result",
        q->out.result, "location", q->out.location, "gated", q->spec->gated, "gate",
        q->out.decided
            ? json_pack("{s:s, s:s, s:I}", "decision", q->out.commit ? "commit" : "rollback",
                        "reason", q->out.gate_reason, "held_ms", (json_int_t)q->out.gate_ms)
            : json_null(),
        "downtime_ms", json_is_integer(downtime) ? json_incref(downtime) : json_null(), "total_ms",
        (json_int_t)(q->out.end_ms > q->out.start_ms ? q->out.end_ms - q->out.start_ms : 0),
        "bytes_transferred",
        json_is_integer(json_object_get(ram, "transferred"))
            ? json_incref(json_object_get(ram, "transferred"))
            : json_null(),
        "feature_results", vm_features_to_json(q->feats), "error",
        q->out.error ? json_string(q->out.error) : json_null());
}

void vm_qmig_free(struct vm_qmig *q)
{
    if (!q)
        return;
    vm_features_free(q->feats);
    json_decref(q->vm);
    json_decref(q->stats);
    free(q->uuid);
    free(q->out.error);
    free(q->out.gate_reason);
    free(q);
}
