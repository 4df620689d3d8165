/* SPDX-License-Identifier: MIT */
/* recover.c — see recover.h. */
#include "journal/recover.h"

#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "journal/journal.h"
#include "util/util.h"
#include "backend/libvirt/virt.h"
#include "backend/qemu/qmp_sync.h"

/* Where is the domain, and in which state? -1: cannot tell (unreachable). */
enum where {
    WHERE_UNKNOWN = -1,
    WHERE_ABSENT = 0,
    WHERE_RUNNING,
    WHERE_PAUSED,
    WHERE_OTHER,
};

/* A state libvirt passes through while it creates or removes a domain. */
static bool transient(enum where w, int reason)
{
    return w == WHERE_OTHER || (w == WHERE_PAUSED && reason == VIR_DOMAIN_PAUSED_STARTING_UP);
}

/* Hosts that did not answer within the connect deadline in this settling
 * (vm_recover resets it): asked again, each would cost the whole deadline
 * once more per look, and a settling with a hung host would never end. */
static pthread_mutex_t down_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *down;

static bool host_down(const char *uri, bool mark)
{
    pthread_mutex_lock(&down_lock);
    if (!down)
        down = json_object();
    if (mark)
        json_object_set_new(down, uri, json_true());
    bool is = json_object_get(down, uri) != NULL;
    pthread_mutex_unlock(&down_lock);
    return is;
}

static void hosts_forget(void)
{
    pthread_mutex_lock(&down_lock);
    json_decref(down);
    down = NULL;
    pthread_mutex_unlock(&down_lock);
}

/* Hosts this process saw stop answering (vm_recover_host_hung), for the
 * whole process: not reset by a settling. */
static json_t *hung;

void vm_recover_host_hung(const char *uri)
{
    pthread_mutex_lock(&down_lock);
    if (!hung)
        hung = json_object();
    json_object_set_new(hung, uri, json_true());
    pthread_mutex_unlock(&down_lock);
}

static unsigned connect_timeout_s(const char *uri)
{
    pthread_mutex_lock(&down_lock);
    bool h = hung && json_object_get(hung, uri);
    pthread_mutex_unlock(&down_lock);
    return h ? VM_RECOVER_HUNG_CONNECT_S : VM_VIRT_CONNECT_TIMEOUT_DEFAULT_S;
}

/* A connection with the deadline, unless uri did not answer before. */
static virConnectPtr connect_once(const char *uri, struct vm_virt_err *e)
{
    if (host_down(uri, false)) {
        vm_virt_err_set(e, VIR_ERR_OPERATION_TIMEOUT, "it did not answer earlier");
        return NULL;
    }
    unsigned timeout_s = connect_timeout_s(uri);
    uint64_t t0 = vm_mono_ms();
    virConnectPtr c = vm_virt_connect(uri, timeout_s, e);
    if (!c && vm_mono_ms() - t0 >= (uint64_t)timeout_s * 900)
        host_down(uri, true);
    return c;
}

static enum where observe(const char *uri, const char *uuid, int *reason, char **err)
{
    struct vm_virt_err ce = {0};
    virConnectPtr c = connect_once(uri, &ce);
    if (!c) {
        *err = xasprintf("cannot connect to '%s': %s", uri, ce.message);
        vm_virt_err_clear(&ce);
        return WHERE_UNKNOWN;
    }
    enum where w = WHERE_ABSENT;
    virDomainPtr d = virDomainLookupByUUIDString(c, uuid);
    int state = 0;
    *reason = 0;
    if (d) {
        if (virDomainGetState(d, &state, reason, 0) < 0) {
            /* Gone between the lookup and the look (a copy being torn
             * down): absent; any other error is a state to look at again. */
            virErrorPtr e = virGetLastError();
            if (e && e->code == VIR_ERR_NO_DOMAIN) {
                w = WHERE_ABSENT;
            } else {
                *err = xasprintf("cannot read the state of %s on '%s': %s", uuid, uri,
                                 e && e->message ? e->message : "unknown error");
                w = WHERE_OTHER;
            }
        } else if (state == VIR_DOMAIN_RUNNING)
            w = WHERE_RUNNING;
        else if (state == VIR_DOMAIN_PAUSED)
            w = WHERE_PAUSED;
        else if (state == VIR_DOMAIN_SHUTOFF)
            w = WHERE_ABSENT; /* a stopped definition runs nothing */
        else
            w = WHERE_OTHER;
        virDomainFree(d);
    } else {
        virErrorPtr e = virGetLastError();
        if (!e || e->code != VIR_ERR_NO_DOMAIN) {
            *err = xasprintf("cannot look up %s on '%s': %s", uuid, uri,
                             e && e->message ? e->message : "unknown error");
            w = WHERE_OTHER; /* connected, but no answer yet: look again */
        }
    }
    virResetLastError();
    virConnectClose(c);
    return w;
}

