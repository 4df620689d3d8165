/* feature.c — see feature.h. */
#include "feature/feature.h"

#include <stdlib.h>
#include <string.h>

#include "util/exec.h"
#include "feature/feature_vdp.h"
#include "policy/policy.h"
#include "util/util.h"

static const char *const step_names[] = {"probe", "prepare", "gate", "after", "deinit"};
#define NSTEPS 5

enum impl {
    IMPL_POLICY,   /* vmm.feature() */
    IMPL_ANNOUNCE, /* built in: QEMU announce-self on the target after commit */
    IMPL_VDP,      /* built in: 802.1Qbg VSI association (feature_vdp.h) */
    IMPL_SPICE,    /* built in: SPICE clients follow the guest to the target */
};

struct feature {
    const struct vm_feature_decl *decl;
    enum impl impl;
    char *outcome[NSTEPS]; /* per step: "ok", "failed: ...", "skipped: ..." */
    bool owed_deinit;      /* prepare or gate ran */
    bool bridge_answered;  /* vdp: the target's bridge answered a request of this migration */
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
    struct vm_exec *exec;       /* the built-in's command running, if any */
    struct vdp_run *cur_vdp;    /* ... and its context */
    bool cancelled;
    int outstanding;
    int spice_channels;      /* on the source, counted at probe (-1: not yet) */
    uv_timer_t *spice_timer; /* the gate step's poll */
    uint64_t spice_deadline; /* commands not yet reported back (even cancelled) */
};

bool vm_feature_known(const char *name, const struct vm_policy *policy)
{
    if (strcmp(name, "announce") == 0 || strcmp(name, "vdp") == 0 || strcmp(name, "spice") == 0)
        return true;
    return policy && vm_policy_has_feature(policy, name);
}

bool vm_feature_owed_after_crash(const char *name, enum vm_feature_step step,
                                 const struct vm_policy *policy)
{
    if (strcmp(name, "vdp") == 0)
        return true; /* deinit: deassociate on the target; after: on the source */
    if (strcmp(name, "announce") == 0 || strcmp(name, "spice") == 0)
        return false; /* announcing late helps no one; clients reconnect by themselves */
    return policy && vm_policy_feature_has_step(policy, name, step_names[step]);
}

struct vm_features *vm_features_new(uv_loop_t *loop, const struct vm_feature_env *env, json_t *vm,
                                    const struct vm_feature_decl *decls, int n,
                                    struct vm_policy *policy, vm_features_event_cb on_event,
                                    void *data)
{
    struct vm_features *fs = xcalloc(1, sizeof(*fs));
    fs->loop = loop;
    fs->env = *env;
    fs->spice_channels = -1;
    fs->vm = json_incref(vm);
    fs->policy = policy;
    fs->on_event = on_event;
    fs->data = data;
    fs->f = xcalloc(n ? (size_t)n : 1, sizeof(*fs->f));
    fs->n = n;
    for (int i = 0; i < n; i++) {
        fs->f[i].decl = &decls[i];
        fs->f[i].impl = strcmp(decls[i].name, "announce") == 0 ? IMPL_ANNOUNCE
                        : strcmp(decls[i].name, "vdp") == 0    ? IMPL_VDP
                        : strcmp(decls[i].name, "spice") == 0  ? IMPL_SPICE
                                                               : IMPL_POLICY;
    }
    return fs;
}

void vm_features_free(struct vm_features *fs)
{
    if (!fs)
        return;
    for (int i = 0; i < fs->n; i++)
        for (int k = 0; k < NSTEPS; k++)
            free(fs->f[i].outcome[k]);
    free(fs->f);
    free(fs->reason);
    json_decref(fs->vm);
    free(fs);
}

bool vm_features_busy(const struct vm_features *fs)
{
    return fs && (fs->running || fs->outstanding > 0);
}

void vm_features_owe_deinit(struct vm_features *fs)
{
    for (int i = 0; i < fs->n; i++)
        fs->f[i].owed_deinit = true;
}

static void next(struct vm_features *fs);

/* Record one feature's outcome of the current step and move on. */
static void settle(struct vm_features *fs, struct feature *f, int rc, const char *detail)
{
    const char *step = step_names[fs->step];
    free(f->outcome[fs->step]);
    if (rc > 0)
        f->outcome[fs->step] = xstrdup("ok");
    else
        f->outcome[fs->step] = xasprintf("failed: %s", detail ? detail : "no reason given");
    if (fs->step == VM_FEATURE_PREPARE || fs->step == VM_FEATURE_GATE)
        f->owed_deinit = true;
    if (fs->step == VM_FEATURE_DEINIT)
        f->owed_deinit = false;
    if (rc <= 0 && f->decl->required && fs->step != VM_FEATURE_DEINIT &&
        fs->step != VM_FEATURE_AFTER) {
        if (fs->ok) {
            fs->ok = false;
            fs->reason = xasprintf("feature '%s' %s: %s", f->decl->name, step,
                                   detail ? detail : "no reason given");
        }
    }
    if (rc <= 0 && fs->step == VM_FEATURE_DEINIT && fs->ok) {
        /* A failing deinit never changes where the guest runs: it is
         * reported, and an operator must look. */
        fs->ok = false;
        fs->reason = xasprintf("deinit of '%s' failed: %s", f->decl->name, detail);
    }
    if (fs->on_event)
        fs->on_event(fs, f->decl->name, step, rc > 0, detail, fs->data);
    next(fs);
}

