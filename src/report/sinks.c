/* SPDX-License-Identifier: MIT */
/* sinks.c — see sinks.h. */
#include "report/sinks.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* Every output of a run, in the order they are started and hear of
 * things (--events first: when it cannot be opened, no other file has been
 * written). A new sink: its own file with a constructor, and one line here. */
#define VM_SINKS_BUILTIN(X)                                                                        \
    X("events", vm_report_events_sink_new) /* --events */                                          \
    X("status", vm_status_sink_new)        /* --status-file, --metrics-file */                     \
    X("webhooks", vm_notify_sink_new)      /* --notify */                                          \
    X("progress", vm_progress_sink_new)    /* the meter on a terminal */                           \
    X("report", vm_report_print_sink_new)  /* --json */

#define DECLARE(name, fn) vm_sink_new_fn fn;
#define ENTRY(name, fn) {name, fn},
VM_SINKS_BUILTIN(DECLARE)
const struct vm_sink_entry vm_sinks_builtin[] = {VM_SINKS_BUILTIN(ENTRY)};
const int vm_sinks_nbuiltin = (int)VM_ARRAY_LEN(vm_sinks_builtin);

struct vm_sinks {
    struct vm_sink **v;
    int n;
    char *run_id;
};

struct vm_sinks *vm_sinks_new_from(const struct vm_sink_entry *table, int n,
                                   const struct vm_sinks_config *cfg, char **err)
{
    *err = NULL;
    struct vm_sinks *ss = xcalloc(1, sizeof(*ss));
    ss->v = xcalloc(n ? (size_t)n : 1, sizeof(*ss->v));
    ss->run_id = xstrdup(cfg->run_id ? cfg->run_id : "");
    for (int i = 0; i < n; i++) {
        struct vm_sink *s = NULL;
        if (table[i].create(cfg, &s, err) < 0) {
            vm_sinks_free(ss);
            return NULL;
        }
        if (s)
            ss->v[ss->n++] = s;
    }
    return ss;
}

struct vm_sinks *vm_sinks_new(const struct vm_sinks_config *cfg, char **err)
{
    return vm_sinks_new_from(vm_sinks_builtin, vm_sinks_nbuiltin, cfg, err);
}

void vm_sinks_set_run_id(struct vm_sinks *ss, const char *run_id)
{
    if (!ss)
        return;
    free(ss->run_id);
    ss->run_id = xstrdup(run_id ? run_id : "");
}

const char *vm_sinks_run_id(const struct vm_sinks *ss)
{
    return ss ? ss->run_id : "";
}

void vm_sinks_event(struct vm_sinks *ss, const struct vm_event_rec *rec)
{
    if (!ss)
        return;
    struct vm_event_rec r = *rec;
    r.run = ss->run_id;
    for (int i = 0; i < ss->n; i++)
        if (ss->v[i]->ops->on_event)
            ss->v[i]->ops->on_event(ss->v[i], &r);
}

void vm_sinks_state(struct vm_sinks *ss, const struct vm_state_rec *rec)
{
    if (!ss)
        return;
    struct vm_state_rec r = *rec;
    r.run = ss->run_id;
    for (int i = 0; i < ss->n; i++)
        if (ss->v[i]->ops->on_state)
            ss->v[i]->ops->on_state(ss->v[i], &r);
}

void vm_sinks_finish(struct vm_sinks *ss, const struct vm_finish_rec *rec)
{
    if (!ss)
        return;
    struct vm_finish_rec r = *rec;
    r.run = ss->run_id;
    for (int i = 0; i < ss->n; i++)
        if (ss->v[i]->ops->on_finish)
            ss->v[i]->ops->on_finish(ss->v[i], &r);
}

static void emit(struct vm_sinks *ss, enum vm_event_class cls, const char *vm, const char *host,
                 const char *event, json_t *details)
{
    struct vm_event_rec r = {
        .cls = cls, .vm = vm, .host = host, .event = event, .details = details};
    vm_sinks_event(ss, &r);
    json_decref(details);
}

void vm_sinks_trace(struct vm_sinks *ss, const char *vm, const char *host, const char *event,
                    json_t *details)
{
    emit(ss, VM_EVENT_CLASS_TRACE, vm, host, event, details);
}

void vm_sinks_notice(struct vm_sinks *ss, const char *vm, const char *event, json_t *details)
{
    emit(ss, VM_EVENT_CLASS_NOTICE, vm, NULL, event, details);
}

void vm_sinks_free(struct vm_sinks *ss)
{
    if (!ss)
        return;
    for (int i = 0; i < ss->n; i++)
        ss->v[i]->ops->free(ss->v[i]);
    free(ss->v);
    free(ss->run_id);
    free(ss);
}

/* ---- records kept by index ------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void rec_clear(struct vm_state_rec *r)
{
    free((char *)r->name);
    free((char *)r->uuid);
    free((char *)r->result);
    free((char *)r->location);
    free((char *)r->source);
    free((char *)r->target);
    free((char *)r->target_host);
    free((char *)r->wait_reason);
    json_decref((json_t *)r->attempts);
    free((char *)r->timeout_action);
    free((char *)r->abort_reason);
    free((char *)r->gate_reason);
    for (int i = 0; i < r->nphases; i++)
        free((char *)r->phases[i].name);
    free((char *)r->error_message);
    free((char *)r->error_name);
    free((char *)r->run);
    memset(r, 0, sizeof(*r));
}

const char *vm_rec_state_name(enum vm_rec_state s)
{
    static const char *const names[] = {"queued",    "starting",   "migrating", "gate",
                                        "verifying", "migrated",   "failed",    "aborted",
                                        "skipped",   "rolled-back"};
    return (size_t)s < VM_ARRAY_LEN(names) ? names[s] : "unknown";
}

void vm_state_table_put(struct vm_state_table *t, const struct vm_state_rec *rec)
{
    if (rec->index < 0)
        return;
    if (rec->index >= t->cap) {
        int cap = t->cap ? t->cap : 8;
        while (cap <= rec->index)
            cap *= 2;
        t->v = xrealloc(t->v, (size_t)cap * sizeof(*t->v));
        memset(t->v + t->cap, 0, (size_t)(cap - t->cap) * sizeof(*t->v));
        t->cap = cap;
    }
    if (rec->index >= t->n)
        t->n = rec->index + 1;
    struct vm_state_rec *d = &t->v[rec->index];
    rec_clear(d);
    *d = *rec;
    d->run = dup_or_null(rec->run);
    d->name = dup_or_null(rec->name);
    d->uuid = dup_or_null(rec->uuid);
    d->result = dup_or_null(rec->result);
    d->location = dup_or_null(rec->location);
    d->source = dup_or_null(rec->source);
    d->target = dup_or_null(rec->target);
    d->target_host = dup_or_null(rec->target_host);
    d->wait_reason = dup_or_null(rec->wait_reason);
    d->attempts = rec->attempts ? json_deep_copy(rec->attempts) : NULL;
    d->timeout_action = dup_or_null(rec->timeout_action);
    d->abort_reason = dup_or_null(rec->abort_reason);
    d->gate_reason = dup_or_null(rec->gate_reason);
    for (int i = 0; i < rec->nphases; i++)
        d->phases[i].name = dup_or_null(rec->phases[i].name);
    d->error_message = dup_or_null(rec->error_message);
    d->error_name = dup_or_null(rec->error_name);
}

void vm_state_table_clear(struct vm_state_table *t)
{
    for (int i = 0; i < t->n; i++)
        rec_clear(&t->v[i]);
    free(t->v);
    memset(t, 0, sizeof(*t));
}