/* Observe until two looks a second apart agree on a settled state: one
 * negative observation is not enough, and a copy libvirt is still setting
 * up or tearing down ("paused, starting up", "in shutdown") is neither here
 * nor gone. Gives up after max_s seconds with what it saw last (then
 * WHERE_OTHER if the looks disagreed). */
static enum where observe_confirmed(const char *uri, const char *uuid, int *reason, char **err)
{
    const int max_s = 30;
    enum where a = observe(uri, uuid, reason, err);
    /* A host that cannot be reached may be restarting its libvirtd (a
     * second or two): a few more tries before it counts as unreachable. */
    uint64_t until = vm_mono_ms() + 10000;
    while (a == WHERE_UNKNOWN && vm_mono_ms() < until && !host_down(uri, false)) {
        sleep(1);
        free(*err);
        *err = NULL;
        a = observe(uri, uuid, reason, err);
    }
    for (int i = 0; i < max_s && a != WHERE_UNKNOWN; i++) {
        sleep(1);
        free(*err);
        *err = NULL;
        enum where b = observe(uri, uuid, reason, err);
        if (b == a && !transient(b, *reason))
            return b;
        a = b;
    }
    return a == WHERE_UNKNOWN ? a : WHERE_OTHER;
}

static int act(const char *uri, const char *uuid, bool resume, char **err)
{
    struct vm_virt_err e = {0};
    virConnectPtr c = connect_once(uri, &e);
    virDomainPtr d = c ? virDomainLookupByUUIDString(c, uuid) : NULL;
    int rc = -1;
    if (d)
        rc = resume ? virDomainResume(d) : virDomainDestroy(d);
    if (rc < 0) {
        if (c)
            vm_virt_err_capture(&e);
        *err = c ? xstrdup(e.message) : xasprintf("cannot connect to '%s': %s", uri, e.message);
        vm_virt_err_clear(&e);
    }
    if (d)
        virDomainFree(d);
    if (c)
        virConnectClose(c);
    return rc;
}

static const char *where_name(enum where w)
{
    static const char *const names[] = {"absent", "running", "paused", "other"};
    return w == WHERE_UNKNOWN ? "unknown" : names[w];
}

/* Is the migration (run, uuid) closed? A recovery settled it, or the
 * latest attempt (a run may retry a VM) has a "finished" record that does
 * not say it is unsettled: a location "unknown", or "settled": false (a
 * source copy not confirmed gone) leave it open, for the hosts to tell. */
static bool closed(const struct vm_journal_records *all, const char *run, const char *uuid)
{
    const struct vm_journal_record *fin = NULL;
    for (size_t i = 0; i < all->n; i++) {
        const struct vm_journal_record *r = &all->v[i];
        if (!vm_journal_record_about(r, run, uuid))
            continue;
        if (r->kind == VM_JOURNAL_KIND_RECOVERED && r->about_earlier)
            return true;
        if (r->about_earlier)
            continue;
        if (r->kind == VM_JOURNAL_KIND_STARTED)
            fin = NULL;
        else if (r->kind == VM_JOURNAL_KIND_FINISHED)
            fin = r;
    }
    if (!fin)
        return false;
    const char *loc = json_string_value(json_object_get(fin->json, "location"));
    return !(loc && strcmp(loc, "unknown") == 0) &&
           !json_is_false(json_object_get(fin->json, "settled"));
}

/* Is the run with this id (…-PID) still going on? */
static bool run_alive(const char *run)
{
    const char *dash = strrchr(run, '-');
    int pid = dash ? atoi(dash + 1) : 0;
    if (pid <= 1 || pid == (int)getpid() || !vm_process_alive(pid))
        return false;
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = '\0';
        fclose(f);
    }
    return strncmp(comm, "vmmigrate", 9) == 0;
}

/* A migration libvirt still runs by itself (peer-to-peer, our client gone):
 * wait for it to end, up to max_s. */
static void wait_for_libvirt_job(const char *uri, const char *uuid, int max_s)
{
    struct vm_virt_err e = {0};
    virConnectPtr c = connect_once(uri, &e);
    vm_virt_err_clear(&e);
    virDomainPtr d = c ? virDomainLookupByUUIDString(c, uuid) : NULL;
    for (int i = 0; d && i < max_s * 2; i++) {
        virDomainJobInfo info;
        if (virDomainGetJobInfo(d, &info) < 0 || info.type == VIR_DOMAIN_JOB_NONE)
            break;
        if (i == 0)
            vm_warn("recover: %s: libvirt still migrates it; waiting for the end", uuid);
        usleep(500 * 1000);
    }
    virResetLastError();
    if (d)
        virDomainFree(d);
    if (c)
        virConnectClose(c);
}

