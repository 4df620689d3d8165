/* SPDX-License-Identifier: MIT */
/* test_plan.c — plans from JSON inventories and decisions (plan.c,
 * decision.c): default placement spreads and never overcommits, policy
 * targets are checked, order follows priority then size, bad decisions fail
 * closed with a message naming the key, estimates add up; and a whole plan
 * from a JSON fixture (tests/unit/plan/placement.json: inventory, the
 * policy's decisions, what each VM becomes, the summary). */
#include <stdio.h>
#include <stdlib.h>

#include "runner.h"
#include "plan/plan.h"
#include "util/util.h"

#define MiB (1024LL * 1024LL)

static json_t *host(const char *uri, long long free_mib)
{
    return json_pack("{s:s, s:I, s:{s:b}, s:[]}", "uri", uri, "free_memory_bytes",
                     (json_int_t)(free_mib * MiB), "migration", "live", 1, "domains");
}

static void add_vm(json_t *h, const char *name, long long mib, const char *tier)
{
    json_array_append_new(json_object_get(h, "domains"),
                          json_pack("{s:s, s:s, s:I, s:s, s:{s:s}}", "name", name, "uuid",
                                    "00000000-0000-0000-0000-000000000000", "memory_bytes",
                                    (json_int_t)(mib * MiB), "state", "running", "tags", "tier",
                                    tier));
}

/* A decider driven by the VM's tier tag. */
static int decide(void *ctx, json_t *vm, json_t **out, char **err)
{
    const char *tier = json_string_value(json_object_get(json_object_get(vm, "tags"), "tier"));
    (void)ctx;
    *out = NULL;
    if (strcmp(tier, "skip") == 0)
        return 0;
    if (strcmp(tier, "boom") == 0) {
        *err = xstrdup("policy.lua:7: boom");
        return -1;
    }
    if (strcmp(tier, "typo") == 0) {
        *out = json_pack("{s:s}", "tagret", "x");
        return 0;
    }
    if (strcmp(tier, "badparam") == 0) {
        *out = json_pack("{s:{s:s}}", "params", "bandwidth_mibs", "fast");
        return 0;
    }
    if (strcmp(tier, "pinned") == 0) {
        *out = json_pack("{s:s, s:s, s:i}", "target", "test:///t2", "class", "network-critical",
                         "priority", 5);
        return 0;
    }
    if (strcmp(tier, "elsewhere") == 0) {
        *out = json_pack("{s:s}", "target", "test:///nowhere");
        return 0;
    }
    *out = json_pack("{s:i, s:{s:i}, s:[{s:s}]}", "priority", strcmp(tier, "gold") == 0 ? 10 : 0,
                     "params", "bandwidth_mibs", 100, "features", "name", "announce");
    return 0;
}

static int reserved_calls;
static void reserve(void *ctx, int ti, uint64_t planned)
{
    (void)ctx, (void)ti, (void)planned;
    reserved_calls++;
}

static const struct vm_plan_item *item(const struct vm_plan *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0)
            return &p->items[i];
    CHECK_FAIL("no plan item '%s'", name);
}

