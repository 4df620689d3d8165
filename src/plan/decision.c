/* SPDX-License-Identifier: MIT */
/* decision.c — see decision.h. */
#include "plan/decision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

const char *vm_class_name(enum vm_class c)
{
    return c == VM_CLASS_NETWORK_CRITICAL ? "network-critical" : "urgent";
}

void vm_decision_clear(struct vm_decision *d)
{
    free(d->target);
    free(d->compression);
    free(d->reason);
    for (int i = 0; i < d->nfeatures; i++) {
        free(d->features[i].name);
        json_decref(d->features[i].args);
    }
    free(d->features);
    memset(d, 0, sizeof(*d));
}

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *err = xvasprintf(fmt, ap);
    va_end(ap);
    return -1;
}

/* Lua numbers arrive as JSON integers or reals; accept reals that are whole. */
static bool get_int(json_t *v, int64_t min, int64_t max, int64_t *out)
{
    double x;
    if (json_is_integer(v))
        x = (double)json_integer_value(v);
    else if (json_is_real(v))
        x = json_real_value(v);
    else
        return false;
    if (!isfinite(x) || x != floor(x) || x < (double)min || x > (double)max)
        return false;
    *out = (int64_t)x;
    return true;
}

static const char *const compression_methods[] = {"xbzrle", "mt", "zlib", "zstd"};

static bool compression_valid(const char *s)
{
    char *copy = xstrdup(s), *save = NULL;
    bool ok = *s != '\0';
    for (char *t = strtok_r(copy, ",", &save); t && ok; t = strtok_r(NULL, ",", &save)) {
        bool known = false;
        for (size_t i = 0; i < VM_ARRAY_LEN(compression_methods); i++)
            known |= strcmp(t, compression_methods[i]) == 0;
        ok = known;
    }
    free(copy);
    return ok;
}

static int parse_params(json_t *p, struct vm_decision *d, char **err)
{
    if (!json_is_object(p))
        return fail(err, "params must be a table");
    const char *key;
    json_t *v;
    struct vm_mig_params *mp = &d->params;
    json_object_foreach(p, key, v)
    {
        int64_t n;
        if (strcmp(key, "bandwidth_mibs") == 0) {
            if (!get_int(v, 1, 1000000, &n))
                return fail(err, "params.bandwidth_mibs must be an integer from 1 to 1000000");
            mp->bandwidth_mibs = (unsigned long)n;
            d->params_set |= VM_PARAM_BANDWIDTH;
        } else if (strcmp(key, "max_downtime_ms") == 0) {
            if (!get_int(v, 1, 2000000, &n))
                return fail(err, "params.max_downtime_ms must be an integer from 1 to 2000000");
            mp->max_downtime_ms = (unsigned long long)n;
            d->params_set |= VM_PARAM_MAX_DOWNTIME;
        } else if (strcmp(key, "parallel") == 0) {
            if (!get_int(v, 1, 255, &n))
                return fail(err, "params.parallel must be an integer from 1 to 255");
            mp->parallel = (int)n;
            d->params_set |= VM_PARAM_PARALLEL;
        } else if (strcmp(key, "timeout_s") == 0) {
            if (!get_int(v, 1, 604800, &n))
                return fail(err, "params.timeout_s must be an integer from 1 to 604800");
            mp->timeout_s = (unsigned)n;
            d->params_set |= VM_PARAM_TIMEOUT;
        } else if (strcmp(key, "timeout_action") == 0) {
            const char *s = json_string_value(v);
            if (s && strcmp(s, "abort") == 0)
                mp->timeout_action = VM_MIG_TIMEOUT_ABORT;
            else if (s && strcmp(s, "suspend") == 0)
                mp->timeout_action = VM_MIG_TIMEOUT_SUSPEND;
            else if (s && strcmp(s, "postcopy") == 0)
                mp->timeout_action = VM_MIG_TIMEOUT_POSTCOPY;
            else
                return fail(err, "params.timeout_action must be 'abort', 'suspend' or 'postcopy'");
            d->params_set |= VM_PARAM_TIMEOUT_ACTION;
        } else if (strcmp(key, "compression") == 0) {
            const char *s = json_string_value(v);
            if (!s || !compression_valid(s))
                return fail(err, "params.compression must be a comma list of xbzrle, mt, zlib, "
                                 "zstd");
            free(d->compression);
            d->compression = xstrdup(s);
            mp->compression = d->compression;
            d->params_set |= VM_PARAM_COMPRESSION;
        } else {
            static const struct {
                const char *name;
                unsigned bit;
            } flags[] = {
                {"auto_converge", VM_PARAM_AUTO_CONVERGE},
                {"postcopy", VM_PARAM_POSTCOPY},
                {"persistent", VM_PARAM_PERSISTENT},
                {"undefine_source", VM_PARAM_UNDEFINE_SOURCE},
                {"direct", VM_PARAM_DIRECT},
            };
            size_t i;
            for (i = 0; i < VM_ARRAY_LEN(flags); i++)
                if (strcmp(key, flags[i].name) == 0)
                    break;
            if (i == VM_ARRAY_LEN(flags))
                return fail(err, "params: unknown key '%s'", key);
            if (!json_is_boolean(v))
                return fail(err, "params.%s must be a boolean", key);
            bool b = json_is_true(v);
            switch (flags[i].bit) {
            case VM_PARAM_AUTO_CONVERGE:
                mp->auto_converge = b;
                break;
            case VM_PARAM_POSTCOPY:
                mp->postcopy = b;
                break;
            case VM_PARAM_PERSISTENT:
                mp->persistent = b;
                break;
            case VM_PARAM_UNDEFINE_SOURCE:
                mp->undefine_source = b;
                break;
            case VM_PARAM_DIRECT:
                mp->p2p = !b;
                break;
            }
            d->params_set |= flags[i].bit;
        }
    }
    return 0;
}

