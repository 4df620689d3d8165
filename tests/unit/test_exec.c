/* SPDX-License-Identifier: MIT */
/* test_exec.c — commands on hosts (exec.c): local runs, exit status,
 * timeouts, output limits, start failures, executors per URI, commands
 * that do not outlive a SIGKILLed vmmigrate, and the loop closing cleanly. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "runner.h"
#include "util/exec.h"
#include "util/util.h"

static uv_loop_t loop;

struct res {
    int calls;
    int64_t status;
    int signal;
    bool timed_out;
    char *out, *err, *error;
    size_t out_len;
};

static void cb(const struct vm_exec_result *r, void *data)
{
    struct res *x = data;
    x->calls++;
    x->status = r->status;
    x->signal = r->signal;
    x->timed_out = r->timed_out;
    x->out = xstrdup(r->out);
    x->err = xstrdup(r->err);
    x->out_len = r->out_len;
    x->error = r->error ? xstrdup(r->error) : NULL;
}

static struct res run(const char *uri, const char *const *argv, uint64_t timeout)
{
    struct res x = {0};
    vm_exec_start(&loop, NULL, uri, argv, timeout, cb, &x);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(x.calls, ==, 1);
    return x;
}

static void res_free(struct res *x)
{
    free(x->out);
    free(x->err);
    free(x->error);
}

static void test_local(void)
{
    const char *echo[] = {"echo", "hello", "it's", NULL};
    struct res x = run("qemu:///system", echo, 5000);
    CHECK_INT(x.status, ==, 0);
    CHECK_STR(x.out, "hello it's\n");
    res_free(&x);

    const char *fail[] = {"sh", "-c", "echo oops >&2; exit 3", NULL};
    x = run("qemu+unix:///system?socket=/x", fail, 5000);
    CHECK_INT(x.status, ==, 3);
    CHECK_STR(x.err, "oops\n");
    res_free(&x);
}

static void test_timeout_and_limits(void)
{
    const char *slow[] = {"sleep", "10", NULL};
    uint64_t t0 = uv_hrtime();
    struct res x = run("test:///default", slow, 100);
    CHECK(x.timed_out);
    CHECK_INT(x.signal, ==, 9);
    CHECK_INT((uv_hrtime() - t0) / 1000000, <, 5000);
    res_free(&x);

    const char *big[] = {"head", "-c", "300000", "/dev/zero", NULL};
    x = run("qemu:///system", big, 5000);
    CHECK_INT(x.status, ==, 0);
    CHECK_INT(x.out_len, ==, VM_EXEC_MAX_OUTPUT);
    res_free(&x);

    const char *missing[] = {"/nonexistent/tool", NULL};
    x = run("qemu:///system", missing, 5000);
    CHECK_INT(x.status, ==, -1);
    CHECK_CONTAINS(x.error, "cannot run '/nonexistent/tool'");
    res_free(&x);
}

/* vm_exec_argv(HOSTS, URI, ARGV) is exactly WANT. */
static void check_argv(const struct vm_exec_hosts *hosts, const char *uri, const char *const *argv,
                       const char *const *want)
{
    char *why = NULL;
    char **v = vm_exec_argv(hosts, uri, argv, &why);
    CHECK(v);
    int i = 0;
    for (; want[i]; i++)
        CHECK_STR(v[i], want[i]);
    CHECK(!v[i]);
    vm_exec_argv_free(v);
}