static void test_plan(void)
{
    json_t *s1 = host("test:///s1", 0), *t1 = host("test:///t1", 1200),
           *t2 = host("test:///t2", 700);
    add_vm(s1, "a-bronze", 300, "bronze");
    add_vm(s1, "b-gold", 200, "gold");
    add_vm(s1, "c-big", 900, "bronze");
    add_vm(s1, "d-skip", 100, "skip");
    add_vm(s1, "e-boom", 100, "boom");
    add_vm(s1, "f-typo", 100, "typo");
    add_vm(s1, "g-pinned", 400, "pinned");
    add_vm(s1, "h-elsewhere", 100, "elsewhere");
    add_vm(s1, "i-badparam", 100, "badparam");
    add_vm(s1, "j-toobig", 5000, "bronze");
    json_t *sources = json_pack("[o]", s1), *targets = json_pack("[o, o]", t1, t2);

    struct vm_mig_params defaults = {.p2p = true, .max_downtime_ms = 300};
    struct vm_plan_ops ops = {.decide = decide, .reserve = reserve};
    struct vm_plan p;
    CHECK_INT(vm_plan_build(&p, sources, targets, &defaults, 2, 1000, &ops), ==, 10);

    /* Order: gold first (priority 10), then pinned (5), then by size. */
    CHECK_STR(p.items[0].name, "b-gold");
    CHECK_STR(p.items[1].name, "g-pinned");
    CHECK_STR(p.items[2].name, "c-big"); /* then the largest */
    CHECK_INT(item(&p, "g-pinned")->order, ==, 2);
    const struct vm_plan_item *big = item(&p, "c-big");
    CHECK_INT(big->status, ==, VM_PLAN_MIGRATE);
    CHECK_STR(big->target, "test:///t1");
    const struct vm_plan_item *pinned = item(&p, "g-pinned");
    CHECK_STR(pinned->target, "test:///t2");
    CHECK(!pinned->placed_by_default);
    CHECK_INT(pinned->d.class, ==, VM_CLASS_NETWORK_CRITICAL);
    CHECK_INT(pinned->params.max_downtime_ms, ==, 300); /* default kept */
    CHECK_INT(item(&p, "a-bronze")->params.bandwidth_mibs, ==, 100);
    CHECK_STR(item(&p, "a-bronze")->d.features[0].name, "announce");
    CHECK(item(&p, "a-bronze")->d.features[0].required); /* required by default */

    CHECK_INT(item(&p, "d-skip")->status, ==, VM_PLAN_LEAVE);
    CHECK_INT(item(&p, "e-boom")->status, ==, VM_PLAN_ERROR);
    CHECK_STR(item(&p, "e-boom")->note, "policy.lua:7: boom");
    CHECK_INT(item(&p, "f-typo")->status, ==, VM_PLAN_ERROR);
    CHECK_CONTAINS(item(&p, "f-typo")->note, "unknown key 'tagret'");
    CHECK_CONTAINS(item(&p, "h-elsewhere")->note, "'test:///nowhere' is not one of the --target");
    CHECK_CONTAINS(item(&p, "i-badparam")->note, "params.bandwidth_mibs must be an integer");
    CHECK_INT(item(&p, "j-toobig")->status, ==, VM_PLAN_REFUSED);
    CHECK_CONTAINS(item(&p, "j-toobig")->note, "no target has 5000 MiB free");

    /* Never overcommitted: sum per target <= free. */
    uint64_t on[2] = {0, 0};
    for (int i = 0; i < p.n; i++)
        if (p.items[i].status == VM_PLAN_MIGRATE)
            on[p.items[i].target_index] += p.items[i].memory_bytes;
    CHECK_INT(on[0], <=, 1200 * MiB);
    CHECK_INT(on[1], <=, 700 * MiB);
    /* one per placement, plus one while deciding for the VM that named its target */
    CHECK_INT(reserved_calls, ==, vm_plan_count(&p, VM_PLAN_MIGRATE) + 1);

    /* Estimates: a-bronze 300 MiB at 100 MiB/s = 3 s. */
    CHECK_INT(item(&p, "a-bronze")->est_ms, ==, 3001);
    CHECK_INT(p.est_total_ms, >, 0);

    json_t *j = vm_plan_to_json(&p);
    json_t *sum = json_object_get(j, "summary");
    CHECK_INT(json_integer_value(json_object_get(sum, "vms")), ==, 10);
    CHECK_INT(json_integer_value(json_object_get(sum, "error")), ==, 4);
    CHECK_INT(json_array_size(json_object_get(j, "vms")), ==, 10);
    json_decref(j);

    /* A later preflight refusal reorders. */
    vm_plan_refuse(&p, (struct vm_plan_item *)item(&p, "g-pinned"), xstrdup("CPU incompatible"));
    vm_plan_finish(&p);
    CHECK_STR(p.items[1].name, "c-big");
    CHECK_INT(item(&p, "c-big")->order, ==, 2);
    CHECK_INT(item(&p, "g-pinned")->order, ==, 0);

    vm_plan_clear(&p);
    json_decref(sources);
    json_decref(targets);
}

