/* SPDX-License-Identifier: MIT */
/* journal.h — the run's append-only journal: the durable record of what each
 * migration did, written before it is done where that matters.
 *
 * One file per run, <dir>/<run-id>.ndjson (the id the run made at its start,
 * vm_journal_new_run_id: its events, report and status file carry it too),
 * one JSON object per line:
 *   {"ts": ms, "run": id, "vm": name, "uuid": ..., "source": uri,
 *    "target": uri, "record": R, ...}
 * with R one of started (a network-critical migration with features adds
 * its "decision" and "inventory": what a later run needs to undo them),
 * gate-reached, commit-decided, rollback-decided, finished (with "result"
 * and "location"), deinit-done and after-done (the features' deinit or
 * after steps ran: "ok", "features"). Records about an earlier run carry
 * "of_run": recovered (recover.c), deinit-done and after-done (owed.c).
 * Records that decide where a guest runs (commit-decided, rollback-decided)
 * are fsync'd before the decision is carried out; so is every other record
 * (a run writes a few per VM). `vmmigrate recover` reads the journals to
 * find migrations a crash left half-done (recover.c), `vmmigrate status` to
 * show the runs (cmd_status.c): both through the one record parser below
 * (vm_journal_read, vm_journal_read_dir). A `struct vm_journal` owns its
 * file.
 *
 * Every record carries "crc": the CRC-32 (IEEE 802.3, as zlib's crc32) of
 * the record's canonical JSON without it (compact, keys sorted, as written),
 * eight lower-case hex digits. The parser checks it; records without one
 * (written by older builds) are read as they are. Reading a journal skips,
 * and names (file:line, why), every line that is not a whole record of the
 * run the file is named after: torn or garbage lines, records whose
 * checksum does not match, records of another run. A journal whose first
 * line cannot be read, or with a line that cannot be read before its last
 * (a crash tears only the line it was writing, and a record is fsync'd
 * before it is acted on), may hide an open migration: its readers say so.
 *
 * A record that cannot be written whole is cut off again (no torn line is
 * left where ftruncate can help); a journal whose first record fails is
 * removed, and takes no more records: the run that opened it has done
 * nothing yet and must start nothing (run/sched.c). */
#ifndef VMM_JOURNAL_H
#define VMM_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>

#define VM_JOURNAL_DEFAULT_DIR "/var/lib/vmmigrate/journal"

struct vm_journal;

/* A run's id: the wall-clock time as RFC 3339 with '-' for ':', then the
 * process's PID ("2024-05-01T02-00-03.512Z-4242"; recover.c reads the PID
 * back). Unique in the process: an id is never made twice of one
 * millisecond (a later one takes the next). A run makes its id at its start
 * and names its journal after it (vm_journal_open_as), so that its events,
 * report and status file carry the id before the journal exists. */
#define VM_JOURNAL_RUN_ID_SIZE 64
void vm_journal_new_run_id(char out[VM_JOURNAL_RUN_ID_SIZE]);
/* Create DIR if needed and open a new journal, named after a new run id
 * (vm_journal_open) or RUN_ID (the run's, made by vm_journal_new_run_id);
 * NULL with the reason logged. */
struct vm_journal *vm_journal_open(const char *dir);
struct vm_journal *vm_journal_open_as(const char *dir, const char *run_id);
/* The same, created only with its first record (then DIR too; a journal
 * that cannot be created fails that write, logged): recover's, which may
 * have nothing to say. Never NULL. */
struct vm_journal *vm_journal_new(const char *dir, const char *run_id);
const char *vm_journal_run_id(const struct vm_journal *j);
const char *vm_journal_path(const struct vm_journal *j);
/* Append one record (fields stolen, may be NULL; its "crc" is added) and
 * fsync. Returns 0 or -1 (logged): the caller must not carry out a decision
 * it could not record. */
int vm_journal_write(struct vm_journal *j, const char *vm, const char *uuid, const char *source,
                     const char *target, const char *record, json_t *fields);
/* Room on the journal's filesystem for a migration's records: at least
 * VM_JOURNAL_ROOM bytes free, and that much preallocated past the file's
 * end (fallocate, the size unchanged; given back at close) so that a disk
 * filling meanwhile cannot take the records of a migration already
 * started. A run starts a migration only if this returns true (a full disk
 * may still take a record or two in a file's last page, not a migration's).
 * Logged when not; a journal that holds nothing yet is then removed, as if
 * its first record had failed. */
#define VM_JOURNAL_ROOM (64 * 1024)
bool vm_journal_reserve(struct vm_journal *j);

/* How many records were written whole and fsync'd (0: a journal of
 * vm_journal_new may not exist). */
unsigned vm_journal_count(const struct vm_journal *j);
void vm_journal_close(struct vm_journal *j);

/* ---- reading: the one record parser ------------------------------------ */

/* What a record says happened (its "record"). */
enum vm_journal_kind {
    VM_JOURNAL_KIND_UNKNOWN = 0, /* no "record" string, or a name this version does not know */
    VM_JOURNAL_KIND_STARTED,
    VM_JOURNAL_KIND_GATE_REACHED,
    VM_JOURNAL_KIND_COMMIT_DECIDED,
    VM_JOURNAL_KIND_ROLLBACK_DECIDED,
    VM_JOURNAL_KIND_FINISHED,
    VM_JOURNAL_KIND_DEINIT_DONE,
    VM_JOURNAL_KIND_AFTER_DONE,
    VM_JOURNAL_KIND_RECOVERED,
    VM_JOURNAL_KIND_STEP_STARTED, /* an after or deinit step began ({step}); its -done follows */
};

/* One record as read. Every string is the record's field of that name if
 * it is a string, else NULL; all point into json, which the record
 * borrows from whoever read it. */
