/* SPDX-License-Identifier: MIT */
/* feature.c — see feature.h: the step runner. Every feature goes through
 * struct vm_feature_ops (feature_builtin.h): a built-in's from the table
 * (feature_builtin.c), the policy's features' from here. */
#include "feature/feature.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "feature/feature_builtin.h"
#include "policy/policy.h"
#include "util/util.h"

static const char *const step_names[] = {"probe", "prepare", "gate", "after", "deinit"};
#define NSTEPS 5

struct feature {
    const struct vm_feature_builtin *builtin; /* NULL: the policy's */
    const struct vm_feature_ops *ops;
    struct vm_feature_ctx ctx;
    char *outcome[NSTEPS]; /* per step: "ok", "failed: ...", "skipped: ..." */
    bool owed_deinit;      /* prepare or gate ran */
};

struct vm_features {
    uv_loop_t *loop;
    struct vm_feature_env env;
    json_t *vm;
    struct vm_policy *policy;
    struct feature *f;
    int n;
    vm_features_event_cb on_event;
    void *data;
    /* the step in progress */
    enum vm_feature_step step;
    int cursor;
    bool running, ok;
    char *reason;
    vm_features_done_cb done;
    struct vm_policy_step *cur; /* the policy step running, if any */
    bool cancelled;
    bool redo;       /* vm_features_set_redo */
    int outstanding; /* commands and timers not yet reported back (even cancelled) */
};

bool vm_feature_known(const char *name, const struct vm_policy *policy)
{
    if (vm_feature_builtin(name))
        return true;
    return policy && vm_policy_has_feature(policy, name);
}

bool vm_feature_owed_after_crash(const char *name, enum vm_feature_step step,
                                 const struct vm_policy *policy)
{
    const struct vm_feature_builtin *b = vm_feature_builtin_find(name);
    if (b)
        return (b->owed & VM_FEATURE_STEP(step)) != 0;
    return policy && vm_policy_feature_has_step(policy, name, step_names[step]);
}

/* -- the policy's features (vmm.feature()) -- */

static void policy_step_done(void *data, int rc, const char *reason)
{
    struct vm_features *fs = data;
    fs->cur = NULL;
    vm_feature_settle(vm_features_current(fs), rc, reason);
}

static void policy_run(struct vm_feature_ctx *c)
{
    struct vm_features *fs = c->fs;
    json_t *ctx = json_pack("{s:s, s:s, s:s, s:s, s:O, s:b}", "source", fs->env.source, "target",
                            fs->env.target, "class", fs->env.gated ? "network-critical" : "urgent",
                            "step", step_names[c->step], "args", c->decl->args, "redo", fs->redo);
    struct vm_policy_step *st = vm_policy_feature_start(
        fs->policy, fs->loop, c->decl->name, step_names[c->step], fs->vm, ctx, fs->env.source,
        fs->env.target, fs->env.hosts, c->decl->timeout_ms, policy_step_done, fs);
    if (st)
        fs->cur = st;
    json_decref(ctx);
}

static void policy_cancel(struct vm_feature_ctx *c)
{
    if (c->fs->cur)
        vm_policy_step_cancel(c->fs->cur); /* settles the step, ends the run */
}

static const struct vm_feature_ops policy_ops = {.run = policy_run, .cancel = policy_cancel};

/* -- the runner -- */

struct vm_features *vm_features_new(uv_loop_t *loop, const struct vm_feature_env *env, json_t *vm,
                                    const struct vm_feature_decl *decls, int n,
                                    struct vm_policy *policy, vm_features_event_cb on_event,
                                    void *data)
{
    struct vm_features *fs = xcalloc(1, sizeof(*fs));
    fs->loop = loop;
    fs->env = *env;
    fs->vm = json_incref(vm);
    fs->policy = policy;
    fs->on_event = on_event;
    fs->data = data;
    fs->f = xcalloc(n ? (size_t)n : 1, sizeof(*fs->f));
    fs->n = n;
    for (int i = 0; i < n; i++) {
        struct feature *f = &fs->f[i];
        f->builtin = vm_feature_builtin_find(decls[i].name);
        f->ops = f->builtin ? f->builtin->ops : &policy_ops;
        f->ctx = (struct vm_feature_ctx){
            .fs = fs,
            .loop = loop,
            .env = &fs->env,
            .vm = fs->vm,
            .decl = &decls[i],
            .state = f->ops->state_size ? xcalloc(1, f->ops->state_size) : NULL};
    }
    return fs;
}

void vm_features_free(struct vm_features *fs)
{
    if (!fs)
        return;
    for (int i = 0; i < fs->n; i++) {
        for (int k = 0; k < NSTEPS; k++)
            free(fs->f[i].outcome[k]);
        free(fs->f[i].ctx.state);
    }
    free(fs->f);
    free(fs->reason);
    json_decref(fs->vm);
    free(fs);
}

bool vm_features_busy(const struct vm_features *fs)
{
    return fs && (fs->running || fs->outstanding > 0);
}

void vm_features_set_redo(struct vm_features *fs, bool redo)
{
    fs->redo = redo;
}

void vm_features_owe_deinit(struct vm_features *fs)
{
    for (int i = 0; i < fs->n; i++)
        fs->f[i].owed_deinit = true;
}

struct vm_feature_ctx *vm_features_current(struct vm_features *fs)
{
    return &fs->f[fs->cursor].ctx;
}

void vm_feature_hold(struct vm_feature_ctx *c)
{
    c->fs->outstanding++;
}

