/* SPDX-License-Identifier: MIT */
/* test_decision.c — what a policy returns, validated (decision.c), from
 * JSON as the sandbox hands it over: decide()'s decision (every parameter,
 * which of them override the command line's, features and their defaults,
 * an empty Lua table for a list or a map, the limits, the JSON the report
 * shows), on_progress()'s action and settings(run)'s table, each bad input
 * failing with a message naming the key. No libvirt, no Lua. */
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "plan/decision.h"
#include "util/util.h"

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        CHECK_FAIL("fixture '%s': %s", text, e.text);
    return j;
}

/* The error parse_fn gives for TEXT, which must fail. */
#define CHECK_REJECTS(parse_fn, out, text, want)                                                   \
    do {                                                                                           \
        json_t *j_ = parse_json(text);                                                             \
        char *err_ = NULL;                                                                         \
        if (parse_fn(j_, out, &err_) == 0)                                                         \
            CHECK_FAIL("%s accepted %s", #parse_fn, text);                                         \
        CHECK_STR(err_, want);                                                                     \
        free(err_);                                                                                \
        json_decref(j_);                                                                           \
    } while (0)

static void test_defaults(void)
{
    /* {} and the empty Lua tables the sandbox turns into [] or {}. */
    static const char *const empty[] = {"{}", "{\"params\":[],\"features\":{}}",
                                        "{\"features\":[]}"};
    for (size_t i = 0; i < VM_ARRAY_LEN(empty); i++) {
        json_t *j = parse_json(empty[i]);
        struct vm_decision d;
        char *err = NULL;
        CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
        CHECK(err == NULL);
        CHECK(d.target == NULL);
        CHECK(!d.class_set);
        CHECK_INT(d.class, ==, VM_CLASS_URGENT);
        CHECK_INT(d.priority, ==, 0);
        CHECK_INT(d.params_set, ==, 0);
        CHECK_INT(d.nfeatures, ==, 0);
        CHECK(!d.retries_set);
        CHECK_INT(d.gate_timeout_ms, ==, 0);
        CHECK(d.reason == NULL);
        vm_decision_clear(&d);
        json_decref(j);
    }
}

/* Every parameter; only those given override the base. */
static void test_params_override(void)
{
    json_t *j = parse_json("{\"params\":{\"bandwidth_mibs\":200,\"max_downtime_ms\":50,"
                           "\"auto_converge\":true,\"postcopy\":true,\"parallel\":4,"
                           "\"compression\":\"zstd\",\"timeout_s\":600,"
                           "\"timeout_action\":\"suspend\",\"persistent\":false,"
                           "\"undefine_source\":true,\"direct\":true}}");
    struct vm_decision d;
    char *err = NULL;
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
    CHECK_INT(d.params_set, ==,
              VM_PARAM_BANDWIDTH | VM_PARAM_MAX_DOWNTIME | VM_PARAM_AUTO_CONVERGE |
                  VM_PARAM_POSTCOPY | VM_PARAM_PARALLEL | VM_PARAM_COMPRESSION | VM_PARAM_TIMEOUT |
                  VM_PARAM_TIMEOUT_ACTION | VM_PARAM_PERSISTENT | VM_PARAM_UNDEFINE_SOURCE |
                  VM_PARAM_DIRECT);
    struct vm_mig_params base = {.bandwidth_mibs = 1000,
                                 .max_downtime_ms = 300,
                                 .parallel = 1,
                                 .persistent = true,
                                 .p2p = true,
                                 .tls = true,
                                 .timeout_s = 0};
    vm_decision_apply_params(&d, &base);
    CHECK_INT(base.bandwidth_mibs, ==, 200);
    CHECK_INT(base.max_downtime_ms, ==, 50);
    CHECK(base.auto_converge);
    CHECK(base.postcopy);
    CHECK_INT(base.parallel, ==, 4);
    CHECK_STR(base.compression, "zstd");
    CHECK_INT(base.timeout_s, ==, 600);
    CHECK_INT(base.timeout_action, ==, VM_MIG_TIMEOUT_SUSPEND);
    CHECK(!base.persistent);
    CHECK(base.undefine_source);
    CHECK(!base.p2p); /* direct */
    CHECK(base.tls);  /* not a policy's to set: kept */
    vm_decision_clear(&d);
    json_decref(j);

    /* One parameter: the rest of the base stays. */
    j = parse_json("{\"params\":{\"max_downtime_ms\":20.0}}");
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
    CHECK_INT(d.params_set, ==, VM_PARAM_MAX_DOWNTIME);
    struct vm_mig_params base2 = {.bandwidth_mibs = 77, .p2p = true, .parallel = 3};
    vm_decision_apply_params(&d, &base2);
    CHECK_INT(base2.max_downtime_ms, ==, 20);
    CHECK_INT(base2.bandwidth_mibs, ==, 77);
    CHECK_INT(base2.parallel, ==, 3);
    CHECK(base2.p2p);
    vm_decision_clear(&d);
    json_decref(j);
}

static void test_features(void)
{
    json_t *j = parse_json("{\"class\":\"network-critical\",\"gate_timeout_ms\":5000,"
                           "\"features\":[{\"name\":\"vdp\"},{\"name\":\"mark_2\","
                           "\"required\":false,\"timeout_ms\":250,\"args\":[]},"
                           "{\"name\":\"x-y\",\"args\":{\"k\":[1,2]}}]}");
    struct vm_decision d;
    char *err = NULL;
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
    CHECK(d.class_set);
    CHECK_INT(d.class, ==, VM_CLASS_NETWORK_CRITICAL);
    CHECK_INT(d.gate_timeout_ms, ==, 5000);
    CHECK_INT(d.nfeatures, ==, 3);
    CHECK_STR(d.features[0].name, "vdp");
    CHECK(d.features[0].required);                  /* by default */
    CHECK_INT(d.features[0].timeout_ms, ==, 10000); /* by default */
    CHECK_INT(json_object_size(d.features[0].args), ==, 0);
    CHECK(!d.features[1].required);
    CHECK_INT(d.features[1].timeout_ms, ==, 250);
    CHECK(json_is_object(d.features[1].args)); /* [] is an empty table */
    CHECK_INT(json_array_size(json_object_get(d.features[2].args, "k")), ==, 2);
    vm_decision_clear(&d);
    json_decref(j);

    /* 32 features at most. */
    json_t *many = json_array();
    for (int i = 0; i < 33; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d", i);
        json_array_append_new(many, json_pack("{s:s}", "name", name));
    }
    j = json_pack("{s:o}", "features", many);
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, -1);
    CHECK_STR(err, "features: at most 32");
    free(err);
    json_array_remove(many, 32);
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
    CHECK_INT(d.nfeatures, ==, 32);
    vm_decision_clear(&d);
    json_decref(j);
}

