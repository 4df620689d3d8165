/* SPDX-License-Identifier: MIT */
/* test_report.c — the JSON report and the NDJSON event stream (report.c),
 * and the libvirt conversions they rest on (virt.c): capabilities host UUID,
 * typed parameters, error names, progress formatting. */
#include <stdlib.h>
#include <unistd.h>

#include "runner.h"
#include "report/progress.h"
#include "report/report.h"
#include "run/run_records.h"
#include "util/util.h"
#include "backend/libvirt/virt.h"

static void test_caps_uuid(void)
{
    char *u = vm_virt_caps_host_uuid(
        "<capabilities>\n  <host>\n    <uuid>b5aedee1-617c-4276-b685-d5aa6623da62</uuid>\n"
        "    <cpu/>\n  </host>\n  <guest><uuid>x</uuid></guest>\n</capabilities>");
    CHECK_STR(u, "b5aedee1-617c-4276-b685-d5aa6623da62");
    free(u);
    CHECK(!vm_virt_caps_host_uuid(NULL));
    CHECK(!vm_virt_caps_host_uuid("<capabilities><host></host><uuid>b5aedee1-617c-4276-b685-"
                                  "d5aa6623da62</uuid></capabilities>"));
    CHECK(!vm_virt_caps_host_uuid("<host><uuid>short</uuid></host>"));
    CHECK(!vm_virt_caps_host_uuid("<host><uuid>b5aedee1-617c-4276-b685-d5aa6623da62"));
}

static void test_params_json(void)
{
    virTypedParameterPtr p = NULL;
    int n = 0, max = 0;
    virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_DOWNTIME, 42);
    virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_DATA_TOTAL, 1ULL << 40);
    virTypedParamsAddString(&p, &n, &max, "s", "x");
    virTypedParamsAddBoolean(&p, &n, &max, "b", 1);
    virTypedParamsAddDouble(&p, &n, &max, "d", 0.5);
    virTypedParamsAddInt(&p, &n, &max, "i", -3);
    json_t *o = vm_virt_params_to_json(p, n);
    CHECK_INT(json_integer_value(json_object_get(o, "downtime")), ==, 42);
    CHECK_INT(json_integer_value(json_object_get(o, "data_total")), ==, 1LL << 40);
    CHECK_STR(json_string_value(json_object_get(o, "s")), "x");
    CHECK(json_is_true(json_object_get(o, "b")));
    CHECK(json_real_value(json_object_get(o, "d")) == 0.5);
    CHECK_INT(json_integer_value(json_object_get(o, "i")), ==, -3);
    json_decref(o);
    virTypedParamsFree(p, n);
}

static void test_err_names(void)
{
    CHECK_STR(vm_virt_err_name(VIR_ERR_OPERATION_ABORTED), "VIR_ERR_OPERATION_ABORTED");
    CHECK_STR(vm_virt_err_name(VIR_ERR_NO_DOMAIN), "VIR_ERR_NO_DOMAIN");
    CHECK_STR(vm_virt_err_name(-1), "VIR_ERR_UNKNOWN");
    CHECK_STR(vm_virt_err_name(100000), "VIR_ERR_UNKNOWN");
    struct vm_virt_err a = {0}, b = {0};
    vm_virt_err_set(&a, VIR_ERR_NO_DOMAIN, "first %d", 1);
    vm_virt_err_set(&b, VIR_ERR_OPERATION_FAILED, "second");
    vm_virt_err_keep(&a, &b); /* the first error wins */
    CHECK_STR(a.message, "first 1");
    CHECK(!b.message);
    vm_virt_err_clear(&a);
}

static void test_fmt_bytes(void)
{
    char buf[32];
    vm_progress_fmt_bytes(buf, sizeof(buf), 0);
    CHECK_STR(buf, "0 B");
    vm_progress_fmt_bytes(buf, sizeof(buf), 1536);
    CHECK_STR(buf, "1.5 KiB");
    vm_progress_fmt_bytes(buf, sizeof(buf), 64ULL << 20);
    CHECK_STR(buf, "64.0 MiB");
}

static struct vm_mig *fake_mig(struct vm_virt_host *a, struct vm_virt_host *b)
{
    struct vm_mig_params params = {.p2p = true};
    static const struct vm_mig_ops ops = {0};
    struct vm_mig *m = vm_mig_new(NULL, "web1", a, b, &params, &ops, NULL);
    snprintf(m->uuid, sizeof(m->uuid), "%s", "2ecb5099-8f2d-4838-a3af-65aea810ecaa");
    m->state = VM_MIG_STATE_FAILED;
    m->location = VM_MIG_LOCATION_SOURCE;
    m->memory_kib = 65536;
    m->start_mono_ms = 1000;
    m->end_mono_ms = 1377;
    m->start_wall_ms = 1763769600000ULL;
    m->end_wall_ms = 1763769600377ULL;
    m->progress.data_total = 100;
    m->progress.data_processed = 60;
    m->progress.data_remaining = 40;
    m->progress.iteration = 3;
    m->phases[m->nphases++] = (struct vm_mig_phase){"migrating", 1763769600001ULL};
    m->abort_reason = "interrupted";
    vm_virt_err_set(&m->err, VIR_ERR_OPERATION_ABORTED, "operation aborted: \"quoted\"\n");
    return m;
}

