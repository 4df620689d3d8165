/* SPDX-License-Identifier: MIT */
/* test_sinks.c — the sink interface and its fan-out (sinks.c): a sink in
 * the table hears every event, state and finish, in order, with the run id
 * stamped; a constructor that fails leaves nothing open; the status sink
 * fed records writes what it writes from the migrations themselves. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "report/notify.h"
#include "report/report.h"
#include "report/sinks.h"
#include "report/status.h"
#include "run/run_records.h"
#include "util/util.h"

/* ---- a recording sink, built only into this test ---------------------- */

struct recorder {
    struct vm_sink base;
    char log[4096];
};

static struct recorder *last_recorder;
static int recorders_freed;

static void rec_append(struct recorder *r, const char *line)
{
    size_t len = strlen(r->log);
    snprintf(r->log + len, sizeof(r->log) - len, "%s\n", line);
}

static void rec_event(struct vm_sink *s, const struct vm_event_rec *ev)
{
    char *d = ev->details ? json_dumps(ev->details, JSON_COMPACT) : xstrdup("-");
    char *line = xasprintf("event %s %s run=%s vm=%s host=%s %s",
                           ev->cls == VM_EVENT_CLASS_TRACE ? "trace" : "notice", ev->event, ev->run,
                           ev->vm ? ev->vm : "-", ev->host ? ev->host : "-", d);
    rec_append((struct recorder *)s, line);
    free(line);
    free(d);
}

static void rec_state(struct vm_sink *s, const struct vm_state_rec *st)
{
    char *line = xasprintf("state %d %s %s %s final=%d run=%s", st->index, st->name, st->result,
                           st->location, st->final, st->run);
    rec_append((struct recorder *)s, line);
    free(line);
}

static void rec_finish(struct vm_sink *s, const struct vm_finish_rec *fin)
{
    char *line = xasprintf("finish %s %d run=%s report=%s", fin->result, fin->exit_code, fin->run,
                           json_string_value(json_object_get(fin->report, "result")));
    rec_append((struct recorder *)s, line);
    free(line);
}

static void rec_free(struct vm_sink *s)
{
    recorders_freed++;
    free(s);
}

static const struct vm_sink_ops rec_ops = {.name = "recorder",
                                           .on_event = rec_event,
                                           .on_state = rec_state,
                                           .on_finish = rec_finish,
                                           .free = rec_free};

static int recorder_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    (void)cfg, (void)err;
    struct recorder *r = xcalloc(1, sizeof(*r));
    r->base.ops = &rec_ops;
    last_recorder = r;
    *out = &r->base;
    return 0;
}

static int failing_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    (void)cfg;
    *out = NULL;
    *err = xstrdup("cannot start");
    return -1;
}

static int absent_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    (void)cfg, (void)err;
    *out = NULL; /* not asked for */
    return 0;
}

static struct vm_state_rec vm_rec(int index, const char *name, int state, const char *result,
                                  bool final)
{
    return (struct vm_state_rec){.index = index,
                                 .name = name,
                                 .uuid = "",
                                 .state = state,
                                 .result = result,
                                 .location = final ? "target" : "source",
                                 .final = final,
                                 .source = "qemu:///a",
                                 .target = "qemu:///b"};
}

