/* SPDX-License-Identifier: MIT */
/* status.c — see status.h. */
#include "report/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "util/util.h"

struct vm_status {
    struct vm_sink base; /* the "status" sink */
    uv_loop_t *loop;
    uv_timer_t *timer; /* NULL once closed */
    char *status_path, *metrics_path, *run_id;
    char **sources; /* the run's source URIs (the metrics' source label) */
    int nsources;
    struct vm_state_table vms; /* what is written */
    uint64_t started_wall_ms, last_write_ms;
    bool finished, dirty, warned;
    char *result;
    int exit_code;
};

static const struct vm_sink_ops status_ops;

static void write_now(struct vm_status *s);

static void tick(uv_timer_t *t)
{
    struct vm_status *s = t->data;
    write_now(s);
}

struct vm_status *vm_status_new(uv_loop_t *loop, const char *status_path, const char *metrics_path,
                                const char *run_id, const char *const *sources, int nsources)
{
    if (!status_path && !metrics_path)
        return NULL;
    struct vm_status *s = xcalloc(1, sizeof(*s));
    s->base.ops = &status_ops;
    s->loop = loop;
    s->status_path = status_path ? xstrdup(status_path) : NULL;
    s->metrics_path = metrics_path ? xstrdup(metrics_path) : NULL;
    s->run_id = xstrdup(run_id ? run_id : "");
    vm_status_set_sources(s, sources, nsources);
    s->started_wall_ms = vm_wall_ms();
    s->timer = xmalloc(sizeof(*s->timer));
    uv_timer_init(loop, s->timer);
    s->timer->data = s;
    uv_timer_start(s->timer, tick, 500, 500);
    uv_unref((uv_handle_t *)s->timer); /* never keeps the run alive */
    write_now(s);
    return s;
}

void vm_status_put(struct vm_status *s, const struct vm_state_rec *rec)
{
    if (!s)
        return;
    vm_state_table_put(&s->vms, rec);
    vm_status_touch(s);
}

/* What --parallel limits: a migration holding one of the run's places. */
static bool in_flight(const struct vm_state_rec *r)
{
    return !r->final && r->holds_slot;
}

char *vm_status_json_text(struct vm_status *s)
{
    char ts[32], tu[32];
    json_t *vms = json_array();
    int counts[VM_REC_STATE_COUNT] = {0}, flying = 0, total = 0;
    for (int i = 0; i < s->vms.n; i++) {
        const struct vm_state_rec *r = &s->vms.v[i];
        if (!r->name)
            continue;
        json_t *v = vm_report_vm_json(r);
        json_object_set_new(v, "state", json_string(r->result));
        json_object_set_new(v, "waiting_for",
                            r->wait_reason ? json_string(r->wait_reason) : json_null());
        json_object_set_new(v, "not_converging", json_boolean(r->not_converging));
        json_object_set_new(v, "progress",
                            json_pack("{s:I, s:I, s:I, s:I, s:I}", "data_total",
                                      (json_int_t)r->data_total, "data_processed",
                                      (json_int_t)r->data_processed, "data_remaining",
                                      (json_int_t)r->data_remaining, "iteration",
                                      (json_int_t)r->iteration, "mem_bps", (json_int_t)r->mem_bps));
        json_array_append_new(vms, v);
        if (r->state >= 0 && r->state < VM_REC_STATE_COUNT)
            counts[r->state]++;
        flying += in_flight(r);
        total++;
    }
    json_t *o = json_pack(
        "{s:i, s:{s:s, s:s, s:s, s:s, s:o, s:o}, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}, "
        "s:o}",
        "schema_version", VM_REPORT_SCHEMA_VERSION, "run", "id", s->run_id, "state",
        s->finished ? "finished" : "running", "started_at",
        vm_rfc3339(s->started_wall_ms, ts, sizeof(ts)), "updated_at",
        vm_rfc3339(vm_wall_ms(), tu, sizeof(tu)), "result",
        s->result ? json_string(s->result) : json_null(), "exit_code",
        s->finished ? json_integer(s->exit_code) : json_null(), "summary", "total", total, "queued",
        counts[VM_REC_QUEUED], "in_flight", flying, "migrated", counts[VM_REC_DONE], "failed",
        counts[VM_REC_FAILED], "aborted", counts[VM_REC_ABORTED], "skipped", counts[VM_REC_SKIPPED],
        "rolled_back", counts[VM_REC_ROLLED_BACK], "vms", vms);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(o);
    size_t len = strlen(text);
    text = xrealloc(text, len + 2);
    text[len] = '\n';
    text[len + 1] = '\0';
    return text;
}

/* A label value, escaped for the Prometheus text format. */
static void label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/* What the metrics count, for one source host. */
struct src_counts {
    int states[VM_REC_STATE_COUNT], flying;
    uint64_t bytes;
    size_t retries;
};

