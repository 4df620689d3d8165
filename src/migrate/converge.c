/* SPDX-License-Identifier: MIT */
/* converge.c — see converge.h. */
#include "migrate/converge.h"

void vm_converge_init(struct vm_converge *c, int window)
{
    *c = (struct vm_converge){.window = window > 0 ? window : VM_CONVERGE_WINDOW};
}

bool vm_converge_feed(struct vm_converge *c, const struct vm_converge_sample *s)
{
    /* Judged once an iteration, at its first sample; the bulk copy (1)
     * shrinks by construction and has no dirty rate yet. */
    if (s->iteration < 2 || s->iteration <= c->last_iteration)
        return false;
    bool keeping_up =
        s->mem_bps && s->dirty_bps &&
        (double)s->dirty_bps * 100.0 >= (double)s->mem_bps * (double)VM_CONVERGE_DIRTY_PCT;
    bool not_shrinking = c->last_iteration >= 2 &&
                         (double)s->data_remaining * 100.0 >=
                             (double)c->last_remaining * (double)(100 - VM_CONVERGE_SHRINK_PCT);
    c->last_iteration = s->iteration;
    c->last_remaining = s->data_remaining;
    c->stuck = keeping_up || not_shrinking ? c->stuck + 1 : 0;
    c->not_converging = c->stuck >= c->window;
    if (!c->not_converging || c->reported)
        return false;
    c->reported = true;
    c->at = *s;
    return true;
}
