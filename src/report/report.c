/* SPDX-License-Identifier: MIT */
/* report.c — see report.h. */
#include "report/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

struct vm_report_stream {
    FILE *f;
    char *path;
};

struct vm_report_stream *vm_report_stream_open(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "ae");
    if (!f) {
        vm_error("run: --events: cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct vm_report_stream *s = xcalloc(1, sizeof(*s));
    s->f = f;
    s->path = xstrdup(path);
    return s;
}

void vm_report_event(struct vm_report_stream *s, const char *run, const char *vm,
                     const char *host, const char *event, json_t *details)
{
    if (!s) {
        json_decref(details);
        return;
    }
    char ts[32];
    uint64_t now = vm_wall_ms();
    json_t *o = json_pack("{s:i, s:s, s:I, s:s, s:o, s:o, s:s, s:o}", "schema_version",
                          VM_REPORT_SCHEMA_VERSION, "time", vm_rfc3339(now, ts, sizeof(ts)),
                          "ts_ms", (json_int_t)now, "run", run ? run : "", "vm",
                          vm ? json_string(vm) : json_null(),
                          "host", host ? json_string(host) : json_null(), "event", event, "details",
                          details ? details : json_object());
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (line) {
        fputs(line, s->f);
        fputc('\n', s->f);
        fflush(s->f);
        free(line);
    }
}

void vm_report_stream_close(struct vm_report_stream *s)
{
    if (!s)
        return;
    if (s->f != stdout) {
        if (fclose(s->f) != 0)
            vm_error("--events: error writing '%s': %s", s->path, strerror(errno));
    } else {
        fflush(s->f);
    }
    free(s->path);
    free(s);
}

static json_t *time_or_null(uint64_t wall_ms)
{
    char ts[32];
    return wall_ms ? json_string(vm_rfc3339(wall_ms, ts, sizeof(ts))) : json_null();
}

json_t *vm_report_vm_json(const struct vm_state_rec *r)
{
    json_t *phases = json_array();
    for (int i = 0; i < r->nphases; i++)
        json_array_append_new(phases, json_pack("{s:s, s:o}", "phase", r->phases[i].name, "at",
                                                time_or_null(r->phases[i].wall_ms)));
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "uuid", r->uuid && r->uuid[0] ? json_string(r->uuid) : json_null());
    json_object_set_new(o, "result", json_string(r->result));
    json_object_set_new(o, "location", json_string(r->location));
    json_object_set_new(o, "source", json_string(r->source));
    json_object_set_new(o, "target", json_string(r->target));
    json_object_set_new(o, "memory_bytes", json_integer((json_int_t)r->memory_bytes));
    json_object_set_new(o, "started_at", time_or_null(r->start_wall_ms));
    json_object_set_new(o, "finished_at", time_or_null(r->end_wall_ms));
    json_object_set_new(o, "total_ms",
                        r->start_mono_ms && r->end_mono_ms
                            ? json_integer((json_int_t)(r->end_mono_ms - r->start_mono_ms))
                            : json_null());
    json_object_set_new(o, "downtime_ms",
                        r->has_downtime ? json_integer((json_int_t)r->downtime_ms) : json_null());
    json_object_set_new(o, "bytes",
                        json_pack("{s:I, s:I, s:I}", "total", (json_int_t)r->data_total,
                                  "transferred", (json_int_t)r->data_processed, "remaining",
                                  (json_int_t)r->data_remaining));
    json_object_set_new(o, "iterations", json_integer((json_int_t)r->iteration));
    json_object_set_new(o, "postcopy", json_boolean(r->postcopy));
    if (r->attempts)
        json_object_set(o, "attempts", (json_t *)r->attempts);
    json_object_set_new(o, "timeout_action",
                        r->timeout_action ? json_string(r->timeout_action) : json_null());
    json_object_set_new(o, "abort_reason",
                        r->abort_reason ? json_string(r->abort_reason) : json_null());
    json_object_set_new(o, "gated", json_boolean(r->gated));
    json_object_set_new(o, "gate",
                        r->gate_reason
                            ? json_pack("{s:s, s:s, s:I}", "decision",
                                        r->gate_commit ? "commit" : "rollback", "reason",
                                        r->gate_reason, "held_ms", (json_int_t)r->gate_ms)
                            : json_null());
    json_object_set_new(o, "phases", phases);
    if (r->error_message)
        json_object_set_new(o, "error",
                            json_pack("{s:i, s:s, s:i, s:s}", "code", r->error_code, "name",
                                      r->error_name, "domain", r->error_domain, "message",
                                      r->error_message));
    else
        json_object_set_new(o, "error", json_null());
    return o;
}