static bool of_source(const struct vm_state_rec *r, const char *src)
{
    return r->name && strcmp(r->source ? r->source : "", src) == 0;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `name{source="SRC"` — the caller adds more labels, then `} value`. */
static void series(FILE *f, const char *name, const char *src)
{
    fprintf(f, "%s{source=\"", name);
    label(f, src);
    fputc('"', f);
}

/* The run's sources, and any a VM record names that the run did not
 * (records fed one by one): every series is per source host. */
static int sources_of(struct vm_status *s, const char ***out)
{
    const char **v = xcalloc((size_t)(s->nsources + s->vms.n + 1), sizeof(*v));
    int n = 0;
    for (int i = 0; i < s->nsources; i++)
        v[n++] = s->sources[i];
    for (int i = 0; i < s->vms.n; i++) {
        const char *src = s->vms.v[i].source ? s->vms.v[i].source : "";
        bool seen = false;
        for (int k = 0; k < n && !seen; k++)
            seen = strcmp(v[k], src) == 0;
        if (s->vms.v[i].name && !seen)
            v[n++] = src;
    }
    if (n == 0)
        v[n++] = "";
    *out = v;
    return n;
}

char *vm_status_metrics_text(struct vm_status *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char **srcs;
    int nsrc = sources_of(s, &srcs);
    struct src_counts *c = xcalloc((size_t)nsrc, sizeof(*c));
    for (int k = 0; k < nsrc; k++)
        for (int i = 0; i < s->vms.n; i++) {
            const struct vm_state_rec *r = &s->vms.v[i];
            if (!of_source(r, srcs[k]))
                continue;
            if (r->state >= 0 && r->state < VM_REC_STATE_COUNT)
                c[k].states[r->state]++;
            c[k].retries += json_array_size(r->attempts);
            c[k].flying += in_flight(r);
            c[k].bytes += r->data_processed;
        }

    family(f, "vmmigrate_run_info", "gauge",
           "The run that wrote this file: 1, its id in the run_id label.");
    for (int k = 0; k < nsrc; k++) {
        series(f, "vmmigrate_run_info", srcs[k]);
        fputs(",run_id=\"", f);
        label(f, s->run_id);
        fputs("\"} 1\n", f);
    }
    family(f, "vmmigrate_migrations", "gauge",
           "Migrations of the run from this source host, by state.");
    for (int k = 0; k < nsrc; k++)
        for (int st = 0; st < VM_REC_STATE_COUNT; st++) {
            series(f, "vmmigrate_migrations", srcs[k]);
            fprintf(f, ",state=\"%s\"} %d\n", vm_rec_state_name((enum vm_rec_state)st),
                    c[k].states[st]);
        }
    family(f, "vmmigrate_in_flight", "gauge",
           "Migrations from this source host holding one of the run's --parallel places.");
    for (int k = 0; k < nsrc; k++) {
        series(f, "vmmigrate_in_flight", srcs[k]);
        fprintf(f, "} %d\n", c[k].flying);
    }
    family(f, "vmmigrate_retries_total", "counter",
           "Failed attempts the run started again (--retries), from this source host.");
    for (int k = 0; k < nsrc; k++) {
        series(f, "vmmigrate_retries_total", srcs[k]);
        fprintf(f, "} %zu\n", c[k].retries);
    }
    family(f, "vmmigrate_transferred_bytes_total", "counter",
           "Bytes libvirt sent for the run's migrations from this source host.");
    for (int k = 0; k < nsrc; k++) {
        series(f, "vmmigrate_transferred_bytes_total", srcs[k]);
        fprintf(f, "} %llu\n", (unsigned long long)c[k].bytes);
    }
    family(f, "vmmigrate_migration_duration_seconds", "gauge",
           "Total time of each finished migration.");
    for (int i = 0; i < s->vms.n; i++) {
        const struct vm_state_rec *r = &s->vms.v[i];
        if (!r->name || !r->final || !r->start_mono_ms)
            continue;
        series(f, "vmmigrate_migration_duration_seconds", r->source ? r->source : "");
        fputs(",vm=\"", f);
        label(f, r->name);
        fprintf(f, "\",result=\"%s\"} %.3f\n", r->result,
                (double)(r->end_mono_ms - r->start_mono_ms) / 1000.0);
    }
    family(f, "vmmigrate_migration_downtime_seconds", "gauge",
           "Guest downtime of each finished migration.");
    for (int i = 0; i < s->vms.n; i++) {
        const struct vm_state_rec *r = &s->vms.v[i];
        if (!r->name || !r->has_downtime)
            continue;
        series(f, "vmmigrate_migration_downtime_seconds", r->source ? r->source : "");
        fputs(",vm=\"", f);
        label(f, r->name);
        fprintf(f, "\"} %.3f\n", (double)r->downtime_ms / 1000.0);
    }
    family(f, "vmmigrate_run_running", "gauge", "1 while the run goes on, 0 when it ended.");
    for (int k = 0; k < nsrc; k++) {
        series(f, "vmmigrate_run_running", srcs[k]);
        fprintf(f, "} %d\n", s->finished ? 0 : 1);
    }
    family(f, "vmmigrate_run_exit_code", "gauge",
           "The exit code of the run that ended (-1 while it goes on).");
    for (int k = 0; k < nsrc; k++) {
        series(f, "vmmigrate_run_exit_code", srcs[k]);
        fprintf(f, "} %d\n", s->finished ? s->exit_code : -1);
    }
    family(f, "vmmigrate_run_updated_timestamp_seconds", "gauge",
           "When this file was written (Unix time).");
    for (int k = 0; k < nsrc; k++) {
        series(f, "vmmigrate_run_updated_timestamp_seconds", srcs[k]);
        fprintf(f, "} %.3f\n", (double)vm_wall_ms() / 1000.0);
    }
    free(c);
    free(srcs);
    fclose(f);
    return buf;
}

static void write_one(struct vm_status *s, const char *path, char *text)
{
    if (vm_write_atomic(path, text, strlen(text)) < 0 && !s->warned) {
        s->warned = true;
        vm_warn("cannot write '%s': %s", path, strerror(errno));
    }
    free(text);
}

static void write_now(struct vm_status *s)
{
    if (s->status_path)
        write_one(s, s->status_path, vm_status_json_text(s));
    if (s->metrics_path)
        write_one(s, s->metrics_path, vm_status_metrics_text(s));
    s->last_write_ms = vm_mono_ms();
    s->dirty = false;
}

void vm_status_touch(struct vm_status *s)
{
    if (!s)
        return;
    if (vm_mono_ms() - s->last_write_ms >= 500)
        write_now(s);
    else
        s->dirty = true; /* the timer writes it within 500 ms */
}

void vm_status_finish(struct vm_status *s, const char *result, int exit_code)
{
    if (!s)
        return;
    s->finished = true;
    free(s->result);
    s->result = xstrdup(result);
    s->exit_code = exit_code;
    write_now(s);
}

static void close_timer(struct vm_status *s)
{
    if (!s->timer)
        return;
    uv_close((uv_handle_t *)s->timer, (uv_close_cb)free);
    s->timer = NULL;
}

void vm_status_free(struct vm_status *s)
{
    if (!s)
        return;
    close_timer(s);
    vm_state_table_clear(&s->vms);
    free(s->status_path);
    free(s->metrics_path);
    free(s->run_id);
    free(s->result);
    for (int i = 0; i < s->nsources; i++)
        free(s->sources[i]);
    free(s->sources);
    free(s);
}

void vm_status_set_sources(struct vm_status *s, const char *const *sources, int n)
{
    if (!s)
        return;
    for (int i = 0; i < s->nsources; i++)
        free(s->sources[i]);
    free(s->sources);
    s->sources = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*s->sources));
    s->nsources = n > 0 ? n : 0;
    for (int i = 0; i < s->nsources; i++)
        s->sources[i] = xstrdup(sources[i]);
}

