/* SPDX-License-Identifier: MIT */
/* test_feature_table.c — the table of built-in features: names unique and
 * well formed, lookups, reserved names (the message list, the policy's
 * vmm.feature()), what a crash leaves owed per built-in; and the runner
 * driving built-ins through it with a fake backend: the steps a built-in
 * does not act in are "ok" without it, the backend's answers settle the
 * step, a probe's count carries over, cancel stops the gate's poll. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "feature/feature.h"
#include "feature/feature_builtin.h"
#include "policy/policy.h"
#include "util/util.h"

static int nbuiltins(void)
{
    int n = 0;
    while (vm_feature_builtin_at(n))
        n++;
    return n;
}

static void test_names(void)
{
    int n = nbuiltins();
    CHECK_INT(n, >=, 3);
    for (int i = 0; i < n; i++) {
        const struct vm_feature_builtin *b = vm_feature_builtin_at(i);
        /* the form decisions and vmm.feature() accept */
        size_t len = strlen(b->name);
        CHECK(len >= 1 && len <= 64);
        CHECK_INT(strspn(b->name, "abcdefghijklmnopqrstuvwxyz0123456789_-"), ==, len);
        CHECK(b->ops && b->ops->run);
        CHECK(b->steps != 0);
        CHECK_INT(b->steps & ~VM_FEATURE_ALL_STEPS, ==, 0);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(vm_feature_builtin_at(j)->name, b->name) < 0); /* sorted, unique */
        CHECK_STR(vm_feature_builtin_name(i), b->name);
    }
    CHECK(vm_feature_builtin_at(n) == NULL);
    CHECK(vm_feature_builtin_at(-1) == NULL);
    CHECK(vm_feature_builtin_name(n) == NULL);
}

static void test_lookups(void)
{
    for (int i = 0; vm_feature_builtin_at(i); i++) {
        const struct vm_feature_builtin *b = vm_feature_builtin_at(i);
        CHECK(vm_feature_builtin_find(b->name) == b);
        CHECK(vm_feature_builtin(b->name));
        CHECK(vm_feature_known(b->name, NULL));
    }
    CHECK_STR(vm_feature_builtin_find("vdp")->name, "vdp");
    CHECK(vm_feature_builtin_find("mark") == NULL);
    CHECK(vm_feature_builtin_find("VDP") == NULL);
    CHECK(vm_feature_builtin_find("") == NULL);
    CHECK(vm_feature_builtin_find(NULL) == NULL);
    CHECK(!vm_feature_builtin("mark"));
    CHECK(!vm_feature_known("mark", NULL));
    /* what messages list */
    char *names = vm_feature_builtin_names();
    CHECK_STR(names, "announce, spice, vdp");
    free(names);
}

/* Which of deinit and after a later run must do for each built-in. */
static void test_owed(void)
{
    static const struct {
        const char *name;
        bool deinit, after;
    } want[] = {{"announce", false, false}, {"spice", false, false}, {"vdp", true, true}};
    for (size_t i = 0; i < VM_ARRAY_LEN(want); i++) {
        CHECK(vm_feature_builtin(want[i].name));
        CHECK_INT(vm_feature_owed_after_crash(want[i].name, VM_FEATURE_DEINIT, NULL), ==,
                  want[i].deinit);
        CHECK_INT(vm_feature_owed_after_crash(want[i].name, VM_FEATURE_AFTER, NULL), ==,
                  want[i].after);
    }
    for (int i = 0; vm_feature_builtin_at(i); i++) {
        unsigned owed = vm_feature_builtin_at(i)->owed;
        CHECK_INT(owed & ~(VM_FEATURE_STEP(VM_FEATURE_DEINIT) | VM_FEATURE_STEP(VM_FEATURE_AFTER)),
                  ==, 0);
        /* owing a step it does nothing in would be a no-op for recovery */
        CHECK_INT(owed & ~vm_feature_builtin_at(i)->steps, ==, 0);
    }
    /* unknown without a policy: nothing is owed (recover reports it) */
    CHECK(!vm_feature_owed_after_crash("mark", VM_FEATURE_DEINIT, NULL));
}