static void test_order(void)
{
    char path[] = "/tmp/vmm-test-sinks-XXXXXX";
    int fd = mkstemp(path);
    CHECK_INT(fd, >=, 0);
    close(fd);
    const struct vm_sink_entry table[] = {
        {"absent", absent_new},
        {"recorder", recorder_new},
        {"events", vm_report_events_sink_new},
    };
    struct vm_sinks_config cfg = {.events_path = path};
    char *err = NULL;
    struct vm_sinks *ss = vm_sinks_new_from(table, (int)VM_ARRAY_LEN(table), &cfg, &err);
    CHECK(ss);
    CHECK(!err);
    vm_sinks_trace(ss, NULL, NULL, "run.started", json_pack("{s:s}", "command", "run"));
    struct vm_state_rec r0 = vm_rec(0, "web1", VM_MIG_STATE_QUEUED, "queued", false);
    vm_sinks_state(ss, &r0);
    vm_sinks_set_run_id(ss, "r-1");
    CHECK_STR(vm_sinks_run_id(ss), "r-1");
    vm_sinks_notice(ss, "web1", "vm.failed", vm_notify_vm_details(&r0));
    vm_sinks_trace(ss, "web1", "qemu:///a", "phase", json_pack("{s:s}", "phase", "migrating"));
    struct vm_state_rec r1 = vm_rec(0, "web1", VM_MIG_STATE_DONE, "migrated", true);
    vm_sinks_state(ss, &r1);
    json_t *report = json_pack("{s:s}", "result", "ok");
    vm_sinks_finish(ss, &(struct vm_finish_rec){.result = "ok", .exit_code = 0, .report = report});
    json_decref(report);
    CHECK_STR(last_recorder->log,
              "event trace run.started run= vm=- host=- {\"command\":\"run\"}\n"
              "state 0 web1 queued source final=0 run=\n"
              "event notice vm.failed run=r-1 vm=web1 host=- {\"vm\":\"web1\",\"source\":"
              "\"qemu:///a\",\"target\":\"qemu:///b\",\"result\":\"queued\",\"location\":"
              "\"source\",\"error\":null}\n"
              "event trace phase run=r-1 vm=web1 host=qemu:///a {\"phase\":\"migrating\"}\n"
              "state 0 web1 migrated target final=1 run=r-1\n"
              "finish ok 0 run=r-1 report=ok\n");
    vm_sinks_free(ss);
    CHECK_INT(recorders_freed, ==, 1);

    /* the events sink wrote the trace events only, in order */
    FILE *f = fopen(path, "r");
    CHECK(f);
    char line[4096];
    const char *want[] = {"run.started", "phase"};
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        json_t *o = json_loads(line, 0, NULL);
        CHECK(o);
        CHECK(n < 2);
        CHECK_STR(json_string_value(json_object_get(o, "event")), want[n]);
        json_decref(o);
        n++;
    }
    fclose(f);
    CHECK_INT(n, ==, 2);
    unlink(path);
}

static void test_failing_constructor(void)
{
    const struct vm_sink_entry table[] = {
        {"recorder", recorder_new},
        {"failing", failing_new},
    };
    struct vm_sinks_config cfg = {0};
    char *err = NULL;
    recorders_freed = 0;
    CHECK(!vm_sinks_new_from(table, (int)VM_ARRAY_LEN(table), &cfg, &err));
    CHECK_STR(err, "cannot start");
    free(err);
    CHECK_INT(recorders_freed, ==, 1); /* the one before was freed */
    /* NULL sinks: every call is a no-op, details are not leaked */
    vm_sinks_trace(NULL, "x", NULL, "ignored", json_object());
    vm_sinks_notice(NULL, "x", "ignored", json_object());
    vm_sinks_free(NULL);
    /* nothing asked for: an empty fan-out */
    struct vm_sinks *ss = vm_sinks_new(&cfg, &err);
    CHECK(ss);
    vm_sinks_trace(ss, NULL, NULL, "run.started", NULL);
    vm_sinks_free(ss);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f);
    char *buf = NULL;
    size_t len = 0;
    CHECK(getdelim(&buf, &len, '\0', f) > 0);
    fclose(f);
    return buf;
}

/* The run's id is the config's from the first record on: the events of two
 * runs appended to one file split by it, every line carrying one, and the
 * status file carries it from its first write, before any record. */
static void test_run_id_from_start(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char dir[] = "/tmp/vmm-test-runid-XXXXXX";
    CHECK(mkdtemp(dir));
    char *events = xasprintf("%s/events.ndjson", dir), *status = xasprintf("%s/status.json", dir);
    const char *ids[] = {"2024-05-01T02-00-03.512Z-41", "2024-05-01T02-00-03.513Z-42"};
    for (int k = 0; k < 2; k++) {
        struct vm_sinks_config cfg = {
            .loop = &loop, .run_id = ids[k], .events_path = events, .status_path = status};
        char *err = NULL;
        struct vm_sinks *ss = vm_sinks_new(&cfg, &err);
        CHECK(ss);
        CHECK_STR(vm_sinks_run_id(ss), ids[k]);
        char *st = read_text(status); /* written at once, no record yet */
        json_t *sj = json_loads(st, 0, NULL);
        CHECK(sj);
        CHECK_STR(json_string_value(json_object_get(json_object_get(sj, "run"), "id")), ids[k]);
        json_decref(sj);
        free(st);
        vm_sinks_trace(ss, NULL, NULL, "run.started", NULL);
        vm_sinks_trace(ss, NULL, "test:///default", "connected", NULL);
        vm_sinks_notice(ss, NULL, "run.finished", NULL); /* not on the stream */
        vm_sinks_trace(ss, NULL, NULL, "run.finished", NULL);
        vm_sinks_finish(ss, &(struct vm_finish_rec){.result = "preflight", .exit_code = 3});
        vm_sinks_free(ss);
    }
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_INT(uv_loop_close(&loop), ==, 0);

    FILE *f = fopen(events, "r");
    CHECK(f);
    char line[4096];
    int per_run[2] = {0, 0}, n = 0;
    while (fgets(line, sizeof(line), f)) {
        json_t *o = json_loads(line, 0, NULL);
        CHECK(o);
        const char *run = json_string_value(json_object_get(o, "run"));
        CHECK(run && *run);
        CHECK(strcmp(run, ids[0]) == 0 || strcmp(run, ids[1]) == 0);
        per_run[strcmp(run, ids[0]) == 0 ? 0 : 1]++;
        CHECK_STR(run, ids[n / 3]); /* appended one run after the other */
        json_decref(o);
        n++;
    }
    fclose(f);
    CHECK_INT(per_run[0], ==, 3);
    CHECK_INT(per_run[1], ==, 3);
    unlink(events);
    unlink(status);
    rmdir(dir);
    free(events);
    free(status);
}

