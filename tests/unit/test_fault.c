/* SPDX-License-Identifier: MIT */
/* test_fault.c — named fault points (util/fault.c): each case runs in a
 * child process with its own VMM_FAULT, since the specification is read
 * once per process. kill and stop act on the process itself; fail@N fires
 * only the Nth time; sleep blocks; a malformed specification is named. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "util/fault.h"
#include "util/util.h"

/* Run fn in a child with VMM_FAULT=spec; returns the wait status
 * (WUNTRACED: a stopped child is reported, then continued). */
static int in_child(const char *spec, int (*fn)(void), bool *was_stopped)
{
    pid_t pid = fork();
    CHECK_INT(pid, >=, 0);
    if (pid == 0) {
        if (spec)
            setenv("VMM_FAULT", spec, 1);
        else
            unsetenv("VMM_FAULT");
        _exit(fn());
    }
    int st;
    if (was_stopped)
        *was_stopped = false;
    for (;;) {
        CHECK_INT(waitpid(pid, &st, WUNTRACED), ==, pid);
        if (!WIFSTOPPED(st))
            return st;
        if (was_stopped)
            *was_stopped = true;
        kill(pid, SIGCONT);
    }
}

static int reach_a_then_exit_7(void)
{
    vm_fault("other");
    vm_fault("a");
    return 7;
}

static void test_unset_does_nothing(void)
{
    bool stopped;
    int st = in_child(NULL, reach_a_then_exit_7, &stopped);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), ==, 7);
    CHECK(!stopped);
}

static void test_kill(void)
{
    int st = in_child("a:kill", reach_a_then_exit_7, NULL);
    CHECK(WIFSIGNALED(st));
    CHECK_INT(WTERMSIG(st), ==, SIGKILL);
}

static void test_kill_other_point_only(void)
{
    int st = in_child("b:kill", reach_a_then_exit_7, NULL);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), ==, 7);
}

static void test_stop_then_continue(void)
{
    bool stopped;
    int st = in_child("a:stop", reach_a_then_exit_7, &stopped);
    CHECK(stopped);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), ==, 7);
}

/* Exit status: the number of the call (1..5) that failed, 0 if none did. */
static int which_call_fails(void)
{
    int failed = 0;
    for (int i = 1; i <= 5; i++)
        if (vm_fault("w") && !failed)
            failed = i;
    return failed;
}

static void test_fail_nth(void)
{
    int st = in_child("w:fail@3", which_call_fails, NULL);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), ==, 3);
    st = in_child("x:fail,w:fail", which_call_fails, NULL);
    CHECK_INT(WEXITSTATUS(st), ==, 1);
}

static int sleep_ms_taken(void)
{
    uint64_t t0 = vm_mono_ms();
    vm_fault("s");
    return (int)((vm_mono_ms() - t0) / 100); /* tenths of a second */
}

static void test_sleep(void)
{
    int st = in_child("s:sleep=300", sleep_ms_taken, NULL);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), >=, 3);
}

static int check_spec(void)
{
    char *err = vm_fault_check();
    int rc = err ? 1 : 0;
    if (err)
        fprintf(stderr, "%s\n", err);
    if (err && !strstr(err, "'a:explode'"))
        rc = 2;
    free(err);
    /* A bad specification arms nothing. */
    vm_fault("a");
    return rc;
}

static void test_bad_spec_named(void)
{
    int st = in_child("ok:kill,a:explode", check_spec, NULL);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), ==, 1);
    st = in_child("a:kill@0", check_spec, NULL);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), ==, 2); /* named, but not as 'a:explode' */
    st = in_child(NULL, check_spec, NULL);
    CHECK_INT(WEXITSTATUS(st), ==, 0);
}

static const struct vm_test tests[] = {
    VM_TEST(test_unset_does_nothing),
    VM_TEST(test_kill),
    VM_TEST(test_kill_other_point_only),
    VM_TEST(test_stop_then_continue),
    VM_TEST(test_fail_nth),
    VM_TEST(test_sleep),
    VM_TEST(test_bad_spec_named),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