static int parse_feature(json_t *f, int i, struct vm_feature_decl *out, char **err)
{
    if (!json_is_object(f))
        return fail(err, "features[%d] must be a table", i + 1);
    out->timeout_ms = 10000;
    out->required = true;
    const char *key;
    json_t *v;
    json_object_foreach(f, key, v)
    {
        int64_t n;
        if (strcmp(key, "name") == 0) {
            const char *s = json_string_value(v);
            if (!s || !*s || strlen(s) > 64 ||
                strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(s))
                return fail(err, "features[%d].name must be a name of [a-z0-9_-], 1-64 characters",
                            i + 1);
            out->name = xstrdup(s);
        } else if (strcmp(key, "required") == 0) {
            if (!json_is_boolean(v))
                return fail(err, "features[%d].required must be a boolean", i + 1);
            out->required = json_is_true(v);
        } else if (strcmp(key, "timeout_ms") == 0) {
            if (!get_int(v, 1, 3600000, &n))
                return fail(err, "features[%d].timeout_ms must be an integer from 1 to 3600000",
                            i + 1);
            out->timeout_ms = (uint64_t)n;
        } else if (strcmp(key, "args") == 0) {
            if (!json_is_object(v) && !(json_is_array(v) && json_array_size(v) == 0))
                return fail(err, "features[%d].args must be a table of named values", i + 1);
            out->args = json_is_object(v) ? json_incref(v) : json_object();
        } else {
            return fail(err, "features[%d]: unknown key '%s'", i + 1, key);
        }
    }
    if (!out->name)
        return fail(err, "features[%d] has no name", i + 1);
    if (!out->args)
        out->args = json_object();
    return 0;
}

int vm_decision_parse(json_t *d, struct vm_decision *out, char **err)
{
    memset(out, 0, sizeof(*out));
    *err = NULL;
    if (!json_is_object(d)) {
        fail(err, "a decision must be a table (or nil to leave the VM alone)");
        goto bad;
    }
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v)
    {
        if (strcmp(key, "target") == 0) {
            if (!json_is_string(v) || !*json_string_value(v)) {
                fail(err, "target must be a libvirt URI string");
                goto bad;
            }
            out->target = xstrdup(json_string_value(v));
        } else if (strcmp(key, "class") == 0) {
            const char *s = json_string_value(v);
            if (s && strcmp(s, "urgent") == 0)
                out->class = VM_CLASS_URGENT;
            else if (s && strcmp(s, "network-critical") == 0)
                out->class = VM_CLASS_NETWORK_CRITICAL;
            else {
                fail(err, "class must be 'urgent' or 'network-critical'");
                goto bad;
            }
            out->class_set = true;
        } else if (strcmp(key, "priority") == 0) {
            if (!get_int(v, -1000000000, 1000000000, &out->priority)) {
                fail(err, "priority must be an integer from -1e9 to 1e9");
                goto bad;
            }
        } else if (strcmp(key, "params") == 0) {
            if (json_is_array(v) && json_array_size(v) == 0)
                continue; /* an empty Lua table */
            if (parse_params(v, out, err) < 0)
                goto bad;
        } else if (strcmp(key, "features") == 0) {
            if (json_is_object(v) && json_object_size(v) == 0)
                continue;
            if (!json_is_array(v)) {
                fail(err, "features must be a list of tables");
                goto bad;
            }
            size_t n = json_array_size(v);
            if (n > 32) {
                fail(err, "features: at most 32");
                goto bad;
            }
            out->features = xcalloc(n ? n : 1, sizeof(*out->features));
            for (size_t i = 0; i < n; i++) {
                out->nfeatures++;
                if (parse_feature(json_array_get(v, i), (int)i, &out->features[i], err) < 0)
                    goto bad;
                for (size_t j = 0; j < i; j++)
                    if (strcmp(out->features[j].name, out->features[i].name) == 0) {
                        fail(err, "features: '%s' named twice", out->features[i].name);
                        goto bad;
                    }
            }
        } else if (strcmp(key, "retries") == 0) {
            int64_t n;
            if (!get_int(v, 0, 10, &n)) {
                fail(err, "retries must be an integer from 0 to 10");
                goto bad;
            }
            out->retries = (int)n;
            out->retries_set = true;
        } else if (strcmp(key, "gate_timeout_ms") == 0) {
            int64_t n;
            if (!get_int(v, 1, 600000, &n)) {
                fail(err, "gate_timeout_ms must be an integer from 1 to 600000");
                goto bad;
            }
            out->gate_timeout_ms = (uint64_t)n;
        } else if (strcmp(key, "reason") == 0) {
            if (!json_is_string(v)) {
                fail(err, "reason must be a string");
                goto bad;
            }
            out->reason = vm_utf8_cut(json_string_value(v), 200);
        } else {
            fail(err, "unknown key '%s'", key);
            goto bad;
        }
    }
    return 0;