static void test_mig_json(void)
{
    struct vm_virt_host *a = vm_virt_host_new(NULL, "qemu:///a", NULL, NULL);
    struct vm_virt_host *b = vm_virt_host_new(NULL, "qemu:///b", NULL, NULL);
    struct vm_mig *m = fake_mig(a, b);
    json_t *o = vm_run_mig_json(m);
    CHECK_STR(json_string_value(json_object_get(o, "name")), "web1");
    CHECK_STR(json_string_value(json_object_get(o, "result")), "failed");
    CHECK_STR(json_string_value(json_object_get(o, "location")), "source");
    CHECK_STR(json_string_value(json_object_get(o, "source")), "qemu:///a");
    CHECK_STR(json_string_value(json_object_get(o, "started_at")), "2025-11-22T00:00:00.000Z");
    CHECK_INT(json_integer_value(json_object_get(o, "total_ms")), ==, 377);
    CHECK_INT(json_integer_value(json_object_get(o, "memory_bytes")), ==, 64 << 20);
    CHECK(json_is_null(json_object_get(o, "downtime_ms")));
    json_t *bytes = json_object_get(o, "bytes");
    CHECK_INT(json_integer_value(json_object_get(bytes, "transferred")), ==, 60);
    json_t *err = json_object_get(o, "error");
    CHECK_STR(json_string_value(json_object_get(err, "name")), "VIR_ERR_OPERATION_ABORTED");
    CHECK_STR(json_string_value(json_object_get(err, "message")),
              "operation aborted: \"quoted\"\n");
    json_decref(o);

    struct vm_report_run run = {.command = "run",
                                .source_uri = "qemu:///a",
                                .target_uri = "qemu:///b",
                                .started_wall_ms = 1000,
                                .finished_wall_ms = 3500,
                                .exit_code = 1,
                                .result = "failed"};
    json_t *r = vm_run_report_json(&run, &m, 1);
    CHECK_INT(json_integer_value(json_object_get(r, "schema_version")), ==,
              VM_REPORT_SCHEMA_VERSION);
    CHECK_INT(json_integer_value(json_object_get(r, "duration_ms")), ==, 2500);
    json_t *sum = json_object_get(r, "summary");
    CHECK_INT(json_integer_value(json_object_get(sum, "failed")), ==, 1);
    CHECK_INT(json_integer_value(json_object_get(sum, "migrated")), ==, 0);
    CHECK(json_is_null(json_object_get(json_object_get(r, "source"), "hostname")));
    CHECK_INT(json_array_size(json_object_get(r, "vms")), ==, 1);
    json_decref(r);
    vm_mig_free(m);
    vm_virt_host_free(a);
    vm_virt_host_free(b);
}

/* The records' state names are the migrations' (run_records.c checks the
 * values). */
static void test_state_names(void)
{
    for (int k = 0; k <= VM_MIG_STATE_COUNT; k++)
        CHECK_STR(vm_rec_state_name((enum vm_rec_state)k), vm_mig_state_name((enum vm_mig_state)k));
}

static void test_event_stream(void)
{
    char path[] = "/tmp/vmm-test-events-XXXXXX";
    int fd = mkstemp(path);
    CHECK_INT(fd, >=, 0);
    close(fd);
    struct vm_report_stream *s = vm_report_stream_open(path);
    CHECK(s);
    vm_report_event(s, "r1", "web1", "qemu:///a", "phase",
                    json_pack("{s:s}", "phase", "migrating"));
    vm_report_event(s, NULL, NULL, NULL, "run.finished", NULL);
    vm_report_event(NULL, "r1", "x", NULL, "ignored", json_object()); /* no stream: no-op */
    vm_report_stream_close(s);

    FILE *f = fopen(path, "r");
    CHECK(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        CHECK(line[strlen(line) - 1] == '\n');
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        if (!o)
            CHECK_FAIL("line %d is not JSON: %s", n + 1, e.text);
        CHECK_INT(json_integer_value(json_object_get(o, "schema_version")), ==, 1);
        CHECK(json_is_string(json_object_get(o, "time")));
        CHECK(json_is_object(json_object_get(o, "details")));
        if (n == 0) {
            CHECK_STR(json_string_value(json_object_get(o, "vm")), "web1");
            CHECK_STR(json_string_value(json_object_get(o, "run")), "r1");
            CHECK_STR(json_string_value(json_object_get(json_object_get(o, "details"), "phase")),
                      "migrating");
        } else {
            CHECK(json_is_null(json_object_get(o, "vm")));
            CHECK_STR(json_string_value(json_object_get(o, "run")), ""); /* always there */
            CHECK_STR(json_string_value(json_object_get(o, "event")), "run.finished");
        }
        json_decref(o);
        n++;
    }
    fclose(f);
    CHECK_INT(n, ==, 2);
    unlink(path);
    CHECK(!vm_report_stream_open("/nonexistent-dir/x.ndjson"));
}

static void setup(void)
{
    vm_virt_global_init();
}

static const struct vm_test tests[] = {
    VM_TEST(test_caps_uuid),    VM_TEST(test_params_json),
    VM_TEST(test_err_names),    VM_TEST(test_fmt_bytes),
    VM_TEST(test_mig_json),     VM_TEST(test_state_names),
    VM_TEST(test_event_stream), {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