/* -- built-in: spice -- */

void vm_features_spice_counted(struct vm_features *fs, int n, const char *why)
{
    fs->spice_channels = n;
    char *detail = n >= 0 ? xasprintf("%d SPICE channel%s on the source", n, n == 1 ? "" : "s")
                          : xstrdup(why ? why : "cannot count SPICE clients");
    settle(fs, &fs->f[fs->cursor], n >= 0 ? 1 : 0, n >= 0 ? NULL : detail);
    free(detail);
}

static void spice_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void spice_stop(struct vm_features *fs)
{
    if (fs->spice_timer) {
        uv_close((uv_handle_t *)fs->spice_timer, spice_timer_closed);
        fs->spice_timer = NULL;
        fs->outstanding--;
    }
}

static void spice_poll(uv_timer_t *t)
{
    struct vm_features *fs = t->data;
    int ready = fs->env.spice_target_ready ? fs->env.spice_target_ready(fs->env.ctx) : 0;
    if (ready >= fs->spice_channels) {
        spice_stop(fs);
        settle(fs, &fs->f[fs->cursor], 1, NULL);
    } else if (uv_now(fs->loop) >= fs->spice_deadline) {
        spice_stop(fs);
        char *why =
            xasprintf("%d of %d SPICE channels reached the target", ready, fs->spice_channels);
        settle(fs, &fs->f[fs->cursor], 0, why);
        free(why);
    }
}

static void run_spice(struct vm_features *fs, struct feature *f)
{
    switch (fs->step) {
    case VM_FEATURE_PROBE:
        /* Count the clients now, while nothing moves (monitor commands
         * wait for a running migration job). */
        if (!fs->env.spice_count) {
            settle(fs, f, 0, "this backend cannot count SPICE clients");
            return;
        }
        fs->env.spice_count(fs, fs->env.ctx);
        return;
    case VM_FEATURE_GATE:
        /* libvirt has handed the target's address to the clients; every
         * channel they held on the source must be initialised there. */
        if (fs->spice_channels <= 0) {
            settle(fs, f, 1, NULL);
            return;
        }
        fs->spice_timer = xmalloc(sizeof(*fs->spice_timer));
        uv_timer_init(fs->loop, fs->spice_timer);
        fs->spice_timer->data = fs;
        fs->outstanding++;
        fs->spice_deadline = uv_now(fs->loop) + f->decl->timeout_ms;
        uv_timer_start(fs->spice_timer, spice_poll, 0, 50);
        return;
    default:
        settle(fs, f, 1, NULL); /* nothing to do or to undo */
        return;
    }
}

/* -- built-in: announce (the backend runs QEMU's announce-self) -- */

void vm_features_announced(struct vm_features *fs, bool ok, const char *detail)
{
    settle(fs, &fs->f[fs->cursor], ok ? 1 : 0, detail);
}

/* -- built-in: vdp -- */

struct vdp_run {
    struct vm_features *fs;
    const char *mode;
    bool cancelled; /* settled by vm_features_cancel: only the count remains */
};

static void vdp_done(const struct vm_exec_result *r, void *data)
{
    struct vdp_run *vr = data;
    struct vm_features *fs = vr->fs;
    fs->outstanding--;
    if (vr->cancelled) {
        free(vr);
        return;
    }
    fs->exec = NULL;
    fs->cur_vdp = NULL;
    char *detail = NULL;
    int ok;
    if (r->error) {
        detail = xstrdup(r->error);
        ok = 0;
    } else if (r->timed_out) {
        detail = xstrdup("vdptool timed out");
        ok = 0;
    } else {
        enum vm_vdp_outcome o = vm_vdp_parse(r->out, r->err, vr->mode, &detail);
        struct feature *f = &fs->f[fs->cursor];
        ok = o == VM_VDP_OK;
        if (o != VM_VDP_TIMEOUT && fs->step != VM_FEATURE_AFTER)
            f->bridge_answered = true;
        /* Disassociating what this station does not hold: nothing to undo. */
        if (!ok && vr->mode && strcmp(vr->mode, "deassoc") == 0 && detail &&
            strstr(detail, "Invalid parameters"))
            ok = 1;
        /* The deinit of an association the target's bridge never answered:
         * the bridge holds nothing of it, and lldpad drops the station's
         * side once the deassoc goes unanswered. Whether lldpad still held
         * the VSI when the deassoc came (it gives up on a dead bridge after
         * its ECP retries) depends on timing, not on what there is to undo. */
        if (!ok && o == VM_VDP_TIMEOUT && fs->step == VM_FEATURE_DEINIT && !f->bridge_answered) {
            free(detail);
            detail = xstrdup("nothing to undo: the bridge never answered");
            ok = 1;
        }
    }
    free(vr);
    settle(fs, &fs->f[fs->cursor], ok, detail);
    free(detail);
}