void vm_status_set_run_id(struct vm_status *s, const char *run_id)
{
    if (!s)
        return;
    free(s->run_id);
    s->run_id = xstrdup(run_id);
}

/* ---- as a sink: fed records ------------------------------------------ */

static void take_run_id(struct vm_status *s, const char *run)
{
    if (run && strcmp(run, s->run_id) != 0)
        vm_status_set_run_id(s, run);
}

static void status_on_event(struct vm_sink *sk, const struct vm_event_rec *ev)
{
    take_run_id((struct vm_status *)sk, ev->run);
}

static void status_on_state(struct vm_sink *sk, const struct vm_state_rec *st)
{
    struct vm_status *s = (struct vm_status *)sk;
    take_run_id(s, st->run);
    vm_status_put(s, st);
}

static void status_on_finish(struct vm_sink *sk, const struct vm_finish_rec *fin)
{
    struct vm_status *s = (struct vm_status *)sk;
    take_run_id(s, fin->run);
    vm_status_finish(s, fin->result, fin->exit_code);
    close_timer(s);
}

static void status_free(struct vm_sink *sk)
{
    vm_status_free((struct vm_status *)sk);
}

static const struct vm_sink_ops status_ops = {.name = "status",
                                              .on_event = status_on_event,
                                              .on_state = status_on_state,
                                              .on_finish = status_on_finish,
                                              .free = status_free};

int vm_status_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    (void)err;
    struct vm_status *s = vm_status_new(cfg->loop, cfg->status_path, cfg->metrics_path, cfg->run_id,
                                        cfg->sources, cfg->nsources);
    *out = s ? &s->base : NULL;
    return 0;
}