/* The text without the run's times (when each file was started and
 * written): the first line naming key, each. */
static char *without_times(char *text)
{
    const char *keys[] = {"\"started_at\"", "\"updated_at\""};
    for (size_t i = 0; i < VM_ARRAY_LEN(keys); i++) {
        char *a = strstr(text, keys[i]);
        CHECK(a);
        char *b = strchr(a, '\n');
        memmove(a, b + 1, strlen(b + 1) + 1);
    }
    return text;
}

static struct vm_mig *fake_mig(struct vm_virt_host *a, struct vm_virt_host *b, const char *name,
                               enum vm_mig_state st)
{
    struct vm_mig_params params = {.p2p = true};
    static const struct vm_mig_ops ops = {0};
    struct vm_mig *m = vm_mig_new(NULL, name, a, b, &params, &ops, NULL);
    m->state = st;
    m->location = VM_MIG_LOCATION_TARGET;
    m->memory_kib = 65536;
    m->start_mono_ms = 1000;
    m->end_mono_ms = 1377;
    m->start_wall_ms = 1763769600000ULL;
    m->end_wall_ms = 1763769600377ULL;
    m->progress.data_total = 100;
    m->progress.data_processed = 100;
    m->progress.has_downtime = true;
    m->progress.downtime_ms = 42;
    m->phases[m->nphases++] = (struct vm_mig_phase){"migrating", 1763769600001ULL};
    m->gate_reason = xstrdup("every required feature is ready on the target");
    m->gate_commit = true;
    m->attempts = json_pack("[{s:i}]", "attempt", 1);
    return m;
}

static void test_status_records(void)
{
    uv_loop_t loop;
    CHECK_INT(uv_loop_init(&loop), ==, 0);
    struct vm_virt_host *a = vm_virt_host_new(NULL, "qemu:///a", NULL, NULL);
    struct vm_virt_host *b = vm_virt_host_new(NULL, "qemu:///b", NULL, NULL);
    struct vm_mig *migs[2] = {fake_mig(a, b, "web1", VM_MIG_STATE_DONE),
                              fake_mig(a, b, "db\"1", VM_MIG_STATE_MIGRATING)};
    char dir[] = "/tmp/vmm-test-status-XXXXXX";
    CHECK(mkdtemp(dir));
    char *p1 = xasprintf("%s/s1.json", dir), *p2 = xasprintf("%s/s2.json", dir);

    /* fed records one by one */
    struct vm_status *old = vm_status_new(&loop, p1, NULL, "r-1", NULL, 0);
    /* fed records through the fan-out */
    struct vm_sinks_config cfg = {.loop = &loop, .status_path = p2};
    char *err = NULL;
    struct vm_sinks *ss = vm_sinks_new(&cfg, &err);
    CHECK(ss);
    vm_sinks_set_run_id(ss, "r-1");
    for (int i = 0; i < 2; i++) {
        struct vm_state_rec r;
        vm_run_state_of(migs[i], i, &r);
        r.holds_slot = migs[i]->state == VM_MIG_STATE_MIGRATING; /* as run_state() says */
        vm_status_put(old, &r);
        vm_sinks_state(ss, &r);
    }
    vm_status_finish(old, "ok", 0);
    vm_sinks_finish(ss, &(struct vm_finish_rec){.result = "ok", .exit_code = 0});
    char *t1 = read_text(p1), *t2 = read_text(p2);
    CHECK(t1 && t2);
    CHECK_STR(without_times(t2), without_times(t1));
    CHECK_CONTAINS(t1, "\"in_flight\": 1");
    CHECK_CONTAINS(t1, "\"waiting_for\": null");
    CHECK_CONTAINS(t1, "\"not_converging\": false");
    free(t1);
    free(t2);

    /* the metrics text, the same way */
    char *m1 = vm_status_metrics_text(old);
    CHECK_CONTAINS(m1, "vmmigrate_migration_duration_seconds{source=\"qemu:///a\",vm=\"web1\","
                       "result=\"migrated\"} 0.377");
    CHECK_CONTAINS(m1, "vmmigrate_migration_downtime_seconds{source=\"qemu:///a\",vm=\"db\\\"1\"} "
                       "0.042");
    CHECK_CONTAINS(m1, "vmmigrate_retries_total{source=\"qemu:///a\"} 2\n");
    CHECK_CONTAINS(m1, "vmmigrate_in_flight{source=\"qemu:///a\"} 1\n");
    CHECK_CONTAINS(m1, "vmmigrate_run_info{source=\"qemu:///a\",run_id=\"r-1\"} 1\n");
    free(m1);

    vm_status_free(old);
    vm_sinks_free(ss);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
    free(p1);
    free(p2);
    for (int i = 0; i < 2; i++)
        vm_mig_free(migs[i]);
    vm_virt_host_free(a);
    vm_virt_host_free(b);
}

