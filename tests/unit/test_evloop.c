/* SPDX-License-Identifier: MIT */
/* test_evloop.c — libvirt's event loop on libuv (evloop.c): handles and
 * timeouts through libvirt's public virEvent* API, registrations from
 * another thread, free callbacks never run inside remove, domain events of
 * libvirt's test driver delivered on the loop thread, and the loop closing
 * cleanly at the end. */
#include <libvirt/libvirt.h>
#include <unistd.h>
#include <uv.h>

#include "runner.h"
#include "backend/libvirt/evloop.h"
#include "backend/libvirt/virt.h"

static uv_loop_t loop;
static uv_thread_t loop_thread;
/* evloop's handles never keep the loop alive (the job's own handles do), so
 * the test keeps one of its own. */
static uv_timer_t keepalive;

static void keepalive_cb(uv_timer_t *t)
{
    (void)t;
}

static int handle_calls, handle_events, freed, in_remove;
static int timeout_calls;

static void on_handle(int watch, int fd, int events, void *opaque)
{
    char buf[16];
    handle_calls++;
    handle_events |= events;
    if (events & VIR_EVENT_HANDLE_READABLE)
        CHECK_INT(read(fd, buf, sizeof(buf)), >, 0);
    (void)watch;
    (void)opaque;
}

static void on_free(void *opaque)
{
    CHECK_INT(in_remove, ==, 0);
    uv_thread_t self = uv_thread_self();
    CHECK(uv_thread_equal(&self, &loop_thread));
    freed += *(int *)opaque;
}

static void on_timeout(int timer, void *opaque)
{
    timeout_calls++;
    if (timeout_calls == 3)
        virEventUpdateTimeout(timer, -1); /* disable after three */
    (void)opaque;
}

static void run_for(int ms)
{
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&loop);
    }
}

/* Run the loop until cond holds, for at most 10 s: a busy machine may be
 * slow, never wrong. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        uint64_t end_ = uv_now(&loop) + 10000;                                                     \
        while (!(cond) && uv_now(&loop) < end_)                                                    \
            run_for(5);                                                                            \
    } while (0)

static void test_handles(void)
{
    int fds[2];
    CHECK_INT(pipe(fds), ==, 0);
    static int one = 1;
    int w = virEventAddHandle(fds[0], VIR_EVENT_HANDLE_READABLE, on_handle, &one, on_free);
    CHECK_INT(w, >, 0);
    CHECK_INT(write(fds[1], "x", 1), ==, 1);
    RUN_UNTIL(handle_calls >= 1);
    CHECK_INT(handle_calls, ==, 1);
    CHECK(handle_events & VIR_EVENT_HANDLE_READABLE);

    /* Interest withdrawn: no callback although readable. */
    virEventUpdateHandle(w, 0);
    CHECK_INT(write(fds[1], "y", 1), ==, 1);
    run_for(50);
    CHECK_INT(handle_calls, ==, 1);
    /* Restored: the pending byte is reported. */
    virEventUpdateHandle(w, VIR_EVENT_HANDLE_READABLE);
    RUN_UNTIL(handle_calls >= 2);
    CHECK_INT(handle_calls, ==, 2);

    in_remove = 1;
    CHECK_INT(virEventRemoveHandle(w), ==, 0);
    in_remove = 0;
    CHECK_INT(freed, ==, 0); /* never inside remove */
    RUN_UNTIL(freed >= 1);
    CHECK_INT(freed, ==, 1);
    CHECK_INT(virEventRemoveHandle(w), ==, -1); /* already gone */
    close(fds[0]);
    close(fds[1]);
}

