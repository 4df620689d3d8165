/* cmd_recover.c — `vmmigrate recover`: reconcile the journals with reality
 * after a crash, so that every guest runs exactly once.
 *
 * For every migration a journal leaves open (started, no finished, not
 * recovered since), the TARGET is asked first, twice, a second apart: a
 * running copy there means the guest moved (a crash after the commit
 * decision), so a copy left paused on the source is destroyed, never
 * resumed. No running copy on the target means the guest never left the
 * source: a paused source is resumed. Anything else (both running, neither
 * anywhere, a host unreachable) is reported for an operator and left alone.
 * Each outcome is appended to a journal of its own ("recovered" records),
 * so a second recover does nothing.
 *
 * This command is a sequence of short libvirt calls and nothing else runs
 * meanwhile, so it makes them directly, without the event loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "cli.h"
#include "exitcode.h"
#include "journal.h"
#include "util.h"
#include "virt.h"

enum {
    OPT_JOURNAL_DIR = 1,
    OPT_JSON,
};

static const struct vm_cli_option recover_options[] = {
    {.name = "journal-dir",
     .arg = VM_CLI_ARG_FILE,
     .metavar = "DIR",
     .id = OPT_JOURNAL_DIR,
     .help = "the journals to reconcile (" VM_JOURNAL_DEFAULT_DIR ")",
     .doc = "The directory run wrote its journals to. Default " VM_JOURNAL_DEFAULT_DIR "."},
    {.name = "json",
     .id = OPT_JSON,
     .help = "print what was found and done as JSON",
     .doc = "Print {\"recovered\": [{vm, uuid, run, source, target, last_record, found, "
            "action, ok}], \"needs_operator\": N} on standard output."},
    {0},
};

/* Where is the domain, and in which state? -1: cannot tell (unreachable). */
enum where {
    WHERE_UNKNOWN = -1,
    WHERE_ABSENT = 0,
    WHERE_RUNNING,
    WHERE_PAUSED,
    WHERE_OTHER,
};

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

