/* cmd_status.c — `vmmigrate status [RUN]`: current and past runs, from the
 * journals (the source of truth); and `vmmigrate abort`: ask the run working
 * on a source host to stop (SIGTERM to the PID in its lock). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <fcntl.h>
#include <dirent.h>

#include "cli/cli.h"
#include "util/exitcode.h"
#include "journal/journal.h"
#include "run/lock.h"
#include "util/util.h"

enum {
    OPT_JOURNAL_DIR = 1,
    OPT_JSON,
    OPT_LOCK_DIR,
};

static const struct vm_cli_option status_options[] = {
    {.name = "journal-dir",
     .arg = VM_CLI_ARG_FILE,
     .metavar = "DIR",
     .id = OPT_JOURNAL_DIR,
     .help = "the journals to read (" VM_JOURNAL_DEFAULT_DIR ")",
     .doc = "The directory run wrote its journals to. Default " VM_JOURNAL_DEFAULT_DIR "."},
    {.name = "json",
     .id = OPT_JSON,
     .help = "print JSON",
     .doc = "Print {\"runs\": [{id, started_at, finished, vms: {NAME: {uuid, source, target, "
            "state, result, location, deinit, after}}}]} on standard output. deinit and after "
            "are \"done\" or \"failed\" once the features' deinit steps (guest on the source) "
            "or after steps (guest on the target) ran, by the run itself or, owed after a "
            "crash, by a later one."},
    {0},
};

/* A "deinit-done" or "after-done" record: the VM's "deinit" / "after" is
 * "done" or "failed". */
static bool step_done(json_t *v, json_t *r, const char *rec)
{
    const char *step = strcmp(rec, "deinit-done") == 0  ? "deinit"
                       : strcmp(rec, "after-done") == 0 ? "after"
                                                        : NULL;
    if (step)
        json_object_set_new(
            v, step, json_string(json_is_true(json_object_get(r, "ok")) ? "done" : "failed"));
    return step != NULL;
}

/* One run's VMs: name -> {uuid, source, target, state (last record), result,
 * location}. */
static json_t *summarise(json_t *recs, json_t *all)
{
    json_t *vms = json_object();
    const char *run = NULL;
    json_int_t first = 0;
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        const char *vm = json_string_value(json_object_get(r, "vm"));
        const char *rec = json_string_value(json_object_get(r, "record"));
        if (!run)
            run = json_string_value(json_object_get(r, "run"));
        if (!first)
            first = json_integer_value(json_object_get(r, "ts"));
        if (!vm || !rec || json_object_get(r, "of_run"))
            continue; /* about another run: below */
        json_t *v = json_object_get(vms, vm);
        if (!v) {
            v = json_pack("{s:O, s:O, s:O}", "uuid", json_object_get(r, "uuid"), "source",
                          json_object_get(r, "source"), "target", json_object_get(r, "target"));
            json_object_set_new(vms, vm, v);
        }
        if (step_done(v, r, rec))
            continue;
        if (strcmp(rec, "started") == 0) {
            /* a new attempt (retry): the steps of the last one are history */
            json_object_del(v, "deinit");
            json_object_del(v, "after");
        }
        json_object_set_new(v, "state", json_string(rec));
        if (json_object_get(r, "result"))
            json_object_set(v, "result", json_object_get(r, "result"));
        if (json_object_get(r, "location"))
            json_object_set(v, "location", json_object_get(r, "location"));
    }
    /* later "recovered" records (any journal) settle open migrations */
    size_t k;
    json_t *recs2;
    json_array_foreach(all, k, recs2) json_array_foreach(recs2, i, r)
    {
        const char *rec = json_string_value(json_object_get(r, "record"));
        const char *of = json_string_value(json_object_get(r, "of_run"));
        const char *vm = json_string_value(json_object_get(r, "vm"));
        json_t *v = vm && of && run && strcmp(of, run) == 0 ? json_object_get(vms, vm) : NULL;
        if (!v || !rec)
            continue;
        if (strcmp(rec, "recovered") == 0) {
            json_object_set_new(v, "state", json_string("recovered"));
            json_object_set(v, "location", json_object_get(r, "location"));
        } else {
            step_done(v, r, rec); /* steps a later run owed and did after a crash */
        }
    }
    bool finished = true;
    const char *name;
    json_t *v;
    json_object_foreach(vms, name, v)
    {
        const char *st = json_string_value(json_object_get(v, "state"));
        finished &= st && (strcmp(st, "finished") == 0 || strcmp(st, "recovered") == 0);
    }
    char ts[32];
    return json_pack("{s:s, s:s, s:b, s:o}", "id", run ? run : "", "started_at",
                     vm_rfc3339((uint64_t)first, ts, sizeof(ts)), "finished", finished, "vms", vms);
}