/* The declarations of the features named in `names`, in decision order. */
static json_t *features_named(json_t *decision, json_t *names)
{
    json_t *out = json_array();
    size_t i, k;
    json_t *f, *n;
    json_array_foreach(json_object_get(decision, "features"), i, f)
    {
        json_array_foreach(names, k, n)
        {
            if (json_equal(json_object_get(f, "name"), n))
                json_array_append(out, f);
        }
    }
    return out;
}

json_t *vm_recover_owed(const char *dir, char **err)
{
    /* Every record in the order written (journals are named by start time). */
    struct vm_journal_records all;
    if (vm_journal_read_dir(dir, &all, err) < 0)
        return NULL;

    json_t *owed = json_array();
    for (size_t i = 0; i < all.n; i++) {
        const struct vm_journal_record *r = &all.v[i];
        const char *run = r->run, *uuid = r->uuid;
        json_t *decision = json_object_get(r->json, "decision");
        json_t *owed_steps = json_object_get(r->json, "owed_on_crash");
        if (r->kind != VM_JOURNAL_KIND_STARTED || !run || !uuid ||
            !json_is_true(json_object_get(r->json, "gated")) || !owed_steps)
            continue;
        /* After this start (the latest attempt): where the guest ended, and
         * which steps were done (by the run itself or a recovery). A run
         * still going on does its own. */
        const char *loc = NULL;
        bool latest = true, deinit_done = false, after_done = false;
        bool deinit_began = false, after_began = false;
        for (size_t k = i + 1; k < all.n && latest; k++) {
            const struct vm_journal_record *later = &all.v[k];
            if (!later->record || !vm_journal_record_about(later, run, uuid))
                continue;
            if (later->kind == VM_JOURNAL_KIND_STARTED)
                latest = false;
            else if (later->kind == VM_JOURNAL_KIND_FINISHED ||
                     later->kind == VM_JOURNAL_KIND_RECOVERED)
                loc = json_string_value(json_object_get(later->json, "location"));
            else if (later->kind == VM_JOURNAL_KIND_DEINIT_DONE)
                deinit_done = true;
            else if (later->kind == VM_JOURNAL_KIND_AFTER_DONE)
                after_done = true;
            else if (later->kind == VM_JOURNAL_KIND_STEP_STARTED) {
                const char *which = json_string_value(json_object_get(later->json, "step"));
                deinit_began |= which && strcmp(which, "deinit") == 0;
                after_began |= which && strcmp(which, "after") == 0;
            }
        }
        const char *step = NULL;
        if (latest && loc && strcmp(loc, "source") == 0 && !deinit_done)
            step = "deinit";
        else if (latest && loc && strcmp(loc, "target") == 0 && !after_done)
            step = "after";
        json_t *features =
            step ? features_named(decision, json_object_get(owed_steps, step)) : NULL;
        if (!features || json_array_size(features) == 0 || run_alive(run)) {
            json_decref(features);
            continue;
        }
        json_t *src = json_object_get(r->json, "source"), *dst = json_object_get(r->json, "target");
        json_t *inv = json_object_get(r->json, "inventory");
        if (!json_is_string(src) || !json_is_string(dst)) {
            json_decref(features);
            continue;
        }
        json_array_append_new(
            owed, json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:o, s:O, s:b}", "step", step, "run",
                            run, "uuid", uuid, "vm", r->vm ? r->vm : "", "source", src, "target",
                            dst, "features", features, "inventory", inv ? inv : json_null(), "redo",
                            strcmp(step, "deinit") == 0 ? deinit_began : after_began));
    }
    vm_journal_records_clear(&all);
    return owed;
}

/* What recover found about one migration and did. */
struct settled {
    const char *found_target, *found_source; /* where_name() or qwhere_name() */
    const char *action;
    bool ok;
    bool record;          /* journal it, so that the next recover does not come back */
    const char *location; /* where the guest runs now (recorded): target, source, none */
    char *why;            /* the error, if any (owned) */
};

