/* SPDX-License-Identifier: MIT */
/* test_exec.c — commands on hosts (exec.c): local runs, exit status,
 * timeouts, output limits, start failures, executors per URI, commands
 * that do not outlive a SIGKILLed vmmigrate, and the loop closing cleanly. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
    VM_TEST(test_local),
    VM_TEST(test_timeout_and_limits),
    VM_TEST(test_executors),
    VM_TEST(test_dies_with_us),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup, .teardown = teardown};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