static void test_decision_rejects(void)
{
    struct vm_decision d;
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"null", "a decision must be a table (or nil to leave the VM alone)"},
        {"{\"target\":\"\"}", "target must be a libvirt URI string"},
        {"{\"priority\":1e10}", "priority must be an integer from -1e9 to 1e9"},
        {"{\"params\":5}", "params must be a table"},
        {"{\"params\":{\"bandwidth_mibs\":0}}",
         "params.bandwidth_mibs must be an integer from 1 to 1000000"},
        {"{\"params\":{\"max_downtime_ms\":2000001}}",
         "params.max_downtime_ms must be an integer from 1 to 2000000"},
        {"{\"params\":{\"parallel\":256}}", "params.parallel must be an integer from 1 to 255"},
        {"{\"params\":{\"timeout_s\":604801}}",
         "params.timeout_s must be an integer from 1 to 604800"},
        {"{\"params\":{\"timeout_action\":\"pause\"}}",
         "params.timeout_action must be 'abort', 'suspend' or 'postcopy'"},
        {"{\"params\":{\"compression\":\"\"}}",
         "params.compression must be a comma list of xbzrle, mt, zlib, zstd"},
        {"{\"params\":{\"compression\":\"zstd,gzip\"}}",
         "params.compression must be a comma list of xbzrle, mt, zlib, zstd"},
        {"{\"params\":{\"direct\":\"yes\"}}", "params.direct must be a boolean"},
        {"{\"features\":[5]}", "features[1] must be a table"},
        {"{\"features\":[{\"name\":\"a\"},{\"name\":\"b\",\"colour\":1}]}",
         "features[2]: unknown key 'colour'"},
        {"{\"features\":[{\"name\":\"a\",\"required\":1}]}",
         "features[1].required must be a boolean"},
        {"{\"features\":[{\"name\":\"a\",\"timeout_ms\":3600001}]}",
         "features[1].timeout_ms must be an integer from 1 to 3600000"},
        {"{\"features\":[{\"name\":\"a\",\"args\":[1]}]}",
         "features[1].args must be a table of named values"},
        {"{\"features\":[{\"name\":"
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]}",
         "features[1].name must be a name of [a-z0-9_-], 1-64 characters"},
        {"{\"gate_timeout_ms\":0}", "gate_timeout_ms must be an integer from 1 to 600000"},
        {"{\"retries\":2.5}", "retries must be an integer from 0 to 10"},
        {"{\"reason\":false}", "reason must be a string"},
        {"{\"reasons\":\"x\"}", "unknown key 'reasons'"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++) {
        CHECK_REJECTS(vm_decision_parse, &d, bad[i].json, bad[i].err);
        /* cleared on failure: nothing to free, nothing left over */
        CHECK(d.features == NULL && d.target == NULL && d.compression == NULL);
    }
}