/* Observe twice, a second apart: one negative observation is not enough. */
static enum where observe_confirmed(const char *uri, const char *uuid, int *reason, char **err)
{
    enum where a = observe(uri, uuid, reason, err);
    if (a == WHERE_UNKNOWN)
        return a;
    sleep(1);
    enum where b = observe(uri, uuid, reason, err);
    return a == b ? b : WHERE_OTHER;
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

/* Is the migration (run, uuid) closed by a later record anywhere? */
static bool closed(json_t *journals, const char *run, const char *uuid)
{
    size_t i, k;
    json_t *recs, *r;
    json_array_foreach(journals, i, recs) json_array_foreach(recs, k, r)
    {
        const char *rec = json_string_value(json_object_get(r, "record"));
        const char *u = json_string_value(json_object_get(r, "uuid"));
        const char *of = json_string_value(json_object_get(r, "of_run"));
        const char *rr = json_string_value(json_object_get(r, "run"));
        if (!rec || !u || strcmp(u, uuid) != 0)
            continue;
        if (strcmp(rec, "finished") == 0 && rr && strcmp(rr, run) == 0)
            return true;
        if (strcmp(rec, "recovered") == 0 && of && strcmp(of, run) == 0)
            return true;
    }
    return false;
}

static int cmd_recover_exec(const struct vm_cli_args *args)
{
    const char *dir = vm_cli_str(args, OPT_JOURNAL_DIR);
    if (!dir)
        dir = VM_JOURNAL_DEFAULT_DIR;
    if (vm_cli_npos(args) > 0) {
        vm_error("recover: unexpected argument '%s'", vm_cli_pos(args, 0));
        return VM_EXIT_USAGE;
    }
    vm_virt_global_init();
    char *err = NULL;
    json_t *journals = vm_journal_read_dir(dir, &err);
    if (!journals) {
        vm_error("recover: %s", err);
        free(err);
        return VM_EXIT_USAGE;
    }
    /* The last record of each (run, uuid). */
    json_t *open_migs = json_object();
    size_t i, k;
    json_t *recs, *r;
    json_array_foreach(journals, i, recs) json_array_foreach(recs, k, r)
    {
        const char *run = json_string_value(json_object_get(r, "run"));
        const char *uuid = json_string_value(json_object_get(r, "uuid"));
        const char *rec = json_string_value(json_object_get(r, "record"));
        if (!run || !uuid || !rec || strcmp(rec, "recovered") == 0)
            continue;
        char *key = xasprintf("%s %s", run, uuid);
        json_object_set(open_migs, key, r);
        free(key);
    }

    struct vm_journal *j = NULL;
    json_t *out = json_array();
    int needs_operator = 0, unreachable = 0;
    const char *key;
    json_t *last;
    json_object_foreach(open_migs, key, last)
    {
        const char *run = json_string_value(json_object_get(last, "run"));
        const char *uuid = json_string_value(json_object_get(last, "uuid"));
        const char *vm = json_string_value(json_object_get(last, "vm"));
        const char *src = json_string_value(json_object_get(last, "source"));
        const char *dst = json_string_value(json_object_get(last, "target"));
        const char *rec = json_string_value(json_object_get(last, "record"));
        if (closed(journals, run, uuid) || !src || !dst)
            continue;
        char *e1 = NULL, *e2 = NULL, *e3 = NULL;
        int reason;
        enum where t = observe_confirmed(dst, uuid, &reason, &e1);
        enum where s = observe_confirmed(src, uuid, &reason, &e2);
        const char *action = "none";
        bool ok = true;
        if (t == WHERE_UNKNOWN || s == WHERE_UNKNOWN) {
            action = "none: a host cannot be reached";
            ok = false;
            unreachable++;
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
        } else {
            action = "none: unclear state, an operator must look";
            ok = false;
        }
        if (!ok)
            needs_operator++;
        const char *why = e3 ? e3 : e1 ? e1 : e2;
        vm_log(ok ? VM_LOG_WARN : VM_LOG_ERROR,
               "recover: %s (%s, run %s, last '%s'): target %s, source %s: %s%s%s",
                                  vm ? vm : uuid, uuid, run, rec, where_name(t), where_name(s),
                                  action, why ? ": " : "", why ? why : "");
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:b, s:o}",
                              "vm", vm ? vm : "", "uuid", uuid, "run", run, "source", src,
                              "target", dst, "last_record", rec, "found", "target", where_name(t),
                              "source", where_name(s), "action", action, "ok", ok, "error",
                              why ? json_string(why) : json_null());
        json_array_append(out, o);
        if (ok && t != WHERE_UNKNOWN && s != WHERE_UNKNOWN) {
            if (!j)
                j = vm_journal_open(dir);
            if (j)
                vm_journal_write(j, vm, uuid, src, dst, "recovered",
                                 json_pack("{s:s, s:s, s:s}", "of_run", run, "action", action,
                                           "location",
                                           t == WHERE_RUNNING ? "target" : "source"));
        }
        json_decref(o);
        free(e1);
        free(e2);
        free(e3);
    }
    if (vm_cli_flag(args, OPT_JSON)) {
        json_t *rep = json_pack("{s:O, s:i}", "recovered", out, "needs_operator", needs_operator);
        json_dumpf(rep, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(rep);
    } else if (json_array_size(out) == 0) {
        printf("recover: nothing to do\n");
    }
    vm_journal_close(j);
    json_decref(out);
    json_decref(open_migs);
    json_decref(journals);
    return needs_operator ? (unreachable ? VM_EXIT_UNREACHABLE : VM_EXIT_OPERATOR) : VM_EXIT_OK;
}

const struct vm_cli_command vm_cmd_recover_entry = {
    .name = "recover",
    .usage = "[--journal-dir DIR] [--json]",
    .summary = "after a crash, make every half-migrated guest run exactly once",
    .doc = "Read the journals and reconcile every migration a crash left open with what the "
           "hosts say. The target is asked first, twice: a guest running there moved, and a "
           "copy paused on the source is destroyed; a guest not running there never left, and "
           "a paused source is resumed. Two running copies, none at all, or an unreachable "
           "host are reported for an operator (exit status 9, or 4) and changed in no way. "
           "Safe to run again: what it settled is journaled.",
    .options = recover_options,
    .exec = cmd_recover_exec,
};