struct vm_journal_record {
    json_t *json; /* the whole record, as written */
    enum vm_journal_kind kind;
    const char *record; /* its "record" as written (also an unknown one) */
    const char *run;    /* the run that wrote it */
    const char *of_run; /* the earlier run it is about (recovered, deinit-done, after-done) */
    bool about_earlier; /* it has an "of_run" (of any type): not about its own run */
    const char *vm, *uuid, *source, *target;
    json_int_t ts; /* 0 if absent */
    int file;      /* vm_journal_read_dir: which journal, 0 the oldest */
};

/* "started", ... (NULL for VM_JOURNAL_KIND_UNKNOWN). */
const char *vm_journal_kind_name(enum vm_journal_kind kind);

/* Parse one journal line (with or without its newline). Returns 0 and *r
 * (r->json a new reference, the caller's, "crc" included), or a negative
 * enum vm_journal_parse. The run a record is of is not checked here (the
 * readers below do that against the file's name). */
enum vm_journal_parse {
    VM_JOURNAL_NOT_JSON = -1, /* not a JSON object: a torn line, garbage */
    VM_JOURNAL_BAD_CRC = -2,  /* a "crc" that does not match the record: damaged */
};
int vm_journal_parse_line(const char *line, struct vm_journal_record *r);

/* The run whose journal PATH is: its file name less ".ndjson" (new string). */
char *vm_journal_run_of_path(const char *path);

/* Is R about migration (RUN, UUID): written by that run, or about it
 * (of_run)? */
bool vm_journal_record_about(const struct vm_journal_record *r, const char *run, const char *uuid);

/* Each record of the journal at PATH (named <run-id>.ndjson), in the order
 * written, borrowed for the call; every other line is skipped with a
 * warning (file:line, why), and one more if the journal may hide an open
 * migration. Returns 0, or -1 and *err if the file cannot be opened. */
typedef void (*vm_journal_record_cb)(const struct vm_journal_record *r, void *data);
int vm_journal_read(const char *path, vm_journal_record_cb cb, void *data, char **err);

/* Every record of every journal in DIR (none if DIR does not exist):
 * journals oldest first (they are named by start time), each record in the
 * order written, r->file saying which journal. Owns the records' JSON, and
 * what was skipped: the lines ([{file, line, why}], not logged: see
 * vm_journal_records_warn) and the journals that may hide an open
 * migration ([path]). */
struct vm_journal_records {
    struct vm_journal_record *v;
    size_t n;
    int nfiles;
    json_t *skipped;
    json_t *unreadable;
};

/* Returns 0, or -1 and *err if DIR cannot be read. A journal that cannot be
 * opened (gone meanwhile) counts as empty. */
int vm_journal_read_dir(const char *dir, struct vm_journal_records *out, char **err);

/* One settling of a journal directory at a time — the run's settle stage,
 * `vmmigrate recover`, a run's guardian (run/guardian.h) — so that no
 * migration is settled, and no owed step run, by two at once: an
 * exclusive flock on DIR/recover.lock, waited for up to wait_ms. Hold it
 * from reading the journals until the last owed step is recorded. The
 * descriptor (close() releases it), or -1 and *err (the caller's). A
 * directory that does not exist has nothing to settle: -2, no error. */
int vm_journal_lock_settle(const char *dir, int wait_ms, char **err);
void vm_journal_records_clear(struct vm_journal_records *recs);
/* One warning per skipped line: "WHO: journal FILE:LINE: WHY: ignored". */
void vm_journal_records_warn(const struct vm_journal_records *recs, const char *who);

/* ---- summaries and retention (summary.c) -------------------------------- */

/* One run's VMs, from the records of its journal (all->v[begin..end), one
 * file of all) and the later records of any journal about it (recovered,
 * owed steps done): {id, started_at, finished, vms: {NAME: {uuid, source,
 * target, state (the last record; "unsettled" for a finished one that left
 * the guest's host unknown or a source copy behind), result, location,
 * deinit, after}}}. A new reference, the caller's. */
json_t *vm_journal_summary(const struct vm_journal_records *all, size_t begin, size_t end);

/* Is the run summarised in S closed: finished (every VM finished or
 * recovered), each guest known to run on its source or its target (not
 * "none" or "unknown": for an operator), and no feature step left started or
 * failed? What status may leave out and recover --prune-after remove. */
bool vm_journal_run_closed(json_t *s);

/* What one VM of a summary (its "vms" member) asks of an operator, for
 * status --failed: */
enum vm_journal_trouble {
    VM_JOURNAL_TROUBLE_NONE,     /* migrated, skipped, or recovered to the target */
    VM_JOURNAL_TROUBLE_FAILED,   /* failed, aborted or rolled back (or a crash cut it short and
                                    recover settled it on the source): the guest runs on a known
                                    host, and the steps of its features are done */
    VM_JOURNAL_TROUBLE_OPERATOR, /* not finished (running, or crashed: see recover), unsettled,
                                    the guest's host unknown, or a feature step failed or left
                                    started */
};
/* *why (may be NULL): a few words for the human listing ("open", "after
 * failed", "rolled-back", ...), static. */
enum vm_journal_trouble vm_journal_vm_trouble(json_t *vm, const char **why);

/* Remove the journals in DIR last written more than max_age_s ago whose run
 * is closed (vm_journal_run_closed); never a journal that cannot be read whole. *pruned:
 * the paths removed (new array, the caller's). 0, or -1 and *err if DIR
 * cannot be read. Hold vm_journal_lock_settle around it. */
int vm_journal_prune(const char *dir, long max_age_s, json_t **pruned, char **err);

#endif
