/* SPDX-License-Identifier: MIT */
/* test_mig_lost.c — a lost connection to a host (VM_VIRT_EVENT_CONNECTION_LOST)
 * and the commit gate (migrate/mig.c): what it does in every state, for the
 * source and the target (vm_mig_lost_action); fed through
 * vm_mig_domain_event at an open gate, the target's loss decides a rollback
 * at once, naming the host, the source's is only recorded; on the way to
 * the gate the target's loss is kept for the gate. The gate's decision runs
 * on migrate/commit.h with recording ops in place of libvirt's Finish; no
 * libvirt connection is made. */
#include <uv.h>

#include "runner.h"
#include "migrate/commit.h"
#include "migrate/mig.h"
#include "util/util.h"

struct owner {
    bool carried, carried_commit;
    char reason[512];
    char events[1024]; /* "event:action" of each libvirt.connection-lost, in order */
};

static bool op_steps(void *data)
{
    (void)data;
    return true; /* the features' gate steps run: the gate waits for them */
}

static void op_carry_out(void *data, bool commit, const char *reason)
{
    struct owner *o = data;
    o->carried = true;
    o->carried_commit = commit;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
}

static const struct vm_commit_ops commit_ops = {.steps = op_steps, .carry_out = op_carry_out};

static void on_event(struct vm_mig *m, const char *host, const char *event, json_t *details,
                     void *data)
{
    struct owner *o = m->ops_data;
    (void)data;
    if (strcmp(event, "libvirt.connection-lost") == 0) {
        size_t n = strlen(o->events);
        snprintf(o->events + n, sizeof(o->events) - n, "%s%s:%s:%s", n ? " " : "",
                 json_string_value(json_object_get(details, "host")),
                 json_string_value(json_object_get(details, "action")), host ? host : "?");
    }
    json_decref(details);
}

static const struct vm_mig_ops mig_ops = {.on_event = on_event};

struct fixture {
    uv_loop_t loop;
    struct vm_virt_host *src, *dst, *other;
    struct vm_mig *m;
    struct owner o;
};

static void setup(struct fixture *f, bool gated, enum vm_mig_state state)
{
    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    f->src = vm_virt_host_new(&f->loop, "test:///a", NULL, NULL);
    f->dst = vm_virt_host_new(&f->loop, "test:///b", NULL, NULL);
    f->other = vm_virt_host_new(&f->loop, "test:///c", NULL, NULL);
    struct vm_mig_params params = {0};
    f->m = vm_mig_new(&f->loop, "web1", f->src, f->dst, &params, &mig_ops, &f->o);
    f->m->gated = gated;
    f->m->state = state;
    if (state == VM_MIG_STATE_GATE) {
        f->m->commit = vm_commit_new(&f->loop, 60000, &commit_ops, &f->o);
        vm_commit_enter(f->m->commit);
    }
}

