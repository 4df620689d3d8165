/* SPDX-License-Identifier: MIT */
/* test_budget.c — the scheduler's budgets (run/budget.h) from JSON
 * fixtures, no libvirt: tests/unit/plan/schedule.json lists, per case, the
 * limits (--parallel, --max-out, --max-in), the slots in plan order and
 * steps of what happened and what must start next. After every pass the
 * test checks what the budgets promise on its own count: no limit exceeded,
 * and no waiting slot left that could have started, and each waiting slot's
 * reason (vm_budget_why) where a step names it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runner.h"
#include "run/budget.h"
#include "util/util.h"

static int index_of(json_t *names, const char *name, const char *what, const char *where)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (strcmp(json_string_value(n), name) == 0)
            return (int)i;
    }
    CHECK_FAIL("%s: unknown %s '%s'", where, what, name);
    return -1;
}

/* What the budgets promise, counted from the slots alone. */
static void check_promise(const struct vm_budget *b, const char *where)
{
    int running = 0;
    for (int h = 0; h < b->nhosts; h++) {
        int out = 0, in = 0;
        for (int i = 0; i < b->nslots; i++) {
            out += b->slots[i].holds && b->slots[i].src == h;
            in += b->slots[i].holds && b->slots[i].dst == h;
        }
        if (out != b->out[h] || in != b->in[h])
            CHECK_FAIL("%s: host %d counts %d out / %d in, its slots hold %d / %d", where, h,
                       b->out[h], b->in[h], out, in);
        if ((b->lim.max_out && out > b->lim.max_out) || (b->lim.max_in && in > b->lim.max_in))
            CHECK_FAIL("%s: host %d has %d out / %d in, over the limits", where, h, out, in);
    }
    for (int i = 0; i < b->nslots; i++)
        running += b->slots[i].holds;
    if (running != b->running || running > b->lim.parallel)
        CHECK_FAIL("%s: %d slots hold (counted %d), --parallel %d", where, running, b->running,
                   b->lim.parallel);
    for (int i = 0; i < b->nslots; i++) {
        const struct vm_budget_slot *s = &b->slots[i];
        bool full = running >= b->lim.parallel ||
                    (b->lim.max_out && b->out[s->src] >= b->lim.max_out) ||
                    (b->lim.max_in && b->in[s->dst] >= b->lim.max_in);
        if (s->waiting && !full)
            CHECK_FAIL("%s: slot %d waits with room in every budget", where, i);
        if (s->waiting && vm_budget_why(b, i) == VM_BUDGET_FREE)
            CHECK_FAIL("%s: slot %d waits, vm_budget_why names nothing", where, i);
    }
}