/* A guest of libvirt: ask libvirt on both hosts. */
static void settle_libvirt(const char *src, const char *dst, const char *uuid, int *unreachable,
                           struct settled *st)
{
    wait_for_libvirt_job(src, uuid, 600);
    char *e1 = NULL, *e2 = NULL, *e3 = NULL;
    int reason;
    enum where t = observe_confirmed(dst, uuid, &reason, &e1);
    enum where s = observe_confirmed(src, uuid, &reason, &e2);
    const char *action = "none";
    bool ok = true;
    if (t == WHERE_UNKNOWN || s == WHERE_UNKNOWN) {
        action = "none: a host cannot be reached";
        ok = false;
        (*unreachable)++;
    } else if (t == WHERE_RUNNING && s == WHERE_RUNNING) {
        action = "none: TWO RUNNING COPIES, an operator must choose";
        ok = false;
    } else if (t == WHERE_RUNNING && s == WHERE_PAUSED) {
        action = "destroyed the stale paused copy on the source";
        ok = act(src, uuid, false, &e3) == 0;
    } else if (t == WHERE_RUNNING && s == WHERE_ABSENT) {
        action = "none: the guest runs on the target";
    } else if (t == WHERE_ABSENT && s == WHERE_PAUSED) {
        action = "resumed the source";
        ok = act(src, uuid, true, &e3) == 0;
    } else if (t == WHERE_ABSENT && s == WHERE_RUNNING) {
        action = "none: the guest runs on the source";
    } else if (t == WHERE_ABSENT && s == WHERE_ABSENT) {
        action = "none: the guest is on neither host (deleted meanwhile?), an operator "
                 "must look";
        ok = false;
    } else {
        action = "none: unclear state, an operator must look";
        ok = false;
    }
    st->found_target = where_name(t);
    st->found_source = where_name(s);
    st->action = action;
    st->ok = ok;
    /* Settled (or, for a guest on neither host, reported once). */
    st->record = (ok && t != WHERE_UNKNOWN && s != WHERE_UNKNOWN) ||
                 (t == WHERE_ABSENT && s == WHERE_ABSENT);
    st->location = t == WHERE_RUNNING ? "target" : s == WHERE_ABSENT ? "none" : "source";
    const char *why = e3 ? e3 : e1 ? e1 : e2;
    st->why = why ? xstrdup(why) : NULL;
    free(e1);
    free(e2);
    free(e3);
}

/* ---- QEMU processes libvirt does not manage, over QMP ------------------ */

/* Where a QEMU process stands, from its run state and its migration's. */
enum qwhere {
    Q_UNKNOWN = -1, /* cannot tell: the socket does not answer QMP */
    Q_ABSENT = 0,   /* nothing listens at the socket: the process is gone */
    Q_RUNNING,      /* the guest runs there */
    Q_INCOMING,     /* a target waiting for (or receiving) the guest: never ran it */
    Q_AT_GATE,      /* a source held before switch-over (pre-switchover) */
    Q_MIGRATING,    /* a source whose migration goes on by itself */
    Q_PAUSED,       /* stopped, no migration going on */
    Q_POSTMIGRATE,  /* a source that sent everything: its copy is stale */
    Q_OTHER,        /* anything else (finish-migrate, shutdown, an error state) */
};

#define QMP_TIMEOUT_MS 5000

static const char *qwhere_name(enum qwhere w)
{
    static const char *const names[] = {"absent",    "running", "incoming",    "at-gate",
                                        "migrating", "paused",  "postmigrate", "other"};
    return w == Q_UNKNOWN ? "unknown" : names[w];
}

static void set_err(char **err, char *e)
{
    free(*err);
    *err = e;
}

static enum qwhere qwhere_of(const char *run_state, const char *mig_status)
{
    const char *m = mig_status ? mig_status : "none";
    bool migration_over = strcmp(m, "none") == 0 || strcmp(m, "completed") == 0 ||
                          strcmp(m, "cancelled") == 0 || strcmp(m, "failed") == 0;
    if (!run_state)
        return Q_OTHER;
    if (strcmp(run_state, "inmigrate") == 0)
        return Q_INCOMING;
    if (strcmp(m, "pre-switchover") == 0)
        return Q_AT_GATE;
    if (!migration_over)
        return Q_MIGRATING;
    return strcmp(run_state, "running") == 0       ? Q_RUNNING
           : strcmp(run_state, "paused") == 0      ? Q_PAUSED
           : strcmp(run_state, "postmigrate") == 0 ? Q_POSTMIGRATE
                                                   : Q_OTHER;
}

/* One look at the QEMU behind the socket. */
static enum qwhere qmp_observe(const char *sock, char **err)
{
    bool gone;
    char *e = NULL;
    struct vm_qmp_sync *s = vm_qmp_sync_open(sock, QMP_TIMEOUT_MS, &gone, &e);
    if (!s) {
        if (gone) {
            free(e);
            return Q_ABSENT;
        }
        set_err(err, e);
        return Q_UNKNOWN;
    }
    json_t *st = vm_qmp_sync_command(s, "query-status", NULL, NULL, &e);
    json_t *mig = st ? vm_qmp_sync_command(s, "query-migrate", NULL, NULL, &e) : NULL;
    vm_qmp_sync_close(s);
    enum qwhere w = Q_UNKNOWN;
    if (mig)
        w = qwhere_of(json_string_value(json_object_get(st, "status")),
                      json_string_value(json_object_get(mig, "status")));
    else
        set_err(err, xasprintf("'%s': %s", sock, e));
    free(e);
    json_decref(st);
    json_decref(mig);
    return w;
}

/* As observe_confirmed(): two looks a second apart agree on a settled
 * state, within 30 s (a migration QEMU carries on by itself is waited for,
 * up to 600 s). */
