/* SPDX-License-Identifier: MIT */
/* cmd_status.c — `vmmigrate status [RUN]`: current and past runs, from the
 * journals (the source of truth). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_options.h"
#include "util/exitcode.h"
#include "journal/journal.h"
#include "util/table.h"
#include "util/uri.h"
#include "util/util.h"

enum {
    OPT_JOURNAL_DIR = 1,
    OPT_JSON,
    OPT_ALL,
    OPT_FAILED,
    OPT_WIDE,
};

/* How many of the newest runs `status` shows without --all (open ones are
 * shown whatever their age). */
#define STATUS_RECENT 10

static const struct vm_cli_option status_options[] = {
    {.name = "all",
     .arg = VM_CLI_ARG_NONE,
     .id = OPT_ALL,
     .help = "list every run, not only the recent ones",
     .doc = "List every run in the journals. Without it the human listing shows the "
            "10 newest runs and every run that is not closed (finished or recovered, each guest "
            "on its source or target, no feature step left started or failed), whatever its "
            "age, and says how many older closed runs it left out. --json always lists every run.",
     .group = VM_CLI_GROUP_GENERAL},
    {.name = "failed",
     .id = OPT_FAILED,
     .help = "only the VMs that failed, rolled back or need an operator",
     .doc = "List only the VMs whose migration failed, was aborted or rolled back (or was cut "
            "short by a crash and recovered on its source), and those an operator must look at: "
            "not finished (the run is running, or crashed: see recover), unsettled, the guest's "
            "host unknown, a feature step failed or cut short; and only the runs that have one, "
            "whatever their age (with --json too, in the same schema). The last line says why "
            "the exit status is what it is: 0 if there is none, 9 (operator) if any VM needs an "
            "operator, else 1 (failed).",
     .group = VM_CLI_GROUP_GENERAL},
    VM_CLI_OPTION_JOURNAL_DIR(OPT_JOURNAL_DIR, "the journals to read (" VM_JOURNAL_DEFAULT_DIR ")",
                              VM_CLI_DOC_JOURNAL_READ),
    VM_CLI_OPTION_JSON(
        OPT_JSON, "print JSON",
        "Print {\"runs\": [{id, started_at, finished, vms: {NAME: {uuid, source, target, "
        "state, result, location, deinit, after}}}]} on standard output. deinit and after "
        "are \"done\" or \"failed\" once the features' deinit steps (guest on the source) "
        "or after steps (guest on the target) ran, by the run itself or, owed after a "
        "crash, by a later one."),
    {.name = "wide",
     .id = OPT_WIDE,
     .help = "show the hosts' full URIs",
     .doc = "Show each VM's source and target as the full libvirt URI the run was given. "
            "Without it the listing names a host by the host part of its URI (hv12 for "
            "qemu+ssh://root@hv12/system), or by the whole URI where it has none "
            "(qemu:///system).",
     .group = VM_CLI_GROUP_OUTPUT},
    {0},
};

/* The ts of VM name's first record in records [begin, end) of its run, and
 * of its last "finished" one (0: none). */
static void vm_times(const struct vm_journal_records *all, size_t begin, size_t end,
                     const char *name, json_int_t *first, json_int_t *finished)
{
    *first = *finished = 0;
    for (size_t i = begin; i < end; i++) {
        const struct vm_journal_record *r = &all->v[i];
        if (!r->vm || r->about_earlier || strcmp(r->vm, name) != 0 || !r->ts)
            continue;
        if (!*first)
            *first = r->ts;
        if (r->kind == VM_JOURNAL_KIND_FINISHED)
            *finished = r->ts;
    }
}

static const char *took(json_int_t from, json_int_t to, char *buf, size_t len)
{
    return from && to >= from ? vm_duration_fmt((uint64_t)(to - from), buf, len) : NULL;
}

/* {URI: name} for the hosts of runs: vm_host_names's (by the URIs' host
 * parts, unless two URIs share one), or with wide the URIs. */
static json_t *host_names(json_t *runs, bool wide)
{
    json_t *map = json_object();
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run)
    {
        const char *name;
        json_t *v;
        json_object_foreach(json_object_get(run, "vms"), name, v)
        {
            for (int k = 0; k < 2; k++) {
                const char *uri = json_string_value(json_object_get(v, k ? "target" : "source"));
                if (uri)
                    json_object_set_new(map, uri, json_string(uri));
            }
        }
    }
    size_t n = json_object_size(map), k = 0;
    if (wide || !n)
        return map;
    const char **uris = xcalloc(n, sizeof(*uris));
    char **names = xcalloc(n, sizeof(*names));
    const char *uri;
    json_t *v;
    json_object_foreach(map, uri, v) uris[k++] = uri;
    vm_host_names(n, uris, NULL, names);
    for (k = 0; k < n; k++) {
        json_object_set_new(map, uris[k], json_string(names[k]));
        free(names[k]);
    }
    free(names);
    free(uris);
    return map;
}

