/* SPDX-License-Identifier: MIT */
/* commit.c — see commit.h. */
#include "migrate/commit.h"

#include <stdlib.h>

#include "util/util.h"

struct vm_commit {
    uv_timer_t timer; /* the gate budget; its close callback frees the session */
    const struct vm_commit_ops *ops;
    void *data;
    uint64_t budget_ms;
    uint64_t enter_ms, held_ms;
    bool entered, decided, commit;
    char *reason;
};

struct vm_commit *vm_commit_new(uv_loop_t *loop, uint64_t budget_ms,
                                const struct vm_commit_ops *ops, void *data)
{
    struct vm_commit *c = xcalloc(1, sizeof(*c));
    c->ops = ops;
    c->data = data;
    c->budget_ms = budget_ms ? budget_ms : VM_COMMIT_DEFAULT_BUDGET_MS;
    c->enter_ms = vm_mono_ms();
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
}

static void budget_fired(uv_timer_t *t)
{
    struct vm_commit *c = t->data;
    char *why = xasprintf("the gate budget of %llu ms ran out before every required feature "
                          "was ready",
                          (unsigned long long)(vm_mono_ms() - c->enter_ms));
    vm_commit_decide(c, false, why);
    free(why);
}

void vm_commit_enter(struct vm_commit *c)
{
    if (c->entered || c->decided)
        return;
    c->entered = true;
    uv_update_time(c->timer.loop); /* the budget counts from now, not the loop's cached time */
    uv_timer_start(&c->timer, budget_fired, c->budget_ms, 0);
    vm_commit_steps(c);
}

void vm_commit_steps(struct vm_commit *c)
{
    if (!c || !c->entered || c->decided)
        return;
    if (!c->ops->steps || !c->ops->steps(c->data))
        vm_commit_decide(c, true, "no features to wait for");
}

bool vm_commit_decide(struct vm_commit *c, bool commit, const char *reason)
{
    if (!c || c->decided)
        return false;
    c->decided = true;
    c->commit = commit;
    c->reason = xstrdup(reason ? reason : commit ? "commit" : "rollback");
    c->held_ms = vm_mono_ms() - c->enter_ms;
    uv_timer_stop(&c->timer);
    if (c->ops->announce)
        c->ops->announce(c->data, c->commit, c->reason, c->held_ms);
    if (c->ops->cancel)
        c->ops->cancel(c->data); /* decided without them (budget, signal, a host) */
    if (c->ops->record && !c->ops->record(c->data, c->commit, c->reason) && c->commit) {
        /* A commit that is not on record could run the guest twice after a
         * crash: the safe way is back. */
        c->commit = false;
        free(c->reason);
        c->reason = xstrdup("the commit decision could not be recorded in the journal");
        c->ops->record(c->data, false, c->reason);
    }
    c->ops->carry_out(c->data, c->commit, c->reason);
    return true;
}

bool vm_commit_decided(const struct vm_commit *c)
{
    return c && c->decided;
}

bool vm_commit_committed(const struct vm_commit *c)
{
    return c && c->decided && c->commit;
}

const char *vm_commit_reason(const struct vm_commit *c)
{
    return c ? c->reason : NULL;
}

uint64_t vm_commit_held_ms(const struct vm_commit *c)
{
    if (!c)
        return 0;
    return c->decided ? c->held_ms : vm_mono_ms() - c->enter_ms;
}

static void closed(uv_handle_t *h)
{
    struct vm_commit *c = h->data;
    free(c->reason);
    free(c);
}

void vm_commit_free(struct vm_commit *c)
{
    if (!c)
        return;
    uv_close((uv_handle_t *)&c->timer, closed);
}
