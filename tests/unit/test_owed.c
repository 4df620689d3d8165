/* SPDX-License-Identifier: MIT */
/* test_owed.c — which feature deinits crashed runs still owe (journals
 * only), and running them: journaled once, never twice; a policy feature
 * without its policy stays owed; a built-in runs without one. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "journal/journal.h"
#include "journal/owed.h"
#include "journal/recover.h"
#include "util/util.h"

static char dir[64];
static uv_loop_t loop;

/* Dead runs (PID 1 never is vmmigrate), named as journals are: by start
 * time, before any journal this test's recoveries write. */
#define R1 "2026-01-01T00-00-00.000Z-1"
#define R2 "2026-01-01T00-00-01.000Z-1"
#define R3 "2026-01-01T00-00-02.000Z-1"

/* One journal file: FILE.ndjson, FILE the run its records are of. */
static void journal(const char *file, const char *const *lines)
{
    char *path = xasprintf("%s/%s.ndjson", dir, file);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (; *lines; lines++)
        fputs(*lines, f);
    fclose(f);
    free(path);
}

#define REC(run, uuid, rec, extra)                                                                 \
    "{\"ts\":1,\"run\":\"" run "\",\"vm\":\"vm-" uuid "\",\"uuid\":\"" uuid                        \
    "\",\"source\":\"test:///a\",\"target\":\"test:///b\",\"record\":\"" rec "\"" extra "}\n"
#define STARTED(run, uuid, feature)                                                                \
    REC(run, uuid, "started",                                                                      \
        ",\"gated\":true,\"decision\":{\"features\":[{\"name\":\"" feature                         \
        "\",\"required\":true,\"timeout_ms\":1000,\"args\":{}}]},\"owed_on_crash\":{"              \
        "\"deinit\":[\"" feature "\"],\"after\":[\"" feature                                       \
        "\"]},\"inventory\":{\"name\":\"x\"}")

static json_t *owed_now(void)
{
    char *err = NULL;
    json_t *o = vm_recover_owed(dir, &err);
    if (!o)
        CHECK_FAIL("owed: %s", err);
    return o;
}

/* The step owed for uuid, or "" */
static const char *owes(json_t *owed, const char *uuid)
{
    size_t i;
    json_t *e;
    json_array_foreach(owed, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "uuid")), uuid) == 0)
            return json_string_value(json_object_get(e, "step"));
    }
    return "";
}

/* Does uuid's owed step run again (a step-started without its -done)? */
static bool redo(json_t *owed, const char *uuid)
{
    size_t i;
    json_t *e;
    json_array_foreach(owed, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "uuid")), uuid) == 0)
            return json_is_true(json_object_get(e, "redo"));
    }
    CHECK_FAIL("%s owes nothing", uuid);
    return false;
}

struct result {
    int calls, failed;
    json_t *results;
};

static void done(json_t *results, int failed, void *data)
{
    struct result *r = data;
    r->calls++;
    r->failed = failed;
    r->results = json_incref(results);
}

/* u1: rolled back (finished on the source), deinits not done: owes deinit.
 * u2: same, deinits done. u3: committed, after steps not done: owes after.
 * u8: committed, after steps done. u4: not gated. u5: crashed at the gate,
 * settled on the source by a recovery: owes deinit. u6: crashed, never
 * settled (open): nothing yet (recover settles it first). u7: attempt 1
 * rolled back and undone, attempt 2 crashed, settled on the source: owes
 * deinit again. */
static void crashed_runs(void)
{
    static const char *const run1[] = {
        STARTED(R1, "u1", "announce"),
        REC(R1, "u1", "finished", ",\"result\":\"rolled-back\",\"location\":\"source\""),
        STARTED(R1, "u2", "announce"),
        REC(R1, "u2", "finished", ",\"result\":\"rolled-back\",\"location\":\"source\""),
        REC(R1, "u2", "deinit-done", ",\"ok\":true"),
        STARTED(R1, "u3", "mark"),
        REC(R1, "u3", "finished", ",\"result\":\"migrated\",\"location\":\"target\""),
        REC(R1, "u3", "step-started", ",\"step\":\"after\""),
        STARTED(R1, "u8", "mark"),
        REC(R1, "u8", "finished", ",\"result\":\"migrated\",\"location\":\"target\""),
        REC(R1, "u8", "after-done", ",\"ok\":true"),
        REC(R1, "u4", "started",
            ",\"gated\":false,\"decision\":{\"features\":[{\"name\":\"mark\"}]}"),
        REC(R1, "u4", "finished", ",\"location\":\"source\""),
        STARTED(R1, "u5", "mark"),
        STARTED(R1, "u6", "mark"),
        STARTED(R1, "u7", "announce"),
        REC(R1, "u7", "finished", ",\"location\":\"source\""),
        REC(R1, "u7", "deinit-done", ",\"ok\":true"),
        STARTED(R1, "u7", "announce"),
        NULL,
    };
    static const char *const run2[] = {
        REC(R2, "u5", "recovered", ",\"of_run\":\"" R1 "\",\"location\":\"source\""),
        REC(R2, "u7", "recovered", ",\"of_run\":\"" R1 "\",\"location\":\"source\""),
        REC(R2, "u5", "step-started", ",\"of_run\":\"" R1 "\",\"step\":\"deinit\""),
        NULL,
    };
    journal(R1, run1);
    journal(R2, run2);
}