static enum qwhere qmp_observe_confirmed(const char *sock, const char *vm, char **err)
{
    enum qwhere a = qmp_observe(sock, err);
    for (int i = 0; a != Q_UNKNOWN && i < (a == Q_MIGRATING ? 600 : 30); i++) {
        if (a == Q_MIGRATING && i == 0)
            vm_warn("recover: %s: QEMU at '%s' still migrates it; waiting for the end", vm, sock);
        sleep(1);
        enum qwhere b = qmp_observe(sock, err);
        if (b == a && b != Q_MIGRATING && b != Q_OTHER)
            return b;
        a = b;
    }
    return a == Q_UNKNOWN || a == Q_MIGRATING ? a : Q_OTHER;
}

/* Wait (up to 60 s) for a source to leave the gate after migrate-continue or
 * migrate_cancel; its state then. */
static enum qwhere qmp_wait_left_gate(const char *sock, char **err)
{
    enum qwhere w = Q_AT_GATE;
    for (int i = 0; i < 300; i++) {
        w = qmp_observe(sock, err);
        if (w != Q_AT_GATE && w != Q_MIGRATING && w != Q_OTHER)
            break;
        usleep(200 * 1000);
    }
    return w;
}

/* CMD on the QEMU behind the socket. quitting: a QEMU that hangs up before
 * it replies, or is gone already, did what was asked. */
static int qmp_act(const char *sock, const char *cmd, json_t *args, bool quitting, char **err)
{
    bool gone = false, closed = false;
    char *e = NULL;
    struct vm_qmp_sync *s = vm_qmp_sync_open(sock, QMP_TIMEOUT_MS, &gone, &e);
    json_t *r = NULL;
    if (s)
        r = vm_qmp_sync_command(s, cmd, args, &closed, &e);
    else
        json_decref(args);
    vm_qmp_sync_close(s);
    int rc = r || (quitting && (gone || closed)) ? 0 : -1;
    if (rc < 0)
        set_err(err, xasprintf("'%s': %s", sock, e));
    free(e);
    json_decref(r);
    return rc;
}

/* Quit the QEMU behind the socket: done once nothing listens there (a
 * target QEMU exits by itself after a cancelled migration, and may be on its
 * way out: wait up to 5 s for it). */
static int qmp_quit(const char *sock, char **err)
{
    if (qmp_act(sock, "quit", NULL, true, err) == 0)
        return 0;
    for (int i = 0; i < 25; i++) {
        usleep(200 * 1000);
        if (qmp_observe(sock, err) == Q_ABSENT) {
            set_err(err, NULL);
            return 0;
        }
    }
    return -1;
}

/* The commit on record, never carried out (the run died at the gate):
 * carry it out, and once the target runs (seen twice) quit the source. */
static int qmp_commit(const char *ssock, const char *tsock, const char *vm, char **err)
{
    if (qmp_act(ssock, "migrate-continue", json_pack("{s:s}", "state", "pre-switchover"), false,
                err) < 0)
        return -1;
    enum qwhere s = qmp_wait_left_gate(ssock, err);
    enum qwhere t = qmp_observe_confirmed(tsock, vm, err);
    if (t != Q_RUNNING || (s != Q_POSTMIGRATE && s != Q_PAUSED && s != Q_ABSENT)) {
        set_err(err, xasprintf("after migrate-continue the target is %s, the source %s",
                               qwhere_name(t), qwhere_name(s)));
        return -1;
    }
    return s == Q_ABSENT ? 0 : qmp_quit(ssock, err);
}

/* No commit: the guest stays on the source. Cancel a migration held at the
 * gate, resume a paused source, then quit a target still waiting. */
static int qmp_roll_back(const char *ssock, enum qwhere s, const char *tsock, enum qwhere t,
                         char **err)
{
    if (s == Q_AT_GATE) {
        if (qmp_act(ssock, "migrate_cancel", NULL, false, err) < 0)
            return -1;
        s = qmp_wait_left_gate(ssock, err);
    }
    if (s == Q_PAUSED) {
        if (qmp_act(ssock, "cont", NULL, false, err) < 0)
            return -1;
        s = qmp_observe(ssock, err);
    }
    if (s != Q_RUNNING) {
        set_err(err, xasprintf("the source is %s, not running", qwhere_name(s)));
        return -1;
    }
    return t == Q_INCOMING ? qmp_quit(tsock, err) : 0;
}

/* A plain QEMU guest (the journal names its QMP sockets): the same rules as
 * for libvirt, target first and asked twice, with what QMP can do: a
 * commit on record that a crash kept from being carried out is carried out
 * (migrate-continue); the source copy is removed by quitting its QEMU once
 * the target was seen running twice; without a commit on record the
 * migration is cancelled, the source resumed and the target QEMU quit. A
 * socket that does not answer, or any other state, is for an operator. */
