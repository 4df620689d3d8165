/* SPDX-License-Identifier: MIT */
/* mig.c — see mig.h. */
#include "migrate/mig.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/commit.h"
#include "migrate/gate.h"
#include "backend/qemu/qmp.h"
#include "util/util.h"

#define STATS_INTERVAL_MS 500

struct mig_task {
    struct vm_virt_task t;
    struct vm_mig *m;
    const char *what;
    /* verify results */
    int src_state, src_reason;
    bool src_gone;
    int dst_state, dst_reason;
    bool dst_exists;
    json_t *stats;
    /* a connection lost under this task (ungated only), and the generations
     * of the connections it used (virt.h) */
    bool src_lost, dst_lost;
    bool src_job; /* verify: a job (the migration) still runs on the source */
    unsigned src_gen, dst_gen;
    virDomainPtr dom; /* look-up: the source domain on the new connection (owned) */
};

static void mig_notify(struct vm_mig *m)
{
    if (m->ops->on_state)
        m->ops->on_state(m, m->ops_data);
}

static void mig_event(struct vm_mig *m, struct vm_virt_host *h, const char *event, json_t *details)
{
    if (m->ops->on_event)
        m->ops->on_event(m, h ? h->uri : NULL, event, details, m->ops_data);
    else
        json_decref(details);
}

static void mig_phase(struct vm_mig *m, const char *name)
{
    if (m->nphases < (int)VM_ARRAY_LEN(m->phases))
        m->phases[m->nphases++] = (struct vm_mig_phase){name, vm_wall_ms()};
    mig_event(m, NULL, "phase", json_pack("{s:s}", "phase", name));
}

static void mig_set_state(struct vm_mig *m, enum vm_mig_state s)
{
    if (m->state == s)
        return;
    m->state = s;
    mig_phase(m, vm_mig_state_name(s));
    mig_notify(m);
}

const char *vm_mig_state_name(enum vm_mig_state s)
{
    static const char *const names[] = {"queued",    "starting",   "migrating", "gate",
                                        "verifying", "migrated",   "failed",    "aborted",
                                        "skipped",   "rolled-back"};
    return (size_t)s < VM_ARRAY_LEN(names) ? names[s] : "unknown";
}

const char *vm_mig_location_name(enum vm_mig_location l)
{
    static const char *const names[] = {"unknown", "source", "target"};
    return (size_t)l < VM_ARRAY_LEN(names) ? names[l] : "unknown";
}

bool vm_mig_final(const struct vm_mig *m)
{
    return m->state >= VM_MIG_STATE_DONE;
}

struct vm_mig *vm_mig_new(uv_loop_t *loop, const char *name, struct vm_virt_host *src,
                          struct vm_virt_host *dst, const struct vm_mig_params *params,
                          const struct vm_mig_ops *ops, void *ops_data)
{
    struct vm_mig *m = xcalloc(1, sizeof(*m));
    m->loop = loop;
    m->name = xstrdup(name);
    m->src = src;
    m->dst = dst;
    m->params = *params;
    m->ops = ops;
    m->ops_data = ops_data;
    m->state = VM_MIG_STATE_QUEUED;
    m->location = VM_MIG_LOCATION_SOURCE;
    vm_converge_init(&m->converge, 0);
    return m;
}

void vm_mig_free(struct vm_mig *m)
{
    if (!m)
        return;
    if (m->dom)
        virDomainFree(m->dom);
    for (int i = 0; i < m->nold_doms; i++)
        virDomainFree(m->old_doms[i]);
    free(m->old_doms);
    vm_virt_err_clear(&m->err);
    vm_gate_session_free(m->gate);
    vm_commit_free(m->commit);
    free(m->gate_reason);
    free(m->target_lost);
    free(m->qmp_path);
    free(m->name);
    json_decref(m->attempts);
    free(m);
}

/* ---- progress from libvirt job stats --------------------------------- */