/* A policy cannot define a feature by a built-in's name. */
static void test_reserved(void)
{
    char dir[] = "/tmp/vmm-test-feature-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = xasprintf("%s/p.lua", dir);
    vm_policy_set_reserved(vm_feature_builtin); /* as main.c does */
    for (int i = 0; vm_feature_builtin_at(i); i++) {
        const char *name = vm_feature_builtin_at(i)->name;
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        fprintf(f, "local vmm = require('vmm')\nvmm.feature('%s', {})\n", name);
        fclose(f);
        char *err = NULL;
        struct vm_policy *p = vm_policy_load(path, &err);
        if (p)
            CHECK_FAIL("a policy defined the built-in feature '%s'", name);
        char *want = xasprintf("'%s' is a built-in feature", name);
        CHECK_CONTAINS(err, want);
        free(want);
        free(err);
    }
    unlink(path);
    free(path);
    rmdir(dir);
}

/* -- the runner with a fake backend -- */

struct fake {
    int announces, counts, ready;
    struct vm_features *pending_count; /* answered later */
    json_t *events;
    int done_calls;
    bool ok;
    char *reason;
};

static void fake_announce(struct vm_features *f, void *ctx)
{
    struct fake *k = ctx;
    k->announces++;
    vm_features_announced(f, true, NULL);
}

static void fake_count(struct vm_features *f, void *ctx)
{
    struct fake *k = ctx;
    k->counts++;
    k->pending_count = f;
}

static int fake_ready(void *ctx)
{
    return ((struct fake *)ctx)->ready;
}

static void on_event(struct vm_features *f, const char *feature, const char *step, bool ok,
                     const char *detail, void *data)
{
    struct fake *k = data;
    (void)f;
    json_array_append_new(k->events,
                          json_sprintf("%s %s %s%s%s", feature, step, ok ? "ok" : "failed",
                                       detail ? ": " : "", detail ? detail : ""));
}

static void on_done(struct vm_features *f, bool ok, const char *reason, void *data)
{
    struct fake *k = data;
    (void)f;
    k->done_calls++;
    k->ok = ok;
    free(k->reason);
    k->reason = reason ? xstrdup(reason) : NULL;
}

static const char *outcome(struct vm_features *f, int i, const char *step)
{
    json_t *j = vm_features_to_json(f);
    static char buf[256];
    const char *s = json_string_value(json_object_get(json_array_get(j, (size_t)i), step));
    snprintf(buf, sizeof(buf), "%s", s ? s : "(null)");
    json_decref(j);
    return buf;
}

static void decl(struct vm_feature_decl *d, const char *name, bool required)
{
    *d = (struct vm_feature_decl){.name = (char *)name, .required = required, .timeout_ms = 200};
    d->args = json_object();
}