/* What the report and the plan show of a decision. */
static void test_decision_json(void)
{
    json_t *j = parse_json("{\"target\":\"qemu+tcp://t1/system\",\"class\":\"network-critical\","
                           "\"priority\":-3,\"retries\":1,\"params\":{\"bandwidth_mibs\":5},"
                           "\"features\":[{\"name\":\"vdp\",\"required\":false,"
                           "\"args\":{\"vsi\":\"x\"}}],\"reason\":\"tier gold\"}");
    struct vm_decision d;
    char *err = NULL;
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
    json_t *o = vm_decision_to_json(&d);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(s, "{\"class\":\"network-critical\",\"features\":[{\"args\":{\"vsi\":\"x\"},"
                 "\"name\":\"vdp\",\"required\":false,\"timeout_ms\":10000}],\"priority\":-3,"
                 "\"reason\":\"tier gold\",\"retries\":1,\"target\":\"qemu+tcp://t1/system\"}");
    free(s);
    json_decref(o);
    vm_decision_clear(&d);
    json_decref(j);

    /* No target, no reason, no retries: null, null, absent. */
    j = parse_json("{}");
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
    o = vm_decision_to_json(&d);
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(s, "{\"class\":\"urgent\",\"features\":[],\"priority\":0,\"reason\":null,"
                 "\"target\":null}");
    free(s);
    json_decref(o);
    vm_decision_clear(&d);
    json_decref(j);

    CHECK_STR(vm_class_name(VM_CLASS_URGENT), "urgent");
    CHECK_STR(vm_class_name(VM_CLASS_NETWORK_CRITICAL), "network-critical");
}

/* A reason is cut to 200 bytes, never inside a UTF-8 character. */
static void test_reason_cut(void)
{
    char text[260];
    memset(text, 'r', 199);
    strcpy(text + 199, "\xc3\xa9tail"); /* 'é' across the 200th byte */
    json_t *j = json_pack("{s:s}", "reason", text);
    struct vm_decision d;
    char *err = NULL;
    CHECK_INT(vm_decision_parse(j, &d, &err), ==, 0);
    CHECK_INT(strlen(d.reason), ==, 199);
    CHECK(strncmp(d.reason, text, 199) == 0);
    vm_decision_clear(&d);
    json_decref(j);
}

