/* SPDX-License-Identifier: MIT */
/* test_virt_open.c — opening a host's connection on a thread of its own
 * under a deadline (virt.h): a local host opens and subscribes; a peer that
 * accepts the TCP connection and never answers (a listener of the test's)
 * times out, or is abandoned, with the loop closing cleanly and the
 * opener's thread freeing itself once the peer goes away; and the blocking
 * vm_virt_connect gives up the same way. Connecting again
 * (vm_virt_host_reconnect): a new connection for every caller at once, at
 * once for a caller whose connection was renewed already; a host that does
 * not answer is given up after the bounded attempts or the budget. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "runner.h"
#include "backend/libvirt/evloop.h"
#include "backend/libvirt/virt.h"

static uv_loop_t loop;
static uv_timer_t keepalive; /* evloop's handles keep no loop alive */

static void keepalive_cb(uv_timer_t *t)
{
    (void)t;
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

/* Run the loop until cond holds, for at most 20 s. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        uint64_t end_ = uv_now(&loop) + 20000;                                                     \
        while (!(cond) && uv_now(&loop) < end_)                                                    \
            run_for(5);                                                                            \
    } while (0)

/* A listener on 127.0.0.1 that accepts and never answers. */
static int listen_fd = -1, peer_fd = -1;
static char silent_uri[128];

static void silent_listen(void)
{
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK_INT(listen_fd, >=, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_INT(bind(listen_fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    CHECK_INT(listen(listen_fd, 4), ==, 0);
    socklen_t len = sizeof(a);
    CHECK_INT(getsockname(listen_fd, (struct sockaddr *)&a, &len), ==, 0);
    snprintf(silent_uri, sizeof(silent_uri), "qemu+tcp://127.0.0.1:%d/system", ntohs(a.sin_port));
}

static bool silent_accepted(void)
{
    if (peer_fd < 0)
        peer_fd = accept(listen_fd, NULL, NULL);
    return peer_fd >= 0;
}

/* The peer goes away: libvirt's call on the opener's thread fails. */
static void silent_close(void)
{
    if (peer_fd >= 0)
        close(peer_fd);
    close(listen_fd);
    peer_fd = listen_fd = -1;
}

static int opened;
static void on_opened(struct vm_virt_host *h, void *data)
{
    opened++;
    (void)h, (void)data;
}

static int closed;
static void on_closed(struct vm_virt_host *h, void *data)
{
    closed++;
    (void)h, (void)data;
}

static void test_open_local(void)
{
    struct vm_virt_host *h = vm_virt_host_new(&loop, "test:///default", NULL, NULL);
    vm_virt_host_open(h, 5, on_opened, NULL);
    CHECK(vm_virt_host_connecting(h) || opened);
    RUN_UNTIL(opened);
    CHECK_INT(opened, ==, 1);
    CHECK(h->conn != NULL);
    CHECK(!h->timed_out);
    CHECK(h->hostname != NULL);
    CHECK(!vm_virt_host_connecting(h));
    CHECK(!vm_virt_host_abandon(h, "too late"));
    vm_virt_host_close(h, on_closed, NULL);
    RUN_UNTIL(closed);
    CHECK(h->conn == NULL);
    vm_virt_host_free(h);
    RUN_UNTIL(vm_virt_openers_live() == 0);
    CHECK_INT(vm_virt_openers_live(), ==, 0);
}

static void test_open_times_out(void)
{
    silent_listen();
    struct vm_virt_host *h = vm_virt_host_new(&loop, silent_uri, NULL, NULL);
    uint64_t start = uv_now(&loop);
    vm_virt_host_open(h, 1, on_opened, NULL);
    RUN_UNTIL(opened);
    CHECK_INT(opened, ==, 1);
    CHECK_INT(uv_now(&loop) - start, >=, 900);
    CHECK(silent_accepted()); /* libvirt did connect: it waits for an answer */
    CHECK(h->timed_out);
    CHECK(h->conn == NULL);
    CHECK_INT(h->err.code, ==, VIR_ERR_OPERATION_TIMEOUT);
    CHECK_STR(h->err.message, "no answer within 1 s");
    CHECK(!vm_virt_host_connecting(h));
    /* The host is gone before the thread returns: it never touches it. */
    vm_virt_host_free(h);
    run_for(50);
    CHECK_INT(vm_virt_openers_live(), ==, 1); /* still stuck in libvirt */
    silent_close();
    RUN_UNTIL(vm_virt_openers_live() == 0);
    CHECK_INT(vm_virt_openers_live(), ==, 0);
}

static void test_open_abandoned(void)
{
    silent_listen();
    struct vm_virt_host *h = vm_virt_host_new(&loop, silent_uri, NULL, NULL);
    vm_virt_host_open(h, 0, on_opened, NULL); /* no deadline */
    RUN_UNTIL(silent_accepted());
    CHECK(silent_accepted());
    run_for(50);
    CHECK_INT(opened, ==, 0);
    CHECK(vm_virt_host_connecting(h));
    CHECK(vm_virt_host_abandon(h, "interrupted"));
    CHECK_INT(opened, ==, 1); /* at once, from the abandon */
    CHECK(!h->timed_out);
    CHECK(h->conn == NULL);
    CHECK_STR(h->err.message, "interrupted");
    CHECK(!vm_virt_host_abandon(h, "twice"));
    vm_virt_host_free(h);
    silent_close();
    RUN_UNTIL(vm_virt_openers_live() == 0);
    CHECK_INT(vm_virt_openers_live(), ==, 0);
    CHECK_INT(opened, ==, 1);
}

static void test_connect_times_out(void)
{
    silent_listen();
    struct vm_virt_err err = {0};
    virConnectPtr c = vm_virt_connect(silent_uri, 1, &err);
    CHECK(c == NULL);
    CHECK_INT(err.code, ==, VIR_ERR_OPERATION_TIMEOUT);
    CHECK_STR(err.message, "no answer within 1 s");
    vm_virt_err_clear(&err);
    CHECK(silent_accepted());
    silent_close();
    RUN_UNTIL(vm_virt_openers_live() == 0);
    CHECK_INT(vm_virt_openers_live(), ==, 0);

    c = vm_virt_connect("test:///default", 5, &err);
    CHECK(c != NULL);
    CHECK(err.message == NULL);
    virConnectClose(c);
}

static int reconnected[3];
static void on_reconnected(struct vm_virt_host *h, void *data)
{
    reconnected[(int)(intptr_t)data]++;
    (void)h;
}

static void test_reconnect_local(void)
{
    struct vm_virt_host *h = vm_virt_host_new(&loop, "test:///default", NULL, NULL);
    vm_virt_host_open(h, 5, on_opened, NULL);
    RUN_UNTIL(opened);
    CHECK(h->conn != NULL);
    CHECK(!vm_virt_conn_lost(h->conn));
    CHECK(vm_virt_conn_lost(NULL));
    virConnectPtr old = h->conn;
    char uuid[VIR_UUID_STRING_BUFLEN];
    memcpy(uuid, h->host_uuid, sizeof(uuid));
    CHECK_INT(h->generation, ==, 0);
    /* Two callers that saw generation 0 fail: one reconnect for both. */
    vm_virt_host_reconnect(h, 0, 10000, on_reconnected, (void *)0);
    vm_virt_host_reconnect(h, 0, 10000, on_reconnected, (void *)1);
    CHECK(vm_virt_host_reconnecting(h));
    RUN_UNTIL(reconnected[0] && reconnected[1]);
    CHECK_INT(reconnected[0], ==, 1);
    CHECK_INT(reconnected[1], ==, 1);
    CHECK(!vm_virt_host_reconnecting(h));
    CHECK(h->conn != NULL);
    CHECK(h->conn != old);
    CHECK_INT(h->generation, ==, 1);
    CHECK(h->hostname != NULL);
    CHECK_STR(h->host_uuid, uuid);
    CHECK(h->err.message == NULL);
    /* A third one that saw generation 0 fail: renewed already, told from
     * the loop (not from inside the call), nothing opened again. */
    virConnectPtr now = h->conn;
    vm_virt_host_reconnect(h, 0, 10000, on_reconnected, (void *)2);
    CHECK_INT(reconnected[2], ==, 0);
    RUN_UNTIL(reconnected[2]);
    CHECK_INT(reconnected[2], ==, 1);
    CHECK(h->conn == now);
    CHECK_INT(h->generation, ==, 1);
    vm_virt_host_close(h, on_closed, NULL);
    RUN_UNTIL(closed);
    vm_virt_host_free(h);
    RUN_UNTIL(vm_virt_openers_live() == 0);
    CHECK_INT(vm_virt_openers_live(), ==, 0);
}

#define NO_HOST "qemu+unix:///system?socket=/nonexistent/vmm-test/libvirt-sock"

static void test_reconnect_gives_up(void)
{
    struct vm_virt_host *h = vm_virt_host_new(&loop, NO_HOST, NULL, NULL);
    /* Every attempt fails at once: 5 attempts, 0.25 + 0.5 + 1 + 2 s apart. */
    uint64_t start = uv_now(&loop);
    vm_virt_host_reconnect(h, 0, 30000, on_reconnected, (void *)0);
    RUN_UNTIL(reconnected[0]);
    uint64_t took = uv_now(&loop) - start;
    CHECK_INT(reconnected[0], ==, 1);
    CHECK(h->conn == NULL);
    CHECK(h->err.message != NULL);
    CHECK_INT(h->generation, ==, 0);
    CHECK(!vm_virt_host_reconnecting(h));
    CHECK_INT(took, >=, 3750);
    CHECK_INT(took, <, 3750 + 4000); /* not a sixth attempt, 4 s later */
    /* Within a budget of 0.6 s: the second attempt (at 0.25 s) is the last,
     * the third would start past the budget. */
    start = uv_now(&loop);
    vm_virt_host_reconnect(h, 0, 600, on_reconnected, (void *)1);
    RUN_UNTIL(reconnected[1]);
    took = uv_now(&loop) - start;
    CHECK_INT(reconnected[1], ==, 1);
    CHECK(h->conn == NULL);
    CHECK_INT(took, >=, 250);
    CHECK_INT(took, <, 600);
    vm_virt_host_free(h);
    RUN_UNTIL(vm_virt_openers_live() == 0);
    CHECK_INT(vm_virt_openers_live(), ==, 0);
}

static void setup(void)
{
    vm_virt_global_init();
    CHECK_INT(uv_loop_init(&loop), ==, 0);
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
    VM_TEST(test_open_local),
    VM_TEST(test_open_times_out),
    VM_TEST(test_open_abandoned),
    VM_TEST(test_connect_times_out),
    VM_TEST(test_reconnect_local),
    VM_TEST(test_reconnect_gives_up),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup, .teardown = teardown};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
