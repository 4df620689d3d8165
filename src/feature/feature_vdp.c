/* SPDX-License-Identifier: MIT */
/* feature_vdp.c — see feature_vdp.h: the pure helpers, then the steps. */
#include "feature/feature_vdp.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "feature/feature_builtin.h"
#include "util/exec.h"
#include "util/util.h"

static char *arg(json_t *args, const char *key)
{
    json_t *v = json_object_get(args, key);
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    return NULL;
}

/* [A-Za-z0-9.:_-]+ only: these end up as vdptool arguments. */
static bool tame(const char *s)
{
    return s && *s &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:_-") ==
               strlen(s) &&
           strlen(s) < 128;
}

int vm_vdp_params(json_t *vm, json_t *args, const char *source_uri, const char *target_uri,
                  struct vm_vdp *out, char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    /* The VM's first 802.1Qbg interface gives the defaults. */
    json_t *nic = NULL, *params = NULL;
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(vm, "interfaces"), i, n)
    {
        json_t *vp = json_object_get(n, "virtualport");
        const char *t = json_string_value(json_object_get(vp, "type"));
        if (t && strcmp(t, "802.1Qbg") == 0) {
            nic = n;
            params = json_object_get(vp, "parameters");
            break;
        }
    }
    out->mac = arg(args, "mac");
    if (!out->mac && nic)
        out->mac = arg(nic, "mac");
    out->vlan = arg(args, "vlan");
    if (!out->vlan)
        out->vlan = xstrdup("0");
    out->mgrid = arg(args, "mgrid");
    if (!out->mgrid && params)
        out->mgrid = arg(params, "managerid");
    out->typeid = arg(args, "typeid");
    if (!out->typeid && params)
        out->typeid = arg(params, "typeid");
    out->typeidver = arg(args, "typeidver");
    if (!out->typeidver && params)
        out->typeidver = arg(params, "typeidversion");
    out->uuid = arg(args, "uuid");
    if (!out->uuid && params)
        out->uuid = arg(params, "instanceid");
    if (!out->uuid)
        out->uuid = arg(vm, "uuid");
    json_t *map = json_object_get(args, "interfaces");
    out->iface_source = arg(map, source_uri);
    out->iface_target = arg(map, target_uri);
    char *one = arg(args, "interface");
    if (!one && nic)
        one = arg(json_object_get(nic, "source"), "dev");
    if (!out->iface_source && one)
        out->iface_source = xstrdup(one);
    if (!out->iface_target && one)
        out->iface_target = xstrdup(one);
    free(one);

    static const char *const names[] = {"mac",
                                        "vlan",
                                        "mgrid",
                                        "typeid",
                                        "typeidver",
                                        "uuid",
                                        "interface (source)",
                                        "interface (target)"};
    char *vals[] = {out->mac,       out->vlan, out->mgrid,        out->typeid,
                    out->typeidver, out->uuid, out->iface_source, out->iface_target};
    for (size_t k = 0; k < VM_ARRAY_LEN(names); k++) {
        if (!vals[k]) {
            *why = xasprintf("vdp: no %s (give it in the feature's args or the domain's "
                             "<virtualport type='802.1Qbg'>)",
                             names[k]);
            vm_vdp_clear(out);
            return -1;
        }
        if (!tame(vals[k])) {
            *why = xasprintf("vdp: %s '%s' has characters vdptool must not see", names[k], vals[k]);
            vm_vdp_clear(out);
            return -1;
        }
    }
    return 0;
}

void vm_vdp_clear(struct vm_vdp *v)
{
    free(v->iface_source);
    free(v->iface_target);
    free(v->mac);
    free(v->vlan);
    free(v->mgrid);
    free(v->typeid);
    free(v->typeidver);
    free(v->uuid);
    memset(v, 0, sizeof(*v));
}

void vm_vdp_argv_free(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}

char **vm_vdp_argv(const struct vm_vdp *v, const char *mode, int on_target)
{
    char **a = xcalloc(24, sizeof(*a));
    int n = 0;
    a[n++] = xstrdup("vdptool");
    a[n++] = xstrdup("-i");
    a[n++] = xstrdup(on_target ? v->iface_target : v->iface_source);
    if (!mode) {
        a[n++] = xstrdup("-t");
        a[n++] = xstrdup("-V");
        a[n++] = xstrdup("assoc");
        return a;
    }
    a[n++] = xstrdup("-T");
    a[n++] = xstrdup("-W");
    a[n++] = xstrdup("-V");
    a[n++] = xstrdup(mode);
    a[n++] = xstrdup("-c");
    a[n++] = xasprintf("mode=%s", mode);
    a[n++] = xstrdup("-c");
    a[n++] = xasprintf("mgrid2=%s", v->mgrid);
    a[n++] = xstrdup("-c");
    a[n++] = xasprintf("typeid=%s", v->typeid);
    a[n++] = xstrdup("-c");
    a[n++] = xasprintf("typeidver=%s", v->typeidver);
    a[n++] = xstrdup("-c");
    a[n++] = xasprintf("uuid=%s", v->uuid);
    a[n++] = xstrdup("-c");
    a[n++] = xstrdup("hints=none");
    a[n++] = xstrdup("-c");
    a[n++] = xasprintf("filter=%s-%s", v->vlan, v->mac);
    return a;
}

