/* SPDX-License-Identifier: MIT */
/* plan.c — see plan.h. */
#include "plan/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/table.h"
#include "util/uri.h"
#include "util/util.h"

#define MiB (1024ULL * 1024ULL)

const char *vm_plan_status_name(enum vm_plan_status s)
{
    static const char *const names[] = {"migrate", "leave", "error", "refused"};
    return (size_t)s < VM_ARRAY_LEN(names) ? names[s] : "unknown";
}

static uint64_t jbytes(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

struct target_state {
    uint64_t free, planned;
    bool live;
};

/* The live targets as a max-heap on the memory they have left (ties: the
 * lower index first), so that default placement costs log(targets) per
 * VM, not a scan of them all. pos[t] is target t's place in heap, or -1. */
struct target_heap {
    int *heap, *pos, n;
    const struct target_state *ts;
};

static bool heap_before(const struct target_heap *h, int a, int b)
{
    uint64_t la = h->ts[a].free - h->ts[a].planned, lb = h->ts[b].free - h->ts[b].planned;
    return la != lb ? la > lb : a < b;
}

static void heap_swap(struct target_heap *h, int i, int k)
{
    int t = h->heap[i];
    h->heap[i] = h->heap[k];
    h->heap[k] = t;
    h->pos[h->heap[i]] = i;
    h->pos[h->heap[k]] = k;
}

static void heap_up(struct target_heap *h, int i)
{
    while (i > 0 && heap_before(h, h->heap[i], h->heap[(i - 1) / 2])) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/* Target t has less left than before: move it down to its place. */
static void heap_down(struct target_heap *h, int t)
{
    int i = h->pos[t];
    if (i < 0)
        return;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && heap_before(h, h->heap[l], h->heap[m]))
            m = l;
        if (r < h->n && heap_before(h, h->heap[r], h->heap[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void heap_init(struct target_heap *h, const struct target_state *ts, int nt)
{
    h->ts = ts;
    h->n = 0;
    h->heap = xcalloc(nt ? (size_t)nt : 1, sizeof(*h->heap));
    h->pos = xcalloc(nt ? (size_t)nt : 1, sizeof(*h->pos));
    for (int t = 0; t < nt; t++) {
        h->pos[t] = -1;
        if (!ts[t].live)
            continue;
        h->heap[h->n] = t;
        h->pos[t] = h->n;
        heap_up(h, h->n++);
    }
}

static void heap_clear(struct target_heap *h)
{
    free(h->heap);
    free(h->pos);
}

/* The target with the most memory left after taking `need`; -1 if none fits. */
static int least_loaded(const struct target_heap *h, uint64_t need)
{
    if (h->n == 0)
        return -1;
    int t = h->heap[0];
    return h->ts[t].planned + need <= h->ts[t].free ? t : -1;
}

/* URI -> index in targets, once per plan. */
static json_t *index_targets(json_t *targets)
{
    json_t *index = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *u = jstr(t, "uri");
        if (u && !json_object_get(index, u))
            json_object_set_new(index, u, json_integer((json_int_t)i));
    }
    return index;
}

static int find_target(json_t *index, const char *uri)
{
    json_t *i = json_object_get(index, uri);
    return i ? (int)json_integer_value(i) : -1;
}

static int cmp_items(const void *a, const void *b)
{
    const struct vm_plan_item *x = a, *y = b;
    bool mx = x->status == VM_PLAN_MIGRATE, my = y->status == VM_PLAN_MIGRATE;
    if (mx != my)
        return mx ? -1 : 1;
    if (x->d.priority != y->d.priority)
        return x->d.priority > y->d.priority ? -1 : 1;
    if (x->memory_bytes != y->memory_bytes)
        return x->memory_bytes > y->memory_bytes ? -1 : 1;
    int c = strcmp(x->source, y->source);
    return c ? c : strcmp(x->name, y->name);
}

int vm_plan_build(struct vm_plan *p, json_t *sources, json_t *targets,
                  const struct vm_mig_params *defaults, int parallel, unsigned est_mibs,
                  const struct vm_plan_ops *ops)
{
    memset(p, 0, sizeof(*p));
    p->sources = json_incref(sources);
    p->targets = json_incref(targets);
    p->parallel = parallel > 0 ? parallel : 1;
    p->est_mibs = est_mibs ? est_mibs : 1000;

    size_t total = 0, si;
    json_t *src;
    json_array_foreach(sources, si, src) total += json_array_size(json_object_get(src, "domains"));
    p->items = xcalloc(total ? total : 1, sizeof(*p->items));

    int nt = (int)json_array_size(targets);
    struct target_state *ts = xcalloc(nt ? (size_t)nt : 1, sizeof(*ts));
    uint64_t *decided = xcalloc(nt ? (size_t)nt : 1, sizeof(*decided));
    for (int i = 0; i < nt; i++) {
        json_t *t = json_array_get(targets, (size_t)i);
        ts[i].free = jbytes(t, "free_memory_bytes");
        json_t *live = json_object_get(json_object_get(t, "migration"), "live");
        ts[i].live = !json_is_false(live);
    }
    json_t *tindex = index_targets(targets);

    json_array_foreach(sources, si, src)
    {
        const char *source = jstr(src, "uri");
        size_t di;
        json_t *vm;
        json_array_foreach(json_object_get(src, "domains"), di, vm)
        {
            struct vm_plan_item *it = &p->items[p->n++];
            it->vm = json_incref(vm);
            it->name = jstr(vm, "name");
            it->uuid = jstr(vm, "uuid");
            it->source = source;
            it->memory_bytes = jbytes(vm, "memory_bytes");
            it->params = *defaults;
            it->target_index = -1;
            if (!it->name)
                it->name = "(unnamed)";
            const char *unreadable = jstr(vm, "unreadable");
            if (unreadable) {
                /* Bad input of one VM: its policy never sees it. */
                it->status = VM_PLAN_REFUSED;
                it->note = xasprintf("'%s': its domain XML cannot be read (%s): left where it is",
                                     it->name, unreadable);
                continue;
            }

            json_t *dj = NULL;
            char *err = NULL;
            if (ops->decide(ops->ctx, vm, &dj, &err) < 0) {
                it->status = VM_PLAN_ERROR;
                it->note = err;
                continue;
            }
            if (!dj || json_is_null(dj) || json_is_false(dj)) {
                it->status = VM_PLAN_LEAVE;
                json_decref(dj);
                continue;
            }
            if (vm_decision_parse(dj, &it->d, &err) < 0) {
                it->status = VM_PLAN_ERROR;
                it->note = xasprintf("%s%sdecide() for '%s': %s", ops->origin ? ops->origin : "",
                                     ops->origin ? ": " : "", it->name, err);
                free(err);
                json_decref(dj);
                continue;
            }
            json_decref(dj);
            vm_decision_apply_params(&it->d, &it->params);
            it->status = VM_PLAN_MIGRATE;
            char *why = ops->vet ? ops->vet(ops->vet_ctx, it) : NULL;
            if (why) {
                it->status = VM_PLAN_REFUSED;
                it->note = why;
                continue;
            }
            /* Let the next decide() calls see what this one chose. */
            int named = it->d.target ? find_target(tindex, it->d.target) : -1;
            if (named >= 0) {
                decided[named] += it->memory_bytes;
                if (ops->reserve)
                    ops->reserve(ops->ctx, named, decided[named]);
            }
        }
    }

    /* Place in start order (priority, then size), so the VMs that matter
     * most, and the hardest to fit, get the room first. */
    qsort(p->items, (size_t)p->n, sizeof(*p->items), cmp_items);
    struct target_heap heap;
    heap_init(&heap, ts, nt);
    for (int i = 0; i < p->n; i++) {
        struct vm_plan_item *it = &p->items[i];
        if (it->status != VM_PLAN_MIGRATE)
            continue;
        int ti;
        if (it->d.target) {
            ti = find_target(tindex, it->d.target);
            if (ti < 0) {
                it->status = VM_PLAN_ERROR;
                it->note = xasprintf("%s%sdecide() for '%s': target '%s' is not one of the "
                                     "--target hosts",
                                     ops->origin ? ops->origin : "", ops->origin ? ": " : "",
                                     it->name, it->d.target);
                continue;
            }
            if (strcmp(it->d.target, it->source) == 0) {
                it->status = VM_PLAN_ERROR;
                it->note =
                    xasprintf("%s%sdecide() for '%s': target is its own source",
                              ops->origin ? ops->origin : "", ops->origin ? ": " : "", it->name);
                continue;
            }
            if (!ts[ti].live) {
                it->status = VM_PLAN_REFUSED;
                it->note = xasprintf("target '%s' does not offer live migration", it->d.target);
                continue;
            }
            if (ts[ti].planned + it->memory_bytes > ts[ti].free) {
                it->status = VM_PLAN_REFUSED;
                it->note = xasprintf("target '%s' has %llu MiB free (after planned "
                                     "migrations), '%s' needs %llu MiB",
                                     it->d.target,
                                     (unsigned long long)((ts[ti].free - ts[ti].planned) / MiB),
                                     it->name, (unsigned long long)(it->memory_bytes / MiB));
                continue;
            }
        } else {
            ti = least_loaded(&heap, it->memory_bytes);
            if (ti < 0) {
                it->status = VM_PLAN_REFUSED;
                it->note = xasprintf("no target has %llu MiB free for '%s'",
                                     (unsigned long long)(it->memory_bytes / MiB), it->name);
                continue;
            }
            it->placed_by_default = true;
        }
        it->target_index = ti;
        it->target = jstr(json_array_get(targets, (size_t)ti), "uri");
        ts[ti].planned += it->memory_bytes;
        heap_down(&heap, ti);
        if (ops->reserve)
            ops->reserve(ops->ctx, ti, ts[ti].planned);
    }
    heap_clear(&heap);
    json_decref(tindex);
    free(ts);
    free(decided);
    vm_plan_finish(p);
    return p->n;
}

void vm_plan_refuse(struct vm_plan *p, struct vm_plan_item *it, char *note)
{
    (void)p;
    it->status = VM_PLAN_REFUSED;
    free(it->note);
    it->note = note;
    it->target = NULL;
}

void vm_plan_finish(struct vm_plan *p)
{
    qsort(p->items, (size_t)p->n, sizeof(*p->items), cmp_items);
    /* Estimate: each migration copies the guest's memory at its bandwidth
     * (or the assumed one), started in order into `parallel` slots. */
    uint64_t *slots = xcalloc((size_t)p->parallel, sizeof(*slots));
    p->bytes_total = 0;
    p->est_total_ms = 0;
    int order = 0;
    for (int i = 0; i < p->n; i++) {
        struct vm_plan_item *it = &p->items[i];
        it->order = 0;
        it->est_ms = 0;
        if (it->status != VM_PLAN_MIGRATE)
            continue;
        it->order = ++order;
        uint64_t mibs = it->params.bandwidth_mibs ? it->params.bandwidth_mibs : p->est_mibs;
        it->est_ms = it->memory_bytes * 1000 / (mibs * MiB) + 1;
        p->bytes_total += it->memory_bytes;
        int s = 0;
        for (int k = 1; k < p->parallel; k++)
            if (slots[k] < slots[s])
                s = k;
        slots[s] += it->est_ms;
        if (slots[s] > p->est_total_ms)
            p->est_total_ms = slots[s];
    }
    free(slots);
}

void vm_plan_clear(struct vm_plan *p)
{
    for (int i = 0; i < p->n; i++) {
        json_decref(p->items[i].vm);
        vm_decision_clear(&p->items[i].d);
        free(p->items[i].note);
    }
    free(p->items);
    json_decref(p->sources);
    json_decref(p->targets);
    memset(p, 0, sizeof(*p));
}

int vm_plan_count(const struct vm_plan *p, enum vm_plan_status s)
{
    int n = 0;
    for (int i = 0; i < p->n; i++)
        n += p->items[i].status == s;
    return n;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *vm_plan_item_to_json(const struct vm_plan_item *it)
{
    static const char *const actions[] = {"abort", "suspend", "postcopy"};
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(it->name));
    json_object_set_new(o, "uuid", str_or_null(it->uuid));
    json_object_set_new(o, "source", str_or_null(it->source));
    json_object_set_new(o, "status", json_string(vm_plan_status_name(it->status)));
    json_object_set_new(o, "memory_bytes", json_integer((json_int_t)it->memory_bytes));
    json_object_set_new(o, "note", str_or_null(it->note));
    if (it->status != VM_PLAN_MIGRATE)
        return o;
    const struct vm_mig_params *mp = &it->params;
    json_object_set_new(o, "target", json_string(it->target));
    json_object_set_new(o, "placed_by",
                        json_string(it->placed_by_default ? "vmmigrate" : "policy"));
    json_object_set_new(o, "order", json_integer(it->order));
    json_object_set_new(o, "estimate_ms", json_integer((json_int_t)it->est_ms));
    json_t *d = vm_decision_to_json(&it->d);
    json_object_set(o, "class", json_object_get(d, "class"));
    json_object_set(o, "priority", json_object_get(d, "priority"));
    json_object_set(o, "features", json_object_get(d, "features"));
    json_object_set(o, "reason", json_object_get(d, "reason"));
    json_decref(d);
    json_object_set_new(
        o, "params",
        json_pack("{s:s, s:I, s:I, s:b, s:b, s:i, s:o, s:b, s:b, s:I, s:s}", "mode",
                  mp->p2p ? "p2p" : "direct", "bandwidth_mibs", (json_int_t)mp->bandwidth_mibs,
                  "max_downtime_ms", (json_int_t)mp->max_downtime_ms, "auto_converge",
                  mp->auto_converge, "postcopy", mp->postcopy, "parallel_connections", mp->parallel,
                  "compression", str_or_null(mp->compression), "persistent", mp->persistent,
                  "undefine_source", mp->undefine_source, "timeout_s", (json_int_t)mp->timeout_s,
                  "timeout_action", actions[mp->timeout_action]));
    return o;
}

json_t *vm_plan_to_json(const struct vm_plan *p)
{
    json_t *vms = json_array();
    for (int i = 0; i < p->n; i++)
        json_array_append_new(vms, vm_plan_item_to_json(&p->items[i]));
    json_t *src = json_array(), *dst = json_array();
    size_t i;
    json_t *h;
    json_array_foreach(p->sources, i, h) json_array_append_new(src, json_string(jstr(h, "uri")));
    json_array_foreach(p->targets, i, h) json_array_append_new(dst, json_string(jstr(h, "uri")));
    return json_pack("{s:o, s:o, s:{s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:i, s:i}, s:o}", "sources",
                     src, "targets", dst, "summary", "vms", p->n, "migrate",
                     vm_plan_count(p, VM_PLAN_MIGRATE), "leave", vm_plan_count(p, VM_PLAN_LEAVE),
                     "error", vm_plan_count(p, VM_PLAN_ERROR), "refused",
                     vm_plan_count(p, VM_PLAN_REFUSED), "memory_bytes", (json_int_t)p->bytes_total,
                     "estimate_ms", (json_int_t)p->est_total_ms, "parallel", p->parallel,
                     "assumed_mibs", (int)p->est_mibs, "vms", vms);
}

/* The names of the plan's hosts in its table (sources, then targets):
 * vm_host_names's, or with wide their URIs. */
struct host_names {
    size_t n;
    const char **uris;
    char **names;
    json_t *index; /* URI -> index (the first of a URI) */
};

static void host_names_make(struct host_names *hn, const struct vm_plan *p, bool wide)
{
    size_t ns = json_array_size(p->sources), nt = json_array_size(p->targets);
    hn->n = ns + nt;
    hn->uris = xcalloc(hn->n + 1, sizeof(*hn->uris));
    hn->names = xcalloc(hn->n + 1, sizeof(*hn->names));
    const char **hostnames = xcalloc(hn->n + 1, sizeof(*hostnames));
    for (size_t i = 0; i < hn->n; i++) {
        json_t *h = json_array_get(i < ns ? p->sources : p->targets, i < ns ? i : i - ns);
        hn->uris[i] = jstr(h, "uri");
        hostnames[i] = jstr(h, "hostname");
    }
    if (wide)
        for (size_t i = 0; i < hn->n; i++)
            hn->names[i] = xstrdup(hn->uris[i] ? hn->uris[i] : "-");
    else
        vm_host_names(hn->n, hn->uris, hostnames, hn->names);
    free(hostnames);
    hn->index = json_object();
    for (size_t i = 0; i < hn->n; i++)
        if (hn->uris[i] && !json_object_get(hn->index, hn->uris[i]))
            json_object_set_new(hn->index, hn->uris[i], json_integer((json_int_t)i));
}

static const char *host_name(const struct host_names *hn, const char *uri)
{
    json_t *i = uri ? json_object_get(hn->index, uri) : NULL;
    return i ? hn->names[json_integer_value(i)] : uri ? uri : "-";
}

static void host_names_clear(struct host_names *hn)
{
    for (size_t i = 0; i < hn->n; i++)
        free(hn->names[i]);
    free(hn->names);
    free(hn->uris);
    json_decref(hn->index);
}

/* "hv12, hv14": the names of hosts [from, to). Caller frees. */
static char *host_list(const struct host_names *hn, size_t from, size_t to)
{
    size_t len = 1;
    for (size_t i = from; i < to; i++)
        len += strlen(hn->names[i]) + 2;
    char *all = xmalloc(len), *at = all;
    *at = '\0';
    for (size_t i = from; i < to; i++)
        at += sprintf(at, "%s%s", i > from ? ", " : "", hn->names[i]);
    return all;
}

void vm_plan_print(const struct vm_plan *p, FILE *f, bool wide)
{
    struct host_names hn;
    host_names_make(&hn, p, wide);
    size_t ns = json_array_size(p->sources);
    char *from = host_list(&hn, 0, ns), *to = host_list(&hn, ns, hn.n);
    fprintf(f, "plan: %d VM%s on %s, to %s\n", p->n, p->n == 1 ? "" : "s", from, to);
    free(from);
    free(to);
    static const char *const header[] = {"ORDER",  "VM",       "CLASS",
                                         "MEMORY", "SOURCE",   "TARGET",
                                         "EST",    "FEATURES", "REASON / WHY IT STAYS"};
    struct vm_table *t = vm_table_new(VM_ARRAY_LEN(header), header, 0);
    for (int i = 0; i < p->n; i++) {
        const struct vm_plan_item *it = &p->items[i];
        char mem[32], order[16] = "-", est[16] = "-", feats[256] = "";
        snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)(it->memory_bytes / MiB));
        const char *src = host_name(&hn, it->source), *dst = "(stays)";
        const char *why = it->note;
        if (it->status == VM_PLAN_MIGRATE) {
            size_t len = 0;
            for (int k = 0; k < it->d.nfeatures && len < sizeof(feats) - 1; k++)
                len +=
                    (size_t)snprintf(feats + len, sizeof(feats) - len, "%s%s%s", k ? "," : "",
                                     it->d.features[k].name, it->d.features[k].required ? "" : "?");
            snprintf(order, sizeof(order), "%d", it->order);
            vm_duration_fmt(it->est_ms, est, sizeof(est));
            dst = host_name(&hn, it->target);
            why = it->d.reason;
        } else {
            if (!why && it->status == VM_PLAN_LEAVE)
                why = "the policy leaves it";
        }
        const char *cells[] = {order,
                               it->name,
                               it->status == VM_PLAN_MIGRATE ? vm_class_name(it->d.class)
                                                             : vm_plan_status_name(it->status),
                               mem,
                               src,
                               dst,
                               est,
                               feats,
                               why};
        vm_table_row(t, cells);
    }
    vm_table_print(t, f);
    vm_table_free(t);
    host_names_clear(&hn);
    fprintf(f,
            "%d to migrate, %d left, %d refused, %d policy errors; %llu MiB to move, about "
            "%llu s at %d in parallel\n",
            vm_plan_count(p, VM_PLAN_MIGRATE), vm_plan_count(p, VM_PLAN_LEAVE),
            vm_plan_count(p, VM_PLAN_REFUSED), vm_plan_count(p, VM_PLAN_ERROR),
            (unsigned long long)(p->bytes_total / MiB),
            (unsigned long long)(p->est_total_ms + 999) / 1000, p->parallel);
}