static uint64_t jget(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void progress_update(struct vm_mig *m, json_t *stats, bool completed)
{
    struct vm_mig_progress *p = &m->progress;
    if (!json_object_size(stats))
        return;
    p->data_total = jget(stats, VIR_DOMAIN_JOB_DATA_TOTAL);
    p->data_processed = jget(stats, VIR_DOMAIN_JOB_DATA_PROCESSED);
    p->data_remaining = jget(stats, VIR_DOMAIN_JOB_DATA_REMAINING);
    p->mem_total = jget(stats, VIR_DOMAIN_JOB_MEMORY_TOTAL);
    p->mem_processed = jget(stats, VIR_DOMAIN_JOB_MEMORY_PROCESSED);
    p->mem_remaining = jget(stats, VIR_DOMAIN_JOB_MEMORY_REMAINING);
    p->mem_bps = jget(stats, VIR_DOMAIN_JOB_MEMORY_BPS);
    p->dirty_rate = jget(stats, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE);
    p->page_size = jget(stats, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE);
    if (!p->page_size)
        p->page_size = 4096;
    uint64_t iter = jget(stats, VIR_DOMAIN_JOB_MEMORY_ITERATION);
    if (iter > p->iteration)
        p->iteration = iter;
    p->setup_ms = jget(stats, VIR_DOMAIN_JOB_SETUP_TIME);
    if (completed && json_object_get(stats, VIR_DOMAIN_JOB_DOWNTIME)) {
        p->downtime_ms = jget(stats, VIR_DOMAIN_JOB_DOWNTIME);
        p->has_downtime = true;
    }
}

/* ---- tasks ------------------------------------------------------------ */

static struct mig_task *task_new(struct vm_mig *m, const char *what,
                                 void (*work)(struct vm_virt_task *),
                                 void (*done)(struct vm_virt_task *))
{
    struct mig_task *mt = xcalloc(1, sizeof(*mt));
    mt->m = m;
    mt->what = what;
    mt->t.work = work;
    mt->t.done = done;
    mt->t.data = mt;
    return mt;
}

static void task_free(struct mig_task *mt)
{
    vm_virt_err_clear(&mt->t.err);
    json_decref(mt->stats);
    if (mt->dom)
        virDomainFree(mt->dom);
    free(mt);
}

/* Submit; on failure to queue, runs done with an error (from the loop, now). */
static void task_submit(struct mig_task *mt)
{
    mt->m->busy++;
    int rc = vm_virt_submit(mt->m->loop, &mt->t);
    if (rc < 0) {
        mt->t.rc = -1;
        vm_virt_err_set(&mt->t.err, VIR_ERR_INTERNAL_ERROR, "cannot queue %s: %s", mt->what,
                        uv_strerror(rc));
        mt->t.done(&mt->t);
    }
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

static void stop_timers(struct vm_mig *m)
{
    if (m->stats_timer) {
        uv_close((uv_handle_t *)m->stats_timer, timer_closed);
        m->stats_timer = NULL;
    }
    if (m->timeout_timer) {
        uv_close((uv_handle_t *)m->timeout_timer, timer_closed);
        m->timeout_timer = NULL;
    }
}

static void qmp_stop(struct vm_mig *m)
{
    if (m->qmp) {
        vm_qmp_close(m->qmp);
        m->qmp = NULL;
    }
}

static void mig_finish(struct vm_mig *m, enum vm_mig_state final)
{
    stop_timers(m);
    qmp_stop(m);
    m->end_mono_ms = vm_mono_ms();
    m->end_wall_ms = vm_wall_ms();
    json_t *d = json_pack("{s:s, s:s}", "result", vm_mig_state_name(final), "location",
                          vm_mig_location_name(m->location));
    if (m->err.message)
        json_object_set_new(d, "error",
                            json_pack("{s:i, s:s, s:s}", "code", m->err.code, "name",
                                      vm_virt_err_name(m->err.code), "message", m->err.message));
    mig_event(m, NULL, "result", d);
    mig_set_state(m, final);
}

/* -- verification: where does the guest run now? -- */

static void verify_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;

    /* The target first: it alone tells "migrated" from "not migrated". A
     * missing domain is confirmed twice before it counts. */
    for (int attempt = 0; attempt < 2; attempt++) {
        virDomainPtr td = virDomainLookupByUUIDString(m->dst->conn, m->uuid);
        if (td) {
            mt->dst_exists = virDomainGetState(td, &mt->dst_state, &mt->dst_reason, 0) == 0;
            if (mt->dst_exists && m->migrate_returned && !m->completed_event && !m->err.message) {
                int type;
                virTypedParameterPtr params = NULL;
                int n = 0;
                if (virDomainGetJobStats(td, &type, &params, &n, VIR_DOMAIN_JOB_STATS_COMPLETED) ==
                    0) {
                    mt->stats = vm_virt_params_to_json(params, n);
                    virTypedParamsFree(params, n);
                }
                virResetLastError();
            }
            virDomainFree(td);
            break;
        }
        virErrorPtr e = virGetLastError();
        bool not_found = e && e->code == VIR_ERR_NO_DOMAIN;
        virResetLastError();
        if (!not_found) {
            /* can't tell: dst_exists stays false, location unknown below;
             * unless the connection is gone: then ask again on a new one */
            mt->dst_lost = !m->gated && vm_virt_conn_lost(m->dst->conn);
            break;
        }
        if (attempt == 0)
            usleep(200 * 1000);
        else
            mt->dst_state = -1; /* confirmed absent */
    }

    if (m->src_absent) {
        mt->src_gone = true; /* not there when looked up again */
    } else if (virDomainGetState(m->dom, &mt->src_state, &mt->src_reason, 0) < 0) {
        virErrorPtr e = virGetLastError();
        mt->src_gone = e && e->code == VIR_ERR_NO_DOMAIN;
        virResetLastError();
        mt->src_lost = !mt->src_gone && !m->gated && vm_virt_conn_lost(virDomainGetConnect(m->dom));
    }
    if (mt->src_lost || mt->dst_lost)
        return; /* verify_done connects again and looks again */
    /* A peer-to-peer migration whose client lost its connection goes on in
     * the source's libvirtd: while its job runs, where the guest ends up is
     * not known yet. Aborting, abort it (again: the first abort may not
     * have reached the source); verify_done looks again. */
    virDomainJobInfo job;
    if (!m->gated && !mt->src_gone && virDomainGetJobInfo(m->dom, &job) == 0 &&
        job.type != VIR_DOMAIN_JOB_NONE) {
        mt->src_job = true;
        if (m->abort_requested && virDomainAbortJob(m->dom) == 0)
            mt->what = "aborted-again";
        virResetLastError();
        return;
    }
    virResetLastError();

    /* Not on the target (confirmed), source paused by the failed migration:
     * libvirt normally resumes it, but make sure the guest runs. A rollback
     * at the gate counts as confirmed even when the target cannot be asked
     * (its connection lost): Finish never told it to run the guest, and the
     * paused incoming copy there dies with the target's libvirtd (a restart
     * kills an incoming domain whose migration has no client any more). */
    bool rolled_back = m->gate && m->gate->finished && !m->gate_commit;
    /* A shut-off definition on the target (an earlier drain's, without
     * --undefine-source) is no guest there: "active on the target" counts. */
    bool dst_inactive = mt->dst_exists && mt->dst_state == VIR_DOMAIN_SHUTOFF;
    if ((dst_inactive || (!mt->dst_exists && (mt->dst_state == -1 || rolled_back))) &&
        !mt->src_gone && mt->src_state == VIR_DOMAIN_PAUSED &&
        (mt->src_reason == VIR_DOMAIN_PAUSED_MIGRATION ||
         mt->src_reason == VIR_DOMAIN_PAUSED_USER ||
         mt->src_reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED)) {
        if (virDomainResume(m->dom) == 0) {
            mt->src_state = VIR_DOMAIN_RUNNING;
            mt->what = "resumed-source";
        } else {
            vm_virt_err_capture(&t->err);
            t->rc = -1;
        }
    }
    /* --timeout-action suspend: the guest arrives paused; resume it there. */
    if (mt->dst_exists && mt->dst_state == VIR_DOMAIN_PAUSED && m->timeout_taken &&
        strcmp(m->timeout_taken, "suspend") == 0) {
        virDomainPtr td = virDomainLookupByUUIDString(m->dst->conn, m->uuid);
        if (td && virDomainResume(td) == 0) {
            mt->dst_state = VIR_DOMAIN_RUNNING;
            mt->what = "resumed-target";
        } else {
            vm_virt_err_capture(&t->err);
            t->rc = -1;
        }
        if (td)
            virDomainFree(td);
    }
}

static bool mig_repair_verify(struct vm_mig *m, struct mig_task *mt);

static void verify_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    m->busy--;
    if (mig_repair_verify(m, mt)) {
        task_free(mt); /* it looks again */
        return;
    }
    if (mt->stats) {
        progress_update(m, mt->stats, true);
        m->completed_event = true;
    }
    if (strcmp(mt->what, "verify") != 0 && strcmp(mt->what, "aborted-again") != 0)
        mig_event(m, strcmp(mt->what, "resumed-source") == 0 ? m->src : m->dst, mt->what, NULL);

    bool dst_running = mt->dst_exists && (mt->dst_state == VIR_DOMAIN_RUNNING);
    bool dst_active = mt->dst_exists && mt->dst_state != VIR_DOMAIN_SHUTOFF; /* verify_work */
    bool src_running = !mt->src_gone && mt->src_state == VIR_DOMAIN_RUNNING;
    json_t *d =
        json_pack("{s:s, s:s}", "source_state",
                  mt->src_gone ? "absent" : vm_virt_state_name(mt->src_state), "target_state",
                  mt->dst_exists        ? vm_virt_state_name(mt->dst_state)
                  : mt->dst_state == -1 ? "absent"
                                        : "unknown");
    mig_event(m, NULL, "verified", d);

    enum vm_mig_state final;
    if (dst_running && !src_running) {
        m->location = VM_MIG_LOCATION_TARGET;
        final = VM_MIG_STATE_DONE;
        /* Moved; but a source copy that is not confirmed gone (Confirm did
         * not reach a source whose libvirtd died, say) may sit there paused,
         * one `virsh resume` from running twice: not settled until a look
         * at the source finds it gone (the run looks once more at its end,
         * then recover). */
        if (!mt->src_gone && mt->src_state != VIR_DOMAIN_SHUTOFF) {
            m->source_left = true;
            vm_warn("%s: runs on the target, but its copy on the source is not confirmed gone "
                    "(source %s): not settled",
                    m->name, vm_virt_state_name(mt->src_state));
        }
        if (m->err.message) {
            /* libvirt reported a failure but the guest runs on the target
             * (e.g. Confirm failed): it did move. Keep the error visible. */
            vm_warn("%s: libvirt reported '%s', but the guest runs on the target", m->name,
                    m->err.message);
        }
    } else if (src_running && !dst_active) {
        m->location = VM_MIG_LOCATION_SOURCE;
        if (!m->err.message)
            vm_virt_err_set(&m->err, VIR_ERR_OPERATION_FAILED,
                            "migration ended but the guest still runs on the source");
        final = m->abort_requested ? VM_MIG_STATE_ABORTED
                : (m->gate && m->gate->finished && !m->gate_commit && m->gate_reason)
                    ? VM_MIG_STATE_ROLLED_BACK
                    : VM_MIG_STATE_FAILED;
        if (final == VM_MIG_STATE_ABORTED && m->migrate_lost && m->reconnects) {
            /* The call failed on the lost connection; what ended the
             * migration is the abort, once connected again. */
            char *why = xstrdup(m->err.message);
            vm_virt_err_set(&m->err, VIR_ERR_OPERATION_ABORTED,
                            "aborted after connecting again to the source (the connection was "
                            "lost: %s)",
                            why);
            free(why);
        }
        if (final == VM_MIG_STATE_ROLLED_BACK && m->err.code == VIR_ERR_OPERATION_FAILED &&
            strstr(m->err.message, "still runs on the source")) {
            vm_virt_err_clear(&m->err);
            vm_virt_err_set(&m->err, VIR_ERR_OPERATION_ABORTED, "rolled back at the gate: %s",
                            m->gate_reason);
        }
    } else {
        m->location = VM_MIG_LOCATION_UNKNOWN;
        vm_virt_err_keep(&m->err, &t->err);
        if (!m->err.message)
            vm_virt_err_set(&m->err, VIR_ERR_OPERATION_FAILED,
                            "guest state unclear after migration: source %s, target %s",
                            mt->src_gone ? "absent" : vm_virt_state_name(mt->src_state),
                            mt->dst_exists ? vm_virt_state_name(mt->dst_state) : "absent");
        final = VM_MIG_STATE_FAILED;
    }
    task_free(mt);
    mig_finish(m, final);
}