static void settle_qmp(const struct vm_journal_record *last, const char *vm, struct settled *st)
{
    const char *ssock = vm_qmp_uri_path(last->source), *tsock = vm_qmp_uri_path(last->target);
    bool committed = last->kind == VM_JOURNAL_KIND_COMMIT_DECIDED;
    char *e1 = NULL, *e2 = NULL, *e3 = NULL;
    enum qwhere s = qmp_observe(ssock, &e2);
    if (s == Q_MIGRATING)
        qmp_observe_confirmed(ssock, vm, &e2); /* waits for the end */
    enum qwhere t = qmp_observe_confirmed(tsock, vm, &e1);
    s = qmp_observe_confirmed(ssock, vm, &e2);
    const char *action = "none: unclear state, an operator must look";
    bool ok = false;
    st->location = "source";
    if (t == Q_UNKNOWN || s == Q_UNKNOWN) {
        action = "none: a QMP socket does not answer, an operator must look";
    } else if (t == Q_RUNNING) {
        st->location = "target";
        if (s == Q_RUNNING) {
            action = "none: TWO RUNNING COPIES, an operator must choose";
        } else if (s == Q_PAUSED || s == Q_POSTMIGRATE) {
            action = "quit the stale source QEMU (the guest runs on the target)";
            ok = qmp_quit(ssock, &e3) == 0;
        } else if (s == Q_ABSENT) {
            action = "none: the guest runs on the target";
            ok = true;
        }
    } else if (t == Q_INCOMING || t == Q_ABSENT) {
        if (s == Q_AT_GATE && committed && t == Q_INCOMING) {
            action = "carried out the journaled commit (migrate-continue), quit the source QEMU";
            ok = qmp_commit(ssock, tsock, vm, &e3) == 0;
            st->location = "target";
        } else if (s == Q_AT_GATE || s == Q_PAUSED || s == Q_RUNNING) {
            bool quit = t == Q_INCOMING;
            action = s == Q_AT_GATE  ? (quit ? "cancelled the migration (the source runs), quit "
                                               "the target QEMU"
                                             : "cancelled the migration (the source runs)")
                     : s == Q_PAUSED ? (quit ? "resumed the source, quit the target QEMU"
                                             : "resumed the source")
                     : quit          ? "quit the target QEMU (the guest runs on the source)"
                                     : "none: the guest runs on the source";
            ok = qmp_roll_back(ssock, s, tsock, t, &e3) == 0;
        } else if (s == Q_ABSENT) {
            action = "none: the guest is on neither side (its QEMU processes gone?), an "
                     "operator must look";
            st->location = "none";
        }
    }
    st->found_target = qwhere_name(t);
    st->found_source = qwhere_name(s);
    st->action = action;
    st->ok = ok;
    st->record = ok || (s == Q_ABSENT && (t == Q_ABSENT || t == Q_INCOMING));
    const char *why = e3 ? e3 : e1 ? e1 : e2;
    st->why = why ? xstrdup(why) : NULL;
    free(e1);
    free(e2);
    free(e3);
}

