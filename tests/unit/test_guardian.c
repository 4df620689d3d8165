/* SPDX-License-Identifier: MIT */
/* test_guardian.c — when the guardian ends a run (run/guardian.c), from
 * journal records as the run writes them: a gated migration open with a
 * stale heartbeat or a run gone, a gate held past its budget and grace; not
 * for urgent (peer-to-peer) migrations, decided or finished ones, or records
 * about earlier runs. */
#include "runner.h"
#include "journal/journal.h"
#include "run/guardian.h"

static void rec(struct vm_guardian_watch *w, const char *json, uint64_t now)
{
    struct vm_journal_record r;
    CHECK_INT(vm_journal_parse_line(json, &r), ==, 0);
    vm_guardian_watch_record(w, &r, now);
    json_decref(r.json);
}

#define STARTED_GATED                                                                              \
    "{\"record\":\"started\",\"vm\":\"web1\",\"uuid\":\"u1\",\"gated\":true,"                      \
    "\"decision\":{\"gate_timeout_ms\":5000}}"

static void expect_none(struct vm_guardian_watch *w, uint64_t now, uint64_t age, bool gone)
{
    char *why = vm_guardian_verdict(w, now, age, gone);
    if (why)
        CHECK_FAIL("unexpected verdict: %s", why);
}

static void expect(struct vm_guardian_watch *w, uint64_t now, uint64_t age, bool gone,
                   const char *part)
{
    char *why = vm_guardian_verdict(w, now, age, gone);
    CHECK_CONTAINS(why, part);
    CHECK_CONTAINS(why, "web1");
    free(why);
}

static void test_healthy_run_left_alone(void)
{
    struct vm_guardian_watch w = {0};
    expect_none(&w, 1000, 0, false);
    expect_none(&w, 1000, 0, true); /* nothing open: a run that ended */
    rec(&w, STARTED_GATED, 1000);
    expect_none(&w, 1500, 100, false);
    rec(&w, "{\"record\":\"gate-reached\",\"uuid\":\"u1\"}", 2000);
    expect_none(&w, 2000 + 5000 + VM_GUARDIAN_GRACE_MS, 100, false); /* at the limit */
    rec(&w, "{\"record\":\"commit-decided\",\"uuid\":\"u1\"}", 3000);
    expect_none(&w, 60000, 100, false); /* decided: the gate's hold is over */
    rec(&w, "{\"record\":\"finished\",\"uuid\":\"u1\"}", 3500);
    expect_none(&w, 60000, 60000, true);
    vm_guardian_watch_clear(&w);
}

static void test_stale_heartbeat(void)
{
    struct vm_guardian_watch w = {0};
    rec(&w, STARTED_GATED, 1000);
    expect_none(&w, 1000, VM_GUARDIAN_STALE_MS - 1, false);
    expect(&w, 1000, VM_GUARDIAN_STALE_MS, false, "has not answered for");
    rec(&w, "{\"record\":\"gate-reached\",\"uuid\":\"u1\"}", 2000);
    expect(&w, 2000, VM_GUARDIAN_STALE_MS + 5, false, "at its gate");
    vm_guardian_watch_clear(&w);
}

static void test_run_gone(void)
{
    struct vm_guardian_watch w = {0};
    rec(&w, STARTED_GATED, 1000);
    expect(&w, 1000, 0, true, "the run ended with");
    vm_guardian_watch_clear(&w);
}

static void test_gate_past_budget(void)
{
    struct vm_guardian_watch w = {0};
    rec(&w, STARTED_GATED, 1000);
    rec(&w, "{\"record\":\"gate-reached\",\"uuid\":\"u1\"}", 2000);
    expect(&w, 2000 + 5000 + VM_GUARDIAN_GRACE_MS + 1, 100, false, "beyond its budget of 5000");
    vm_guardian_watch_clear(&w);
}

static void test_default_budget(void)
{
    struct vm_guardian_watch w = {0};
    rec(&w, "{\"record\":\"started\",\"vm\":\"web1\",\"uuid\":\"u1\",\"gated\":true}", 0);
    rec(&w, "{\"record\":\"gate-reached\",\"uuid\":\"u1\"}", 1000);
    expect_none(&w, 1000 + 30000, 100, false);
    expect(&w, 1000 + 30000 + VM_GUARDIAN_GRACE_MS + 1, 100, false, "budget of 30000");
    vm_guardian_watch_clear(&w);
}

static void test_not_the_guardians_business(void)
{
    struct vm_guardian_watch w = {0};
    /* urgent: peer-to-peer, libvirt goes on without us */
    rec(&w, "{\"record\":\"started\",\"vm\":\"db1\",\"uuid\":\"u2\",\"gated\":false}", 1000);
    expect_none(&w, 1000, 60000, true);
    /* about an earlier run; unknown records; records without a uuid */
    rec(&w, "{\"record\":\"started\",\"vm\":\"x\",\"uuid\":\"u3\",\"gated\":true,\"of_run\":\"r\"}",
        1000);
    rec(&w, "{\"record\":\"gate-reached\",\"uuid\":\"u9\"}", 1000);
    rec(&w, "{\"record\":\"started\",\"gated\":true}", 1000);
    rec(&w, "{\"uuid\":\"u1\"}", 1000);
    expect_none(&w, 1000, 60000, true);
    /* a retry restarts the same VM: the later attempt counts */
    rec(&w, STARTED_GATED, 1000);
    rec(&w, "{\"record\":\"finished\",\"uuid\":\"u1\"}", 1000);
    expect_none(&w, 1000, 60000, true);
    rec(&w, STARTED_GATED, 2000);
    expect(&w, 2000, 0, true, "the run ended with");
    vm_guardian_watch_clear(&w);
    vm_guardian_watch_clear(&w);
}

static const struct vm_test tests[] = {
    VM_TEST(test_healthy_run_left_alone),
    VM_TEST(test_stale_heartbeat),
    VM_TEST(test_run_gone),
    VM_TEST(test_gate_past_budget),
    VM_TEST(test_default_budget),
    VM_TEST(test_not_the_guardians_business),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
