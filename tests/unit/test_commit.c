/* SPDX-License-Identifier: MIT */
/* test_commit.c — the commit gate's decision path (migrate/commit.c) on a
 * real libuv loop, with recording ops in place of a backend: the order of
 * announce, cancel, record and carry-out; one decision whoever asks; the
 * budget; a commit that cannot be recorded becomes a rollback; a decision
 * before the gate steps start; steps started again after a prepare. Every
 * case ends with the loop closing cleanly. */
#include <uv.h>

#include "runner.h"
#include "migrate/commit.h"
#include "util/util.h"

struct owner {
    char log[512];
    int steps_calls;
    bool steps_result; /* what ops->steps answers */
    bool record_ok;
    bool carried, carried_commit;
    char reason[256];
    uint64_t held_ms;
    struct vm_commit *c;
};

static void logf_(struct owner *o, const char *what)
{
    size_t n = strlen(o->log);
    snprintf(o->log + n, sizeof(o->log) - n, "%s%s", n ? " " : "", what);
}

static bool op_steps(void *data)
{
    struct owner *o = data;
    o->steps_calls++;
    logf_(o, "steps");
    return o->steps_result;
}

static void op_cancel(void *data)
{
    logf_(data, "cancel");
}

static void op_announce(void *data, bool commit, const char *reason, uint64_t held_ms)
{
    struct owner *o = data;
    logf_(o, commit ? "announce:commit" : "announce:rollback");
    o->held_ms = held_ms;
    (void)reason;
}

static bool op_record(void *data, bool commit, const char *reason)
{
    struct owner *o = data;
    logf_(o, commit ? "record:commit" : "record:rollback");
    (void)reason;
    return o->record_ok;
}

static void op_carry_out(void *data, bool commit, const char *reason)
{
    struct owner *o = data;
    logf_(o, commit ? "carry:commit" : "carry:rollback");
    o->carried = true;
    o->carried_commit = commit;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
}

static const struct vm_commit_ops ops = {
    .steps = op_steps,
    .cancel = op_cancel,
    .announce = op_announce,
    .record = op_record,
    .carry_out = op_carry_out,
};