/* The rest of the line after needle, trimmed, or NULL. */
static char *line_after(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    if (!p)
        return NULL;
    p += strlen(needle);
    p += strspn(p, " \t:");
    size_t len = strcspn(p, "\r\n");
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    return vm_utf8_cut(p, len < 200 ? len : 200);
}

enum vm_vdp_outcome vm_vdp_parse(const char *out, const char *err, const char *mode, char **detail)
{
    *detail = NULL;
    char *x;
    if ((x = line_after(out, "Error returned by Bridge"))) {
        *detail = xasprintf("rejected by the bridge: %s", x);
        free(x);
        return VM_VDP_REJECTED;
    }
    if (strstr(out, "Ack not received") || strstr(err, "Ack not received")) {
        *detail = xstrdup("no answer from the bridge");
        return VM_VDP_TIMEOUT;
    }
    if ((x = line_after(out, "FAILED")) || (x = line_after(err, "FAILED"))) {
        *detail = xasprintf("lldpad refused: %s", x);
        free(x);
        return VM_VDP_FAILED;
    }
    if (!mode) /* a query: lldpad answered */
        return VM_VDP_OK;
    char *want = xasprintf("mode = %s", mode);
    bool ok = strstr(out, want) != NULL;
    free(want);
    if (ok)
        return VM_VDP_OK;
    if (strstr(out, "mode = deassoc")) {
        *detail = xstrdup("rejected by the bridge: it answered deassoc");
        return VM_VDP_REJECTED;
    }
    if (!*out) {
        *detail = xstrdup("no answer from lldpad or the bridge (empty output)");
        return VM_VDP_TIMEOUT;
    }
    *detail = xasprintf("unexpected vdptool output: %.120s", out);
    return VM_VDP_FAILED;
}

/* -- the steps -- */

struct vdp {
    bool bridge_answered; /* the target's bridge answered a request of this migration */
    struct vdp_run *cur;  /* the command running, if any */
    struct vm_exec *exec; /* ... its handle */
};

struct vdp_run {
    struct vm_feature_ctx *c;
    const char *mode;
    bool cancelled; /* settled by vdp_cancel: only the count remains */
};

static void vdp_done(const struct vm_exec_result *r, void *data)
{
    struct vdp_run *vr = data;
    struct vm_feature_ctx *c = vr->c;
    struct vdp *s = c->state;
    vm_feature_release(c);
    if (vr->cancelled) {
        free(vr);
        return;
    }
    s->exec = NULL;
    s->cur = NULL;
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
        ok = o == VM_VDP_OK;
        if (o != VM_VDP_TIMEOUT && c->step != VM_FEATURE_AFTER)
            s->bridge_answered = true;
        /* Disassociating what this station does not hold: nothing to undo. */
        if (!ok && vr->mode && strcmp(vr->mode, "deassoc") == 0 && detail &&
            strstr(detail, "Invalid parameters"))
            ok = 1;
        /* The deinit of an association the target's bridge never answered:
         * the bridge holds nothing of it, and lldpad drops the station's
         * side once the deassoc goes unanswered. Whether lldpad still held
         * the VSI when the deassoc came (it gives up on a dead bridge after
         * its ECP retries) depends on timing, not on what there is to undo. */
        if (!ok && o == VM_VDP_TIMEOUT && c->step == VM_FEATURE_DEINIT && !s->bridge_answered) {
            free(detail);
            detail = xstrdup("nothing to undo: the bridge never answered");
            ok = 1;
        }
    }
    free(vr);
    vm_feature_settle(c, ok, detail);
    free(detail);
}

static void vdp_run(struct vm_feature_ctx *c)
{
    static const char *const modes[] = {NULL, "preassoc", "assoc", "deassoc", "deassoc"};
    struct vdp *s = c->state;
    bool on_target = c->step != VM_FEATURE_AFTER;
    struct vm_vdp v;
    char *why = NULL;
    if (vm_vdp_params(c->vm, c->decl->args, c->env->source, c->env->target, &v, &why) < 0) {
        vm_feature_settle(c, 0, why);
        free(why);
        return;
    }
    char **argv = vm_vdp_argv(&v, modes[c->step], on_target);
    struct vdp_run *vr = xcalloc(1, sizeof(*vr));
    vr->c = c;
    vr->mode = modes[c->step];
    vm_vdp_clear(&v);
    vm_feature_hold(c);
    s->cur = vr;
    /* The probe only asks the target's lldpad about the interface: every
     * VM asking the same of the same host shares one vdptool. */
    s->exec = vm_exec_start_shared(c->step == VM_FEATURE_PROBE ? c->env->share : NULL, c->loop,
                                   c->env->hosts, on_target ? c->env->target : c->env->source,
                                   (const char *const *)argv, c->decl->timeout_ms, vdp_done, vr);
    vm_vdp_argv_free(argv);
}

static void vdp_cancel(struct vm_feature_ctx *c)
{
    struct vdp *s = c->state;
    if (!s->cur)
        return;
    vm_exec_kill(s->exec);
    s->cur->cancelled = true;
    s->cur = NULL;
    s->exec = NULL;
    vm_feature_settle(c, 0, VM_FEATURE_CANCELLED);
}

const struct vm_feature_ops vm_feature_vdp_ops = {
    .state_size = sizeof(struct vdp),
    .run = vdp_run,
    .cancel = vdp_cancel,
};
