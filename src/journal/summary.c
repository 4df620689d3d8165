/* SPDX-License-Identifier: MIT */
/* summary.c — what one run's journal says, as status shows it
 * (vm_journal_summary), and pruning the journals of old finished runs
 * (vm_journal_prune). See journal.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal/journal.h"
#include "util/util.h"

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

json_t *vm_journal_summary(const struct vm_journal_records *all, size_t begin, size_t end)
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

bool vm_journal_run_closed(json_t *s)
{
    if (!json_is_true(json_object_get(s, "finished")))
        return false;
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(s, "vms"), name, v)
    {
        const char *loc = json_string_value(json_object_get(v, "location"));
        if (!loc || (strcmp(loc, "source") != 0 && strcmp(loc, "target") != 0))
            return false;
        for (int k = 0; k < 2; k++) {
            const char *st = json_string_value(json_object_get(v, k ? "after" : "deinit"));
            if (st && strcmp(st, "done") != 0)
                return false;
        }
    }
    return true;
}

static bool str_is(json_t *o, const char *key, const char *want)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && strcmp(s, want) == 0;
}

enum vm_journal_trouble vm_journal_vm_trouble(json_t *v, const char **why)
{
    static const char *const steps[] = {"deinit", "after"};
    static const char *const failed[] = {"failed", "aborted", "rolled-back"};
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!str_is(v, "state", "finished") && !str_is(v, "state", "recovered")) {
        *why = !str_is(v, "state", "unsettled")   ? "open"
               : str_is(v, "location", "unknown") ? "location unknown"
                                                  : "unsettled";
        return VM_JOURNAL_TROUBLE_OPERATOR;
    }
    if (!str_is(v, "location", "source") && !str_is(v, "location", "target")) {
        *why = "location unknown";
        return VM_JOURNAL_TROUBLE_OPERATOR;
    }
    for (size_t k = 0; k < VM_ARRAY_LEN(steps); k++) {
        const char *st = json_string_value(json_object_get(v, steps[k]));
        if (st && strcmp(st, "done") != 0) {
            *why = strcmp(st, "failed") == 0 ? (k ? "after failed" : "deinit failed")
                                             : (k ? "after cut short" : "deinit cut short");
            return VM_JOURNAL_TROUBLE_OPERATOR;
        }
    }
    for (size_t k = 0; k < VM_ARRAY_LEN(failed); k++) {
        if (str_is(v, "result", failed[k])) {
            *why = failed[k];
            return VM_JOURNAL_TROUBLE_FAILED;
        }
    }
    if (!json_object_get(v, "result") && str_is(v, "location", "source")) {
        *why = "cut short, recovered";
        return VM_JOURNAL_TROUBLE_FAILED;
    }
    return VM_JOURNAL_TROUBLE_NONE;
}

static bool path_in(json_t *paths, const char *path)
{
    size_t i;
    json_t *p;
    json_array_foreach(paths, i, p)
    {
        if (strcmp(json_string_value(p), path) == 0)
            return true;
    }
    return false;
}

int vm_journal_prune(const char *dir, long max_age_s, json_t **pruned, char **err)
{
    *pruned = json_array();
    struct vm_journal_records all;
    if (vm_journal_read_dir(dir, &all, err) < 0)
        return -1;
    time_t now = time(NULL);
    size_t end;
    for (size_t begin = 0; begin < all.n; begin = end) {
        for (end = begin; end < all.n && all.v[end].file == all.v[begin].file; end++)
            ;
        /* A journal with records about an earlier run (recovered, owed steps
         * done) stays while that run's journal does: without them the earlier
         * run would look open again, and its steps owed. */
        bool refers = false;
        for (size_t i = begin; i < end && !refers; i++) {
            const char *of = all.v[i].of_run;
            if (all.v[i].about_earlier) {
                char *p = of && !strchr(of, '/') ? xasprintf("%s/%s.ndjson", dir, of) : NULL;
                refers = !p || access(p, F_OK) == 0;
                free(p);
            }
        }
        if (refers)
            continue;
        json_t *s = vm_journal_summary(&all, begin, end);
        const char *id = json_string_value(json_object_get(s, "id"));
        char *path = xasprintf("%s/%s.ndjson", dir, id);
        struct stat st;
        /* Old by its last write; never a journal that cannot be read whole,
         * or one of a run with anything open. */
        if (*id && strchr(id, '/') == NULL && vm_journal_run_closed(s) &&
            !path_in(all.unreadable, path) && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime > max_age_s) {
            if (unlink(path) == 0)
                json_array_append_new(*pruned, json_string(path));
            else
                vm_warn("journal '%s' cannot be removed: %s", path, strerror(errno));
        }
        free(path);
        json_decref(s);
    }
    vm_journal_records_clear(&all);
    return 0;
}
