/* SPDX-License-Identifier: MIT */
/* owed.c — see owed.h. */
#include "journal/owed.h"

#include <stdlib.h>
#include <string.h>

#include "plan/decision.h"
#include "feature/feature.h"
#include "journal/journal.h"
#include "util/util.h"

struct vm_owed {
    uv_loop_t *loop;
    char *dir;
    json_t *owed; /* borrowed from the caller's list, referenced */
    size_t next;
    struct vm_policy *policy;
    const struct vm_exec_hosts *hosts; /* borrowed */
    struct vm_journal *journal; /* NULL until the first record, when own */
    bool own_journal;           /* opened here (the caller gave none) */
    /* the migration in progress */
    struct vm_decision d;
    struct vm_features *f;
    json_t *cur;
    json_t *results;
    int failed;
    uv_timer_t timer;
    vm_owed_done_cb done;
    void *data;
};

static void owed_next(struct vm_owed *o);

static void owed_resume(uv_timer_t *t)
{
    owed_next(t->data);
}

static void owed_free(uv_handle_t *h)
{
    struct vm_owed *o = h->data;
    json_decref(o->results);
    json_decref(o->owed);
    free(o->dir);
    free(o);
}

/* The journal of this recovery: the caller's, or one opened with the first
 * record. */
static struct vm_journal *journal(struct vm_owed *o)
{
    if (!o->journal && o->own_journal)
        o->journal = vm_journal_open(o->dir);
    return o->journal;
}

static void record(struct vm_owed *o, bool ok, json_t *features, const char *error)
{
    json_t *c = o->cur;
    const char *run = json_string_value(json_object_get(c, "run"));
    const char *vm = json_string_value(json_object_get(c, "vm"));
    const char *uuid = json_string_value(json_object_get(c, "uuid"));
    const char *src = json_string_value(json_object_get(c, "source"));
    const char *dst = json_string_value(json_object_get(c, "target"));
    const char *step = json_string_value(json_object_get(c, "step"));
    json_t *res = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "step", step, "run", run, "vm",
                            vm, "uuid", uuid, "source", src, "target", dst, "ok", ok);
    if (features)
        json_object_set(res, "features", features);
    if (error)
        json_object_set_new(res, "error", json_string(error));
    json_array_append_new(o->results, res);
    if (!ok)
        o->failed++;
    /* Ran (even if a step failed: an operator takes it from there): never
     * again. Not run at all (the feature is unknown without its policy):
     * still owed, no record. */
    if (!features)
        return;
    char *done = xasprintf("%s-done", step);
    if (journal(o))
        vm_journal_write(
            o->journal, vm, uuid, src, dst, done,
            json_pack("{s:s, s:b, s:O}", "of_run", run, "ok", ok, "features", features));
    free(done);
}

static void step_finished(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct vm_owed *o = data;
    json_t *features = vm_features_to_json(f);
    const char *vm = json_string_value(json_object_get(o->cur, "vm"));
    const char *step = json_string_value(json_object_get(o->cur, "step"));
    if (ok)
        vm_warn("recover: %s: ran the feature %s steps a crashed run owed", vm, step);
    else
        vm_error("recover: %s: needs an operator: owed %s: %s", vm, step, reason);
    record(o, ok, features, ok ? NULL : reason);
    json_decref(features);
    o->f = f;
    /* Go on from the loop: these features are freed there, not inside
     * their own callback. */
    uv_timer_start(&o->timer, owed_resume, 0, 0);
}

static void features_event(struct vm_features *f, const char *feature, const char *step, bool ok,
                           const char *detail, void *data)
{
    struct vm_owed *o = data;
    (void)f;
    vm_log(ok ? VM_LOG_INFO : VM_LOG_ERROR, "recover: %s: feature %s %s: %s%s%s",
           json_string_value(json_object_get(o->cur, "vm")), feature, step, ok ? "ok" : "failed",
           detail ? ": " : "", detail ? detail : "");
}

