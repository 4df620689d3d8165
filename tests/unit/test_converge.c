/* SPDX-License-Identifier: MIT */
/* test_converge.c — the convergence verdict (migrate/converge.h) from
 * sequences of job stats: a migration that converges is never flagged; one
 * whose dirty rate keeps up with the transfer, or whose remaining stops
 * shrinking, is flagged after `window` iterations in a row and reported
 * once; the verdict follows the iterations (it clears when one converges
 * again, without a second report); the bulk copy and repeated samples of one
 * iteration do not count. */
#include "runner.h"
#include "migrate/converge.h"
#include "util/util.h"

#define MIB (1024ull * 1024ull)

/* One sample and what feeding it must give. */
struct step {
    struct vm_converge_sample s;
    bool report;         /* vm_converge_feed's answer */
    bool not_converging; /* the verdict after it */
};

static void run_steps(int window, const struct step *steps, int n)
{
    struct vm_converge c;
    vm_converge_init(&c, window);
    int reports = 0;
    for (int i = 0; i < n; i++) {
        bool got = vm_converge_feed(&c, &steps[i].s);
        if (got != steps[i].report || c.not_converging != steps[i].not_converging)
            CHECK_FAIL("step %d (iteration %llu): reported %d, verdict %d; want %d, %d", i + 1,
                       (unsigned long long)steps[i].s.iteration, got, c.not_converging,
                       steps[i].report, steps[i].not_converging);
        if (got) {
            reports++;
            CHECK_INT(c.at.iteration, ==, steps[i].s.iteration);
            CHECK_INT(c.at.dirty_bps, ==, steps[i].s.dirty_bps);
        }
    }
    CHECK_INT(reports, <=, 1);
}

/* Dirty rate far below the transfer, remaining shrinking: never flagged. */
static void test_converge_converging(void)
{
    const struct step steps[] = {
        {{1, 900 * MIB, 100 * MIB, 0}, false, false},
        {{1, 500 * MIB, 100 * MIB, 0}, false, false},
        {{2, 60 * MIB, 100 * MIB, 10 * MIB}, false, false},
        {{3, 20 * MIB, 100 * MIB, 10 * MIB}, false, false},
        {{4, 5 * MIB, 100 * MIB, 10 * MIB}, false, false},
        {{5, 1 * MIB, 100 * MIB, 10 * MIB}, false, false},
    };
    run_steps(0, steps, (int)VM_ARRAY_LEN(steps));
}

/* The guest dirties as fast as the link sends (or faster), from iteration
 * 2 on: flagged at the third such iteration, reported once; more samples,
 * further iterations report nothing more. The bulk copy's dirty rate (it
 * has none that counts) is ignored. */
static void test_converge_dirty_keeps_up(void)
{
    const struct step steps[] = {
        {{1, 900 * MIB, 10 * MIB, 50 * MIB}, false, false},
        {{2, 300 * MIB, 10 * MIB, 12 * MIB}, false, false},
        {{2, 280 * MIB, 10 * MIB, 12 * MIB}, false, false}, /* same iteration: once */
        {{3, 200 * MIB, 10 * MIB, 9 * MIB}, false, false},  /* 90 %: keeps up */
        {{4, 150 * MIB, 10 * MIB, 11 * MIB}, true, true},
        {{4, 150 * MIB, 10 * MIB, 11 * MIB}, false, true},
        {{5, 150 * MIB, 10 * MIB, 11 * MIB}, false, true},
    };
    run_steps(0, steps, (int)VM_ARRAY_LEN(steps));
}

/* No dirty rate from libvirt, but what remains at each iteration's start
 * shrinks by less than 5 %: flagged once three iterations show it (the
 * first iteration after the bulk copy has nothing to compare with). */
static void test_converge_remaining_stuck(void)
{
    const struct step steps[] = {
        {{2, 100 * MIB, 10 * MIB, 0}, false, false},
        {{3, 99 * MIB, 10 * MIB, 0}, false, false},
        {{4, 101 * MIB, 10 * MIB, 0}, false, false},
        {{5, 97 * MIB, 10 * MIB, 0}, true, true},
    };
    run_steps(0, steps, (int)VM_ARRAY_LEN(steps));
}

/* An iteration that converges breaks the run of stuck ones; once flagged,
 * one that converges clears the verdict, and a later stuck run flags it
 * again without a second report. An iteration jump counts once. */
static void test_converge_recovers(void)
{
    const struct step steps[] = {
        {{2, 100 * MIB, 10 * MIB, 10 * MIB}, false, false},
        {{3, 100 * MIB, 10 * MIB, 10 * MIB}, false, false},
        {{4, 40 * MIB, 10 * MIB, 2 * MIB}, false, false}, /* converges: 0 in a row */
        {{5, 40 * MIB, 10 * MIB, 10 * MIB}, false, false},
        {{6, 40 * MIB, 10 * MIB, 10 * MIB}, false, false},
        {{9, 40 * MIB, 10 * MIB, 10 * MIB}, true, true}, /* 7, 8 unseen: one iteration */
        {{10, 10 * MIB, 10 * MIB, 1 * MIB}, false, false},
        {{11, 10 * MIB, 10 * MIB, 10 * MIB}, false, false},
        {{12, 10 * MIB, 10 * MIB, 10 * MIB}, false, false},
        {{13, 10 * MIB, 10 * MIB, 10 * MIB}, false, true},
    };
    run_steps(0, steps, (int)VM_ARRAY_LEN(steps));
}

/* A window of one: the first stuck iteration decides; an unknown iteration
 * (0) is never judged. */
static void test_converge_window(void)
{
    const struct step steps[] = {
        {{0, 100 * MIB, 10 * MIB, 20 * MIB}, false, false},
        {{2, 100 * MIB, 10 * MIB, 20 * MIB}, true, true},
    };
    run_steps(1, steps, (int)VM_ARRAY_LEN(steps));
    struct vm_converge c;
    vm_converge_init(&c, -3);
    CHECK_INT(c.window, ==, VM_CONVERGE_WINDOW);
}

static const struct vm_test tests[] = {
    VM_TEST(test_converge_converging),      VM_TEST(test_converge_dirty_keeps_up),
    VM_TEST(test_converge_remaining_stuck), VM_TEST(test_converge_recovers),
    VM_TEST(test_converge_window),          {0},
};
static const struct vm_test_suite suite = {.tests = tests};
int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