static void teardown(struct fixture *f)
{
    vm_mig_free(f->m); /* frees its commit: the timer closes on the loop */
    vm_virt_host_free(f->src);
    vm_virt_host_free(f->dst);
    vm_virt_host_free(f->other);
    CHECK_INT(uv_run(&f->loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_INT(uv_loop_close(&f->loop), ==, 0);
}

static void lose(struct fixture *f, struct vm_virt_host *h, const char *why)
{
    struct vm_virt_event ev = {.kind = VM_VIRT_EVENT_CONNECTION_LOST, .lost_reason = why};
    vm_mig_domain_event(f->m, h, &ev);
}

static void test_action_table(void)
{
    static const struct {
        bool gated;
        enum vm_mig_state state;
        enum vm_mig_lost_action src, dst;
    } rows[] = {
        {true, VM_MIG_STATE_STARTING, VM_MIG_LOST_NOTHING, VM_MIG_LOST_AT_GATE},
        {true, VM_MIG_STATE_MIGRATING, VM_MIG_LOST_NOTHING, VM_MIG_LOST_AT_GATE},
        {true, VM_MIG_STATE_GATE, VM_MIG_LOST_KEEP, VM_MIG_LOST_ROLLBACK},
        {true, VM_MIG_STATE_VERIFYING, VM_MIG_LOST_NOTHING, VM_MIG_LOST_NOTHING},
        {true, VM_MIG_STATE_DONE, VM_MIG_LOST_NOTHING, VM_MIG_LOST_NOTHING},
        {true, VM_MIG_STATE_ROLLED_BACK, VM_MIG_LOST_NOTHING, VM_MIG_LOST_NOTHING},
        /* Not gated: libvirt's one call fails by itself. */
        {false, VM_MIG_STATE_MIGRATING, VM_MIG_LOST_NOTHING, VM_MIG_LOST_NOTHING},
        {false, VM_MIG_STATE_VERIFYING, VM_MIG_LOST_NOTHING, VM_MIG_LOST_NOTHING},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(rows); i++) {
        struct fixture f;
        setup(&f, rows[i].gated, rows[i].state);
        fprintf(stderr, "row %zu: %s gated=%d\n", i, vm_mig_state_name(rows[i].state),
                rows[i].gated);
        CHECK_STR(vm_mig_lost_action_name(vm_mig_lost_action(f.m, f.src)),
                  vm_mig_lost_action_name(rows[i].src));
        CHECK_STR(vm_mig_lost_action_name(vm_mig_lost_action(f.m, f.dst)),
                  vm_mig_lost_action_name(rows[i].dst));
        /* A host this migration does not use changes nothing. */
        CHECK_INT(vm_mig_lost_action(f.m, f.other), ==, VM_MIG_LOST_NOTHING);
        teardown(&f);
    }
}

static void test_target_lost_at_gate_rolls_back_at_once(void)
{
    struct fixture f;
    setup(&f, true, VM_MIG_STATE_GATE);
    CHECK(!f.o.carried); /* the gate steps hold it */
    lose(&f, f.dst, "end of file");
    CHECK(f.o.carried && !f.o.carried_commit);
    CHECK_STR(f.o.reason, "the connection to the target 'test:///b' was lost at the gate: "
                          "end of file");
    CHECK_STR(f.o.events, "target:rollback:test:///b");
    /* Decided: a second loss (or the source's) changes nothing. */
    CHECK_INT(vm_mig_lost_action(f.m, f.dst), ==, VM_MIG_LOST_NOTHING);
    teardown(&f);
}

static void test_source_lost_at_gate_keeps_the_gate(void)
{
    struct fixture f;
    setup(&f, true, VM_MIG_STATE_GATE);
    lose(&f, f.src, "keepalive timeout");
    CHECK(!f.o.carried);
    CHECK(!vm_commit_decided(f.m->commit));
    CHECK_STR(f.o.events, "source:keep:test:///a");
    /* The gate still decides as usual: the features' commit goes through. */
    vm_mig_gate_decide(f.m, true, "every required feature is ready on the target");
    CHECK(f.o.carried && f.o.carried_commit);
    teardown(&f);
}

static void test_target_lost_before_gate_is_kept_for_it(void)
{
    struct fixture f;
    setup(&f, true, VM_MIG_STATE_MIGRATING);
    CHECK(f.m->target_lost == NULL);
    lose(&f, f.dst, "error");
    CHECK_STR(f.m->target_lost, "the connection to the target 'test:///b' was lost on the way "
                                "to the gate: error");
    CHECK_STR(f.o.events, "target:rollback-at-gate:test:///b");
    teardown(&f);
}

static void test_not_gated_only_recorded(void)
{
    struct fixture f;
    setup(&f, false, VM_MIG_STATE_MIGRATING);
    lose(&f, f.dst, NULL);
    CHECK(f.m->target_lost == NULL);
    CHECK_STR(f.o.events, "target:nothing:test:///b");
    teardown(&f);
}

static const struct vm_test tests[] = {
    VM_TEST(test_action_table),
    VM_TEST(test_target_lost_at_gate_rolls_back_at_once),
    VM_TEST(test_source_lost_at_gate_keeps_the_gate),
    VM_TEST(test_target_lost_before_gate_is_kept_for_it),
    VM_TEST(test_not_gated_only_recorded),
    {0},
};

static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