static void test_decision_parse(void)
{
    struct vm_decision d;
    char *err;
    json_t *j = json_loads("{\"class\":\"urgent\",\"params\":{\"timeout_s\":10.0,"
                           "\"timeout_action\":\"postcopy\",\"compression\":\"xbzrle,mt\","
                           "\"direct\":true},\"features\":[{\"name\":\"vdp\",\"required\":false,"
                           "\"timeout_ms\":500,\"args\":{\"x\":1}}],\"reason\":\"r\","
                           "\"retries\":2}",
                           0, NULL);
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
    CHECK(d.retries_set);
    CHECK_INT(d.retries, ==, 2);
    CHECK_INT(d.params.timeout_s, ==, 10);
    CHECK_INT(d.params.timeout_action, ==, VM_MIG_TIMEOUT_POSTCOPY);
    CHECK_STR(d.params.compression, "xbzrle,mt");
    CHECK(!d.params.p2p);
    CHECK(!d.features[0].required);
    CHECK_INT(d.features[0].timeout_ms, ==, 500);
    vm_decision_clear(&d);
    json_decref(j);

    static const struct {
        const char *json, *err;
    } bad[] = {
        {"[]", "a decision must be a table"},
        {"{\"class\":\"fast\"}", "class must be 'urgent' or 'network-critical'"},
        {"{\"priority\":1.5}", "priority must be an integer"},
        {"{\"params\":{\"timeout_s\":0}}", "params.timeout_s must be an integer from 1"},
        {"{\"params\":{\"bogus\":1}}", "params: unknown key 'bogus'"},
        {"{\"params\":{\"postcopy\":1}}", "params.postcopy must be a boolean"},
        {"{\"params\":{\"compression\":\"lz4\"}}", "params.compression must be"},
        {"{\"features\":[{\"required\":true}]}", "features[1] has no name"},
        {"{\"features\":[{\"name\":\"Bad Name\"}]}", "features[1].name must be"},
        {"{\"features\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", "'a' named twice"},
        {"{\"features\":{\"name\":\"a\"}}", "features must be a list"},
        {"{\"target\":5}", "target must be a libvirt URI string"},
        {"{\"retries\":11}", "retries must be an integer from 0 to 10"},
        {"{\"retries\":-1}", "retries must be an integer from 0 to 10"},
        {"{\"retries\":\"2\"}", "retries must be an integer from 0 to 10"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++) {
        j = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
        CHECK(j);
        if (vm_decision_parse(j, &d, &err) == 0)
            CHECK_FAIL("decision %s was accepted", bad[i].json);
        CHECK_CONTAINS(err, bad[i].err);
        free(err);
        json_decref(j);
    }
}

/* ---- a plan from a fixture ---------------------------------------------- */

struct fixture_ctx {
    json_t *decisions;
    json_t *reserved; /* target URI -> the last planned bytes reported */
    json_t *targets;
};

/* The fixture's decision for the VM: none (leave it), a string (decide()
 * fails with it), or the decision. */
static int fixture_decide(void *ctx, json_t *vm, json_t **out, char **err)
{
    struct fixture_ctx *c = ctx;
    json_t *d = json_object_get(c->decisions, json_string_value(json_object_get(vm, "name")));
    *out = NULL;
    if (json_is_string(d)) {
        *err = xstrdup(json_string_value(d));
        return -1;
    }
    *out = json_incref(d);
    return 0;
}

static void fixture_reserve(void *ctx, int ti, uint64_t planned)
{
    struct fixture_ctx *c = ctx;
    const char *uri =
        json_string_value(json_object_get(json_array_get(c->targets, (size_t)ti), "uri"));
    json_object_set_new(c->reserved, uri, json_integer((json_int_t)planned));
}

static char *fixture_vet(void *ctx, struct vm_plan_item *it)
{
    (void)ctx;
    return it->d.reason && strcmp(it->d.reason, "vetoed") == 0 ? xstrdup("vetoed by the test")
                                                               : NULL;
}

static void test_plan_fixture(void)
{
    json_t *fx = vm_test_fixture("plan/placement.json");
    struct fixture_ctx c = {
        .decisions = json_object_get(fx, "decisions"),
        .reserved = json_object(),
        .targets = json_object_get(fx, "targets"),
    };
    struct vm_mig_params defaults = {.p2p = true};
    struct vm_plan_ops ops = {
        .decide = fixture_decide,
        .reserve = fixture_reserve,
        .ctx = &c,
        .vet = fixture_vet,
        .origin = "policy.lua",
    };
    struct vm_plan p;
    json_t *expect = json_object_get(fx, "expect");
    CHECK_INT(vm_plan_build(&p, json_object_get(fx, "sources"), c.targets, &defaults, 2, 100, &ops),
              ==, json_object_size(expect));

    json_t *j = vm_plan_to_json(&p);
    json_t *vm;
    size_t i;
    json_array_foreach(json_object_get(j, "vms"), i, vm)
    {
        const char *name = json_string_value(json_object_get(vm, "name"));
        json_t *want = json_object_get(expect, name);
        if (!want)
            CHECK_FAIL("VM '%s' is not in the fixture's expect", name);
        const char *key;
        json_t *v;
        json_object_foreach(want, key, v)
        {
            char *got_s = json_dumps(json_object_get(vm, key), JSON_ENCODE_ANY);
            char *want_s = json_dumps(v, JSON_ENCODE_ANY);
            char *what = xasprintf("%s.%s", name, key);
            if (strcmp(got_s ? got_s : "(none)", want_s) != 0)
                CHECK_FAIL("%s: got %s, want %s", what, got_s ? got_s : "(none)", want_s);
            free(got_s);
            free(want_s);
            free(what);
        }
    }
    /* The start order is the items' order. */
    CHECK_STR(p.items[0].name, "j");
    CHECK_STR(p.items[1].name, "a");
    CHECK_STR(p.items[2].name, "b");
    char *sum = json_dumps(json_object_get(j, "summary"), JSON_COMPACT | JSON_SORT_KEYS);
    char *want_sum = json_dumps(json_object_get(fx, "summary"), JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(sum, want_sum);
    const char *uri;
    json_t *bytes;
    json_object_foreach(json_object_get(fx, "reserved"), uri, bytes) CHECK_INT(
        json_integer_value(json_object_get(c.reserved, uri)), ==, json_integer_value(bytes));

    /* The table's last line sums it up. */
    FILE *f = tmpfile();
    CHECK(f);
    vm_plan_print(&p, f, false);
    rewind(f);
    char line[512], last[512] = "";
    while (fgets(line, sizeof(line), f))
        snprintf(last, sizeof(last), "%s", line);
    fclose(f);
    last[strcspn(last, "\n")] = '\0';
    CHECK_STR(last, json_string_value(json_object_get(fx, "printed_last_line")));

    free(sum);
    free(want_sum);
    json_decref(j);
    vm_plan_clear(&p);
    json_decref(c.reserved);
    json_decref(fx);
}

/* One VM's unreadable domain XML (inventory.h) is that VM's problem: it
 * is refused with the reason and its policy never sees it; the others are
 * planned as usual. */
static int decide_must_not_see(void *ctx, json_t *vm, json_t **out, char **err)
{
    (void)ctx;
    (void)err;
    CHECK(json_object_get(vm, "unreadable") == NULL);
    *out = json_object();
    return 0;
}

static void test_plan_unreadable_domain(void)
{
    json_t *s1 = host("test:///s1", 0), *t1 = host("test:///t1", 1200);
    add_vm(s1, "a-fine", 100, "bronze");
    json_array_append_new(json_object_get(s1, "domains"),
                          json_pack("{s:s, s:s, s:s, s:s}", "name", "b-deep", "uuid",
                                    "00000000-0000-0000-0000-000000000001", "state", "running",
                                    "unreadable", "metadata nested deeper than 32 levels"));
    json_t *sources = json_pack("[o]", s1), *targets = json_pack("[o]", t1);
    struct vm_mig_params defaults = {.p2p = true};
    struct vm_plan_ops ops = {.decide = decide_must_not_see};
    struct vm_plan p;
    CHECK_INT(vm_plan_build(&p, sources, targets, &defaults, 1, 1000, &ops), ==, 2);
    CHECK_INT(vm_plan_count(&p, VM_PLAN_MIGRATE), ==, 1);
    CHECK_INT(vm_plan_count(&p, VM_PLAN_REFUSED), ==, 1);
    for (int i = 0; i < p.n; i++)
        if (strcmp(p.items[i].name, "b-deep") == 0) {
            CHECK_INT(p.items[i].status, ==, VM_PLAN_REFUSED);
            CHECK_CONTAINS(p.items[i].note, "'b-deep': its domain XML cannot be read (metadata "
                                            "nested deeper than 32 levels)");
        }
    vm_plan_clear(&p);
    json_decref(sources);
    json_decref(targets);
}

/* A decider giving each VM a reason, from its tier tag. */
static int decide_reason(void *ctx, json_t *vm, json_t **out, char **err)
{
    (void)ctx, (void)err;
    const char *tier = json_string_value(json_object_get(json_object_get(vm, "tags"), "tier"));
    *out = strcmp(tier, "skip") == 0 ? NULL
                                     : json_pack("{s:s, s:[{s:s}]}", "reason", "host maintenance",
                                                 "features", "name", "announce");
    return 0;
}

/* The table of `plan` (vm_plan_print) into a new string. */
static char *printed(const struct vm_plan *p, bool wide)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    CHECK(f);
    vm_plan_print(p, f, wide);
    fclose(f);
    return out;
}

/* The human table: the hosts it plans for, a header, hosts by their libvirt
 * hostname (by URI with wide), the estimate and the policy's reason per VM,
 * why a VM stays. */
static void test_plan_print(void)
{
    json_t *s1 = host("qemu+ssh://10.0.0.12/system", 0),
           *t1 = host("qemu+ssh://root@10.0.0.13:2222/system", 4096);
    json_object_set_new(s1, "hostname", json_string("hv12"));
    json_object_set_new(t1, "hostname", json_string("hv13"));
    add_vm(s1, "web1", 2000, "bronze");
    add_vm(s1, "idle", 100, "skip");
    json_t *sources = json_pack("[o]", s1), *targets = json_pack("[o]", t1);
    struct vm_mig_params defaults = {.p2p = true};
    struct vm_plan_ops ops = {.decide = decide_reason};
    struct vm_plan p;
    CHECK_INT(vm_plan_build(&p, sources, targets, &defaults, 1, 1000, &ops), ==, 2);
    char *out = printed(&p, false);
    CHECK_CONTAINS(out, "plan: 2 VMs on hv12, to hv13\n"
                        "ORDER  VM    CLASS   MEMORY  SOURCE  TARGET   EST   FEATURES  "
                        "REASON / WHY IT STAYS\n"
                        "1      web1  urgent  2000M   hv12    hv13     2.0s  announce  "
                        "host maintenance\n"
                        "-      idle  leave   100M    hv12    (stays)  -     -         "
                        "the policy leaves it\n");
    CHECK(strstr(out, "qemu+ssh") == NULL);
    free(out);
    out = printed(&p, true);
    CHECK_CONTAINS(out, "plan: 2 VMs on qemu+ssh://10.0.0.12/system, to "
                        "qemu+ssh://root@10.0.0.13:2222/system\n");
    CHECK_CONTAINS(out, "1      web1  urgent  2000M   qemu+ssh://10.0.0.12/system  "
                        "qemu+ssh://root@10.0.0.13:2222/system  2.0s  announce  "
                        "host maintenance\n");
    free(out);
    vm_plan_clear(&p);
    json_decref(sources);
    json_decref(targets);
}

/* ---- at scale ---------------------------------------------------------- */

#define SCALE_SOURCES 1250
#define SCALE_VMS 40 /* per source: 50,000 VMs */
#define SCALE_TARGETS 1250

static uint64_t scale_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Every 10th VM names its target (the VM's number modulo the targets),
 * the others are placed by vmmigrate; priorities in three bands. */
static int decide_scale(void *ctx, json_t *vm, json_t **out, char **err)
{
    (void)ctx, (void)err;
    json_int_t n = json_integer_value(json_object_get(vm, "n"));
    *out = json_pack("{s:i}", "priority", (int)(n % 3) * 10);
    if (n % 10 == 0) {
        char uri[64];
        snprintf(uri, sizeof(uri), "test:///t%04d", (int)(n / 10 % SCALE_TARGETS));
        json_object_set_new(*out, "target", json_string(uri));
    }
    return 0;
}

struct scale_ref {
    const struct vm_plan_item *it;
    int priority;
};

static int cmp_scale_ref(const void *a, const void *b)
{
    const struct scale_ref *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->it->memory_bytes != y->it->memory_bytes)
        return x->it->memory_bytes > y->it->memory_bytes ? -1 : 1;
    int c = strcmp(x->it->source, y->it->source);
    return c ? c : strcmp(x->it->name, y->it->name);
}

/* 50,000 VMs on 1,250 sources into 1,250 targets that hold about 90% of
 * them: the plan is the one the plain rule gives, replayed here by a scan
 * of every target for every VM (the most memory left wins, the first
 * target on a tie; a named target must have the room), and no target is
 * overcommitted. What it checks is the plan's content, not its time. */
static void test_plan_at_scale(void)
{
    uint64_t x = 88172645463325252ULL, demand = 0;
    json_t *sources = json_array(), *targets = json_array();
    for (int s = 0; s < SCALE_SOURCES; s++) {
        char uri[64];
        snprintf(uri, sizeof(uri), "test:///s%04d", s);
        json_t *h = host(uri, 0);
        for (int v = 0; v < SCALE_VMS; v++) {
            char name[64], uuid[64];
            int n = s * SCALE_VMS + v;
            long long mib = 512 + (long long)(scale_rand(&x) % 16) * 512;
            demand += (uint64_t)mib;
            snprintf(name, sizeof(name), "s%04d-vm%02d", s, v);
            snprintf(uuid, sizeof(uuid), "00000000-0000-0000-0000-%012d", n);
            json_array_append_new(json_object_get(h, "domains"),
                                  json_pack("{s:s, s:s, s:I, s:s, s:i}", "name", name, "uuid", uuid,
                                            "memory_bytes", (json_int_t)(mib * MiB), "state",
                                            "running", "n", n));
        }
        json_array_append_new(sources, h);
    }
    uint64_t *free_mib = xcalloc(SCALE_TARGETS, sizeof(*free_mib));
    for (int t = 0; t < SCALE_TARGETS; t++) {
        char uri[64];
        snprintf(uri, sizeof(uri), "test:///t%04d", t);
        free_mib[t] = demand * 9 / 10 / SCALE_TARGETS / 2 + scale_rand(&x) % (demand * 9 / 10 / SCALE_TARGETS);
        json_t *h = host(uri, (long long)free_mib[t]);
        if (t % 100 == 99) /* a few targets offer no live migration */
            json_object_set_new(json_object_get(h, "migration"), "live", json_false());
        json_array_append_new(targets, h);
    }

    struct vm_mig_params defaults = {.p2p = true};
    struct vm_plan_ops ops = {.decide = decide_scale};
    struct vm_plan p;
    int total = SCALE_SOURCES * SCALE_VMS;
    CHECK_INT(vm_plan_build(&p, sources, targets, &defaults, 4, 1000, &ops), ==, total);

    /* The reference: every VM in placement order, every target scanned. */
    struct scale_ref *ref = xcalloc((size_t)total, sizeof(*ref));
    for (int i = 0; i < total; i++) {
        ref[i].it = &p.items[i];
        ref[i].priority = (int)(json_integer_value(json_object_get(p.items[i].vm, "n")) % 3) * 10;
    }
    qsort(ref, (size_t)total, sizeof(*ref), cmp_scale_ref);
    uint64_t *planned = xcalloc(SCALE_TARGETS, sizeof(*planned));
    int migrate = 0, named_refused = 0, none_fits = 0, no_live = 0;
    for (int i = 0; i < total; i++) {
        const struct vm_plan_item *it = ref[i].it;
        json_int_t n = json_integer_value(json_object_get(it->vm, "n"));
        int want = -1;
        if (n % 10 == 0) {
            int t = (int)(n / 10 % SCALE_TARGETS);
            if (t % 100 == 99)
                no_live++;
            else if (planned[t] + it->memory_bytes <= free_mib[t] * MiB)
                want = t;
            else
                named_refused++;
        } else {
            uint64_t best_left = 0;
            for (int t = 0; t < SCALE_TARGETS; t++) {
                if (t % 100 == 99 || planned[t] + it->memory_bytes > free_mib[t] * MiB)
                    continue;
                uint64_t left = free_mib[t] * MiB - planned[t] - it->memory_bytes;
                if (want < 0 || left > best_left) {
                    want = t;
                    best_left = left;
                }
            }
            if (want < 0)
                none_fits++;
        }
        if (want < 0) {
            if (it->status != VM_PLAN_REFUSED)
                CHECK_FAIL("%s: the reference refuses it, the plan says %s (target %s)", it->name,
                           vm_plan_status_name(it->status), it->target ? it->target : "-");
            continue;
        }
        char uri[64];
        snprintf(uri, sizeof(uri), "test:///t%04d", want);
        if (it->status != VM_PLAN_MIGRATE || strcmp(it->target, uri) != 0)
            CHECK_FAIL("%s: the reference places it on %s, the plan says %s (target %s)", it->name,
                       uri, vm_plan_status_name(it->status), it->target ? it->target : "-");
        CHECK_INT(it->target_index, ==, want);
        CHECK(it->placed_by_default == (n % 10 != 0));
        planned[want] += it->memory_bytes;
        migrate++;
    }
    /* The case is one that exercises every branch. */
    CHECK_INT(vm_plan_count(&p, VM_PLAN_MIGRATE), ==, migrate);
    CHECK_INT(vm_plan_count(&p, VM_PLAN_REFUSED), ==, total - migrate);
    CHECK_INT(migrate, >, total / 2);
    CHECK_INT(named_refused, >, 0);
    CHECK_INT(none_fits, >, 0);
    CHECK_INT(no_live, >, 0);
    for (int t = 0; t < SCALE_TARGETS; t++)
        CHECK(planned[t] <= free_mib[t] * MiB);
    /* The start order: every migration numbered once, 1..migrate. */
    for (int i = 0; i < migrate; i++)
        CHECK_INT(p.items[i].order, ==, i + 1);
    free(planned);
    free(ref);
    free(free_mib);
    vm_plan_clear(&p);
    json_decref(sources);
    json_decref(targets);
}

static const struct vm_test tests[] = {
    VM_TEST(test_plan_print), VM_TEST(test_plan_unreadable_domain), VM_TEST(test_decision_parse),
    VM_TEST(test_plan),       VM_TEST(test_plan_fixture),           VM_TEST(test_plan_at_scale),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