static void test_runner(void)
{
    uv_loop_t loop;
    CHECK_INT(uv_loop_init(&loop), ==, 0);
    struct fake k = {.events = json_array()};
    struct vm_feature_env env = {.source = "test:///a",
                                 .target = "test:///b",
                                 .gated = true,
                                 .announce = fake_announce,
                                 .spice_count = fake_count,
                                 .spice_target_ready = fake_ready,
                                 .ctx = &k};
    struct vm_feature_decl d[3];
    decl(&d[0], "announce", true);
    decl(&d[1], "spice", true);
    decl(&d[2], "vdp", false);
    json_t *vm = json_pack("{s:s, s:s}", "name", "x", "uuid", "u1");

    /* probe: announce has nothing to do; spice asks the backend to count;
     * vdp has no interface to work on (not required) */
    struct vm_features *probe = vm_features_new(&loop, &env, vm, d, 3, NULL, on_event, &k);
    vm_features_run(probe, VM_FEATURE_PROBE, on_done);
    CHECK_INT(k.counts, ==, 1);
    CHECK(vm_features_busy(probe));
    CHECK_INT(k.done_calls, ==, 0);
    vm_features_spice_counted(k.pending_count, 2, NULL);
    CHECK_INT(k.done_calls, ==, 1);
    CHECK(k.ok);
    CHECK_STR(outcome(probe, 0, "probe"), "ok");
    CHECK_STR(outcome(probe, 1, "probe"), "ok");
    CHECK_CONTAINS(outcome(probe, 2, "probe"), "failed: vdp: no ");
    CHECK_STR(json_string_value(json_array_get(k.events, 1)), "spice probe ok");

    /* the migration's own instance adopts the probe's count: its gate
     * waits for two channels on the target */
    struct vm_features *f = vm_features_new(&loop, &env, vm, d, 3, NULL, on_event, &k);
    vm_features_adopt(f, probe, VM_FEATURE_PROBE);
    vm_features_free(probe);
    CHECK_STR(outcome(f, 1, "probe"), "ok");
    k.ready = 2;
    vm_features_run(f, VM_FEATURE_GATE, on_done);
    CHECK(vm_features_busy(f));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(k.done_calls, ==, 2);
    CHECK(k.ok);
    CHECK_STR(outcome(f, 0, "gate"), "ok");
    CHECK_STR(outcome(f, 1, "gate"), "ok");

    /* a gate the target never reaches, cancelled: the poll stops */
    k.ready = 1;
    vm_features_run(f, VM_FEATURE_GATE, on_done);
    CHECK(vm_features_busy(f));
    vm_features_cancel(f);
    CHECK_INT(k.done_calls, ==, 3);
    CHECK(!k.ok);
    CHECK_STR(k.reason, "cancelled");
    CHECK_STR(outcome(f, 1, "gate"), "failed: " VM_FEATURE_CANCELLED);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(!vm_features_busy(f));

    /* ... and one that times out */
    vm_features_run(f, VM_FEATURE_GATE, on_done);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(k.done_calls, ==, 4);
    CHECK(!k.ok);
    CHECK_STR(k.reason, "feature 'spice' gate: 1 of 2 SPICE channels reached the target");

    /* after: announce asks the backend */
    vm_features_run(f, VM_FEATURE_AFTER, on_done);
    CHECK_INT(k.announces, ==, 1);
    CHECK_STR(outcome(f, 0, "after"), "ok");
    CHECK_STR(outcome(f, 1, "after"), "ok");
    vm_features_free(f);

    /* a backend that cannot announce or count */
    struct vm_feature_env bare = {.source = "test:///a", .target = "test:///b", .gated = true};
    f = vm_features_new(&loop, &bare, vm, d, 2, NULL, on_event, &k);
    vm_features_run(f, VM_FEATURE_PROBE, on_done);
    CHECK_STR(outcome(f, 1, "probe"), "failed: this backend cannot count SPICE clients");
    CHECK_STR(k.reason, "feature 'spice' probe: this backend cannot count SPICE clients");
    vm_features_run(f, VM_FEATURE_AFTER, on_done);
    CHECK_STR(outcome(f, 0, "after"), "failed: this backend cannot announce");
    /* the gate without a count: nothing to wait for */
    vm_features_run(f, VM_FEATURE_GATE, on_done);
    CHECK(k.ok);
    /* deinit, in reverse, of those whose gate ran */
    json_array_clear(k.events);
    vm_features_run(f, VM_FEATURE_DEINIT, on_done);
    CHECK_INT(json_array_size(k.events), ==, 2);
    CHECK_STR(json_string_value(json_array_get(k.events, 0)), "spice deinit ok");
    CHECK_STR(json_string_value(json_array_get(k.events, 1)), "announce deinit ok");
    vm_features_free(f);

    for (int i = 0; i < 3; i++)
        json_decref(d[i].args);
    json_decref(vm);
    json_decref(k.events);
    free(k.reason);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
}

static const struct vm_test tests[] = {
    VM_TEST(test_names),    VM_TEST(test_lookups), VM_TEST(test_owed),
    VM_TEST(test_reserved), VM_TEST(test_runner),  {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
