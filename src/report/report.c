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

void vm_report_event(struct vm_report_stream *s, const char *vm, const char *host,
                     const char *event, json_t *details)
{
    if (!s) {
        json_decref(details);
        return;
    }
    char ts[32];
    uint64_t now = vm_wall_ms();
    json_t *o = json_pack("{s:i, s:s, s:I, s:o, s:o, s:s, s:o}", "schema_version",
                          VM_REPORT_SCHEMA_VERSION, "time", vm_rfc3339(now, ts, sizeof(ts)),
                          "ts_ms", (json_int_t)now, "vm", vm ? json_string(vm) : json_null(),
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

json_t *vm_report_mig_json(const struct vm_mig *m)
{
    json_t *phases = json_array();
    for (int i = 0; i < m->nphases; i++)
        json_array_append_new(phases, json_pack("{s:s, s:o}", "phase", m->phases[i].name, "at",
                                                time_or_null(m->phases[i].wall_ms)));
    const struct vm_mig_progress *p = &m->progress;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "uuid", m->uuid[0] ? json_string(m->uuid) : json_null());
    json_object_set_new(o, "result", json_string(vm_mig_state_name(m->state)));
    json_object_set_new(o, "location", json_string(vm_mig_location_name(m->location)));
    json_object_set_new(o, "source", json_string(m->src->uri));
    json_object_set_new(o, "target", json_string(m->dst->uri));
    json_object_set_new(o, "memory_bytes", json_integer((json_int_t)m->memory_kib * 1024));
    json_object_set_new(o, "started_at", time_or_null(m->start_wall_ms));
    json_object_set_new(o, "finished_at", time_or_null(m->end_wall_ms));
    json_object_set_new(o, "total_ms",
                        m->start_mono_ms && m->end_mono_ms
                            ? json_integer((json_int_t)(m->end_mono_ms - m->start_mono_ms))
                            : json_null());
    json_object_set_new(o, "downtime_ms",
                        p->has_downtime ? json_integer((json_int_t)p->downtime_ms) : json_null());
    json_object_set_new(o, "bytes",
                        json_pack("{s:I, s:I, s:I}", "total", (json_int_t)p->data_total,
                                  "transferred", (json_int_t)p->data_processed, "remaining",
                                  (json_int_t)p->data_remaining));
    json_object_set_new(o, "iterations", json_integer((json_int_t)p->iteration));
    json_object_set_new(o, "postcopy", json_boolean(p->postcopy_active));
    if (m->attempts)
        json_object_set(o, "attempts", m->attempts);
    json_object_set_new(o, "timeout_action",
                        m->timeout_taken ? json_string(m->timeout_taken) : json_null());
    json_object_set_new(o, "abort_reason",
                        m->abort_reason ? json_string(m->abort_reason) : json_null());
    json_object_set_new(o, "gated", json_boolean(m->gated));
    json_object_set_new(o, "gate",
                        m->gate_reason
                            ? json_pack("{s:s, s:s, s:I}", "decision",
                                        m->gate_commit ? "commit" : "rollback", "reason",
                                        m->gate_reason, "held_ms", (json_int_t)m->gate_ms)
                            : json_null());
    json_object_set_new(o, "phases", phases);
    if (m->err.message)
        json_object_set_new(o, "error",
                            json_pack("{s:i, s:s, s:i, s:s}", "code", m->err.code, "name",
                                      vm_virt_err_name(m->err.code), "domain", m->err.domain,
                                      "message", m->err.message));
    else
        json_object_set_new(o, "error", json_null());
    return o;
}

json_t *vm_report_run_json(const struct vm_report_run *run, struct vm_mig *const *migs, int n)
{
    json_t *vms = json_array();
    int counts[VM_MIG_STATE_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        json_array_append_new(vms, vm_report_mig_json(migs[i]));
        counts[migs[i]->state]++;
    }
    json_t *o = json_object();
    json_object_set_new(o, "schema_version", json_integer(VM_REPORT_SCHEMA_VERSION));
    json_object_set_new(o, "tool",
                        json_pack("{s:s, s:s}", "name", "vmmigrate", "version", VMM_VERSION));
    json_object_set_new(o, "command", json_string(run->command));
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
                        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "total", n, "migrated",
                                  counts[VM_MIG_STATE_DONE], "failed", counts[VM_MIG_STATE_FAILED],
                                  "aborted", counts[VM_MIG_STATE_ABORTED], "skipped",
                                  counts[VM_MIG_STATE_SKIPPED], "rolled_back",
                                  counts[VM_MIG_STATE_ROLLED_BACK]));
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
