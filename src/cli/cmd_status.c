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
            "10 newest runs and every run that is not finished, whatever its age, and says how "
            "many older finished runs it left out. --json always lists every run."},
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

/* A "deinit-done" or "after-done" record: the VM's "deinit" / "after" is
 * "done" or "failed"; a "step-started" one: "started" (until its -done: a
 * crash left it unknown whether it ran, and recover runs it again). */
static bool step_done(json_t *v, const struct vm_journal_record *r)
{
    if (r->kind == VM_JOURNAL_KIND_STEP_STARTED) {
        const char *which = json_string_value(json_object_get(r->json, "step"));
        if (which && (strcmp(which, "deinit") == 0 || strcmp(which, "after") == 0))
            json_object_set_new(v, which, json_string("started"));
        return true;
    }
    const char *step = r->kind == VM_JOURNAL_KIND_DEINIT_DONE  ? "deinit"
                       : r->kind == VM_JOURNAL_KIND_AFTER_DONE ? "after"
                                                               : NULL;
    if (step)
        json_object_set_new(
            v, step, json_string(json_is_true(json_object_get(r->json, "ok")) ? "done" : "failed"));
    return step != NULL;
}

/* One run's VMs, from the records of its journal (all->v[begin..end)):
 * name -> {uuid, source, target, state (last record), result, location}. */
static json_t *summarise(const struct vm_journal_records *all, size_t begin, size_t end)
{
    json_t *vms = json_object();
    const char *run = NULL;
    json_int_t first = 0;
    for (size_t i = begin; i < end; i++) {
        const struct vm_journal_record *r = &all->v[i];
        if (!run)
            run = r->run;
        if (!first)
            first = r->ts;
        if (!r->vm || !r->record || r->about_earlier)
            continue; /* about another run: below */
        json_t *v = json_object_get(vms, r->vm);
        if (!v) {
            v = json_pack("{s:O, s:O, s:O}", "uuid", json_object_get(r->json, "uuid"), "source",
                          json_object_get(r->json, "source"), "target",
                          json_object_get(r->json, "target"));
            json_object_set_new(vms, r->vm, v);
        }
        if (step_done(v, r))
            continue;
        if (r->kind == VM_JOURNAL_KIND_STARTED) {
            /* a new attempt (retry): the steps of the last one are history */
            json_object_del(v, "deinit");
            json_object_del(v, "after");
        }
        /* A finished record that says it is not settled (location unknown,
         * a source copy not confirmed gone) leaves the migration open. */
        const char *loc = json_string_value(json_object_get(r->json, "location"));
        bool unsettled = r->kind == VM_JOURNAL_KIND_FINISHED &&
                         (json_is_false(json_object_get(r->json, "settled")) ||
                          (loc && strcmp(loc, "unknown") == 0));
        json_object_set_new(v, "state", json_string(unsettled ? "unsettled" : r->record));
        if (json_object_get(r->json, "result"))
            json_object_set(v, "result", json_object_get(r->json, "result"));
        if (json_object_get(r->json, "location"))
            json_object_set(v, "location", json_object_get(r->json, "location"));
    }
    /* later "recovered" records (any journal) settle open migrations */
    for (size_t i = 0; i < all->n; i++) {
        const struct vm_journal_record *r = &all->v[i];
        json_t *v = r->vm && r->of_run && run && strcmp(r->of_run, run) == 0
                        ? json_object_get(vms, r->vm)
                        : NULL;
        if (!v || !r->record)
            continue;
        if (r->kind == VM_JOURNAL_KIND_RECOVERED) {
            json_object_set_new(v, "state", json_string("recovered"));
            json_object_set(v, "location", json_object_get(r->json, "location"));
        } else {
            step_done(v, r); /* steps a later run owed and did after a crash */
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
        json_t *s = summarise(&all, begin, end);
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
        /* The newest runs, and every open one: an old crashed run is what an
         * operator must not miss. */
        size_t first_recent = 0, hidden = 0;
        if (!want && !vm_cli_flag(args, OPT_ALL) && json_array_size(runs) > STATUS_RECENT)
            first_recent = json_array_size(runs) - STATUS_RECENT;
        json_t *run;
        json_array_foreach(runs, i, run)
        {
            if (i < first_recent && json_is_true(json_object_get(run, "finished"))) {
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
            printf("status: %zu older finished run%s not shown (--all lists every run)\n", hidden,
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
