/* SPDX-License-Identifier: MIT */
/* test_uri.c — the short host names of the human tables (uri.c): the host
 * of a URI without user and port, none for a URI without a host, and the
 * libvirt hostname first where one is known. */
#include <stdlib.h>

#include "runner.h"
#include "util/uri.h"

static void host_is(const char *uri, const char *want)
{
    char *got = vm_uri_host(uri);
    if (want)
        CHECK_STR(got ? got : "(null)", want);
    else
        CHECK(got == NULL);
    free(got);
}

static void test_uri_host(void)
{
    host_is("qemu+ssh://root@hv12.example.org:2222/system?keyfile=/k", "hv12.example.org");
    host_is("qemu+tcp://127.0.0.2:16510/system", "127.0.0.2");
    host_is("qemu+tls://hv12/system", "hv12");
    host_is("qemu+ssh://hv1", "hv1");
    host_is("qemu+tcp://[fe80::1]/system", "[fe80::1]");
    host_is("qemu:///system", NULL);
    host_is("test:///default", NULL);
    host_is("test:///tmp/node.xml", NULL);
    host_is("xen:", NULL);
    host_is("", NULL);
    host_is(NULL, NULL);
}

static void short_is(const char *uri, const char *hostname, const char *want)
{
    char *got = vm_host_short(uri, hostname);
    CHECK_STR(got, want);
    free(got);
}

static void test_host_short(void)
{
    short_is("qemu+ssh://hv12/system", "hv12.example.org", "hv12.example.org");
    short_is("qemu+ssh://hv12/system", "", "hv12");
    short_is("qemu+ssh://hv12/system", NULL, "hv12");
    short_is("test:///default", NULL, "test:///default");
    short_is(NULL, NULL, "-");
}

static const struct vm_test tests[] = {
    VM_TEST(test_uri_host),
    VM_TEST(test_host_short),
    {0},
};

static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