static void verify_submit(struct vm_mig *m)
{
    struct mig_task *mt = task_new(m, "verify", verify_work, verify_done);
    mt->src_gen = m->dom_gen;
    mt->dst_gen = m->dst->generation;
    task_submit(mt);
}

static void start_verify(struct vm_mig *m)
{
    mig_set_state(m, VM_MIG_STATE_VERIFYING);
    if (m->repair > 0) { /* an abort or a reconnect is under way */
        m->verify_wanted = true;
        return;
    }
    verify_submit(m);
}

/* -- a connection lost while aborting or verifying: connect again, redo -- */

static void abort_submit(struct vm_mig *m, const char *what);

/* What waits for the repairs (verification) goes on when none is left. */
static void mig_repair_next(struct vm_mig *m)
{
    if (m->repair == 0 && m->verify_wanted) {
        m->verify_wanted = false;
        verify_submit(m);
    }
}

static const char *mig_role(const struct vm_mig *m, const struct vm_virt_host *h)
{
    return h == m->src ? "source" : "target";
}

/* Is there time (and are there reconnects) left to repair? */
static bool mig_repair_left(struct vm_mig *m)
{
    uint64_t now = vm_mono_ms();
    if (!m->repair_until_ms)
        m->repair_until_ms = now + VM_MIG_REPAIR_BUDGET_MS;
    return now < m->repair_until_ms;
}

static void relookup_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    mt->dom = virDomainLookupByUUIDString(m->src->conn, m->uuid);
    if (!mt->dom) {
        vm_virt_err_capture(&t->err);
        mt->src_gone = t->err.code == VIR_ERR_NO_DOMAIN;
        t->rc = -1;
    }
}

static void relookup_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    m->busy--;
    m->repair--;
    if (mt->dom) {
        /* Tasks still running on the old connection may hold the old one. */
        m->old_doms = xrealloc(m->old_doms, (size_t)(m->nold_doms + 1) * sizeof(*m->old_doms));
        m->old_doms[m->nold_doms++] = m->dom;
        m->dom = mt->dom;
        mt->dom = NULL;
        m->dom_gen = mt->src_gen;
        m->src_absent = false;
    } else if (mt->src_gone) {
        m->src_absent = true;
        m->dom_gen = mt->src_gen;
        m->abort_again = false; /* nothing left there to abort */
    } else {
        vm_warn("%s: cannot look the guest up again on the source: %s", m->name, t->err.message);
    }
    task_free(mt);
    if (m->abort_again && m->dom_gen == m->src->generation) {
        m->abort_again = false;
        abort_submit(m, "abort-again");
    }
    mig_repair_next(m);
}

