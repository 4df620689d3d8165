/* SPDX-License-Identifier: MIT */
/* report.h — machine-readable output: the final JSON report and the NDJSON
 * event stream. Both are versioned public interfaces, described by
 * schema/report.schema.json and schema/event.schema.json; fields may be
 * added, never renamed or removed, without bumping VM_REPORT_SCHEMA_VERSION.
 *
 * A `struct vm_report_stream` owns its FILE (unless it is stdout) and is
 * freed by vm_report_stream_close(). JSON values passed in are stolen. */
#ifndef VMM_REPORT_H
#define VMM_REPORT_H

#include <jansson.h>
#include <stdint.h>

#include "report/sink.h"

#define VM_REPORT_SCHEMA_VERSION 1

struct vm_report_stream;

/* Open FILE for appending ("-" = stdout). NULL on error, with the reason
 * logged naming the path. */
struct vm_report_stream *vm_report_stream_open(const char *path);
/* Write one event line: time, the run's id (NULL = ""), vm (may be NULL),
 * host (may be NULL), event name, details (stolen; NULL = {}). Flushed at
 * once so `tail -f` and dashboards see it. No-op on a NULL stream. */
void vm_report_event(struct vm_report_stream *s, const char *run, const char *vm,
                     const char *host, const char *event, json_t *details);
void vm_report_stream_close(struct vm_report_stream *s);

/* The run-level facts of the final report. */
struct vm_report_run {
    const char *command;
    const char *run; /* the run's id (sink.h) */
    const char *source_uri, *target_uri;
    const char *source_host, *target_host; /* hostnames, NULL if not connected */
    uint64_t started_wall_ms, finished_wall_ms;
    int exit_code;
    const char *result; /* "ok", "failed", "preflight", "unreachable", "interrupted", ... */
    const char *error;  /* run-level error message, or NULL */
    json_t *options;    /* borrowed */
};

/* One VM's entry of the report, from its record (the run makes records
 * from its migrations: run/run_records.h). */
json_t *vm_report_vm_json(const struct vm_state_rec *r);
/* The whole report, from the VMs' records (entries without a name are
 * skipped); NULL recs when n == 0. */
json_t *vm_report_run_json_recs(const struct vm_report_run *run, const struct vm_state_rec *recs,
                                int n);
/* Print a JSON value on stdout, indented, newline-terminated. */
void vm_report_print(json_t *report);

/* The sinks of this file (sinks.c's table): "events" writes trace events to
 * cfg->events_path; "report" prints the finish record's report (--json). */
int vm_report_events_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err);
int vm_report_print_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err);

#endif
