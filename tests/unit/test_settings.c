/* SPDX-License-Identifier: MIT */
/* test_settings.c — the settings table (plan/settings.h) and settings(run)'s
 * validation: every row's bounds and choices, with the messages a policy
 * author sees, and the settings in force as the report shows them. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "plan/settings.h"
#include "util/util.h"

/* Parse the JSON text; 0 and *out, or -1 with the message in *err. */
static int parse_text(const char *text, struct vm_run_settings *out, char **err)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!j)
        CHECK_FAIL("bad test JSON %s: %s", text, jerr.text);
    int rc = vm_settings_parse(j, out, err);
    json_decref(j);
    return rc;
}

static void parse_fails(const char *text, const char *message)
{
    struct vm_run_settings st;
    char *err = NULL;
    if (parse_text(text, &st, &err) == 0)
        CHECK_FAIL("%s parsed, but should fail with: %s", text, message);
    CHECK_STR(err, message);
    CHECK_INT(st.set, ==, 0);
    CHECK(st.notify == NULL);
    free(err);
}

static void test_table(void)
{
    unsigned bits = 0;
    for (const struct vm_setting *s = vm_settings; s->key; s++) {
        CHECK(s->option && *s->option);
        CHECK(s->min <= s->max);
        if (s->bit & bits)
            CHECK_FAIL("%s: bit %u is another row's", s->key, s->bit);
        bits |= s->bit;
        CHECK(vm_setting_find(s->key) == s);
        if (s->choices) { /* the index range of the choices */
            CHECK_INT(s->min, ==, 0);
            int n = 1;
            for (const char *p = s->choices; *p; p++)
                n += *p == '|';
            CHECK_INT(s->max, ==, n - 1);
        }
    }
    CHECK(vm_setting_find("notify") == NULL); /* a list, not a row */
    CHECK(vm_setting_find("nonexistent") == NULL);
    CHECK_INT(VM_SETTING_MIN(max_in), ==, 1);
    CHECK_INT(VM_SETTING_MAX(max_in), ==, 64);
    CHECK_INT(VM_SETTING_DEFAULT(max_in), ==, 2);
    CHECK_STR(VM_SETTING_OPTION(deadline_s), "deadline");
    CHECK_STR(VM_SETTING_CHOICES(on_abort), "rollback|finish");
}

/* Each integer row: its bounds pass, one past them fails naming the key. */
static void test_bounds(void)
{
    for (const struct vm_setting *s = vm_settings; s->key; s++) {
        if (s->choices)
            continue;
        int64_t ok[] = {s->min, s->max};
        for (size_t i = 0; i < VM_ARRAY_LEN(ok); i++) {
            char *text = xasprintf("{\"%s\": %lld}", s->key, (long long)ok[i]);
            struct vm_run_settings st;
            char *err = NULL;
            if (parse_text(text, &st, &err) < 0)
                CHECK_FAIL("%s: %s", text, err);
            CHECK_INT(st.set, ==, s->bit);
            json_t *back = vm_settings_to_json(&st);
            CHECK_INT(json_integer_value(json_object_get(back, s->key)), ==, ok[i]);
            json_decref(back);
            vm_settings_clear(&st);
            free(text);
        }
        int64_t bad[] = {s->min - 1, s->max + 1};
        char *msg = xasprintf("settings: %s must be an integer from %lld to %lld", s->key,
                              (long long)s->min, (long long)s->max);
        for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++) {
            char *text = xasprintf("{\"%s\": %lld}", s->key, (long long)bad[i]);
            parse_fails(text, msg);
            free(text);
        }
        char *text = xasprintf("{\"%s\": \"2\"}", s->key);
        parse_fails(text, msg);
        free(text);
        free(msg);
    }
}

static void test_values(void)
{
    struct vm_run_settings st;
    char *err = NULL;
    CHECK_INT(parse_text("{\"parallel\": 3.0, \"max_out\": 4, \"max_in\": 5, \"max_failures\": 6, "
                         "\"retries\": 7, \"deadline_s\": 8, \"on_abort\": \"finish\", "
                         "\"notify\": [\"https://hooks.example/x\"]}",
                         &st, &err),
              ==, 0);
    CHECK_INT(st.parallel, ==, 3);
    CHECK_INT(st.max_out, ==, 4);
    CHECK_INT(st.max_in, ==, 5);
    CHECK_INT(st.max_failures, ==, 6);
    CHECK_INT(st.retries, ==, 7);
    CHECK_INT(st.deadline_s, ==, 8);
    CHECK_INT(st.on_abort, ==, VM_ON_ABORT_FINISH);
    json_t *j = vm_settings_to_json(&st);
    char *txt = json_dumps(j, JSON_COMPACT);
    CHECK_STR(txt, "{\"parallel\":3,\"max_out\":4,\"max_in\":5,\"max_failures\":6,\"retries\":7,"
                   "\"deadline_s\":8,\"on_abort\":\"finish\",\"notify\":[\"https://hooks.example/"
                   "x\"]}");
    free(txt);
    json_decref(j);
    vm_settings_clear(&st);

    CHECK_INT(parse_text("{\"on_abort\": \"rollback\"}", &st, &err), ==, 0);
    CHECK_INT(st.set, ==, VM_SET_ON_ABORT);
    CHECK_INT(st.on_abort, ==, VM_ON_ABORT_ROLLBACK);
    j = vm_settings_to_json(&st);
    CHECK_STR(json_string_value(json_object_get(j, "on_abort")), "rollback");
    json_decref(j);
    vm_settings_clear(&st);

    CHECK_INT(parse_text("[]", &st, &err), ==, 0); /* an empty Lua table */
    CHECK_INT(st.set, ==, 0);
}

static void test_errors(void)
{
    parse_fails("{\"parallel\": 2.5}", "settings: parallel must be an integer from 1 to 64");
    parse_fails("{\"on_abort\": \"later\"}", "settings: on_abort must be 'rollback' or 'finish'");
    parse_fails("{\"on_abort\": 1}", "settings: on_abort must be 'rollback' or 'finish'");
    parse_fails("{\"paralel\": 2}", "settings: unknown key 'paralel'");
    parse_fails("{\"max_in\": 2, \"notify\": \"https://x\"}",
                "settings: notify must be a list of at most 16 URLs");
    parse_fails("{\"notify\": [\"https://x\", \"ftp://y\"]}",
                "settings: notify[2] must be an http:// or https:// URL");
    parse_fails("3", "settings() must return a table (or nil)");
    parse_fails("[1]", "settings() must return a table (or nil)");
}

static const struct vm_test tests[] = {
    VM_TEST(test_table), VM_TEST(test_bounds), VM_TEST(test_values), VM_TEST(test_errors), {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