static void mig_reconnected(struct vm_virt_host *h, void *data)
{
    struct vm_mig *m = data;
    m->repair--;
    if (!h->conn) {
        m->reconnect_failed |= h == m->src ? 1 : 2; /* not again: verification concludes */
        mig_event(m, h, "libvirt.reconnect-failed",
                  json_pack("{s:s, s:s}", "host", mig_role(m, h), "error",
                            h->err.message ? h->err.message : "unknown error"));
        if (h == m->src)
            m->abort_again = false; /* verification says what became of it */
    } else {
        mig_event(
            m, h, "libvirt.reconnected",
            json_pack("{s:s, s:i}", "host", mig_role(m, h), "generation", (int)h->generation));
        if (h == m->src && m->dom_gen != h->generation && !m->src_absent) {
            m->repair++;
            struct mig_task *mt = task_new(m, "look-up", relookup_work, relookup_done);
            mt->src_gen = h->generation;
            task_submit(mt);
        } else if (h == m->src && m->abort_again) {
            m->abort_again = false;
            abort_submit(m, "abort-again");
        }
    }
    mig_repair_next(m);
}

/* Connect to h again, its connection of generation `seen` having failed
 * under a task; false (nothing started) when out of budget. */
static bool mig_reconnect(struct vm_mig *m, struct vm_virt_host *h, unsigned seen)
{
    if (m->reconnect_failed & (h == m->src ? 1 : 2))
        return false; /* its attempts are spent (vm_virt_host_reconnect) */
    if (!mig_repair_left(m) || m->reconnects >= VM_MIG_RECONNECTS_MAX) {
        vm_warn("%s: the connection to the %s '%s' is lost, and no time or attempt is left to "
                "connect again",
                m->name, mig_role(m, h), h->uri);
        return false;
    }
    m->reconnects++;
    m->repair++;
    mig_event(m, h, "libvirt.reconnecting", json_pack("{s:s}", "host", mig_role(m, h)));
    vm_virt_host_reconnect(h, seen, m->repair_until_ms - vm_mono_ms(), mig_reconnected, m);
    return true;
}

static void verify_again(uv_timer_t *t)
{
    struct vm_mig *m = t->data;
    uv_close((uv_handle_t *)t, timer_closed);
    m->repair--;
    mig_repair_next(m);
}

/* After a verification: true if it must be done again (a connection was
 * lost: connected again first; or a migration job still runs on the
 * source: in a moment), and it will be; false: conclude. */
static bool mig_repair_verify(struct vm_mig *m, struct mig_task *mt)
{
    if (mt->src_lost || mt->dst_lost) {
        bool again = false;
        m->verify_wanted = true; /* once the reconnects below end */
        if (mt->dst_lost)
            again |= mig_reconnect(m, m->dst, mt->dst_gen);
        if (mt->src_lost)
            again |= mig_reconnect(m, m->src, mt->src_gen);
        if (!again)
            m->verify_wanted = false;
        return again;
    }
    if (mt->src_job) {
        if (!mig_repair_left(m)) {
            vm_warn("%s: a migration job still runs on the source after %d s", m->name,
                    VM_MIG_REPAIR_BUDGET_MS / 1000);
            return false;
        }
        mig_event(m, m->src, "libvirt.job-running",
                  json_pack("{s:s, s:b}", "reason", "a migration job still runs on the source",
                            "aborted", strcmp(mt->what, "aborted-again") == 0));
        m->repair++;
        m->verify_wanted = true;
        uv_timer_t *t = xmalloc(sizeof(*t));
        uv_timer_init(m->loop, t);
        t->data = m;
        uv_timer_start(t, verify_again, 500, 0);
        return true;
    }
    return false;
}

/* -- the migration call itself -- */

/* The typed parameters and flags of this migration; -1 with the error set. */
static int build_params(struct vm_mig *m, virTypedParameterPtr *out, int *nout, unsigned *fout)
{
    const struct vm_mig_params *p = &m->params;
    virTypedParameterPtr params = NULL;
    int n = 0, max = 0;
    unsigned int flags = VIR_MIGRATE_LIVE;

    if (p->bandwidth_mibs && virTypedParamsAddULLong(&params, &n, &max, VIR_MIGRATE_PARAM_BANDWIDTH,
                                                     p->bandwidth_mibs) < 0)
        goto fail;
    if (p->migrate_uri &&
        virTypedParamsAddString(&params, &n, &max, VIR_MIGRATE_PARAM_URI, p->migrate_uri) < 0)
        goto fail;
    if (p->parallel) {
        flags |= VIR_MIGRATE_PARALLEL;
        if (virTypedParamsAddInt(&params, &n, &max, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
                                 p->parallel) < 0)
            goto fail;
    }
    if (p->compression) {
        flags |= VIR_MIGRATE_COMPRESSED;
        char *list = xstrdup(p->compression), *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (virTypedParamsAddString(&params, &n, &max, VIR_MIGRATE_PARAM_COMPRESSION, tok) <
                0) {
                free(list);
                goto fail;
            }
        free(list);
    }
    if (p->p2p && !m->gated)
        flags |= VIR_MIGRATE_PEER2PEER;
    if (p->auto_converge)
        flags |= VIR_MIGRATE_AUTO_CONVERGE;
    if (p->postcopy && !m->gated)
        flags |= VIR_MIGRATE_POSTCOPY;
    if (p->tls)
        flags |= VIR_MIGRATE_TLS;
    if (p->persistent)
        flags |= VIR_MIGRATE_PERSIST_DEST;
    if (p->undefine_source)
        flags |= VIR_MIGRATE_UNDEFINE_SOURCE;
    if (p->unsafe)
        flags |= VIR_MIGRATE_UNSAFE;
    *out = params;
    *nout = n;
    *fout = flags;
    return 0;
fail:
    virTypedParamsFree(params, n);
    return -1;
}

static void migrate_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    virTypedParameterPtr params = NULL;
    int n = 0;
    unsigned flags;

    if (m->params.max_downtime_ms &&
        virDomainMigrateSetMaxDowntime(m->dom, m->params.max_downtime_ms, 0) < 0)
        goto fail;
    if (build_params(m, &params, &n, &flags) < 0)
        goto fail;
    int rc;
    if (flags & VIR_MIGRATE_PEER2PEER) {
        rc = virDomainMigrateToURI3(m->dom, m->dst->uri, params, (unsigned)n, flags);
    } else {
        virDomainPtr nd = virDomainMigrate3(m->dom, m->dst->conn, params, (unsigned)n, flags);
        rc = nd ? 0 : -1;
        if (nd)
            virDomainFree(nd);
    }
    if (rc < 0)
        goto fail;
    virTypedParamsFree(params, n);
    return;