json_t *vm_report_run_json_recs(const struct vm_report_run *run, const struct vm_state_rec *recs,
                                int n)
{
    json_t *vms = json_array();
    int counts[VM_REC_STATE_COUNT] = {0}, total = 0;
    for (int i = 0; i < n; i++) {
        if (!recs[i].name)
            continue;
        json_array_append_new(vms, vm_report_vm_json(&recs[i]));
        if (recs[i].state >= 0 && recs[i].state < VM_REC_STATE_COUNT)
            counts[recs[i].state]++;
        total++;
    }
    json_t *o = json_object();
    json_object_set_new(o, "schema_version", json_integer(VM_REPORT_SCHEMA_VERSION));
    json_object_set_new(o, "tool",
                        json_pack("{s:s, s:s}", "name", "vmmigrate", "version", VMM_VERSION));
    json_object_set_new(o, "command", json_string(run->command));
    json_object_set_new(o, "run", json_string(run->run ? run->run : ""));
    json_object_set_new(o, "result", json_string(run->result));
    json_object_set_new(o, "exit_code", json_integer(run->exit_code));
    json_object_set_new(o, "started_at", time_or_null(run->started_wall_ms));
    json_object_set_new(o, "finished_at", time_or_null(run->finished_wall_ms));
    json_object_set_new(o, "duration_ms",
                        json_integer((json_int_t)(run->finished_wall_ms - run->started_wall_ms)));
    json_object_set_new(o, "source",
                        json_pack("{s:s, s:o}", "uri", run->source_uri, "hostname",
                                  run->source_host ? json_string(run->source_host) : json_null()));
    json_object_set_new(o, "target",
                        json_pack("{s:s, s:o}", "uri", run->target_uri, "hostname",
                                  run->target_host ? json_string(run->target_host) : json_null()));
    json_object_set_new(o, "options", run->options ? json_incref(run->options) : json_object());
    json_object_set_new(o, "summary",
                        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "total", total, "migrated",
                                  counts[VM_REC_DONE], "failed", counts[VM_REC_FAILED], "aborted",
                                  counts[VM_REC_ABORTED], "skipped", counts[VM_REC_SKIPPED],
                                  "rolled_back", counts[VM_REC_ROLLED_BACK]));
    json_object_set_new(o, "error", run->error ? json_string(run->error) : json_null());
    json_object_set_new(o, "vms", vms);
    return o;
}

void vm_report_print(json_t *report)
{
    json_dumpf(report, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    fflush(stdout);
}

/* ---- the event stream and the printed report, as sinks --------------- */

struct events_sink {
    struct vm_sink base;
    struct vm_report_stream *stream;
};

static void events_on_event(struct vm_sink *s, const struct vm_event_rec *ev)
{
    struct events_sink *es = (struct events_sink *)s;
    if (ev->cls == VM_EVENT_CLASS_TRACE)
        vm_report_event(es->stream, ev->run, ev->vm, ev->host, ev->event,
                        ev->details ? json_incref((json_t *)ev->details) : NULL);
}

static void events_free(struct vm_sink *s)
{
    struct events_sink *es = (struct events_sink *)s;
    if (!es)
        return;
    vm_report_stream_close(es->stream);
    free(es);
}

static const struct vm_sink_ops events_ops = {
    .name = "events", .on_event = events_on_event, .free = events_free};

int vm_report_events_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    *out = NULL;
    if (!cfg->events_path)
        return 0;
    struct vm_report_stream *stream = vm_report_stream_open(cfg->events_path);
    if (!stream) {
        *err = NULL; /* logged, naming the path */
        return -1;
    }
    struct events_sink *es = xcalloc(1, sizeof(*es));
    es->base.ops = &events_ops;
    es->stream = stream;
    *out = &es->base;
    return 0;
}

static void print_on_finish(struct vm_sink *s, const struct vm_finish_rec *fin)
{
    (void)s;
    if (fin->report)
        vm_report_print((json_t *)fin->report);
}

static const struct vm_sink_ops print_ops = {
    .name = "report", .on_finish = print_on_finish, .free = (void (*)(struct vm_sink *))free};

int vm_report_print_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    (void)err;
    *out = NULL;
    if (!cfg->print_report)
        return 0;
    struct vm_sink *s = xcalloc(1, sizeof(*s));
    s->ops = &print_ops;
    *out = s;
    return 0;
}