/* Each sample line's series: "name{label,label,...}" with the label names
 * only, sorted as written; its labels' values into *values (one string). */
static char *series_shape(const char *line, char **values)
{
    const char *brace = strchr(line, '{'), *end = strrchr(line, '}');
    CHECK(brace && end && end > brace);
    char *shape = xasprintf("%.*s{", (int)(brace - line), line);
    *values = xstrdup("");
    for (const char *p = brace + 1; p < end;) {
        const char *eq = strchr(p, '=');
        CHECK(eq && eq[1] == '"');
        const char *q = eq + 2;
        while (*q && !(*q == '"' && q[-1] != '\\'))
            q++;
        char *n = xasprintf("%s%s%.*s", shape, shape[strlen(shape) - 1] == '{' ? "" : ",",
                            (int)(eq - p), p);
        free(shape);
        shape = n;
        char *v = xasprintf("%s%.*s;", *values, (int)(q - eq - 2), eq + 2);
        free(*values);
        *values = v;
        p = q + 1;
        if (*p == ',')
            p++;
    }
    char *n = xasprintf("%s}", shape);
    free(shape);
    return n;
}

/* The metric names and their labels are an interface (dashboards, alerts:
 * docs/metrics.md): a rename or a label change fails here, on purpose. */
static void test_metrics_names(void)
{
    static const char *const frozen[] = {
        "vmmigrate_run_info{source,run_id}",
        "vmmigrate_migrations{source,state}",
        "vmmigrate_in_flight{source}",
        "vmmigrate_retries_total{source}",
        "vmmigrate_transferred_bytes_total{source}",
        "vmmigrate_migration_duration_seconds{source,vm,result}",
        "vmmigrate_migration_downtime_seconds{source,vm}",
        "vmmigrate_run_running{source}",
        "vmmigrate_run_exit_code{source}",
        "vmmigrate_run_updated_timestamp_seconds{source}",
    };
    uv_loop_t loop;
    CHECK_INT(uv_loop_init(&loop), ==, 0);
    struct vm_virt_host *a = vm_virt_host_new(NULL, "qemu:///a", NULL, NULL);
    struct vm_virt_host *b = vm_virt_host_new(NULL, "qemu:///b", NULL, NULL);
    struct vm_mig *m = fake_mig(a, b, "web1", VM_MIG_STATE_DONE);
    const char *srcs_a[] = {"qemu:///a"}, *srcs_b[] = {"qemu:///b"};
    char dir[] = "/tmp/vmm-test-metrics-XXXXXX";
    CHECK(mkdtemp(dir));
    char *pa = xasprintf("%s/a.prom", dir), *pb = xasprintf("%s/b.prom", dir);
    /* two drains, one of each source host, as on one node_exporter */
    struct vm_status *sa = vm_status_new(&loop, NULL, pa, "r-a", srcs_a, 1);
    struct vm_status *sb = vm_status_new(&loop, NULL, pb, "r-b", srcs_b, 1);
    struct vm_state_rec r;
    vm_run_state_of(m, 0, &r);
    vm_status_put(sa, &r);
    vm_status_finish(sa, "ok", 0);
    vm_status_finish(sb, "nothing", 8);
    char *ta = vm_status_metrics_text(sa), *tb = vm_status_metrics_text(sb);
    bool seen[VM_ARRAY_LEN(frozen)] = {0};
    json_t *ids = json_object(); /* every series of both files: name{values} */
    const char *texts[] = {ta, tb};
    for (int t = 0; t < 2; t++) {
        char *save = NULL, *copy = xstrdup(texts[t]);
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (line[0] == '#') {
                CHECK(strncmp(line, "# HELP vmmigrate_", 17) == 0 ||
                      strncmp(line, "# TYPE vmmigrate_", 17) == 0);
                if (strncmp(line, "# TYPE ", 7) == 0) {
                    /* counters and only counters end in _total */
                    const char *sp = strchr(line + 7, ' ');
                    bool total = sp - line > 13 && strncmp(sp - 6, "_total", 6) == 0;
                    CHECK_INT(total, ==, strcmp(sp + 1, "counter") == 0);
                }
                continue;
            }
            char *values = NULL, *shape = series_shape(line, &values);
            size_t k = 0;
            while (k < VM_ARRAY_LEN(frozen) && strcmp(frozen[k], shape) != 0)
                k++;
            if (k == VM_ARRAY_LEN(frozen))
                CHECK_FAIL("a series not in the frozen list: %s", line);
            seen[k] = true;
            char *id = xasprintf("%.*s{%s}", (int)(strchr(line, '{') - line), line, values);
            CHECK(!json_object_get(ids, id)); /* no duplicate series, across the two files */
            json_object_set_new(ids, id, json_true());
            free(id);
            free(values);
            free(shape);
        }
        free(copy);
    }
    for (size_t k = 0; k < VM_ARRAY_LEN(frozen); k++)
        if (!seen[k])
            CHECK_FAIL("a frozen series is missing: %s", frozen[k]);
    CHECK_CONTAINS(tb, "vmmigrate_run_exit_code{source=\"qemu:///b\"} 8\n");
    CHECK_CONTAINS(ta, "vmmigrate_run_exit_code{source=\"qemu:///a\"} 0\n");
    CHECK_CONTAINS(ta, "vmmigrate_transferred_bytes_total{source=\"qemu:///a\"} 100\n");
    json_decref(ids);
    free(ta);
    free(tb);
    vm_status_free(sa);
    vm_status_free(sb);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), ==, 0);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
    unlink(pa);
    unlink(pb);
    rmdir(dir);
    free(pa);
    free(pb);
    vm_mig_free(m);
    vm_virt_host_free(a);
    vm_virt_host_free(b);
}

