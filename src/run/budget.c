/* SPDX-License-Identifier: MIT */
/* budget.c — the concurrency budgets (budget.h). */
#include "run/budget.h"

#include <stdlib.h>

#include "util/util.h"

void vm_budget_init(struct vm_budget *b, const struct vm_budget_limits *lim, int nslots, int nhosts)
{
    *b = (struct vm_budget){
        .lim = *lim,
        .slots = xcalloc(nslots > 0 ? (size_t)nslots : 1, sizeof(*b->slots)),
        .nslots = nslots,
        .out = xcalloc(nhosts > 0 ? (size_t)nhosts : 1, sizeof(int)),
        .in = xcalloc(nhosts > 0 ? (size_t)nhosts : 1, sizeof(int)),
        .nhosts = nhosts,
    };
}

void vm_budget_free(struct vm_budget *b)
{
    free(b->slots);
    free(b->out);
    free(b->in);
    *b = (struct vm_budget){0};
}

int vm_budget_next(const struct vm_budget *b, int from)
{
    for (int i = from < 0 ? 0 : from; b->running < b->lim.parallel && i < b->nslots; i++) {
        const struct vm_budget_slot *s = &b->slots[i];
        if (!s->waiting || s->holds)
            continue;
        if ((b->lim.max_out && b->out[s->src] >= b->lim.max_out) ||
            (b->lim.max_in && b->in[s->dst] >= b->lim.max_in))
            continue;
        return i;
    }
    return -1;
}

enum vm_budget_wait vm_budget_why(const struct vm_budget *b, int i)
{
    const struct vm_budget_slot *s = &b->slots[i];
    if (!s->waiting || s->holds)
        return VM_BUDGET_FREE;
    if (b->running >= b->lim.parallel)
        return VM_BUDGET_PARALLEL;
    if (b->lim.max_out && b->out[s->src] >= b->lim.max_out)
        return VM_BUDGET_MAX_OUT;
    if (b->lim.max_in && b->in[s->dst] >= b->lim.max_in)
        return VM_BUDGET_MAX_IN;
    return VM_BUDGET_FREE;
}

void vm_budget_take(struct vm_budget *b, int i)
{
    struct vm_budget_slot *s = &b->slots[i];
    if (s->holds)
        return;
    s->holds = true;
    s->waiting = false;
    b->out[s->src]++;
    b->in[s->dst]++;
    b->running++;
}

bool vm_budget_release(struct vm_budget *b, int i)
{
    struct vm_budget_slot *s = &b->slots[i];
    if (!s->holds)
        return false;
    s->holds = false;
    b->out[s->src]--;
    b->in[s->dst]--;
    b->running--;
    return true;
}