static void test_executors(void)
{
    const char *argv[] = {"vdptool", "-i", "eth0", "it's", NULL};
    char *why = NULL;
    const char *want[] = {"ssh", "-o",        "BatchMode=yes", "-p",     "2222",       "root@hv12",
                          "--",  "'vdptool'", "'-i'",          "'eth0'", "'it'\\''s'", NULL};
    check_argv(NULL, "qemu+ssh://root@hv12:2222/system", argv, want);

    char **v = vm_exec_argv(NULL, "qemu+tcp://hv12/system", argv, &why);
    CHECK(!v);
    CHECK_CONTAINS(why, "no executor for host 'qemu+tcp://hv12/system'");
    free(why);

    const char *specs[] = {"qemu+tcp://hv12/system=ip netns exec st-b",
                           "qemu+tcp://hv12/system=ignored: the first wins", NULL};
    CHECK(vm_exec_override_valid(specs[0]));
    CHECK(!vm_exec_override_valid("=x"));
    CHECK(!vm_exec_override_valid("uri="));
    struct vm_exec_hosts *hosts = vm_exec_hosts_new(specs);
    CHECK_STR(vm_exec_hosts_lookup(hosts, "qemu+tcp://hv12/system"), "ip netns exec st-b");
    CHECK(!vm_exec_hosts_lookup(hosts, "qemu+tcp://hv1/system"));
    CHECK(!vm_exec_hosts_lookup(NULL, "qemu+tcp://hv12/system"));
    v = vm_exec_argv(hosts, "qemu+tcp://hv12/system", argv, &why);
    CHECK(v);
    CHECK_STR(v[0], "ip");
    CHECK_STR(v[3], "st-b");
    CHECK_STR(v[4], "vdptool");
    CHECK_STR(v[7], "it's");
    vm_exec_argv_free(v);
    vm_exec_hosts_free(hosts);
    /* URIs have '=' in them: the override is URI "=" PREFIX */
    const char *specs2[] = {"qemu+unix:///system?socket=/x/sock=/lab/vdp.sh exec b --", NULL};
    hosts = vm_exec_hosts_new(specs2);
    v = vm_exec_argv(hosts, "qemu+unix:///system?socket=/x/sock", argv, &why);
    CHECK(v);
    CHECK_STR(v[0], "/lab/vdp.sh");
    CHECK_STR(v[2], "b");
    CHECK_STR(v[4], "vdptool");
    vm_exec_argv_free(v);
    vm_exec_hosts_free(hosts);
    vm_exec_hosts_free(NULL);

    /* A PREFIX running ssh: the remote shell reads ARGV, quoted as for an
     * ssh URI; any other PREFIX gets ARGV as it is. */
    const char *inject[] = {"vdptool", "a b;touch /tmp/x", NULL};
    const char *specs3[] = {"qemu+tcp://hv12/system=ssh -p 22 root@h",
                            "qemu+tcp://hv13/system=/usr/bin/ssh root@h",
                            "qemu+tcp://hv14/system=ip netns exec ns1", NULL};
    hosts = vm_exec_hosts_new(specs3);
    const char *want_ssh[] = {"ssh", "-p", "22", "root@h", "'vdptool'", "'a b;touch /tmp/x'", NULL};
    check_argv(hosts, "qemu+tcp://hv12/system", inject, want_ssh);
    const char *want_path[] = {"/usr/bin/ssh", "root@h", "'vdptool'", "'a b;touch /tmp/x'", NULL};
    check_argv(hosts, "qemu+tcp://hv13/system", inject, want_path);
    const char *want_ns[] = {"ip", "netns", "exec", "ns1", "vdptool", "a b;touch /tmp/x", NULL};
    check_argv(hosts, "qemu+tcp://hv14/system", inject, want_ns);
    vm_exec_hosts_free(hosts);

    const char *echo[] = {"echo", "x", NULL};
    struct res x = run("qemu+tcp://hv12/system", echo, 1000);
    CHECK_INT(x.status, ==, -1);
    CHECK_CONTAINS(x.error, "no executor");
    res_free(&x);
}

/* Is process pid gone (or a zombie: dead, not yet reaped)? */
static bool gone(pid_t pid)
{
    return !vm_process_alive((long)pid);
}

/* A feature step's command must die with vmmigrate (kill -9): else it could
 * undo, after the crash, what the recovery settled. */
static void test_dies_with_us(void)
{
    char pidfile[] = "/tmp/vmm-test-exec-XXXXXX";
    int fd = mkstemp(pidfile);
    CHECK(fd >= 0);
    close(fd);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        uv_loop_t l;
        uv_loop_init(&l);
        char *script = xasprintf("echo $$ > %s; exec sleep 60", pidfile);
        const char *argv[] = {"/bin/sh", "-c", script, NULL};
        struct res x = {0};
        vm_exec_start(&l, NULL, "qemu:///system", argv, 120000, cb, &x);
        uv_run(&l, UV_RUN_DEFAULT);
        _exit(0);
    }
    pid_t cmd = 0;
    for (int i = 0; i < 100 && cmd <= 0; i++) {
        usleep(50 * 1000);
        FILE *f = fopen(pidfile, "re");
        if (f) {
            if (fscanf(f, "%d", &cmd) != 1)
                cmd = 0;
            fclose(f);
        }
    }
    CHECK_INT(cmd, >, 0);
    CHECK(!gone(cmd));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    bool died = false;
    for (int i = 0; i < 100 && !died; i++) {
        died = gone(cmd);
        if (!died)
            usleep(20 * 1000);
    }
    if (!died)
        kill(cmd, SIGKILL);
    unlink(pidfile);
    CHECK(died);
}