void vm_feature_release(struct vm_feature_ctx *c)
{
    c->fs->outstanding--;
}

static void next(struct vm_features *fs);

/* Record one feature's outcome of the current step and move on. */
static void settle(struct vm_features *fs, struct feature *f, int rc, const char *detail)
{
    const char *step = step_names[fs->step];
    const char *name = f->ctx.decl->name;
    free(f->outcome[fs->step]);
    if (rc > 0)
        f->outcome[fs->step] = xstrdup("ok");
    else
        f->outcome[fs->step] = xasprintf("failed: %s", detail ? detail : "no reason given");
    if (fs->step == VM_FEATURE_PREPARE || fs->step == VM_FEATURE_GATE)
        f->owed_deinit = true;
    if (fs->step == VM_FEATURE_DEINIT)
        f->owed_deinit = false;
    if (rc <= 0 && f->ctx.decl->required && fs->step != VM_FEATURE_DEINIT &&
        fs->step != VM_FEATURE_AFTER) {
        if (fs->ok) {
            fs->ok = false;
            fs->reason =
                xasprintf("feature '%s' %s: %s", name, step, detail ? detail : "no reason given");
        }
    }
    if (rc <= 0 && fs->step == VM_FEATURE_DEINIT && fs->ok) {
        /* A failing deinit never changes where the guest runs: it is
         * reported, and an operator must look. */
        fs->ok = false;
        fs->reason = xasprintf("deinit of '%s' failed: %s", name, detail);
    }
    if (fs->on_event)
        fs->on_event(fs, name, step, rc > 0, detail, fs->data);
    next(fs);
}

void vm_feature_settle(struct vm_feature_ctx *c, int rc, const char *detail)
{
    settle(c->fs, (struct feature *)((char *)c - offsetof(struct feature, ctx)), rc, detail);
}

static void run_one(struct vm_features *fs, struct feature *f)
{
    /* A built-in has nothing to do (or to undo) in the steps it does not act in. */
    if (f->builtin && !(f->builtin->steps & VM_FEATURE_STEP(fs->step))) {
        settle(fs, f, 1, NULL);
        return;
    }
    f->ctx.step = fs->step;
    f->ops->run(&f->ctx);
}

static void next(struct vm_features *fs)
{
    for (;;) {
        if (fs->cancelled)
            break;
        fs->cursor += fs->step == VM_FEATURE_DEINIT ? -1 : 1;
        if (fs->cursor < 0 || fs->cursor >= fs->n)
            break;
        struct feature *f = &fs->f[fs->cursor];
        if (fs->step == VM_FEATURE_DEINIT && !f->owed_deinit)
            continue;
        /* A feature whose prepare failed does not try its gate step. */
        if (fs->step == VM_FEATURE_GATE && f->outcome[VM_FEATURE_PREPARE] &&
            strncmp(f->outcome[VM_FEATURE_PREPARE], "failed", 6) == 0) {
            free(f->outcome[VM_FEATURE_GATE]);
            f->outcome[VM_FEATURE_GATE] = xstrdup("skipped: prepare failed");
            if (f->ctx.decl->required && fs->ok) {
                fs->ok = false;
                fs->reason = xasprintf("feature '%s' prepare %s", f->ctx.decl->name,
                                       f->outcome[VM_FEATURE_PREPARE]);
                if (fs->on_event)
                    fs->on_event(fs, f->ctx.decl->name, "gate", false, "prepare failed", fs->data);
            }
            continue;
        }
        run_one(fs, f);
        return;
    }
    fs->running = false;
    vm_features_done_cb done = fs->done;
    fs->done = NULL;
    if (done)
        done(fs, fs->ok, fs->reason, fs->data);
}

void vm_features_cancel(struct vm_features *fs)
{
    if (!fs || !fs->running)
        return;
    fs->cancelled = true;
    if (fs->ok) {
        fs->ok = false;
        fs->reason = xstrdup("cancelled");
    }
    if (fs->cursor < 0 || fs->cursor >= fs->n)
        return;
    struct feature *f = &fs->f[fs->cursor];
    if (f->ops->cancel)
        f->ops->cancel(&f->ctx);
}

void vm_features_run(struct vm_features *fs, enum vm_feature_step step, vm_features_done_cb done)
{
    fs->cancelled = false;
    fs->step = step;
    fs->cursor = step == VM_FEATURE_DEINIT ? fs->n : -1;
    fs->running = true;
    fs->ok = true;
    free(fs->reason);
    fs->reason = NULL;
    fs->done = done;
    next(fs);
}

json_t *vm_features_to_json(const struct vm_features *fs)
{
    json_t *a = json_array();
    for (int i = 0; fs && i < fs->n; i++) {
        const struct feature *f = &fs->f[i];
        json_t *o =
            json_pack("{s:s, s:b}", "name", f->ctx.decl->name, "required", f->ctx.decl->required);
        for (int k = 0; k < NSTEPS; k++)
            json_object_set_new(o, step_names[k],
                                f->outcome[k] ? json_string(f->outcome[k]) : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

void vm_features_adopt(struct vm_features *dst, const struct vm_features *src,
                       enum vm_feature_step step)
{
    for (int i = 0; dst && src && i < dst->n && i < src->n; i++) {
        struct feature *d = &dst->f[i];
        const struct feature *s = &src->f[i];
        if (d->ops == s->ops && d->ops->adopt)
            d->ops->adopt(d->ctx.state, s->ctx.state);
        free(d->outcome[step]);
        d->outcome[step] = s->outcome[step] ? xstrdup(s->outcome[step]) : NULL;
    }
}