static void test_timeouts(void)
{
    static int ten = 10;
    timeout_calls = 0;
    int t = virEventAddTimeout(5, on_timeout, NULL, NULL);
    CHECK_INT(t, >, 0);
    RUN_UNTIL(timeout_calls >= 3);
    run_for(50);
    CHECK_INT(timeout_calls, ==, 3); /* disabled itself after three */
    virEventUpdateTimeout(t, 0);     /* 0: as soon as possible, repeatedly */
    RUN_UNTIL(timeout_calls > 4);
    CHECK_INT(timeout_calls, >, 4);
    freed = 0;
    int t2 = virEventAddTimeout(-1, on_timeout, NULL, NULL);
    virEventRemoveTimeout(t);
    int calls = timeout_calls;
    run_for(30);
    CHECK_INT(timeout_calls, ==, calls);
    int t3 = virEventAddTimeout(1000, on_timeout, &ten, on_free);
    CHECK_INT(virEventRemoveTimeout(t3), ==, 0);
    CHECK_INT(virEventRemoveTimeout(t2), ==, 0);
    RUN_UNTIL(freed == 10);
    CHECK_INT(freed, ==, 10);
}

static int thread_timer_calls;
static uv_thread_t caller_thread;

static void on_thread_timeout(int timer, void *opaque)
{
    uv_thread_t self = uv_thread_self();
    CHECK(uv_thread_equal(&self, &loop_thread));
    thread_timer_calls++;
    virEventRemoveTimeout(timer);
    (void)opaque;
}

static void add_from_thread(void *arg)
{
    *(int *)arg = virEventAddTimeout(1, on_thread_timeout, NULL, NULL);
}

static void test_other_thread(void)
{
    int id = 0;
    CHECK_INT(uv_thread_create(&caller_thread, add_from_thread, &id), ==, 0);
    uv_thread_join(&caller_thread);
    CHECK_INT(id, >, 0);
    RUN_UNTIL(thread_timer_calls >= 1);
    CHECK_INT(thread_timer_calls, ==, 1);
}

/* libvirt's test driver queues domain events on a timeout of ours. */
static virConnectPtr conn;
static int lifecycle_events;

static int on_lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
    uv_thread_t self = uv_thread_self();
    CHECK(uv_thread_equal(&self, &loop_thread));
    lifecycle_events++;
    (void)c, (void)dom, (void)event, (void)detail, (void)opaque;
    return 0;
}

static void suspend_work(struct vm_virt_task *t)
{
    virDomainPtr d = virDomainLookupByName(conn, "test");
    CHECK(d);
    t->rc = virDomainSuspend(d) == 0 && virDomainResume(d) == 0 ? 0 : -1;
    virDomainFree(d);
}

static int done_called;
static void suspend_done(struct vm_virt_task *t)
{
    CHECK_INT(t->rc, ==, 0);
    done_called++;
}

static void test_domain_events(void)
{
    conn = virConnectOpen("test:///default");
    CHECK(conn);
    int cb = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                              VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), NULL, NULL);
    CHECK_INT(cb, >=, 0);
    struct vm_virt_task t = {.work = suspend_work, .done = suspend_done};
    CHECK_INT(vm_virt_submit(&loop, &t), ==, 0);
    RUN_UNTIL(lifecycle_events >= 2 && done_called);
    CHECK_INT(done_called, ==, 1);
    CHECK_INT(lifecycle_events, ==, 2); /* suspended, resumed */
    virConnectDomainEventDeregisterAny(conn, cb);
    virConnectClose(conn);
}

static void setup(void)
{
    vm_virt_global_init();
    CHECK_INT(uv_loop_init(&loop), ==, 0);
    loop_thread = uv_thread_self();
    CHECK_INT(vm_evloop_register(&loop), ==, 0);
    uv_timer_init(&loop, &keepalive);
    uv_timer_start(&keepalive, keepalive_cb, 1000, 1000);
}

static void teardown(void)
{
    vm_evloop_shutdown();
    uv_close((uv_handle_t *)&keepalive, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
}

static const struct vm_test tests[] = {
    VM_TEST(test_handles),
    VM_TEST(test_timeouts),
    VM_TEST(test_other_thread),
    VM_TEST(test_domain_events),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup, .teardown = teardown};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