fail:
    vm_virt_err_capture(&t->err);
    t->rc = -1;
    mt->src_lost = vm_virt_conn_lost(virDomainGetConnect(m->dom));
    virTypedParamsFree(params, n);
}

/* -- the gated path: Begin, Prepare, Perform ... gate ... Finish, Confirm -- */

static void to_gate_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    virTypedParameterPtr params = NULL;
    int n = 0;
    unsigned flags;
    if ((m->params.max_downtime_ms &&
         virDomainMigrateSetMaxDowntime(m->dom, m->params.max_downtime_ms, 0) < 0) ||
        build_params(m, &params, &n, &flags) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
        return;
    }
    m->gate = vm_gate_session_new(m->dom, m->dst->conn, params, n, flags);
    if (vm_gate_to_gate(m->gate, &t->err) < 0)
        t->rc = -1;
}

static void gate_finish_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    if (vm_gate_finish(m->gate, m->gate_commit, &t->err) < 0)
        t->rc = -1;
}

static void gate_finish_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    m->busy--;
    m->migrate_returned = true;
    mig_event(m, NULL, m->gate_commit ? "gate.committed" : "gate.rolled-back",
              json_pack("{s:I, s:I, s:b, s:o}", "held_ms", (json_int_t)m->gate_ms, "finish_ms",
                        (json_int_t)(vm_mono_ms() - m->gate_enter_ms - m->gate_ms), "ok",
                        t->rc == 0, "error",
                        t->rc < 0 ? json_string(t->err.message) : json_null()));
    if (t->rc < 0)
        vm_virt_err_keep(&m->err, &t->err);
    task_free(mt);
    vm_commit_free(m->commit); /* the gate is over */
    m->commit = NULL;
    start_verify(m);
}

/* -- the commit gate: migrate/commit.h decides, these carry it out -- */

static bool commit_steps(void *data)
{
    struct vm_mig *m = data;
    return m->ops->gate_steps && m->ops->gate_steps(m, m->ops_data);
}

static void commit_cancel(void *data)
{
    struct vm_mig *m = data;
    if (m->ops->gate_cancel)
        m->ops->gate_cancel(m, m->ops_data);
}

static void commit_announce(void *data, bool commit, const char *reason, uint64_t held_ms)
{
    struct vm_mig *m = data;
    m->gate_commit = commit;
    free(m->gate_reason);
    m->gate_reason = xstrdup(reason);
    m->gate_ms = held_ms;
    mig_event(m, NULL, "gate.decided",
              json_pack("{s:s, s:s, s:I}", "decision", commit ? "commit" : "rollback", "reason",
                        m->gate_reason, "held_ms", (json_int_t)m->gate_ms));
}

static bool commit_record(void *data, bool commit, const char *reason)
{
    struct vm_mig *m = data;
    if (m->gate_commit != commit || strcmp(m->gate_reason, reason) != 0) {
        m->gate_commit = commit;
        free(m->gate_reason);
        m->gate_reason = xstrdup(reason);
    }
    return !m->ops->on_decision || m->ops->on_decision(m, commit, m->ops_data);
}

/* A rollback needs the source: its Confirm resumes the guest there. A
 * source whose libvirtd hangs (or died) would keep the guest paused for as
 * long as it does, while the target holds all of it: then the only way to
 * end the pause is to commit (the source copy stays paused, never resumed,
 * and is removed once the source answers: verify, resettle, recover). So
 * a rollback first asks the source for the guest's state, and commits
 * instead when no answer comes within SOURCE_PROBE_MS. */
#define SOURCE_PROBE_MS 2000

static void carry_out(struct vm_mig *m)
{
    task_submit(
        task_new(m, m->gate_commit ? "commit" : "rollback", gate_finish_work, gate_finish_done));
}

/* The source did not answer in time (source_answers false), or did. */
static void rollback_probed(struct vm_mig *m, bool source_answers, const char *why)
{
    if (!m->probe_timer)
        return; /* decided already */
    uv_close((uv_handle_t *)m->probe_timer, timer_closed);
    m->probe_timer = NULL;
    if (!source_answers) {
        char *reason = xasprintf("the source does not answer (%s), so a rollback (%s) would "
                                 "keep the guest paused there: committed to the target, which "
                                 "holds all of it",
                                 why, m->gate_reason);
        vm_warn("%s: %s", m->name, reason);
        free(m->gate_reason);
        m->gate_reason = reason;
        m->gate_commit = true;
        mig_event(m, NULL, "gate.decided",
                  json_pack("{s:s, s:s, s:I}", "decision", "commit", "reason", m->gate_reason,
                            "held_ms", (json_int_t)(vm_mono_ms() - m->gate_enter_ms)));
        /* On record if it can be; recover goes by what the hosts run. */
        if (m->ops->on_decision)
            m->ops->on_decision(m, true, m->ops_data);
    }
    carry_out(m);
}

static void probe_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    if (virDomainGetState(mt->m->dom, &mt->src_state, &mt->src_reason, 0) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
    }
}

static void probe_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    m->busy--;
    rollback_probed(m, t->rc == 0, t->err.message ? t->err.message : "no answer");
    task_free(mt);
}

static void probe_late(uv_timer_t *timer)
{
    struct vm_mig *m = timer->data;
    char *why = xasprintf("no answer within %d ms", SOURCE_PROBE_MS);
    rollback_probed(m, false, why);
    free(why);
}

static void commit_carry_out(void *data, bool commit, const char *reason)
{
    struct vm_mig *m = data;
    (void)reason;
    m->gate_commit = commit;
    if (commit || !m->gate || !m->gate->performed) {
        carry_out(m);
        return;
    }
    m->probe_timer = xmalloc(sizeof(*m->probe_timer));
    uv_timer_init(m->loop, m->probe_timer);
    m->probe_timer->data = m;
    uv_timer_start(m->probe_timer, probe_late, SOURCE_PROBE_MS, 0);
    task_submit(task_new(m, "source-probe", probe_work, probe_done));
}

