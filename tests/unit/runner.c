/* SPDX-License-Identifier: MIT */
/* runner.c — see runner.h. */
#include "runner.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The name a case goes by: its function's, without "test_". */
static const char *case_name(const struct vm_test *t)
{
    return strncmp(t->name, "test_", 5) == 0 && t->name[5] ? t->name + 5 : t->name;
}

static const struct vm_test *find(const struct vm_test_suite *s, const char *name)
{
    for (const struct vm_test *t = s->tests; t->name; t++)
        if (strcmp(name, t->name) == 0 || strcmp(name, case_name(t)) == 0)
            return t;
    return NULL;
}

static const char *program(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');
    return slash ? slash + 1 : argv0;
}

char *vm_test_path(const char *rel)
{
    const char *src = getenv("VMM_SOURCE_DIR");
    const char *here = __FILE__, *slash = strrchr(here, '/');
    char *path = NULL;
    int n =
        src ? asprintf(&path, "%s/tests/unit/%s", src, rel)
            : asprintf(&path, "%.*s/%s", slash ? (int)(slash - here) : 1, slash ? here : ".", rel);
    if (n < 0)
        abort();
    return path;
}

json_t *vm_test_fixture(const char *rel)
{
    char *path = vm_test_path(rel);
    json_error_t e;
    json_t *fx = json_load_file(path, 0, &e);
    if (!fx)
        CHECK_FAIL("%s:%d: %s", path, e.line, e.text);
    free(path);
    return fx;
}

/* One case, here: setup, the case, teardown. Returns only if it passed. */
static void run_here(const struct vm_test_suite *s, const struct vm_test *t)
{
    fprintf(stderr, "-- %s\n", t->name);
    if (s->setup)
        s->setup();
    t->fn();
    if (s->teardown)
        s->teardown();
    fflush(NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait for CHILD until DEADLINE (now_s()); SIGCHLD is blocked. Returns its
 * wait status, or -1 if the deadline passed first. */
static int wait_until(pid_t child, double deadline)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        int status;
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child)
            return status;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "runner: waitpid: %s\n", strerror(errno));
            exit(2);
        }
        double left = deadline - now_s();
        if (left <= 0)
            return -1;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        sigtimedwait(&chld, NULL, &ts);
    }
}

/* One case in a process of its own. Returns true if it passed; prints its
 * result line. */
static bool run_child(const struct vm_test_suite *s, const struct vm_test *t, int n)
{
    int timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : VM_TEST_DEFAULT_TIMEOUT_MS;
    pid_t parent = getpid();
    fflush(NULL);
    double t0 = now_s();
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "not ok %d - %s: cannot fork: %s\n", n, case_name(t), strerror(errno));
        return false;
    }
    if (child == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* Its own group, so that a timeout takes what it started with it;
         * gone when the runner goes. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        run_here(s, t);
        exit(0);
    }
    setpgid(child, child); /* either of us may get there first */
    int status = wait_until(child, t0 + timeout_ms / 1000.0);
    double took = now_s() - t0;
    if (status == -1) {
        kill(-child, SIGKILL);
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        fprintf(stderr, "not ok %d - %s: timed out after %.1f s\n", n, case_name(t),
                timeout_ms / 1000.0);
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        fprintf(stderr, "ok %d - %s (%.2f s)\n", n, case_name(t), took);
        return true;
    }
    if (WIFEXITED(status))
        fprintf(stderr, "not ok %d - %s: exit status %d (%.2f s)\n", n, case_name(t),
                WEXITSTATUS(status), took);
    else
        fprintf(stderr, "not ok %d - %s: killed by signal %d (%s) (%.2f s)\n", n, case_name(t),
                WTERMSIG(status), strsignal(WTERMSIG(status)), took);
    return false;
}

static int run_all(const char *prog, const struct vm_test_suite *s)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int total = 0, failed = 0;
    for (const struct vm_test *t = s->tests; t->name; t++)
        total++;
    fprintf(stderr, "1..%d\n", total);
    char *names = calloc(1, 1);
    size_t len = 0;
    int n = 0;
    for (const struct vm_test *t = s->tests; t->name; t++) {
        if (run_child(s, t, ++n))
            continue;
        failed++;
        const char *name = case_name(t);
        char *more = realloc(names, len + strlen(name) + 2);
        if (!more)
            abort();
        names = more;
        len += (size_t)sprintf(names + len, "%s%s", len ? " " : "", name);
    }
    if (failed)
        fprintf(stderr, "# %s: %d of %d failed: %s\n", prog, failed, total, names);
    else
        fprintf(stderr, "# %s: all %d passed\n", prog, total);
    free(names);
    return failed ? 1 : 0;
}

int vm_test_main(int argc, char **argv, const struct vm_test_suite *s)
{
    const char *prog = program(argc > 0 ? argv[0] : "test");
    if (argc <= 1)
        return run_all(prog, s);
    if (strcmp(argv[1], "--list") == 0 && argc == 2) {
        for (const struct vm_test *t = s->tests; t->name; t++)
            printf("%s\n", case_name(t));
        return 0;
    }
    const struct vm_test *t = argc == 2 ? find(s, argv[1]) : NULL;
    if (!t) {
        if (argc == 2)
            fprintf(stderr, "%s: no case '%s'\n", prog, argv[1]);
        fprintf(stderr, "usage: %s [--list | CASE], CASE one of:\n", prog);
        for (t = s->tests; t->name; t++)
            fprintf(stderr, "  %s\n", case_name(t));
        return 2;
    }
    run_here(s, t);
    fprintf(stderr, "ok\n");
    return 0;
}
