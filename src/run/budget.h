/* SPDX-License-Identifier: MIT */
/* budget.h — the concurrency budgets of a run over plain records: which
 * waiting migrations start now (--parallel in all, --max-out per source
 * host, --max-in per target host, plan order) and what each running one
 * holds until it is released. No libvirt, no loop, no job: the schedule
 * stage (sched.c) keeps one `struct vm_budget` per run, says before each
 * choice which slots wait, and takes or releases a slot as its migration
 * starts or stops counting; tests/unit/test_budget.c drives it from JSON
 * fixtures.
 *
 * A `struct vm_budget` owns its arrays (vm_budget_init .. vm_budget_free).
 * Slots and hosts are indices: the slot's place in plan order, the host's in
 * the run's host table. */
#ifndef VMM_BUDGET_H
#define VMM_BUDGET_H

#include <stdbool.h>

struct vm_budget_limits {
    int parallel;        /* migrations at once, in all (>= 1) */
    int max_out, max_in; /* per source / target host; 0: no limit */
};

struct vm_budget_slot {
    int src, dst; /* host indices; dst changes with a retry's new target */
    bool waiting; /* the caller's say: queued and not started */
    bool holds;   /* taken and not yet released */
};

struct vm_budget {
    struct vm_budget_limits lim;
    struct vm_budget_slot *slots;
    int nslots;
    int *out, *in; /* per host: migrations holding from / to it */
    int nhosts;
    int running; /* slots holding, in all */
};

/* nslots slots (all neither waiting nor holding, hosts 0) over nhosts hosts. */
void vm_budget_init(struct vm_budget *b, const struct vm_budget_limits *lim, int nslots,
                    int nhosts);
void vm_budget_free(struct vm_budget *b);

/* The first waiting slot, at index `from` or after, that may start now with
 * the budgets as they are: -1 if none. Takes nothing. Start them in the
 * order this gives (vm_budget_take, then look again from the next index):
 * a slot its host's limit holds back does not hold back the ones after it. */
int vm_budget_next(const struct vm_budget *b, int from);
/* What holds waiting slot i back now, as vm_budget_next sees it: the first
 * limit it hits (--parallel before --max-out before --max-in). */
enum vm_budget_wait {
    VM_BUDGET_FREE,     /* nothing: it may start (or it does not wait) */
    VM_BUDGET_PARALLEL, /* --parallel: as many run in all */
    VM_BUDGET_MAX_OUT,  /* --max-out: as many leave its source host */
    VM_BUDGET_MAX_IN,   /* --max-in: as many enter its target host */
};
enum vm_budget_wait vm_budget_why(const struct vm_budget *b, int i);

/* Slot i starts: it holds a place in each budget (and waits no more). */
void vm_budget_take(struct vm_budget *b, int i);
/* Slot i's migration no longer counts; false if it held nothing. */
bool vm_budget_release(struct vm_budget *b, int i);

#endif
