/* SPDX-License-Identifier: MIT */
/* feature_spice.c — the built-in `spice`: the SPICE clients follow the guest
 * to the target. At probe the backend counts the channels clients hold on
 * the source (env->spice_count, answered by vm_features_spice_counted(), while
 * nothing moves: monitor commands wait for a running migration job); at the
 * gate, once libvirt has handed the target's address to the clients, every
 * one of them must be initialised there (env->spice_target_ready, polled
 * until the feature's timeout). */
#include "feature/feature_builtin.h"

#include <stdlib.h>

#include "util/util.h"

struct spice {
    bool counted;
    int channels;      /* on the source, counted at probe */
    uv_timer_t *timer; /* the gate step's poll */
    uint64_t deadline;
};

void vm_features_spice_counted(struct vm_features *fs, int n, const char *why)
{
    struct vm_feature_ctx *c = vm_features_current(fs);
    struct spice *s = c->state;
    s->counted = n >= 0;
    s->channels = n;
    char *detail = n >= 0 ? xasprintf("%d SPICE channel%s on the source", n, n == 1 ? "" : "s")
                          : xstrdup(why ? why : "cannot count SPICE clients");
    vm_feature_settle(c, n >= 0 ? 1 : 0, n >= 0 ? NULL : detail);
    free(detail);
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

static void stop(struct vm_feature_ctx *c)
{
    struct spice *s = c->state;
    if (s->timer) {
        uv_close((uv_handle_t *)s->timer, timer_closed);
        s->timer = NULL;
        vm_feature_release(c);
    }
}

static void poll_target(uv_timer_t *t)
{
    struct vm_feature_ctx *c = t->data;
    struct spice *s = c->state;
    int ready = c->env->spice_target_ready ? c->env->spice_target_ready(c->env->ctx) : 0;
    if (ready >= s->channels) {
        stop(c);
        vm_feature_settle(c, 1, NULL);
    } else if (uv_now(c->loop) >= s->deadline) {
        stop(c);
        char *why = xasprintf("%d of %d SPICE channels reached the target", ready, s->channels);
        vm_feature_settle(c, 0, why);
        free(why);
    }
}

static void spice_run(struct vm_feature_ctx *c)
{
    struct spice *s = c->state;
    if (c->step == VM_FEATURE_PROBE) {
        if (!c->env->spice_count) {
            vm_feature_settle(c, 0, "this backend cannot count SPICE clients");
            return;
        }
        c->env->spice_count(c->fs, c->env->ctx);
        return;
    }
    /* the gate */
    if (s->channels <= 0) {
        vm_feature_settle(c, 1, NULL);
        return;
    }
    s->timer = xmalloc(sizeof(*s->timer));
    uv_timer_init(c->loop, s->timer);
    s->timer->data = c;
    vm_feature_hold(c);
    s->deadline = uv_now(c->loop) + c->decl->timeout_ms;
    uv_timer_start(s->timer, poll_target, 0, 50);
}

static void spice_cancel(struct vm_feature_ctx *c)
{
    struct spice *s = c->state;
    if (!s->timer)
        return; /* counting: the backend's answer settles it */
    stop(c);
    vm_feature_settle(c, 0, VM_FEATURE_CANCELLED);
}

static void spice_adopt(void *dst, const void *src)
{
    struct spice *d = dst;
    const struct spice *s = src;
    if (s->counted) {
        d->counted = true;
        d->channels = s->channels;
    }
}

const struct vm_feature_ops vm_feature_spice_ops = {
    .state_size = sizeof(struct spice),
    .run = spice_run,
    .cancel = spice_cancel,
    .adopt = spice_adopt,
};