static const char *host_of(json_t *map, json_t *v, const char *key)
{
    const char *uri = json_string_value(json_object_get(v, key));
    return uri ? json_string_value(json_object_get(map, uri)) : NULL;
}

/* The human listing of runs (summaries, each with its records at
 * ranges[2i], ranges[2i+1] of all). Returns the exit status. */
static int print_runs(const struct vm_cli_args *args, const struct vm_journal_records *all,
                      json_t *runs, const size_t *ranges, const char *dir)
{
    bool failed = vm_cli_flag(args, OPT_FAILED), wide = vm_cli_flag(args, OPT_WIDE);
    const char *want = vm_cli_pos(args, 0);
    static const char *const header[] = {"VM",     "STATE",  "RESULT", "LOCATION",
                                         "SOURCE", "TARGET", "TOOK",   "STEPS"};
    static const char *const header_failed[] = {"VM",     "STATE",  "RESULT", "LOCATION",
                                                "SOURCE", "TARGET", "TOOK",   "WHY"};
    struct vm_table *t = vm_table_new(8, failed ? header_failed : header, 2);
    json_t *hosts = host_names(runs, wide);
    /* The newest runs, and every one not closed: an old crashed run, or one
     * left for an operator, is what an operator must not miss. */
    size_t first_recent = 0, hidden = 0, nfailed = 0, noperator = 0;
    if (!want && !failed && !vm_cli_flag(args, OPT_ALL) && json_array_size(runs) > STATUS_RECENT)
        first_recent = json_array_size(runs) - STATUS_RECENT;
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run)
    {
        if (i < first_recent && vm_journal_run_closed(run)) {
            hidden++;
            continue;
        }
        size_t begin = ranges[2 * i], end = ranges[2 * i + 1];
        bool finished = json_is_true(json_object_get(run, "finished"));
        json_int_t lo = 0, hi = 0;
        for (size_t k = begin; k < end; k++) {
            json_int_t ts = all->v[k].ts;
            lo = ts && (!lo || ts < lo) ? ts : lo;
            hi = ts > hi ? ts : hi;
        }
        char d[16];
        const char *run_took = finished ? took(lo, hi, d, sizeof(d)) : NULL;
        vm_table_text(t, "run %s  started %s  %s%s%s",
                      json_string_value(json_object_get(run, "id")),
                      json_string_value(json_object_get(run, "started_at")),
                      finished ? "finished" : "OPEN (running or crashed)",
                      run_took ? "  took " : "", run_took ? run_took : "");
        const char *name;
        json_t *v;
        json_object_foreach(json_object_get(run, "vms"), name, v)
        {
            const char *why = NULL;
            enum vm_journal_trouble tr = vm_journal_vm_trouble(v, &why);
            if (failed && tr == VM_JOURNAL_TROUBLE_NONE)
                continue;
            nfailed += tr == VM_JOURNAL_TROUBLE_FAILED;
            noperator += tr == VM_JOURNAL_TROUBLE_OPERATOR;
            const char *deinit = json_string_value(json_object_get(v, "deinit"));
            const char *after = json_string_value(json_object_get(v, "after"));
            char *steps =
                xasprintf("%s%s%s%s%s", deinit ? "deinit " : "", deinit ? deinit : "",
                          deinit && after ? ", " : "", after ? "after " : "", after ? after : "");
            json_int_t from, to;
            vm_times(all, begin, end, name, &from, &to);
            char vd[16];
            const char *cells[] = {name,
                                   json_string_value(json_object_get(v, "state")),
                                   json_string_value(json_object_get(v, "result")),
                                   json_string_value(json_object_get(v, "location")),
                                   host_of(hosts, v, "source"),
                                   host_of(hosts, v, "target"),
                                   took(from, to, vd, sizeof(vd)),
                                   failed ? why : steps};
            vm_table_row(t, cells);
            free(steps);
        }
    }
    if (vm_table_rows(t))
        vm_table_print(t, stdout);
    vm_table_free(t);
    json_decref(hosts);
    if (hidden)
        printf("status: %zu older closed run%s not shown (--all lists every run)\n", hidden,
               hidden == 1 ? "" : "s");
    if (!json_array_size(runs) && !failed)
        printf(json_array_size(all->unreadable) ? "status: no readable runs in '%s'\n"
                                                : "status: no runs in '%s'\n",
               dir);
    if (!failed)
        return VM_EXIT_OK;
    if (noperator) {
        printf("status: exit status %d (operator): %zu VM%s an operator must look at "
               "(not finished, unsettled, host unknown or a feature step not done)%s\n",
               VM_EXIT_OPERATOR, noperator, noperator == 1 ? "" : "s",
               nfailed ? ", and failed or rolled-back migrations" : "");
        return VM_EXIT_OPERATOR;
    }
    if (nfailed) {
        printf("status: exit status %d (failed): %zu migration%s failed, aborted or rolled back; "
               "each guest runs on a known host\n",
               VM_EXIT_FAILED, nfailed, nfailed == 1 ? "" : "s");
        return VM_EXIT_FAILED;
    }
    printf("status: exit status 0: no failed, rolled-back or unknown migrations in %s '%s'\n",
           want ? "run" : "the journals in", want ? want : dir);
    return VM_EXIT_OK;
}