static int cmd_status_exec(const struct vm_cli_args *args)
{
    const char *dir = vm_cli_str(args, OPT_JOURNAL_DIR);
    const char *want = vm_cli_pos(args, 0);
    if (!dir)
        dir = VM_JOURNAL_DEFAULT_DIR;
    if (vm_cli_npos(args) > 1) {
        vm_error("status: unexpected argument '%s'", vm_cli_pos(args, 1));
        return VM_EXIT_USAGE;
    }
    char *err = NULL;
    json_t *all = vm_journal_read_dir(dir, &err);
    if (!all) {
        vm_error("status: %s", err);
        free(err);
        return VM_EXIT_USAGE;
    }
    json_t *runs = json_array();
    size_t i;
    json_t *recs;
    json_array_foreach(all, i, recs)
    {
        json_t *s = summarise(recs, all);
        const char *id = json_string_value(json_object_get(s, "id"));
        if (json_object_size(json_object_get(s, "vms")) && (!want || strcmp(id, want) == 0))
            json_array_append(runs, s);
        json_decref(s);
    }
    int rc = VM_EXIT_OK;
    if (want && json_array_size(runs) == 0) {
        vm_error("status: no run '%s' in '%s'", want, dir);
        rc = VM_EXIT_USAGE;
    } else if (vm_cli_flag(args, OPT_JSON)) {
        json_t *o = json_pack("{s:i, s:O}", "schema_version", 1, "runs", runs);
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        json_t *run;
        json_array_foreach(runs, i, run)
        {
            printf("run %s  started %s  %s\n", json_string_value(json_object_get(run, "id")),
                   json_string_value(json_object_get(run, "started_at")),
                   json_is_true(json_object_get(run, "finished")) ? "finished"
                                                                  : "OPEN (running or crashed)");
            const char *name;
            json_t *v;
            json_object_foreach(json_object_get(run, "vms"), name, v)
            {
                const char *res = json_string_value(json_object_get(v, "result"));
                const char *loc = json_string_value(json_object_get(v, "location"));
                const char *deinit = json_string_value(json_object_get(v, "deinit"));
                const char *after = json_string_value(json_object_get(v, "after"));
                char *extra = xasprintf("%s%s%s%s", deinit ? "  deinit " : "", deinit ? deinit : "",
                                        after ? "  after " : "", after ? after : "");
                printf("  %-24s %-17s %-12s %-*s%s\n", name,
                       json_string_value(json_object_get(v, "state")), res ? res : "-",
                       *extra ? 7 : 0, loc ? loc : "-", extra);
                free(extra);
            }
        }
        if (!json_array_size(runs))
            printf("status: no runs in '%s'\n", dir);
    }
    json_decref(runs);
    json_decref(all);
    return rc;
}

const struct vm_cli_command vm_cmd_status_entry = {
    .name = "status",
    .usage = "[RUN] [--journal-dir DIR] [--json]",
    .summary = "show current and past runs from the journals",
    .doc = "List the runs recorded in the journals, or one RUN: per VM the last journal "
           "record (started, gate-reached, commit-decided, rollback-decided, finished, "
           "recovered), the result and where the guest runs. A run whose VMs are not all "
           "finished is running, or crashed: see recover. For a live view of a running run "
           "use its --status-file or --events.",
    .options = status_options,
    .exec = cmd_status_exec,
};

/* ---- abort ------------------------------------------------------------ */

static const struct vm_cli_option abort_options[] = {
    {.name = "lock-dir",
     .arg = VM_CLI_ARG_FILE,
     .metavar = "DIR",
     .id = OPT_LOCK_DIR,
     .help = "where the run locks live (" VM_LOCK_DEFAULT_DIR ")",
     .doc = "The directory of the run locks (see run --lock-dir)."},
    {0},
};

/* SIGTERM every run that holds a lock in DIR. */
static int cmd_abort_exec(const struct vm_cli_args *args)
{
    const char *dir = vm_cli_str(args, OPT_LOCK_DIR);
    if (!dir)
        dir = VM_LOCK_DEFAULT_DIR;
    if (vm_cli_npos(args) > 0) {
        vm_error("abort: unexpected argument '%s'", vm_cli_pos(args, 0));
        return VM_EXIT_USAGE;
    }
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            printf("abort: no run is going on\n");
            return VM_EXIT_NOTHING;
        }
        vm_error("abort: cannot read '%s': %s", dir, strerror(errno));
        return VM_EXIT_USAGE;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".lock") != 0)
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        pid_t pid = vm_lock_holder(path); /* 0: not held */
        free(path);
        if (pid > 1 && kill(pid, SIGTERM) == 0) {
            printf("abort: asked run %d to stop (nothing new starts; what runs is aborted, or "
                   "finishes with --on-abort finish)\n",
                   (int)pid);
            n++;
        }
    }
    closedir(d);
    if (!n)
        printf("abort: no run is going on\n");
    return n ? VM_EXIT_OK : VM_EXIT_NOTHING;
}

const struct vm_cli_command vm_cmd_abort_entry = {
    .name = "abort",
    .usage = "[--lock-dir DIR]",
    .summary = "stop the runs that are going on (SIGTERM)",
    .doc = "Send SIGTERM to every vmmigrate run that holds a source host's lock: it starts no "
           "new migration, aborts the running ones (or rolls them back at the commit gate) or, "
           "if the run was told --on-abort finish (or its policy's settings say so), lets "
           "them finish; it reports and exits with status 5. Exit status 8 if no run was going "
           "on.",
    .options = abort_options,
    .exec = cmd_abort_exec,
};