static void test_owed_steps(void)
{
    crashed_runs();
    json_t *o = owed_now();
    CHECK_STR(owes(o, "u1"), "deinit");
    CHECK_STR(owes(o, "u2"), "");
    CHECK_STR(owes(o, "u3"), "after");
    CHECK_STR(owes(o, "u4"), "");
    CHECK_STR(owes(o, "u5"), "deinit");
    CHECK_STR(owes(o, "u6"), "");
    CHECK_STR(owes(o, "u7"), "deinit");
    CHECK_STR(owes(o, "u8"), "");
    CHECK_INT(json_array_size(o), ==, 4);
    /* A step-started without its -done (the run's own, or a recovery's):
     * the step runs again, and says so. */
    CHECK(!redo(o, "u1"));
    CHECK(redo(o, "u3"));
    CHECK(redo(o, "u5"));
    CHECK(!redo(o, "u7"));
    json_decref(o);
}

/* Run them with no policy: the built-in (announce: nothing to undo) runs
 * and is journaled; the policy feature 'mark' cannot run, stays owed, and
 * counts as failed. Done once, never again. */
static void test_run_without_policy(void)
{
    crashed_runs();
    json_t *o = owed_now();
    struct result r = {0};
    vm_owed_run(&loop, dir, NULL, o, NULL, NULL, done, &r);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.calls, ==, 1);
    CHECK_INT(r.failed, ==, 2);
    CHECK_INT(json_array_size(r.results), ==, 4);
    json_t *e;
    size_t i;
    json_array_foreach(r.results, i, e)
    {
        const char *u = json_string_value(json_object_get(e, "uuid"));
        if (strcmp(u, "u1") == 0 || strcmp(u, "u7") == 0) {
            CHECK(json_is_true(json_object_get(e, "ok")));
            CHECK_STR(json_string_value(json_object_get(
                          json_array_get(json_object_get(e, "features"), 0), "deinit")),
                      "ok");
        } else {
            CHECK(json_is_false(json_object_get(e, "ok")));
            CHECK(strstr(json_string_value(json_object_get(e, "error")), "'mark'") != NULL);
        }
    }
    json_decref(r.results);
    json_decref(o);
    /* The recovery journaled each step it ran before it began. */
    struct vm_journal_records all;
    char *err = NULL;
    CHECK_INT(vm_journal_read_dir(dir, &all, &err), ==, 0);
    long began = -1, ended = -1;
    for (size_t k = 0; k < all.n; k++) {
        const struct vm_journal_record *x = &all.v[k];
        if (!x->uuid || strcmp(x->uuid, "u1") != 0 || !x->of_run)
            continue;
        if (x->kind == VM_JOURNAL_KIND_STEP_STARTED && began < 0)
            began = (long)k;
        if (x->kind == VM_JOURNAL_KIND_DEINIT_DONE)
            ended = (long)k;
    }
    vm_journal_records_clear(&all);
    CHECK_INT(began, >=, 0);
    CHECK_INT(ended, >, began);
    o = owed_now();
    CHECK_STR(owes(o, "u1"), ""); /* done once, never again */
    CHECK_STR(owes(o, "u7"), "");
    CHECK_STR(owes(o, "u3"), "after"); /* still owed until its policy is given */
    CHECK_STR(owes(o, "u5"), "deinit");
    CHECK_INT(json_array_size(o), ==, 2);
    json_decref(o);
}

/* Nothing owed: done runs at once, nothing is written. */
static void test_nothing_owed(void)
{
    json_t *none = json_array();
    struct result r = {0};
    vm_owed_run(&loop, dir, NULL, none, NULL, NULL, done, &r);
    CHECK_INT(r.calls, ==, 1);
    CHECK_INT(r.failed, ==, 0);
    json_decref(r.results);
    json_decref(none);
}

/* A built-in runs its owed step without a policy: u9's vdp (rolled back,
 * its deinit owed) runs, fails here (no 802.1Qbg interface to
 * deassociate), and is journaled as ran: an operator takes it. */
static void test_builtin_without_policy(void)
{
    crashed_runs();
    static const char *const run3[] = {
        STARTED(R3, "u9", "vdp"),
        REC(R3, "u9", "finished", ",\"result\":\"rolled-back\",\"location\":\"source\""),
        NULL,
    };
    journal(R3, run3);
    json_t *o = owed_now();
    CHECK_STR(owes(o, "u9"), "deinit");
    json_t *u9 = json_array(), *e;
    size_t i;
    json_array_foreach(o, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "uuid")), "u9") == 0)
            json_array_append(u9, e);
    }
    struct result r = {0};
    vm_owed_run(&loop, dir, NULL, u9, NULL, NULL, done, &r);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.calls, ==, 1);
    CHECK_INT(r.failed, ==, 1);
    json_t *f9 = json_array_get(json_object_get(json_array_get(r.results, 0), "features"), 0);
    CHECK_STR(json_string_value(json_object_get(f9, "name")), "vdp");
    CHECK_CONTAINS(json_string_value(json_object_get(f9, "deinit")), "failed: vdp: no ");
    json_decref(r.results);
    json_decref(u9);
    json_decref(o);
    o = owed_now();
    CHECK_STR(owes(o, "u9"), "");
    CHECK_STR(owes(o, "u1"), "deinit"); /* the others are left as they were */
    json_decref(o);
}

/* Each case: its own journal directory and loop. */
static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/vmm-test-owed-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    CHECK_INT(uv_loop_init(&loop), ==, 0);
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
    char *cmd = xasprintf("rm -rf '%s'", dir);
    CHECK_INT(system(cmd), ==, 0);
    free(cmd);
}

static const struct vm_test tests[] = {
    VM_TEST(test_owed_steps),
    VM_TEST(test_run_without_policy),
    VM_TEST(test_nothing_owed),
    VM_TEST(test_builtin_without_policy),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup, .teardown = teardown};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