static const struct vm_commit_ops mig_commit_ops = {
    .steps = commit_steps,
    .cancel = commit_cancel,
    .announce = commit_announce,
    .record = commit_record,
    .carry_out = commit_carry_out,
};

void vm_mig_gate_decide(struct vm_mig *m, bool commit, const char *reason)
{
    if (m->state != VM_MIG_STATE_GATE)
        return;
    vm_commit_decide(m->commit, commit, reason);
}

void vm_mig_gate_steps(struct vm_mig *m)
{
    if (m->state == VM_MIG_STATE_GATE)
        vm_commit_steps(m->commit);
}

static void to_gate_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    m->busy--;
    stop_timers(m);
    if (t->rc < 0) {
        m->migrate_returned = true;
        vm_virt_err_keep(&m->err, &t->err);
        mig_event(m, m->src, "migrate-failed",
                  json_pack("{s:i, s:s, s:s}", "code", m->err.code, "name",
                            vm_virt_err_name(m->err.code), "message", m->err.message));
        task_free(mt);
        start_verify(m);
        return;
    }
    task_free(mt);
    m->gate_enter_ms = vm_mono_ms();
    m->commit = vm_commit_new(m->loop, m->gate_budget_ms, &mig_commit_ops, m);
    mig_set_state(m, VM_MIG_STATE_GATE);
    if (m->abort_requested) {
        vm_mig_gate_decide(m, false, m->abort_reason);
        return;
    }
    if (m->target_lost) { /* Finish cannot reach the target: nothing to wait for */
        vm_mig_gate_decide(m, false, m->target_lost);
        return;
    }
    if (m->ops->on_gate)
        m->ops->on_gate(m, m->ops_data);
    vm_commit_enter(m->commit); /* budget and the features' gate steps */
}

static void migrate_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    m->busy--;
    m->migrate_returned = true;
    m->migrate_lost = t->rc < 0 && mt->src_lost;
    stop_timers(m);
    if (t->rc < 0) {
        vm_virt_err_keep(&m->err, &t->err);
        mig_event(m, m->src, "migrate-failed",
                  json_pack("{s:i, s:s, s:s}", "code", m->err.code, "name",
                            vm_virt_err_name(m->err.code), "message", m->err.message));
    }
    task_free(mt);
    start_verify(m);
}

/* -- periodic job stats -- */

static void stats_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    int type;
    virTypedParameterPtr params = NULL;
    int n = 0;
    if (virDomainGetJobStats(mt->m->dom, &type, &params, &n, 0) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
        return;
    }
    mt->stats = type == VIR_DOMAIN_JOB_NONE ? json_object() : vm_virt_params_to_json(params, n);
    virTypedParamsFree(params, n);
}

/* Pre-copy only: the first time the dirty rate keeps up with the transfer
 * (converge.h), said once as an event with the numbers. */
static void converge_check(struct vm_mig *m)
{
    struct vm_mig_progress *p = &m->progress;
    if (p->postcopy_active)
        return;
    struct vm_converge_sample s = {.iteration = p->iteration,
                                   .data_remaining = p->data_remaining,
                                   .mem_bps = p->mem_bps,
                                   .dirty_bps = p->dirty_rate * p->page_size};
    bool first = vm_converge_feed(&m->converge, &s);
    p->not_converging = m->converge.not_converging;
    if (!first)
        return;
    vm_warn("%s: not converging: the guest dirties %llu B/s, %llu B/s are sent, %llu B remain "
            "(iteration %llu)",
            m->name, (unsigned long long)s.dirty_bps, (unsigned long long)s.mem_bps,
            (unsigned long long)s.data_remaining, (unsigned long long)s.iteration);
    mig_event(
        m, m->src, "migration.not-converging",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I}", "iteration", (json_int_t)s.iteration,
                  "dirty_rate", (json_int_t)p->dirty_rate, "dirty_bps", (json_int_t)s.dirty_bps,
                  "mem_bps", (json_int_t)s.mem_bps, "data_remaining", (json_int_t)s.data_remaining,
                  "elapsed_ms", (json_int_t)(vm_mono_ms() - m->start_mono_ms), "iterations",
                  m->converge.window, "max_downtime_ms", (json_int_t)m->params.max_downtime_ms));
}

static void stats_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    m->busy--;
    m->stats_inflight = false;
    if (t->rc == 0 && !m->migrate_returned && json_object_size(mt->stats)) {
        progress_update(m, mt->stats, false);
        const struct vm_mig_progress *p = &m->progress;
        mig_event(m, m->src, "progress",
                  json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "elapsed_ms",
                            (json_int_t)(vm_mono_ms() - m->start_mono_ms), "data_total",
                            (json_int_t)p->data_total, "data_processed",
                            (json_int_t)p->data_processed, "data_remaining",
                            (json_int_t)p->data_remaining, "mem_bps", (json_int_t)p->mem_bps,
                            "dirty_rate", (json_int_t)p->dirty_rate, "iteration",
                            (json_int_t)p->iteration));
        converge_check(m);
        if (m->ops->on_progress)
            m->ops->on_progress(m, m->ops_data);
    }
    task_free(mt);
}

static void stats_tick(uv_timer_t *timer)
{
    struct vm_mig *m = timer->data;
    if (m->stats_inflight || m->migrate_returned)
        return;
    m->stats_inflight = true;
    task_submit(task_new(m, "job stats", stats_work, stats_done));
}

/* -- abort, suspend, post-copy -- */

static void abort_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    if (virDomainAbortJob(m->dom) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
        mt->src_lost = !m->gated && vm_virt_conn_lost(virDomainGetConnect(m->dom));
    }
}

static void suspend_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    if (virDomainSuspend(mt->m->dom) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
    }
}

static void postcopy_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    if (virDomainMigrateStartPostCopy(mt->m->dom, 0) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
    }
}

static void downtime_work(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    if (virDomainMigrateSetMaxDowntime(mt->m->dom, mt->m->params.max_downtime_ms, 0) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
    }
}

static void action_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    m->busy--;
    json_t *d = json_pack("{s:s, s:b}", "action", mt->what, "ok", t->rc == 0);
    if (t->rc < 0) {
        json_object_set_new(d, "error", json_string(t->err.message));
        /* Usually the migration finished meanwhile; the result says. */
        vm_info("%s: %s: %s", m->name, mt->what, t->err.message);
    }
    mig_event(m, m->src, "action", d);
    task_free(mt);
}

/* The abort returned: if it could not reach the source (the connection is
 * gone), connect again and abort again. */