/* Keep in runs (summaries) only the VMs in trouble, and the runs with one;
 * ranges as print_runs's, kept in step. The exit status --failed gives. */
static int keep_failed(json_t *runs, size_t *ranges)
{
    int rc = VM_EXIT_OK;
    size_t kept = 0;
    for (size_t i = 0; i < json_array_size(runs); i++) {
        json_t *run = json_array_get(runs, i);
        json_t *vms = json_object_get(run, "vms");
        const char *name;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(vms, tmp, name, v)
        {
            enum vm_journal_trouble tr = vm_journal_vm_trouble(v, NULL);
            if (tr == VM_JOURNAL_TROUBLE_NONE)
                json_object_del(vms, name);
            else if (tr == VM_JOURNAL_TROUBLE_OPERATOR)
                rc = VM_EXIT_OPERATOR;
            else if (rc == VM_EXIT_OK)
                rc = VM_EXIT_FAILED;
        }
        if (json_object_size(vms)) {
            json_array_set(runs, kept, run);
            ranges[2 * kept] = ranges[2 * i];
            ranges[2 * kept + 1] = ranges[2 * i + 1];
            kept++;
        }
    }
    while (json_array_size(runs) > kept)
        json_array_remove(runs, kept);
    return rc;
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
    struct vm_journal_records all;
    if (vm_journal_read_dir(dir, &all, &err) < 0) {
        vm_error("status: %s", err);
        free(err);
        return VM_EXIT_USAGE;
    }
    vm_journal_records_warn(&all, "status");
    size_t u;
    json_t *path;
    json_array_foreach(all.unreadable, u, path)
    {
        vm_warn("status: journal '%s' cannot be read whole: it may hide a run or an open "
                "migration",
                json_string_value(path));
    }
    json_t *runs = json_array();
    /* each run's records: all.v[ranges[2i] .. ranges[2i+1]) */
    size_t *ranges = xcalloc(2 * (size_t)all.nfiles + 2, sizeof(*ranges));
    size_t end;
    for (size_t begin = 0; begin < all.n; begin = end) {
        for (end = begin; end < all.n && all.v[end].file == all.v[begin].file; end++)
            ;
        json_t *s = vm_journal_summary(&all, begin, end);
        const char *id = json_string_value(json_object_get(s, "id"));
        if (json_object_size(json_object_get(s, "vms")) && (!want || strcmp(id, want) == 0)) {
            size_t k = json_array_size(runs);
            ranges[2 * k] = begin;
            ranges[2 * k + 1] = end;
            json_array_append(runs, s);
        }
        json_decref(s);
    }
    int rc = VM_EXIT_OK;
    if (want && json_array_size(runs) == 0) {
        vm_error("status: no run '%s' in '%s'", want, dir);
        rc = VM_EXIT_USAGE;
    } else if (vm_cli_flag(args, OPT_JSON)) {
        if (vm_cli_flag(args, OPT_FAILED))
            rc = keep_failed(runs, ranges);
        json_t *o = json_pack("{s:i, s:O}", "schema_version", 1, "runs", runs);
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        if (vm_cli_flag(args, OPT_FAILED))
            keep_failed(runs, ranges);
        rc = print_runs(args, &all, runs, ranges, dir);
    }
    free(ranges);
    json_decref(runs);
    vm_journal_records_clear(&all);
    return rc;
}

static const struct vm_cli_option status_positionals[] = {
    {.name = "run", .arg = VM_CLI_ARG_RUN, .metavar = "run"},
    {0},
};

const struct vm_cli_command vm_cmd_status_entry = {
    .name = "status",
    .usage = "[RUN] [--all] [--failed] [--journal-dir DIR] [--json] [--wide]",
    .summary = "show current and past runs from the journals",
    .doc = "List the recent runs recorded in the journals (the 10 newest, and every run "
           "not finished; --all for every one), or one RUN: per VM the last journal "
           "record (started, gate-reached, commit-decided, rollback-decided, finished, "
           "recovered; unsettled: finished, but where the guest runs is unknown or a copy may "
           "be left on the source, for recover), the result and where the guest runs, and for a "
           "network-critical one "
           "its features' deinit or after steps: started, done or failed (started and never "
           "done: a crash cut them short, recover runs them again). A run whose VMs are not all "
           "finished is running, or crashed: see recover. Lines that are not whole records "
           "of the file's run (torn, damaged: their checksum does not match, of another run) "
           "are skipped with a warning naming file and line, and a journal whose first "
           "record cannot be read is named. For a live view of a running run use its "
           "--status-file or --events. The listing names each host by its URI's host part "
           "(--wide: the whole URI) and says how long each run and migration took, from its "
           "first record to its last. Exit status 0; with --failed 0, 1 or 9 by what it lists "
           "(see --failed).",
    .options = status_options,
    .positionals = status_positionals,
    .exec = cmd_status_exec,
};
