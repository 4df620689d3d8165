/* SPDX-License-Identifier: MIT */
/* testdriver_open.c — for bench/plan_scale.py (not part of vmmigrate): how
 * long libvirt alone takes to open the given test:/// URIs and list their
 * domains with their XML, and what memory that holds, so that vmmigrate's
 * own share of a plan over those hosts is visible. One connection after
 * the other on one thread, the way each of vmmigrate's connections parses
 * its file.
 *
 *     testdriver_open URI...   prints: "open_s=F list_s=F maxrss_kib=N domains=N"
 */
#include <libvirt/libvirt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    virConnectPtr *c = calloc((size_t)argc, sizeof(*c));
    if (!c)
        return 1;
    double t0 = now();
    for (int i = 1; i < argc; i++)
        if (!(c[i] = virConnectOpen(argv[i]))) {
            fprintf(stderr, "testdriver_open: cannot open '%s'\n", argv[i]);
            return 1;
        }
    double t1 = now();
    long domains = 0;
    for (int i = 1; i < argc; i++) {
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(c[i], &doms, 0);
        for (int k = 0; k < n; k++) {
            free(virDomainGetXMLDesc(doms[k], 0));
            virDomainFree(doms[k]);
        }
        free(doms);
        domains += n > 0 ? n : 0;
    }
    double t2 = now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("open_s=%.3f list_s=%.3f maxrss_kib=%ld domains=%ld\n", t1 - t0, t2 - t1, ru.ru_maxrss,
           domains);
    for (int i = 1; i < argc; i++)
        virConnectClose(c[i]);
    free(c);
    return 0;
}