/* The same query of the same machine, asked by several callers at once,
 * runs once (vm_exec_start_shared): each caller gets the one answer; a
 * different question, or the same one asked after the answer came, runs
 * again; one caller giving up does not kill what another still waits for;
 * the share may go before its commands do. */
static void test_shared(void)
{
    struct vm_exec_share *sh = vm_exec_share_new();
    const char *pid[] = {"sh", "-c", "echo $$; sleep 0.3", NULL};
    const char *other[] = {"sh", "-c", "echo $$; sleep 0.3", "other", NULL};
    struct res x[4] = {{0}};
    /* test:/// and qemu:/// both run here: the same command line */
    CHECK(vm_exec_start_shared(sh, &loop, NULL, "test:///a", pid, 5000, cb, &x[0]));
    CHECK(vm_exec_start_shared(sh, &loop, NULL, "qemu:///system", pid, 5000, cb, &x[1]));
    CHECK(vm_exec_start_shared(sh, &loop, NULL, "test:///b", pid, 5000, cb, &x[2]));
    CHECK(vm_exec_start_shared(sh, &loop, NULL, "test:///a", other, 5000, cb, &x[3]));
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(x[i].calls, ==, 1);
        CHECK_INT(x[i].status, ==, 0);
    }
    CHECK_STR(x[1].out, x[0].out);
    CHECK_STR(x[2].out, x[0].out);
    CHECK(strcmp(x[3].out, x[0].out) != 0);
    long started, joined;
    vm_exec_share_counts(sh, &started, &joined);
    CHECK_INT(started, ==, 2);
    CHECK_INT(joined, ==, 2);

    /* Asked again after the answer: a new process. */
    struct res again = {0};
    CHECK(vm_exec_start_shared(sh, &loop, NULL, "test:///a", pid, 5000, cb, &again));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(again.calls, ==, 1);
    CHECK(strcmp(again.out, x[0].out) != 0);
    res_free(&again);
    for (int i = 0; i < 4; i++)
        res_free(&x[i]);

    /* One of two gives up: the other still gets the whole answer. */
    const char *slow[] = {"sh", "-c", "sleep 0.3; echo done", NULL};
    struct res a = {0}, b = {0};
    struct vm_exec *ea = vm_exec_start_shared(sh, &loop, NULL, "test:///a", slow, 5000, cb, &a);
    struct vm_exec *eb = vm_exec_start_shared(sh, &loop, NULL, "test:///a", slow, 5000, cb, &b);
    CHECK(ea && ea == eb);
    vm_exec_kill(ea);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(a.calls, ==, 1);
    CHECK_INT(b.calls, ==, 1);
    CHECK_INT(b.signal, ==, 0);
    CHECK_STR(b.out, "done\n");
    res_free(&a);
    res_free(&b);
    a = b = (struct res){0};

    /* Both give up: it is killed. */
    const char *sleepy[] = {"sleep", "10", NULL};
    ea = vm_exec_start_shared(sh, &loop, NULL, "test:///a", sleepy, 20000, cb, &a);
    eb = vm_exec_start_shared(sh, &loop, NULL, "test:///a", sleepy, 20000, cb, &b);
    vm_exec_kill(ea);
    vm_exec_kill(eb);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(a.signal, ==, 9);
    CHECK_INT(b.signal, ==, 9);
    res_free(&a);
    res_free(&b);
    a = b = (struct res){0};

    /* The share goes first; its command still reports; NULL shares nothing. */
    CHECK(vm_exec_start_shared(sh, &loop, NULL, "test:///a", pid, 5000, cb, &a));
    vm_exec_share_free(sh);
    CHECK(vm_exec_start_shared(NULL, &loop, NULL, "test:///a", pid, 5000, cb, &b));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(a.calls, ==, 1);
    CHECK_INT(b.calls, ==, 1);
    CHECK(strcmp(a.out, b.out) != 0);
    res_free(&a);
    res_free(&b);
}

static void setup(void)
{
    CHECK_INT(uv_loop_init(&loop), ==, 0);
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
}

static const struct vm_test tests[] = {
    VM_TEST(test_local),     VM_TEST(test_timeout_and_limits),
    VM_TEST(test_executors), VM_TEST(test_dies_with_us),
    VM_TEST(test_shared),    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup, .teardown = teardown};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