static void finish(uv_loop_t *loop, struct owner *o)
{
    vm_commit_free(o->c);
    vm_commit_free(NULL);
    CHECK_INT(uv_run(loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_INT(uv_loop_close(loop), ==, 0);
}

static void test_no_steps_commits_at_once(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct owner o = {.steps_result = false, .record_ok = true};
    o.c = vm_commit_new(&loop, 0, &ops, &o);
    CHECK(!vm_commit_decided(o.c));
    vm_commit_enter(o.c);
    CHECK_STR(o.log, "steps announce:commit cancel record:commit carry:commit");
    CHECK(vm_commit_committed(o.c));
    CHECK_STR(o.reason, "no features to wait for");
    CHECK_STR(vm_commit_reason(o.c), "no features to wait for");
    finish(&loop, &o);
}

static void decide_commit(uv_timer_t *t)
{
    struct owner *o = t->data;
    CHECK(vm_commit_decide(o->c, true, "every required feature is ready on the target"));
    /* Whoever comes second changes nothing. */
    CHECK(!vm_commit_decide(o->c, false, "too late"));
    uv_close((uv_handle_t *)t, NULL);
}

static void test_steps_decide_once(void)
{
    uv_loop_t loop;
    uv_timer_t t;
    uv_loop_init(&loop);
    struct owner o = {.steps_result = true, .record_ok = true};
    o.c = vm_commit_new(&loop, 60000, &ops, &o);
    vm_commit_enter(o.c);
    vm_commit_enter(o.c); /* entering twice starts nothing twice */
    CHECK_INT(o.steps_calls, ==, 1);
    CHECK(!o.carried);
    uv_timer_init(&loop, &t);
    t.data = &o;
    uv_timer_start(&t, decide_commit, 20, 0);
    /* The budget's timer must not keep the loop alive once decided. */
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_STR(o.log, "steps announce:commit cancel record:commit carry:commit");
    CHECK(o.carried && o.carried_commit);
    CHECK_STR(o.reason, "every required feature is ready on the target");
    CHECK_INT(vm_commit_held_ms(o.c), >=, 15);
    CHECK_INT(vm_commit_held_ms(o.c), ==, o.held_ms);
    vm_commit_steps(o.c); /* decided: starts nothing */
    CHECK_INT(o.steps_calls, ==, 1);
    finish(&loop, &o);
}

static void test_budget_rolls_back(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct owner o = {.steps_result = true, .record_ok = true};
    o.c = vm_commit_new(&loop, 50, &ops, &o);
    vm_commit_enter(o.c);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_STR(o.log, "steps announce:rollback cancel record:rollback carry:rollback");
    CHECK(o.carried && !o.carried_commit);
    CHECK_CONTAINS(o.reason, "the gate budget of ");
    CHECK_CONTAINS(o.reason, " ms ran out before every required feature was ready");
    CHECK_INT(o.held_ms, >=, 50);
    finish(&loop, &o);
}

static void test_unrecorded_commit_rolls_back(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct owner o = {.steps_result = false, .record_ok = false};
    o.c = vm_commit_new(&loop, 0, &ops, &o);
    vm_commit_enter(o.c);
    CHECK_STR(o.log, "steps announce:commit cancel record:commit record:rollback carry:rollback");
    CHECK(!vm_commit_committed(o.c));
    CHECK_STR(o.reason, "the commit decision could not be recorded in the journal");
    finish(&loop, &o);
}

static void test_unrecorded_rollback_still_rolls_back(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct owner o = {.steps_result = true, .record_ok = false};
    o.c = vm_commit_new(&loop, 0, &ops, &o);
    vm_commit_enter(o.c);
    CHECK(vm_commit_decide(o.c, false, "feature 'vdp' gate: rejected"));
    CHECK_STR(o.log, "steps announce:rollback cancel record:rollback carry:rollback");
    CHECK_STR(o.reason, "feature 'vdp' gate: rejected");
    finish(&loop, &o);
}

static void test_decided_before_enter(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct owner o = {.steps_result = true, .record_ok = true};
    o.c = vm_commit_new(&loop, 0, &ops, &o);
    CHECK(vm_commit_decide(o.c, false, "interrupted"));
    vm_commit_enter(o.c); /* too late: no steps, no budget */
    CHECK_INT(o.steps_calls, ==, 0);
    CHECK_STR(o.log, "announce:rollback cancel record:rollback carry:rollback");
    CHECK_STR(o.reason, "interrupted");
    CHECK_INT(uv_run(&loop, UV_RUN_NOWAIT), ==, 0);
    finish(&loop, &o);
}

static void test_steps_again_after_prepare(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct owner o = {.steps_result = true, .record_ok = true};
    o.c = vm_commit_new(&loop, 0, &ops, &o);
    vm_commit_steps(o.c); /* before the gate is entered: nothing */
    CHECK_INT(o.steps_calls, ==, 0);
    vm_commit_enter(o.c); /* a prepare still runs: the owner waits */
    CHECK_INT(o.steps_calls, ==, 1);
    o.steps_result = false; /* the prepare ended; nothing left to wait for */
    vm_commit_steps(o.c);
    CHECK_INT(o.steps_calls, ==, 2);
    CHECK(vm_commit_committed(o.c));
    finish(&loop, &o);
}

static const struct vm_commit_ops minimal_ops = {.carry_out = op_carry_out};

static void test_minimal_ops(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct owner o = {0};
    o.c = vm_commit_new(&loop, 0, &minimal_ops, &o);
    vm_commit_enter(o.c);
    CHECK_STR(o.log, "carry:commit");
    CHECK_STR(o.reason, "no features to wait for");
    CHECK(!vm_commit_decide(NULL, true, "x"));
    CHECK(!vm_commit_decided(NULL));
    finish(&loop, &o);
}

static const struct vm_test tests[] = {
    VM_TEST(test_no_steps_commits_at_once),
    VM_TEST(test_steps_decide_once),
    VM_TEST(test_budget_rolls_back),
    VM_TEST(test_unrecorded_commit_rolls_back),
    VM_TEST(test_unrecorded_rollback_still_rolls_back),
    VM_TEST(test_decided_before_enter),
    VM_TEST(test_steps_again_after_prepare),
    VM_TEST(test_minimal_ops),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