static void abort_done(struct vm_virt_task *t)
{
    struct mig_task *mt = t->data;
    struct vm_mig *m = mt->m;
    bool lost = t->rc < 0 && mt->src_lost;
    unsigned seen = mt->src_gen;
    action_done(t); /* counts the task off, frees it */
    m->repair--;
    if (lost && !vm_mig_final(m)) {
        m->abort_again = true;
        if (!mig_reconnect(m, m->src, seen))
            m->abort_again = false;
    }
    mig_repair_next(m);
}

static void abort_submit(struct vm_mig *m, const char *what)
{
    m->repair++;
    struct mig_task *mt = task_new(m, what, abort_work, abort_done);
    mt->src_gen = m->dom_gen;
    task_submit(mt);
}

void vm_mig_abort(struct vm_mig *m, const char *reason)
{
    if (m->state == VM_MIG_STATE_QUEUED) {
        m->abort_reason = reason;
        mig_finish(m, VM_MIG_STATE_SKIPPED);
        return;
    }
    if (m->state == VM_MIG_STATE_GATE) {
        /* Both sides wait: roll back (the guest resumes on the source). */
        m->abort_reason = reason;
        vm_mig_gate_decide(m, false, reason);
        return;
    }
    if (m->abort_requested || vm_mig_final(m))
        return;
    if (m->migrate_returned) {
        /* The migration call failed on a lost connection: the migration
         * itself may go on in the source's libvirtd (peer-to-peer).
         * Verification aborts it there once connected again. */
        if (m->migrate_lost && m->state == VM_MIG_STATE_VERIFYING) {
            m->abort_requested = true;
            m->abort_reason = reason;
        }
        return;
    }
    m->abort_requested = true;
    m->abort_reason = reason;
    abort_submit(m, "abort");
}

void vm_mig_set_max_downtime(struct vm_mig *m, uint64_t ms)
{
    if (m->state != VM_MIG_STATE_MIGRATING || m->migrate_returned)
        return;
    m->params.max_downtime_ms = ms;
    task_submit(task_new(m, "set_downtime", downtime_work, action_done));
}

void vm_mig_postcopy(struct vm_mig *m)
{
    if (m->state != VM_MIG_STATE_MIGRATING || m->migrate_returned || m->progress.postcopy_active)
        return;
    m->progress.postcopy_active = true;
    task_submit(task_new(m, "postcopy", postcopy_work, action_done));
}

static void timeout_fired(uv_timer_t *timer)
{
    struct vm_mig *m = timer->data;
    if (m->migrate_returned)
        return;
    static const char *const names[] = {"abort", "suspend", "postcopy"};
    m->timeout_taken = names[m->params.timeout_action];
    vm_warn("%s: still migrating after %u s: %s", m->name, m->params.timeout_s, m->timeout_taken);
    mig_event(
        m, m->src, "timeout",
        json_pack("{s:i, s:s}", "timeout_s", m->params.timeout_s, "action", m->timeout_taken));
    switch (m->params.timeout_action) {
    case VM_MIG_TIMEOUT_ABORT:
        vm_mig_abort(m, "timeout");
        break;
    case VM_MIG_TIMEOUT_SUSPEND:
        task_submit(task_new(m, "suspend", suspend_work, action_done));
        break;
    case VM_MIG_TIMEOUT_POSTCOPY:
        vm_mig_postcopy(m);
        break;
    }
}

/* -- the optional extra QMP monitor: watch only, never command -- */

static void qmp_ready(struct vm_qmp *q, int status, void *data)
{
    struct vm_mig *m = data;
    if (status < 0)
        vm_warn("%s: QMP monitor '%s': %s", m->name, m->qmp_path, vm_qmp_strerror(status));
    else
        mig_event(m, m->src, "qmp.connected", json_pack("{s:s}", "path", m->qmp_path));
    (void)q;
}

static void qmp_event(struct vm_qmp *q, const char *name, json_t *data, double ts, void *ud)
{
    struct vm_mig *m = ud;
    char *ev = xasprintf("qmp.%s", name);
    json_t *d = json_object();
    json_object_set_new(d, "data", data ? json_deep_copy(data) : json_object());
    json_object_set_new(d, "qemu_time", json_real(ts));
    mig_event(m, m->src, ev, d);
    free(ev);
    (void)q;
}

static void qmp_closed(struct vm_qmp *q, int reason, void *ud)
{
    struct vm_mig *m = ud;
    if (m->qmp == q)
        m->qmp = NULL; /* closed by the peer: the library frees it */
    (void)reason;
}

static const struct vm_qmp_callbacks mig_qmp_callbacks = {
    .on_ready = qmp_ready,
    .on_event = qmp_event,
    .on_close = qmp_closed,
};

/* ---- start ------------------------------------------------------------ */

void vm_mig_start(struct vm_mig *m, virDomainPtr dom, const char *qmp_path)
{
    m->dom = dom;
    m->start_mono_ms = vm_mono_ms();
    m->start_wall_ms = vm_wall_ms();
    virDomainGetUUIDString(dom, m->uuid);
    mig_set_state(m, VM_MIG_STATE_STARTING);

    if (qmp_path) {
        m->qmp_path = xstrdup(qmp_path);
        m->qmp = vm_qmp_new(m->loop, &mig_qmp_callbacks, m);
        int rc = vm_qmp_connect(m->qmp, qmp_path);
        if (rc < 0) {
            vm_warn("%s: QMP monitor '%s': %s", m->name, qmp_path, vm_qmp_strerror(rc));
            vm_qmp_close(m->qmp);
            m->qmp = NULL;
        }
    }

    m->stats_timer = xmalloc(sizeof(*m->stats_timer));
    uv_timer_init(m->loop, m->stats_timer);
    m->stats_timer->data = m;
    uv_timer_start(m->stats_timer, stats_tick, STATS_INTERVAL_MS, STATS_INTERVAL_MS);
    if (m->params.timeout_s) {
        m->timeout_timer = xmalloc(sizeof(*m->timeout_timer));
        uv_timer_init(m->loop, m->timeout_timer);
        m->timeout_timer->data = m;
        uv_timer_start(m->timeout_timer, timeout_fired, (uint64_t)m->params.timeout_s * 1000, 0);
    }
    mig_set_state(m, VM_MIG_STATE_MIGRATING);
    if (m->gated)
        task_submit(task_new(m, "to-gate", to_gate_work, to_gate_done));
    else
        task_submit(task_new(m, "migrate", migrate_work, migrate_done));
}

