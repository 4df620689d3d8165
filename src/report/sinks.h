/* SPDX-License-Identifier: MIT */
/* sinks.h — the fan-out: one table of sink constructors (sinks.c), and
 * the calls a run makes to feed every active sink, in table order.
 *
 * The run owns the `struct vm_sinks`: vm_sinks_finish() once at the end
 * (handles close asynchronously: the loop must run afterwards), then
 * vm_sinks_free(). All calls accept NULL sinks. */
#ifndef VMM_SINKS_H
#define VMM_SINKS_H

#include "report/sink.h"

/* One line of a sink table. */
struct vm_sink_entry {
    const char *name;
    vm_sink_new_fn *create;
};

/* The built-in table. */
extern const struct vm_sink_entry vm_sinks_builtin[];
extern const int vm_sinks_nbuiltin;

struct vm_sinks;

/* Every sink of the built-in table the config asks for. NULL with *err
 * (owned by the caller) when one of them cannot start; none is left open. */
struct vm_sinks *vm_sinks_new(const struct vm_sinks_config *cfg, char **err);
/* The same from another table (tests). */
struct vm_sinks *vm_sinks_new_from(const struct vm_sink_entry *table, int n,
                                   const struct vm_sinks_config *cfg, char **err);

/* The run's id (cfg->run_id from the start), stamped on every record;
 * set: another from now on. */
void vm_sinks_set_run_id(struct vm_sinks *ss, const char *run_id);
const char *vm_sinks_run_id(const struct vm_sinks *ss);

/* Feed a record to every sink (rec->run is stamped; the record is
 * borrowed). */
void vm_sinks_event(struct vm_sinks *ss, const struct vm_event_rec *rec);
void vm_sinks_state(struct vm_sinks *ss, const struct vm_state_rec *rec);
void vm_sinks_finish(struct vm_sinks *ss, const struct vm_finish_rec *rec);

/* Shorthands: a trace event (the NDJSON stream) or a notice (webhooks);
 * details are stolen (NULL = {}). */
void vm_sinks_trace(struct vm_sinks *ss, const char *vm, const char *host, const char *event,
                    json_t *details);
void vm_sinks_notice(struct vm_sinks *ss, const char *vm, const char *event, json_t *details);

void vm_sinks_free(struct vm_sinks *ss);

#endif