bad:
    vm_decision_clear(out);
    return -1;
}

void vm_decision_apply_params(const struct vm_decision *d, struct vm_mig_params *b)
{
    const struct vm_mig_params *p = &d->params;
    unsigned s = d->params_set;
    if (s & VM_PARAM_BANDWIDTH)
        b->bandwidth_mibs = p->bandwidth_mibs;
    if (s & VM_PARAM_MAX_DOWNTIME)
        b->max_downtime_ms = p->max_downtime_ms;
    if (s & VM_PARAM_AUTO_CONVERGE)
        b->auto_converge = p->auto_converge;
    if (s & VM_PARAM_POSTCOPY)
        b->postcopy = p->postcopy;
    if (s & VM_PARAM_PARALLEL)
        b->parallel = p->parallel;
    if (s & VM_PARAM_COMPRESSION)
        b->compression = p->compression;
    if (s & VM_PARAM_TIMEOUT)
        b->timeout_s = p->timeout_s;
    if (s & VM_PARAM_TIMEOUT_ACTION)
        b->timeout_action = p->timeout_action;
    if (s & VM_PARAM_PERSISTENT)
        b->persistent = p->persistent;
    if (s & VM_PARAM_UNDEFINE_SOURCE)
        b->undefine_source = p->undefine_source;
    if (s & VM_PARAM_DIRECT)
        b->p2p = p->p2p;
}

json_t *vm_decision_to_json(const struct vm_decision *d)
{
    json_t *features = json_array();
    for (int i = 0; i < d->nfeatures; i++)
        json_array_append_new(features,
                              json_pack("{s:s, s:b, s:I, s:O}", "name", d->features[i].name,
                                        "required", d->features[i].required, "timeout_ms",
                                        (json_int_t)d->features[i].timeout_ms, "args",
                                        d->features[i].args));
    json_t *o = json_pack("{s:o, s:s, s:I, s:o, s:o}", "target",
                          d->target ? json_string(d->target) : json_null(), "class",
                          vm_class_name(d->class), "priority", (json_int_t)d->priority, "features",
                          features, "reason", d->reason ? json_string(d->reason) : json_null());
    if (d->retries_set)
        json_object_set_new(o, "retries", json_integer(d->retries));
    return o;
}

const char *vm_action_name(enum vm_action_kind k)
{
    static const char *const names[] = {"continue", "set_downtime", "postcopy", "abort"};
    return (size_t)k < VM_ARRAY_LEN(names) ? names[k] : "unknown";
}

void vm_action_clear(struct vm_action *a)
{
    free(a->reason);
    memset(a, 0, sizeof(*a));
}

int vm_action_parse(json_t *j, struct vm_action *out, char **err)
{
    memset(out, 0, sizeof(*out));
    *err = NULL;
    if (!j || json_is_null(j))
        return 0;
    const char *name = json_string_value(j);
    if (!name && !json_is_object(j))
        return fail(err, "on_progress() must return an action name or a table");
    if (!name)
        name = json_string_value(json_object_get(j, "action"));
    if (!name)
        return fail(err, "on_progress(): the action table needs action = \"...\"");
    size_t k;
    for (k = 0; k <= VM_ACTION_ABORT; k++)
        if (strcmp(name, vm_action_name((enum vm_action_kind)k)) == 0)
            break;
    if (k > VM_ACTION_ABORT)
        return fail(err,
                    "on_progress(): unknown action '%s' (continue, set_downtime, postcopy, "
                    "abort)",
                    name);
    out->kind = (enum vm_action_kind)k;
    if (json_is_object(j)) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            int64_t n;
            if (strcmp(key, "action") == 0) {
                continue;
            } else if (strcmp(key, "downtime_ms") == 0 && out->kind == VM_ACTION_SET_DOWNTIME) {
                if (!get_int(v, 1, 2000000, &n))
                    return fail(err, "on_progress(): downtime_ms must be an integer from 1 to "
                                     "2000000");
                out->downtime_ms = (uint64_t)n;
            } else if (strcmp(key, "reason") == 0 && json_is_string(v)) {
                free(out->reason);
                out->reason = vm_utf8_cut(json_string_value(v), 200);
            } else {
                vm_action_clear(out);
                return fail(err, "on_progress(): unexpected key '%s' for action '%s'", key, name);
            }
        }
    }
    if (out->kind == VM_ACTION_SET_DOWNTIME && !out->downtime_ms) {
        vm_action_clear(out);
        return fail(err, "on_progress(): set_downtime needs downtime_ms");
    }
    return 0;
}