static void run_case(json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *lim = json_object_get(c, "limits"), *hosts = json_object_get(c, "hosts");
    json_t *slots = json_object_get(c, "slots"), *vms = json_array();
    struct vm_budget_limits l = {
        .parallel = (int)json_integer_value(json_object_get(lim, "parallel")),
        .max_out = (int)json_integer_value(json_object_get(lim, "max_out")),
        .max_in = (int)json_integer_value(json_object_get(lim, "max_in")),
    };
    struct vm_budget b;
    vm_budget_init(&b, &l, (int)json_array_size(slots), (int)json_array_size(hosts));
    size_t i;
    json_t *s;
    json_array_foreach(slots, i, s)
    {
        json_array_append(vms, json_array_get(s, 0));
        b.slots[i].src = index_of(hosts, json_string_value(json_array_get(s, 1)), "host", name);
        b.slots[i].dst = index_of(hosts, json_string_value(json_array_get(s, 2)), "host", name);
        b.slots[i].waiting = true;
    }
    size_t k;
    json_t *step;
    json_array_foreach(json_object_get(c, "steps"), k, step)
    {
        char *where = xasprintf("%s, step %zu", name, k + 1);
        json_t *v;
        json_array_foreach(json_object_get(step, "release"), i, v)
        {
            if (!vm_budget_release(&b, index_of(vms, json_string_value(v), "VM", where)))
                CHECK_FAIL("%s: releasing %s: it held nothing", where, json_string_value(v));
        }
        json_array_foreach(json_object_get(step, "release_idle"), i, v)
        {
            if (vm_budget_release(&b, index_of(vms, json_string_value(v), "VM", where)))
                CHECK_FAIL("%s: releasing %s: it held a place", where, json_string_value(v));
        }
        json_array_foreach(json_object_get(step, "abort"), i, v)
        {
            b.slots[index_of(vms, json_string_value(v), "VM", where)].waiting = false;
        }
        const char *vm;
        json_object_foreach(json_object_get(step, "retry"), vm, v)
        {
            struct vm_budget_slot *r = &b.slots[index_of(vms, vm, "VM", where)];
            if (r->holds)
                CHECK_FAIL("%s: %s retries while it holds a place", where, vm);
            r->dst = index_of(hosts, json_string_value(v), "host", where);
            r->waiting = true;
        }
        json_t *started = json_array();
        for (int n = vm_budget_next(&b, 0); n >= 0; n = vm_budget_next(&b, n + 1)) {
            if (b.slots[n].holds || !b.slots[n].waiting)
                CHECK_FAIL("%s: slot %d chosen, but it does not wait", where, n);
            vm_budget_take(&b, n);
            json_array_append(started, json_array_get(vms, (size_t)n));
        }
        char *got = json_dumps(started, JSON_COMPACT);
        char *want = json_dumps(json_object_get(step, "start"), JSON_COMPACT);
        if (!want || strcmp(got, want) != 0)
            CHECK_FAIL("%s: started %s, want %s", where, got, want ? want : "(no \"start\")");
        check_promise(&b, where);
        static const char *const why[] = {"free", "parallel", "max_out", "max_in"};
        json_object_foreach(json_object_get(step, "wait"), vm, v)
        {
            int n = index_of(vms, vm, "VM", where);
            CHECK(b.slots[n].waiting);
            const char *got_why = why[vm_budget_why(&b, n)];
            if (strcmp(got_why, json_string_value(v)) != 0)
                CHECK_FAIL("%s: %s waits for %s, want %s", where, vm, got_why,
                           json_string_value(v));
        }
        free(got);
        free(want);
        json_decref(started);
        free(where);
    }
    vm_budget_free(&b);
    json_decref(vms);
}

static void test_budget_fixture(void)
{
    json_t *fx = vm_test_fixture("plan/schedule.json");
    json_t *cases = json_object_get(fx, "cases");
    CHECK_INT(json_array_size(cases), >=, 6);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        run_case(c);
    }
    json_decref(fx);
}

/* No slot, or every slot held back: nothing to start, from any index. */
static void test_budget_empty(void)
{
    struct vm_budget b;
    vm_budget_init(&b, &(struct vm_budget_limits){.parallel = 1}, 0, 0);
    CHECK_INT(vm_budget_next(&b, 0), ==, -1);
    vm_budget_free(&b);
    vm_budget_init(&b, &(struct vm_budget_limits){.parallel = 1, .max_in = 1}, 2, 2);
    b.slots[0] = (struct vm_budget_slot){.src = 0, .dst = 1, .waiting = true};
    b.slots[1] = (struct vm_budget_slot){.src = 0, .dst = 1, .waiting = true};
    CHECK_INT(vm_budget_next(&b, 1), ==, 1);
    vm_budget_take(&b, 0);
    vm_budget_take(&b, 0); /* taking twice holds once */
    CHECK_INT(b.running, ==, 1);
    CHECK_INT(vm_budget_next(&b, 0), ==, -1);
    CHECK(vm_budget_release(&b, 0));
    CHECK(!vm_budget_release(&b, 0));
    CHECK_INT(vm_budget_next(&b, 0), ==, 1);
    vm_budget_free(&b);
}

static const struct vm_test tests[] = {
    VM_TEST(test_budget_fixture),
    VM_TEST(test_budget_empty),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};
int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