static void setup(void)
{
    vm_virt_global_init();
}

/* A migration's record names its target's hostname and carries its
 * convergence verdict; the meter's and the status file's copies keep them,
 * and what a queued VM waits for. */
static void test_record_fields(void)
{
    struct vm_virt_host *a = vm_virt_host_new(NULL, "qemu:///a", NULL, NULL);
    struct vm_virt_host *b = vm_virt_host_new(NULL, "qemu+ssh://hv13/system", NULL, NULL);
    b->hostname = xstrdup("hv13.example.org");
    struct vm_mig *m = fake_mig(a, b, "web1", VM_MIG_STATE_MIGRATING);
    m->progress.not_converging = true;
    struct vm_state_rec r;
    vm_run_state_of(m, 3, &r);
    CHECK_STR(r.target_host, "hv13.example.org");
    CHECK(r.not_converging);
    CHECK(r.wait_reason == NULL);
    r.wait_reason = "a slot into hv13 (--max-in 1)";
    struct vm_state_table t = {0};
    vm_state_table_put(&t, &r);
    vm_mig_free(m);
    vm_virt_host_free(b);
    CHECK_INT(t.n, ==, 4);
    CHECK_STR(t.v[3].target_host, "hv13.example.org");
    CHECK_STR(t.v[3].wait_reason, "a slot into hv13 (--max-in 1)");
    CHECK(t.v[3].not_converging);
    vm_state_table_clear(&t);
    vm_virt_host_free(a);
}

static const struct vm_test tests[] = {
    VM_TEST(test_order),
    VM_TEST(test_failing_constructor),
    VM_TEST(test_run_id_from_start),
    VM_TEST(test_status_records),
    VM_TEST(test_metrics_names),
    VM_TEST(test_record_fields),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
