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

/* names of n hosts, checked against want (n strings). */
static void names_are(size_t n, const char *const *uris, const char *const *hostnames,
                      const char *const *want)
{
    char *names[8];
    vm_host_names(n, uris, hostnames, names);
    for (size_t i = 0; i < n; i++) {
        CHECK_STR(names[i], want[i]);
        free(names[i]);
    }
}

static void test_host_names(void)
{
    /* Distinct hostnames: those. */
    names_are(2, (const char *[]){"qemu+ssh://10.0.0.12/system", "qemu+ssh://10.0.0.13/system"},
              (const char *[]){"hv12", "hv13"}, (const char *[]){"hv12", "hv13"});
    /* One machine's hostname for two daemons: the URIs' hosts, where those differ. */
    names_are(2, (const char *[]){"qemu+tcp://127.0.0.2/system", "qemu+tcp://127.0.0.3/system"},
              (const char *[]){"box", "box"}, (const char *[]){"127.0.0.2", "127.0.0.3"});
    /* Two ports of one address, or no host at all: the URIs; the third keeps its name. */
    names_are(3,
              (const char *[]){"qemu+tcp://127.0.0.1:16509/system",
                               "qemu+tcp://127.0.0.1:16510/system", "qemu+ssh://hv14/system"},
              (const char *[]){"box", "box", "hv14"},
              (const char *[]){"qemu+tcp://127.0.0.1:16509/system",
                               "qemu+tcp://127.0.0.1:16510/system", "hv14"});
    names_are(2, (const char *[]){"test:///a.xml", "test:///b.xml"}, NULL,
              (const char *[]){"test:///a.xml", "test:///b.xml"});
    /* The same URI twice is one host: one name. */
    names_are(3,
              (const char *[]){"qemu+ssh://hv12/system", "qemu+ssh://hv12/system",
                               "qemu+ssh://hv13/system"},
              NULL, (const char *[]){"hv12", "hv12", "hv13"});
    /* A hostname that is another host's URI host. */
    names_are(2, (const char *[]){"qemu+ssh://hv12/system", "qemu+ssh://10.0.0.7/system"},
              (const char *[]){"hv12", "10.0.0.7"}, (const char *[]){"hv12", "10.0.0.7"});
}

static const struct vm_test tests[] = {
    VM_TEST(test_uri_host),
    VM_TEST(test_host_short),
    VM_TEST(test_host_names),
    {0},
};

static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