int vm_recover(const char *dir, struct vm_journal *journal, json_t **result, int *unreachable,
               char **err)
{
    hosts_forget(); /* a new settling: every host gets its chance again */
    *result = NULL;
    *unreachable = 0;
    struct vm_journal_records all;
    if (vm_journal_read_dir(dir, &all, err) < 0)
        return -1;
    vm_journal_records_warn(&all, "recover");
    /* A journal that cannot be read may hide a migration it left open: an
     * operator must look (unless its run is still going on). */
    int needs_operator = 0;
    size_t u;
    json_t *path;
    json_array_foreach(all.unreadable, u, path)
    {
        const char *p = json_string_value(path);
        char *run = vm_journal_run_of_path(p);
        if (!run_alive(run)) {
            vm_error("recover: journal '%s' cannot be read whole: it may hide an open "
                     "migration, an operator must look (the hosts, then the file)",
                     p);
            needs_operator++;
        }
        free(run);
    }
    /* The last record of each (run, uuid), in the order of their first. */
    json_t *open_migs = json_object();
    for (size_t i = 0; i < all.n; i++) {
        const struct vm_journal_record *r = &all.v[i];
        if (!r->run || !r->uuid || !r->record || r->about_earlier)
            continue; /* a record about another run (recovered, deinit-done) */
        char *key = xasprintf("%s %s", r->run, r->uuid);
        json_object_set_new(open_migs, key, json_integer((json_int_t)i));
        free(key);
    }

    struct vm_journal *j = journal; /* or ours, opened with the first record */
    json_t *out = json_array();
    const char *key;
    json_t *index;
    json_object_foreach(open_migs, key, index)
    {
        const struct vm_journal_record *last = &all.v[json_integer_value(index)];
        const char *run = last->run, *uuid = last->uuid, *vm = last->vm;
        const char *src = last->source, *dst = last->target, *rec = last->record;
        if (closed(&all, run, uuid) || !src || !dst)
            continue;
        if (run_alive(run)) {
            vm_info("recover: %s: run %s is still going on, left to it", vm ? vm : uuid, run);
            continue;
        }
        struct settled st = {0};
        if (vm_qmp_uri_path(src) && vm_qmp_uri_path(dst))
            settle_qmp(last, vm ? vm : uuid, &st);
        else
            settle_libvirt(src, dst, uuid, unreachable, &st);
        if (!st.ok)
            needs_operator++;
        const char *why = st.why;
        vm_log(st.ok ? VM_LOG_WARN : VM_LOG_ERROR,
               "recover: %s (%s, run %s, last '%s'): target %s, source %s: %s%s%s", vm ? vm : uuid,
               uuid, run, rec, st.found_target, st.found_source, st.action, why ? ": " : "",
               why ? why : "");
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:b, s:o, s:o}",
                              "vm", vm ? vm : "", "uuid", uuid, "run", run, "source", src, "target",
                              dst, "last_record", rec, "found", "target", st.found_target, "source",
                              st.found_source, "action", st.action, "ok", st.ok, "error",
                              why ? json_string(why) : json_null(), "location",
                              st.ok && st.location ? json_string(st.location) : json_null());
        json_array_append(out, o);
        /* Settled (or, for a guest on neither host, reported once): on record,
         * so the next recover does not come back to it. */
        if (st.record) {
            if (!j)
                j = vm_journal_open(dir);
            if (j)
                vm_journal_write(j, vm, uuid, src, dst, "recovered",
                                 json_pack("{s:s, s:s, s:s}", "of_run", run, "action", st.action,
                                           "location", st.location));
        }
        json_decref(o);
        free(st.why);
    }
    if (j != journal)
        vm_journal_close(j);
    json_decref(open_migs);
    vm_journal_records_clear(&all);
    *result = out;
    return needs_operator;
}

/* ---- evidence from the hosts ------------------------------------------- */

/* The UUIDs of the domains on uri paused by a migration that no job moves
 * (appended to found as uuid -> name); -1 if uri cannot be reached. */
static int paused_by_migration(const char *uri, json_t *found)
{
    struct vm_virt_err e = {0};
    virConnectPtr c = connect_once(uri, &e);
    vm_virt_err_clear(&e);
    if (!c)
        return -1;
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_PAUSED);
    for (int i = 0; i < n; i++) {
        int state = 0, reason = 0;
        virDomainJobInfo job = {0};
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (virDomainGetState(doms[i], &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED &&
            reason == VIR_DOMAIN_PAUSED_MIGRATION && virDomainGetJobInfo(doms[i], &job) == 0 &&
            job.type == VIR_DOMAIN_JOB_NONE && virDomainGetUUIDString(doms[i], uuid) == 0)
            json_object_set_new(found, uuid, json_string(virDomainGetName(doms[i])));
        virDomainFree(doms[i]);
    }
    free(doms);
    virResetLastError();
    virConnectClose(c);
    return n < 0 ? -1 : 0;
}

struct host_look {
    const char *uri;
    bool source;
    enum where w;
};

/* Settle one UUID from what every host shows; the action, ok. */
static const char *settle_evidence(const char *uuid, struct host_look *hl, int n, bool *ok,
                                   char **why)
{
    int running = 0, paused_src = 0, paused_dst = 0, unknown = 0;
    for (int i = 0; i < n; i++) {
        char *e = NULL;
        int reason;
        hl[i].w = observe_confirmed(hl[i].uri, uuid, &reason, &e);
        if (hl[i].w == WHERE_UNKNOWN && !*why)
            *why = e, e = NULL;
        free(e);
        running += hl[i].w == WHERE_RUNNING;
        unknown += hl[i].w == WHERE_UNKNOWN || hl[i].w == WHERE_OTHER;
        paused_src += hl[i].w == WHERE_PAUSED && hl[i].source;
        paused_dst += hl[i].w == WHERE_PAUSED && !hl[i].source;
    }
    *ok = false;
    if (unknown)
        return "none: a host cannot be reached, or its copy is in an unclear state";
    if (running > 1)
        return "none: TWO RUNNING COPIES, an operator must choose";
    if (running == 0 && paused_src != 1)
        return paused_src ? "none: paused copies on several source hosts, an operator must choose"
                          : "none: paused only on a target, which may never have received the "
                            "whole guest: an operator must look";
    bool resume_src = running == 0;
    *ok = true;
    for (int i = 0; i < n; i++) {
        if (hl[i].w != WHERE_PAUSED)
            continue;
        char *e = NULL;
        if (act(hl[i].uri, uuid, resume_src && hl[i].source, &e) < 0) {
            *ok = false;
            if (!*why)
                *why = e, e = NULL;
        }
        free(e);
    }
    return resume_src ? "resumed the source (no journal: from the hosts)"
                      : "destroyed the stale paused copy (no journal: from the hosts)";
}