static void owed_next(struct vm_owed *o)
{
    for (;;) {
        if (o->f) {
            /* Its done callback has returned by the time the next one runs:
             * the features are idle. */
            vm_features_free(o->f);
            o->f = NULL;
        }
        vm_decision_clear(&o->d);
        if (o->next >= json_array_size(o->owed)) {
            if (o->own_journal)
                vm_journal_close(o->journal);
            o->done(o->results, o->failed, o->data);
            uv_close((uv_handle_t *)&o->timer, owed_free);
            return;
        }
        o->cur = json_array_get(o->owed, o->next++);
        const char *step = json_string_value(json_object_get(o->cur, "step"));
        json_t *dj = json_pack("{s:O}", "features", json_object_get(o->cur, "features"));
        char *err = NULL;
        int rc = vm_decision_parse(dj, &o->d, &err);
        json_decref(dj);
        if (rc < 0) {
            char *why = xasprintf("the journal's feature list does not parse: %s", err);
            vm_error("recover: %s: %s", json_string_value(json_object_get(o->cur, "vm")), why);
            record(o, false, NULL, why);
            free(why);
            free(err);
            continue;
        }
        const char *unknown = NULL;
        for (int i = 0; i < o->d.nfeatures && !unknown; i++)
            if (!vm_feature_known(o->d.features[i].name, o->policy))
                unknown = o->d.features[i].name;
        if (unknown) {
            char *why = xasprintf("feature '%s' is not defined here: pass the policy that "
                                  "defined it (--policy) to run its %s step",
                                  unknown, step);
            vm_error("recover: %s: %s steps still owed: %s",
                     json_string_value(json_object_get(o->cur, "vm")), step, why);
            record(o, false, NULL, why);
            free(why);
            continue;
        }
        struct vm_feature_env env = {
            .source = json_string_value(json_object_get(o->cur, "source")),
            .target = json_string_value(json_object_get(o->cur, "target")),
            .hosts = o->hosts,
            .gated = true,
        };
        /* The VM as the crashed run saw it (a policy's step gets it). */
        json_t *inv = json_object_get(o->cur, "inventory");
        json_t *vm = json_is_object(inv)
                         ? json_incref(inv)
                         : json_pack("{s:O, s:O}", "name", json_object_get(o->cur, "vm"), "uuid",
                                     json_object_get(o->cur, "uuid"));
        struct vm_features *f = vm_features_new(o->loop, &env, vm, o->d.features, o->d.nfeatures,
                                                o->policy, features_event, o);
        json_decref(vm);
        /* A crash before this step's -done record leaves it unknown: its
         * next run is a redo (the policy's steps see ctx.redo). */
        if (journal(o))
            vm_journal_write(
                o->journal, json_string_value(json_object_get(o->cur, "vm")),
                json_string_value(json_object_get(o->cur, "uuid")), env.source, env.target,
                "step-started",
                json_pack("{s:O, s:s}", "of_run", json_object_get(o->cur, "run"), "step", step));
        vm_features_set_redo(f, json_is_true(json_object_get(o->cur, "redo")));
        if (strcmp(step, "after") == 0) {
            vm_features_run(f, VM_FEATURE_AFTER, step_finished);
        } else {
            /* Whether each prepare ran before the crash is unknown: all owe it. */
            vm_features_owe_deinit(f);
            vm_features_run(f, VM_FEATURE_DEINIT, step_finished);
        }
        return; /* step_finished comes back here */
    }
}

void vm_owed_run(uv_loop_t *loop, const char *dir, struct vm_journal *journal, json_t *owed,
                 struct vm_policy *policy, const struct vm_exec_hosts *hosts,
                 vm_owed_done_cb done, void *data)
{
    struct vm_owed *o = xcalloc(1, sizeof(*o));
    o->loop = loop;
    o->dir = xstrdup(dir);
    o->journal = journal;
    o->own_journal = !journal;
    o->owed = json_incref(owed);
    o->policy = policy;
    o->hosts = hosts;
    o->results = json_array();
    o->done = done;
    o->data = data;
    uv_timer_init(loop, &o->timer);
    o->timer.data = o;
    owed_next(o);
}