/* ---- libvirt events routed by the job -------------------------------- */

const char *vm_mig_lost_action_name(enum vm_mig_lost_action a)
{
    static const char *const names[] = {"nothing", "rollback", "rollback-at-gate", "keep"};
    return (size_t)a < VM_ARRAY_LEN(names) ? names[a] : "unknown";
}

enum vm_mig_lost_action vm_mig_lost_action(const struct vm_mig *m, const struct vm_virt_host *h)
{
    if (!m->gated || (h != m->src && h != m->dst))
        return VM_MIG_LOST_NOTHING;
    bool open_gate = m->state == VM_MIG_STATE_GATE && !vm_commit_decided(m->commit);
    if (h == m->dst) {
        /* Both sides wait, and Finish cannot reach the target: whatever the
         * gate steps say, a commit cannot happen; holding the guest paused
         * for the rest of the budget gains nothing. A rollback needs only
         * the source (Confirm, cancelled, resumes it there). */
        if (open_gate)
            return VM_MIG_LOST_ROLLBACK;
        /* Perform runs on the source and may still succeed (the target's
         * QEMU takes the state without its libvirtd). */
        if (m->state == VM_MIG_STATE_STARTING || m->state == VM_MIG_STATE_MIGRATING)
            return VM_MIG_LOST_AT_GATE;
        return VM_MIG_LOST_NOTHING;
    }
    /* The source at the gate: not a rollback. The guest is paused on the
     * source and only the source's libvirtd could resume it there (a
     * rollback's Confirm would fail on the lost connection and leave it
     * paused); the target still holds the whole state and is reachable, so
     * letting the gate steps finish and commit moves the guest to the
     * target, which is better. Logged; the gate decides as usual. Before
     * the gate, the source's own phases (Perform) fail by themselves. */
    return open_gate ? VM_MIG_LOST_KEEP : VM_MIG_LOST_NOTHING;
}

static void mig_host_lost(struct vm_mig *m, struct vm_virt_host *h, const char *why)
{
    enum vm_mig_lost_action a = vm_mig_lost_action(m, h);
    const char *role = h == m->dst ? "target" : "source";
    why = why ? why : "unknown reason";
    mig_event(m, h, "libvirt.connection-lost",
              json_pack("{s:s, s:s, s:s}", "host", role, "reason", why, "action",
                        vm_mig_lost_action_name(a)));
    char *reason = NULL;
    switch (a) {
    case VM_MIG_LOST_ROLLBACK:
        reason =
            xasprintf("the connection to the target '%s' was lost at the gate: %s", h->uri, why);
        vm_warn("%s: %s: rolling back", m->name, reason);
        vm_mig_gate_decide(m, false, reason);
        break;
    case VM_MIG_LOST_AT_GATE:
        free(m->target_lost);
        m->target_lost = xasprintf(
            "the connection to the target '%s' was lost on the way to the gate: %s", h->uri, why);
        vm_warn("%s: %s: rolling back if the gate is reached", m->name, m->target_lost);
        break;
    case VM_MIG_LOST_KEEP:
        vm_warn("%s: the connection to the source '%s' was lost at the gate (%s): the gate goes "
                "on (a rollback could not resume the guest there; a commit moves it to the "
                "target)",
                m->name, h->uri, why);
        break;
    case VM_MIG_LOST_NOTHING:
        break;
    }
    free(reason);
}

void vm_mig_domain_event(struct vm_mig *m, struct vm_virt_host *h, const struct vm_virt_event *ev)
{
    switch (ev->kind) {
    case VM_VIRT_EVENT_LIFECYCLE:
        mig_event(m, h, "libvirt.lifecycle",
                  json_pack("{s:s, s:s}", "event", vm_virt_lifecycle_name(ev->lifecycle), "detail",
                            vm_virt_lifecycle_detail_name(ev->lifecycle, ev->detail)));
        if (h == m->src && ev->lifecycle == VIR_DOMAIN_EVENT_SUSPENDED &&
            (ev->detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ||
             ev->detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY) &&
            m->state == VM_MIG_STATE_MIGRATING)
            mig_phase(m, "switchover");
        if (ev->lifecycle == VIR_DOMAIN_EVENT_SUSPENDED &&
            ev->detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY)
            m->progress.postcopy_active = true;
        /* Resumed on the target: the switchover is over (post-copy resumes
         * with another detail, while memory still moves). */
        if (h == m->dst && ev->lifecycle == VIR_DOMAIN_EVENT_RESUMED &&
            ev->detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED && !m->on_target && !vm_mig_final(m)) {
            m->on_target = true;
            mig_phase(m, "on-target");
            if (m->ops->on_target)
                m->ops->on_target(m, m->ops_data);
        }
        /* The target's copy died while both sides wait: nothing to commit. */
        if (h == m->dst && ev->lifecycle == VIR_DOMAIN_EVENT_STOPPED &&
            m->state == VM_MIG_STATE_GATE)
            vm_mig_gate_decide(m, false, "the target domain stopped at the gate");
        break;
    case VM_VIRT_EVENT_ITERATION:
        if ((uint64_t)ev->iteration > m->progress.iteration)
            m->progress.iteration = (uint64_t)ev->iteration;
        mig_event(m, h, "libvirt.migration-iteration",
                  json_pack("{s:i}", "iteration", ev->iteration));
        break;
    case VM_VIRT_EVENT_GRAPHICS:
        if (h == m->dst && ev->graphics_phase == VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE)
            m->graphics_target_ready++;
        if (h == m->dst && ev->graphics_phase == VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT &&
            m->graphics_target_ready > 0)
            m->graphics_target_ready--;
        mig_event(m, h, "libvirt.graphics",
                  json_pack("{s:s, s:o}", "phase",
                            ev->graphics_phase == VIR_DOMAIN_EVENT_GRAPHICS_CONNECT ? "connect"
                            : ev->graphics_phase == VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE
                                ? "initialize"
                                : "disconnect",
                            "remote",
                            ev->graphics_remote ? json_string(ev->graphics_remote) : json_null()));
        break;
    case VM_VIRT_EVENT_CONNECTION_LOST:
        mig_host_lost(m, h, ev->lost_reason);
        break;
    case VM_VIRT_EVENT_JOB_COMPLETED:
        if (h == m->src) {
            progress_update(m, ev->stats, true);
            m->completed_event = true;
        }
        mig_event(m, h, "libvirt.job-completed", json_deep_copy(ev->stats));
        break;
    }
}
