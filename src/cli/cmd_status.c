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
#include "util/util.h"

enum {
    OPT_JOURNAL_DIR = 1,
    OPT_JSON,
    OPT_ALL,
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
    VM_CLI_OPTION_JOURNAL_DIR(OPT_JOURNAL_DIR, "the journals to read (" VM_JOURNAL_DEFAULT_DIR ")",
                              VM_CLI_DOC_JOURNAL_READ),
    VM_CLI_OPTION_JSON(
        OPT_JSON, "print JSON",
        "Print {\"runs\": [{id, started_at, finished, vms: {NAME: {uuid, source, target, "
        "state, result, location, deinit, after}}}]} on standard output. deinit and after "
        "are \"done\" or \"failed\" once the features' deinit steps (guest on the source) "
        "or after steps (guest on the target) ran, by the run itself or, owed after a "
        "crash, by a later one."),
    {0},
};

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
    size_t i, end;
    for (size_t begin = 0; begin < all.n; begin = end) {
        for (end = begin; end < all.n && all.v[end].file == all.v[begin].file; end++)
            ;
        json_t *s = vm_journal_summary(&all, begin, end);
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
        /* The newest runs, and every one not closed: an old crashed run, or
         * one left for an operator, is what an operator must not miss. */
        size_t first_recent = 0, hidden = 0;
        if (!want && !vm_cli_flag(args, OPT_ALL) && json_array_size(runs) > STATUS_RECENT)
            first_recent = json_array_size(runs) - STATUS_RECENT;
        json_t *run;
        json_array_foreach(runs, i, run)
        {
            if (i < first_recent && vm_journal_run_closed(run)) {
                hidden++;
                continue;
            }
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
        if (hidden)
            printf("status: %zu older closed run%s not shown (--all lists every run)\n", hidden,
                   hidden == 1 ? "" : "s");
        if (!json_array_size(runs))
            printf(json_array_size(all.unreadable) ? "status: no readable runs in '%s'\n"
                                                   : "status: no runs in '%s'\n",
                   dir);
    }
    json_decref(runs);
    vm_journal_records_clear(&all);
    return rc;
}

const struct vm_cli_command vm_cmd_status_entry = {
    .name = "status",
    .usage = "[RUN] [--all] [--journal-dir DIR] [--json]",
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
           "--status-file or --events.",
    .options = status_options,
    .exec = cmd_status_exec,
};
