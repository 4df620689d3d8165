/* SPDX-License-Identifier: MIT */
/* sink.h — the one interface every output of a run implements: the NDJSON
 * event stream, the status file, the metrics file, the webhooks, the
 * progress meter and the printed report.
 *
 * Sinks are fed plain records (names, phases, numbers, JSON payloads), never
 * the live state machines: whatever a record points to is borrowed for the
 * duration of the call, and a sink that keeps something copies it
 * (vm_state_rec_copy). A sink's ops may be NULL when it has nothing to do
 * with that kind of record.
 *
 * The table of sinks and the fan-out that feeds every active one live in
 * sinks.c (sinks.h). A new sink = its own file + one line in that table. */
#ifndef VMM_SINK_H
#define VMM_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

/* Who an event is for. */
enum vm_event_class {
    VM_EVENT_CLASS_TRACE,  /* what happened, for the record: the NDJSON stream */
    VM_EVENT_CLASS_NOTICE, /* what someone should hear of: the webhooks */
};

/* Something happened. */
struct vm_event_rec {
    enum vm_event_class cls;
    const char *run;       /* the run's id (stamped by the fan-out) */
    const char *vm, *host; /* may be NULL */
    const char *event;     /* "phase", "feature", "vm.failed", ... */
    const json_t *details; /* NULL = {} */
};

/* Where a VM's attempt stands: the states the outputs count and name (the
 * metrics list every one of them, in this order). The run makes records
 * from its migrations: enum vm_mig_state (migrate/mig.h) has the same
 * values (run/run_records.c checks them) and names (test_report). */
enum vm_rec_state {
    VM_REC_QUEUED,
    VM_REC_STARTING,
    VM_REC_MIGRATING,
    VM_REC_GATE,
    VM_REC_VERIFYING,
    /* final states from here on */
    VM_REC_DONE,
    VM_REC_FAILED,
    VM_REC_ABORTED,
    VM_REC_SKIPPED,
    VM_REC_ROLLED_BACK,
    VM_REC_STATE_COUNT,
};

/* "queued", ..., "migrated", ..., "rolled-back"; "unknown" out of range. */
const char *vm_rec_state_name(enum vm_rec_state s);

#define VM_STATE_REC_PHASES 16

/* Where one VM stands now: everything the report, the status file, the
 * metrics and the meter show of it. */
struct vm_state_rec {
    int index;                   /* the VM's place in the run, stable across retries */
    const char *run;             /* stamped by the fan-out, like vm_event_rec.run */
    const char *name;            /* the domain's name */
    const char *uuid;            /* "" when unknown */
    int state;                   /* an enum vm_rec_state value */
    const char *result;          /* its name: "queued", "migrating", ..., "done" */
    const char *location;        /* "source", "target", "unknown" */
    bool final;                  /* the attempt is over */
    bool holds_slot;             /* counts against --parallel now (the budgets, run/budget.h) */
    const char *source, *target; /* URIs */
    const char *target_host;     /* the target's hostname (libvirt's), NULL when unknown */
    const char *wait_reason;     /* queued: what it waits for now ("a slot into hv13
                                    (--max-in 1)"), NULL when nothing (or not queued) */
    uint64_t memory_bytes;
    uint64_t start_wall_ms, end_wall_ms; /* 0 = not yet */
    uint64_t start_mono_ms, end_mono_ms; /* 0 = not yet */
    bool has_downtime;
    uint64_t downtime_ms;
    uint64_t data_total, data_processed, data_remaining, iteration, mem_bps;
    bool postcopy;
    bool not_converging;        /* pre-copy: the dirty rate keeps up (migrate/converge.h) */
    const json_t *attempts;     /* earlier attempts [{...}], or NULL */
    const char *timeout_action; /* or NULL */
    const char *abort_reason;   /* or NULL */
    bool gated;
    const char *gate_reason; /* NULL until the gate decided */
    bool gate_commit;
    uint64_t gate_ms;
    struct {
        const char *name;
        uint64_t wall_ms;
    } phases[VM_STATE_REC_PHASES];
    int nphases;
    const char *error_message; /* NULL when no error */
    const char *error_name;    /* "VIR_ERR_..." */
    int error_code, error_domain;
};

/* The run ended. */
struct vm_finish_rec {
    const char *run;
    const char *result; /* "ok", "failed", ... */
    int exit_code;
    const char *why;      /* what made the exit code beyond the VMs' results and the
                             report's error, in a sentence; NULL if nothing */
    const json_t *report; /* the final report (may be NULL) */
};

struct vm_sink;

struct vm_sink_ops {
    const char *name;
    void (*on_event)(struct vm_sink *s, const struct vm_event_rec *ev);
    void (*on_state)(struct vm_sink *s, const struct vm_state_rec *st);
    /* the last record: write what is left, stop timers, let go of the
     * terminal; the sink is freed afterwards */
    void (*on_finish)(struct vm_sink *s, const struct vm_finish_rec *fin);
    void (*free)(struct vm_sink *s);
};

/* The head of every sink's own struct. */
struct vm_sink {
    const struct vm_sink_ops *ops;
};

/* What the run asked for: each sink's constructor reads its part. Strings
 * are borrowed for the constructor's call. */
struct vm_sinks_config {
    uv_loop_t *loop;
    const char *run_id;         /* the run's, from its start (journal.h's form); NULL = "" */
    const char *events_path;    /* --events (NDJSON; "-" = stdout) */
    const char *status_path;    /* --status-file */
    const char *metrics_path;   /* --metrics-file */
    const char *const *sources; /* the run's source URIs: each series' source label */
    int nsources;
    const char *const *notify_urls; /* --notify */
    int nnotify;
    const char *notify_token_file; /* --notify-token-file */
    uint64_t notify_grace_ms;      /* what webhooks still get at the end */
    bool progress;                 /* the meter (drawn only on a TTY) */
    bool print_report;             /* --json: print the report on stdout */
};

/* A sink's constructor: 0 with *out (NULL when the config does not ask for
 * it), or -1 with *err (owned by the caller; NULL when the reason was
 * logged already). A function type: a sink's file may declare its own
 * constructor with it (`vm_sink_new_fn vm_foo_sink_new;`). */
typedef int vm_sink_new_fn(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err);

/* A table of records kept by VM index (the status file, the meter). */
struct vm_state_table {
    struct vm_state_rec *v; /* deep copies, owned */
    int n, cap;
};

/* Copy (deeply) rec into t at rec->index, replacing what was there. */
void vm_state_table_put(struct vm_state_table *t, const struct vm_state_rec *rec);
void vm_state_table_clear(struct vm_state_table *t);

#endif