int vm_recover_evidence(const char *dir, struct vm_journal *journal, const char *const *sources,
                        int nsources, const char *const *targets, int ntargets, json_t *result,
                        int *unreachable)
{
    int n = nsources + ntargets, needs_operator = 0;
    struct host_look *hl = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*hl));
    json_t *found = json_object();
    for (int i = 0; i < n; i++) {
        hl[i].uri = i < nsources ? sources[i] : targets[i - nsources];
        hl[i].source = i < nsources;
        for (int k = 0; k < i; k++)
            if (strcmp(hl[k].uri, hl[i].uri) == 0)
                hl[i].source |= hl[k].source, hl[k].uri = ""; /* one look per host */
    }
    for (int i = 0; i < n; i++)
        if (*hl[i].uri && paused_by_migration(hl[i].uri, found) < 0)
            vm_debug("recover: cannot look for paused guests on '%s'", hl[i].uri);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (*hl[i].uri)
            hl[m++] = hl[i];
    struct vm_journal *j = journal; /* or ours, opened with the first record */
    const char *uuid;
    json_t *name;
    json_object_foreach(found, uuid, name)
    {
        bool ok;
        char *why = NULL;
        const char *action = settle_evidence(uuid, hl, m, &ok, &why);
        const char *vm = json_string_value(name);
        const char *src = NULL, *dst = NULL, *fsrc = "absent", *fdst = "absent";
        for (int i = 0; i < m; i++) {
            if (hl[i].w == WHERE_ABSENT)
                continue;
            if (hl[i].source && !src)
                src = hl[i].uri, fsrc = where_name(hl[i].w);
            else if (!hl[i].source && !dst)
                dst = hl[i].uri, fdst = where_name(hl[i].w);
        }
        if (!ok) {
            needs_operator++;
            if (strstr(action, "cannot be reached"))
                (*unreachable)++;
        }
        vm_log(ok ? VM_LOG_WARN : VM_LOG_ERROR,
               "recover: %s (%s): paused by a migration no job runs (no journal says so): %s%s%s",
               vm, uuid, action, why ? ": " : "", why ? why : "");
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:b, s:o, s:o}", "vm", vm,
                      "uuid", uuid, "run", "", "source", src ? src : "", "target", dst ? dst : "",
                      "last_record", "none", "found", "target", fdst, "source", fsrc, "action",
                      action, "ok", ok, "error", why ? json_string(why) : json_null(), "location",
                      ok ? json_string(strncmp(action, "resumed", 7) == 0 ? "source" : "target")
                         : json_null());
        json_array_append_new(result, o);
        if (ok) {
            if (!j)
                j = vm_journal_open(dir);
            if (j)
                vm_journal_write(
                    j, vm, uuid, src ? src : "", dst ? dst : "", "recovered",
                    json_pack("{s:s, s:s, s:s}", "of_run", "none", "action", action, "location",
                              strncmp(action, "resumed", 7) == 0 ? "source" : "target"));
        }
        free(why);
    }
    if (j != journal)
        vm_journal_close(j);
    json_decref(found);
    free(hl);
    return needs_operator;
}

int vm_recover_evidence_journals(const char *dir, struct vm_journal *journal, json_t *result,
                                 int *unreachable, char **err)
{
    struct vm_journal_records all;
    if (vm_journal_read_dir(dir, &all, err) < 0)
        return -1;
    json_t *src = json_object(), *dst = json_object();
    for (size_t i = 0; i < all.n; i++) {
        const struct vm_journal_record *r = &all.v[i];
        if (r->source && *r->source && !vm_qmp_uri_path(r->source))
            json_object_set_new(src, r->source, json_true());
        if (r->target && *r->target && !vm_qmp_uri_path(r->target))
            json_object_set_new(dst, r->target, json_true());
    }
    size_t ns = json_object_size(src), nd = json_object_size(dst), k = 0;
    const char **s = xcalloc(ns + 1, sizeof(*s)), **d = xcalloc(nd + 1, sizeof(*d));
    const char *uri;
    json_t *v;
    json_object_foreach(src, uri, v)
    {
        s[k++] = uri;
    }
    k = 0;
    json_object_foreach(dst, uri, v)
    {
        d[k++] = uri;
    }
    int rc = vm_recover_evidence(dir, journal, s, (int)ns, d, (int)nd, result, unreachable);
    free(s);
    free(d);
    json_decref(src);
    json_decref(dst);
    vm_journal_records_clear(&all);
    return rc;
}
