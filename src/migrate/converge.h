/* SPDX-License-Identifier: MIT */
/* converge.h — whether a pre-copy migration converges, judged from its job
 * stats as plain samples: no libvirt, no loop (tests/unit/test_converge.c
 * feeds it sequences of stats). mig.c feeds one sample per job-stats poll
 * and reports the first verdict "not converging" as the event
 * migration.not-converging; the record's not_converging shows it now.
 *
 * An iteration (a pass over guest memory after the bulk copy, iteration
 * 2 on) does not converge when, at its first sample, the guest dirties
 * memory at VM_CONVERGE_DIRTY_PCT % or more of the transfer rate, or what
 * remains has shrunk by less than VM_CONVERGE_SHRINK_PCT % since the start
 * of the iteration before. `window` such iterations in a row: the migration
 * is not converging, until an iteration converges again. The struct is the
 * caller's (no allocation). */
#ifndef VMM_CONVERGE_H
#define VMM_CONVERGE_H

#include <stdbool.h>
#include <stdint.h>

#define VM_CONVERGE_WINDOW 3     /* iterations in a row, by default */
#define VM_CONVERGE_DIRTY_PCT 90 /* dirty rate against the transfer rate */
#define VM_CONVERGE_SHRINK_PCT 5 /* remaining must shrink by this much an iteration */

/* One job-stats sample. */
struct vm_converge_sample {
    uint64_t iteration;      /* memory pass (1: the bulk copy); 0: unknown */
    uint64_t data_remaining; /* bytes */
    uint64_t mem_bps;        /* transfer rate, bytes/s; 0: unknown */
    uint64_t dirty_bps;      /* dirty rate, bytes/s; 0: unknown */
};

struct vm_converge {
    int window;                   /* iterations in a row that make the verdict */
    uint64_t last_iteration;      /* the last iteration judged (its first sample) */
    uint64_t last_remaining;      /* ... what remained then */
    int stuck;                    /* iterations in a row that did not converge */
    bool not_converging;          /* the verdict now */
    bool reported;                /* the first verdict was handed out */
    struct vm_converge_sample at; /* the sample of the latest verdict */
};

/* window <= 0: VM_CONVERGE_WINDOW. */
void vm_converge_init(struct vm_converge *c, int window);
/* One sample: true the first time (of the migration) the verdict is "not
 * converging" (c->at holds the sample that made it), false otherwise. */
bool vm_converge_feed(struct vm_converge *c, const struct vm_converge_sample *s);

#endif