static void run_vdp(struct vm_features *fs, struct feature *f)
{
    static const char *const modes[] = {NULL, "preassoc", "assoc", "deassoc", "deassoc"};
    bool on_target = fs->step != VM_FEATURE_AFTER;
    struct vm_vdp v;
    char *why = NULL;
    if (vm_vdp_params(fs->vm, f->decl->args, fs->env.source, fs->env.target, &v, &why) < 0) {
        settle(fs, f, 0, why);
        free(why);
        return;
    }
    char **argv = vm_vdp_argv(&v, modes[fs->step], on_target);
    struct vdp_run *vr = xcalloc(1, sizeof(*vr));
    vr->fs = fs;
    vr->mode = modes[fs->step];
    vm_vdp_clear(&v);
    fs->outstanding++;
    fs->cur_vdp = vr;
    fs->exec = vm_exec_start(fs->loop, on_target ? fs->env.target : fs->env.source,
                             (const char *const *)argv, f->decl->timeout_ms, vdp_done, vr);
    vm_vdp_argv_free(argv);
}

static void policy_step_done(void *data, int rc, const char *reason)
{
    struct vm_features *fs = data;
    fs->cur = NULL;
    settle(fs, &fs->f[fs->cursor], rc, reason);
}

static void run_one(struct vm_features *fs, struct feature *f)
{
    if (f->impl == IMPL_VDP) {
        run_vdp(fs, f);
        return;
    }
    if (f->impl == IMPL_SPICE) {
        run_spice(fs, f);
        return;
    }
    if (f->impl == IMPL_ANNOUNCE) {
        /* Switches relearn the guest's MACs once it runs on the target. */
        if (fs->step != VM_FEATURE_AFTER) {
            settle(fs, f, 1, NULL);
            return;
        }
        if (!fs->env.announce) {
            settle(fs, f, 0, "this backend cannot announce");
            return;
        }
        fs->env.announce(fs, fs->env.ctx);
        return;
    }
    json_t *ctx = json_pack("{s:s, s:s, s:s, s:s, s:O}", "source", fs->env.source, "target",
                            fs->env.target, "class", fs->env.gated ? "network-critical" : "urgent",
                            "step", step_names[fs->step], "args", f->decl->args);
    struct vm_policy_step *st = vm_policy_feature_start(
        fs->policy, fs->loop, f->decl->name, step_names[fs->step], fs->vm, ctx, fs->env.source,
        fs->env.target, f->decl->timeout_ms, policy_step_done, fs);
    if (st)
        fs->cur = st;
    json_decref(ctx);
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
            if (f->decl->required && fs->ok) {
                fs->ok = false;
                fs->reason = xasprintf("feature '%s' prepare %s", f->decl->name,
                                       f->outcome[VM_FEATURE_PREPARE]);
                if (fs->on_event)
                    fs->on_event(fs, f->decl->name, "gate", false, "prepare failed", fs->data);
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
    if (fs->cur)
        vm_policy_step_cancel(fs->cur); /* settles the step, ends the run */
    else if (fs->spice_timer) {
        spice_stop(fs);
        settle(fs, &fs->f[fs->cursor], 0, "cancelled: the gate was decided without it");
    } else if (fs->cur_vdp) {
        vm_exec_kill(fs->exec);
        fs->cur_vdp->cancelled = true;
        fs->cur_vdp = NULL;
        fs->exec = NULL;
        settle(fs, &fs->f[fs->cursor], 0, "cancelled: the gate was decided without it");
    }
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
        json_t *o = json_pack("{s:s, s:b}", "name", f->decl->name, "required", f->decl->required);
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
    if (dst && src && src->spice_channels >= 0)
        dst->spice_channels = src->spice_channels;
    for (int i = 0; dst && src && i < dst->n && i < src->n; i++) {
        free(dst->f[i].outcome[step]);
        dst->f[i].outcome[step] = src->f[i].outcome[step] ? xstrdup(src->f[i].outcome[step]) : NULL;
    }
}
