/* recover.c — see recover.h. */
#include "journal/recover.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "journal/journal.h"
#include "util/util.h"
#include "backend/libvirt/virt.h"

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

static enum where observe(const char *uri, const char *uuid, int *reason, char **err)
{
    virConnectPtr c = virConnectOpen(uri);
    if (!c) {
        struct vm_virt_err e = {0};
        vm_virt_err_capture(&e);
        *err = xasprintf("cannot connect to '%s': %s", uri, e.message);
        vm_virt_err_clear(&e);
        return WHERE_UNKNOWN;
    }
    enum where w = WHERE_ABSENT;
    virDomainPtr d = virDomainLookupByUUIDString(c, uuid);
    int state = 0;
    *reason = 0;
    if (d) {
        if (virDomainGetState(d, &state, reason, 0) < 0)
            w = WHERE_UNKNOWN;
        else if (state == VIR_DOMAIN_RUNNING)
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
            w = WHERE_UNKNOWN;
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
    for (int i = 0; i < max_s && a != WHERE_UNKNOWN; i++) {
        sleep(1);
        enum where b = observe(uri, uuid, reason, err);
        if (b == a && !transient(b, *reason))
            return b;
        a = b;
    }
    return a == WHERE_UNKNOWN ? a : WHERE_OTHER;
}

static int act(const char *uri, const char *uuid, bool resume, char **err)
{
    virConnectPtr c = virConnectOpen(uri);
    virDomainPtr d = c ? virDomainLookupByUUIDString(c, uuid) : NULL;
    int rc = -1;
    if (d)
        rc = resume ? virDomainResume(d) : virDomainDestroy(d);
    if (rc < 0) {
        struct vm_virt_err e = {0};
        vm_virt_err_capture(&e);
        *err = xstrdup(e.message);
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

/* Is the migration (run, uuid) closed? Its last record (of the latest
 * attempt: a run may retry a VM) is "finished", "deinit-done" or
 * "after-done", or a recovery settled it. */
static bool closed(const struct vm_journal_records *all, const struct vm_journal_record *last,
                   const char *run, const char *uuid)
{
    if (last->kind == VM_JOURNAL_KIND_FINISHED || last->kind == VM_JOURNAL_KIND_DEINIT_DONE ||
        last->kind == VM_JOURNAL_KIND_AFTER_DONE)
        return true;
    for (size_t i = 0; i < all->n; i++) {
        const struct vm_journal_record *r = &all->v[i];
        if (r->kind == VM_JOURNAL_KIND_RECOVERED && r->about_earlier &&
            vm_journal_record_about(r, run, uuid))
            return true;
    }
    return false;
}

/* Is the run with this id (…-PID) still going on? */
static bool run_alive(const char *run)
{
    const char *dash = strrchr(run, '-');
    int pid = dash ? atoi(dash + 1) : 0;
    if (pid <= 1 || pid == (int)getpid() || kill(pid, 0) < 0)
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
    virConnectPtr c = virConnectOpen(uri);
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
            owed, json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:o, s:O}", "step", step, "run", run,
                            "uuid", uuid, "vm", r->vm ? r->vm : "", "source", src, "target", dst,
                            "features", features, "inventory", inv ? inv : json_null()));
    }
    vm_journal_records_clear(&all);
    return owed;
}

int vm_recover(const char *dir, json_t **result, int *unreachable, char **err)
{
    *result = NULL;
    *unreachable = 0;
    struct vm_journal_records all;
    if (vm_journal_read_dir(dir, &all, err) < 0)
        return -1;
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

    struct vm_journal *j = NULL;
    json_t *out = json_array();
    int needs_operator = 0;
    const char *key;
    json_t *index;
    json_object_foreach(open_migs, key, index)
    {
        const struct vm_journal_record *last = &all.v[json_integer_value(index)];
        const char *run = last->run, *uuid = last->uuid, *vm = last->vm;
        const char *src = last->source, *dst = last->target, *rec = last->record;
        if (closed(&all, last, run, uuid) || !src || !dst)
            continue;
        if (run_alive(run)) {
            vm_info("recover: %s: run %s is still going on, left to it", vm ? vm : uuid, run);
            continue;
        }
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
        if (!ok)
            needs_operator++;
        const char *why = e3 ? e3 : e1 ? e1 : e2;
        vm_log(ok ? VM_LOG_WARN : VM_LOG_ERROR,
               "recover: %s (%s, run %s, last '%s'): target %s, source %s: %s%s%s", vm ? vm : uuid,
               uuid, run, rec, where_name(t), where_name(s), action, why ? ": " : "",
               why ? why : "");
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:b, s:o}", "vm",
                      vm ? vm : "", "uuid", uuid, "run", run, "source", src, "target", dst,
                      "last_record", rec, "found", "target", where_name(t), "source", where_name(s),
                      "action", action, "ok", ok, "error", why ? json_string(why) : json_null());
        json_array_append(out, o);
        /* Settled (or, for a guest on neither host, reported once): on record,
         * so the next recover does not come back to it. */
        if ((ok && t != WHERE_UNKNOWN && s != WHERE_UNKNOWN) ||
            (t == WHERE_ABSENT && s == WHERE_ABSENT)) {
            if (!j)
                j = vm_journal_open(dir);
            if (j)
                vm_journal_write(j, vm, uuid, src, dst, "recovered",
                                 json_pack("{s:s, s:s, s:s}", "of_run", run, "action", action,
                                           "location",
                                           t == WHERE_RUNNING  ? "target"
                                           : s == WHERE_ABSENT ? "none"
                                                               : "source"));
        }
        json_decref(o);
        free(e1);
        free(e2);
        free(e3);
    }
    vm_journal_close(j);
    json_decref(open_migs);
    vm_journal_records_clear(&all);
    *result = out;
    return needs_operator;
}