static void test_actions(void)
{
    struct vm_action a;
    char *err = NULL;
    CHECK_INT(vm_action_parse(NULL, &a, &err), ==, 0);
    CHECK_INT(a.kind, ==, VM_ACTION_CONTINUE);
    json_t *j = parse_json("null");
    CHECK_INT(vm_action_parse(j, &a, &err), ==, 0);
    CHECK_INT(a.kind, ==, VM_ACTION_CONTINUE);
    json_decref(j);

    j = parse_json("\"postcopy\"");
    CHECK_INT(vm_action_parse(j, &a, &err), ==, 0);
    CHECK_INT(a.kind, ==, VM_ACTION_POSTCOPY);
    vm_action_clear(&a);
    json_decref(j);

    j = parse_json("{\"action\":\"set_downtime\",\"downtime_ms\":400,\"reason\":\"slow\"}");
    CHECK_INT(vm_action_parse(j, &a, &err), ==, 0);
    CHECK_INT(a.kind, ==, VM_ACTION_SET_DOWNTIME);
    CHECK_INT(a.downtime_ms, ==, 400);
    CHECK_STR(a.reason, "slow");
    vm_action_clear(&a);
    CHECK(a.reason == NULL);
    json_decref(j);

    j = parse_json("{\"action\":\"abort\",\"reason\":\"too slow\"}");
    CHECK_INT(vm_action_parse(j, &a, &err), ==, 0);
    CHECK_INT(a.kind, ==, VM_ACTION_ABORT);
    CHECK_STR(vm_action_name(a.kind), "abort");
    vm_action_clear(&a);
    json_decref(j);

    static const struct {
        const char *json, *err;
    } bad[] = {
        {"5", "on_progress() must return an action name or a table"},
        {"{\"downtime_ms\":5}", "on_progress(): the action table needs action = \"...\""},
        {"\"pause\"",
         "on_progress(): unknown action 'pause' (continue, set_downtime, postcopy, abort)"},
        {"{\"action\":\"set_downtime\"}", "on_progress(): set_downtime needs downtime_ms"},
        {"{\"action\":\"set_downtime\",\"downtime_ms\":0}",
         "on_progress(): downtime_ms must be an integer from 1 to 2000000"},
        {"{\"action\":\"abort\",\"downtime_ms\":5}",
         "on_progress(): unexpected key 'downtime_ms' for action 'abort'"},
        {"{\"action\":\"abort\",\"reason\":5}",
         "on_progress(): unexpected key 'reason' for action 'abort'"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++)
        CHECK_REJECTS(vm_action_parse, &a, bad[i].json, bad[i].err);
    CHECK_STR(vm_action_name(VM_ACTION_CONTINUE), "continue");
    CHECK_STR(vm_action_name(VM_ACTION_SET_DOWNTIME), "set_downtime");
    CHECK_STR(vm_action_name((enum vm_action_kind)9), "unknown");
}

static void test_settings(void)
{
    struct vm_run_settings s;
    char *err = NULL;
    json_t *j = parse_json("{\"parallel\":3,\"max_out\":2,\"max_in\":1,\"max_failures\":5,"
                           "\"retries\":0,\"deadline_s\":3600,\"on_abort\":\"finish\","
                           "\"notify\":[\"https://hooks.example/a\",\"http://127.0.0.1:9/b\"]}");
    CHECK_INT(vm_settings_parse(j, &s, &err), ==, 0);
    CHECK_INT(s.set, ==,
              VM_SET_PARALLEL | VM_SET_MAX_OUT | VM_SET_MAX_IN | VM_SET_MAX_FAILURES |
                  VM_SET_RETRIES | VM_SET_DEADLINE | VM_SET_ON_ABORT | VM_SET_NOTIFY);
    CHECK_INT(s.parallel, ==, 3);
    CHECK_INT(s.max_out, ==, 2);
    CHECK_INT(s.max_in, ==, 1);
    CHECK_INT(s.max_failures, ==, 5);
    CHECK_INT(s.retries, ==, 0);
    CHECK_INT(s.deadline_s, ==, 3600);
    CHECK_INT(s.on_abort, ==, VM_ON_ABORT_FINISH);
    /* What settings(run) gave comes back as given. */
    json_t *o = vm_settings_to_json(&s);
    CHECK(json_equal(o, j));
    json_decref(o);
    vm_settings_clear(&s);
    CHECK(s.notify == NULL);
    json_decref(j);

    /* Nothing set: nothing shown; an empty Lua table is nothing. */
    j = parse_json("[]");
    CHECK_INT(vm_settings_parse(j, &s, &err), ==, 0);
    CHECK_INT(s.set, ==, 0);
    o = vm_settings_to_json(&s);
    CHECK_INT(json_object_size(o), ==, 0);
    json_decref(o);
    json_decref(j);
    j = parse_json("{\"on_abort\":\"rollback\"}");
    CHECK_INT(vm_settings_parse(j, &s, &err), ==, 0);
    CHECK_INT(s.set, ==, VM_SET_ON_ABORT);
    CHECK_INT(s.on_abort, ==, VM_ON_ABORT_ROLLBACK);
    vm_settings_clear(&s);
    json_decref(j);

    static const struct {
        const char *json, *err;
    } bad[] = {
        {"5", "settings() must return a table (or nil)"},
        {"{\"parallel\":0}", "settings: parallel must be an integer from 1 to 64"},
        {"{\"max_out\":65}", "settings: max_out must be an integer from 1 to 64"},
        {"{\"max_in\":1.5}", "settings: max_in must be an integer from 1 to 64"},
        {"{\"max_failures\":100001}", "settings: max_failures must be an integer from 1 to 100000"},
        {"{\"retries\":11}", "settings: retries must be an integer from 0 to 10"},
        {"{\"deadline_s\":\"1h\"}", "settings: deadline_s must be an integer from 1 to 604800"},
        {"{\"on_abort\":\"stop\"}", "settings: on_abort must be 'rollback' or 'finish'"},
        {"{\"notify\":\"https://x\"}", "settings: notify must be a list of at most 16 URLs"},
        {"{\"notify\":[\"https://x\",\"ftp://y\"]}",
         "settings: notify[2] must be an http:// or https:// URL"},
        {"{\"paralel\":2}", "settings: unknown key 'paralel'"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++) {
        CHECK_REJECTS(vm_settings_parse, &s, bad[i].json, bad[i].err);
        CHECK(s.notify == NULL); /* cleared on failure */
    }
    /* 16 URLs at most. */
    json_t *urls = json_array();
    for (int i = 0; i < 17; i++)
        json_array_append_new(urls, json_string("https://hooks.example/"));
    j = json_pack("{s:o}", "notify", urls);
    CHECK_INT(vm_settings_parse(j, &s, &err), ==, -1);
    CHECK_STR(err, "settings: notify must be a list of at most 16 URLs");
    free(err);
    json_decref(j);
}

static const struct vm_test tests[] = {
    VM_TEST(test_defaults),         VM_TEST(test_params_override), VM_TEST(test_features),
    VM_TEST(test_decision_rejects), VM_TEST(test_decision_json),   VM_TEST(test_reason_cut),
    VM_TEST(test_actions),          VM_TEST(test_settings),        {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
