/* journal.h — the run's append-only journal: the durable record of what each
 * migration did, written before it is done where that matters.
 *
 * One file per run, <dir>/<run-id>.ndjson, one JSON object per line:
 *   {"ts": ms, "run": id, "vm": name, "uuid": ..., "source": uri,
 *    "target": uri, "record": R, ...}
 * with R one of started (a network-critical migration with features adds
 * its "decision" and "inventory": what a later run needs to undo them),
 * gate-reached, commit-decided, rollback-decided, finished (with "result"
 * and "location"), deinit-done (the features' deinits ran: "ok",
 * "features"). Records about an earlier run carry "of_run": recovered
 * (recover.c), deinit-done (owed.c). Records that decide where a
 * guest runs (commit-decided, rollback-decided) are fsync'd before the
 * decision is carried out; so is every other record (a run writes a few per
 * VM). `vmmigrate recover` reads the journals to find migrations a crash
 * left half-done (recover.c). A `struct vm_journal` owns its file. */
#ifndef VMM_JOURNAL_H
#define VMM_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>

#define VM_JOURNAL_DEFAULT_DIR "/var/lib/vmmigrate/journal"

struct vm_journal;

/* Create DIR if needed and open a new journal; NULL with the reason logged. */
struct vm_journal *vm_journal_open(const char *dir);
const char *vm_journal_run_id(const struct vm_journal *j);
const char *vm_journal_path(const struct vm_journal *j);
/* Append one record (fields stolen, may be NULL) and fsync. Returns 0 or -1
 * (logged): the caller must not carry out a decision it could not record. */
int vm_journal_write(struct vm_journal *j, const char *vm, const char *uuid, const char *source,
                     const char *target, const char *record, json_t *fields);
void vm_journal_close(struct vm_journal *j);

/* Every journal in DIR, oldest first, each record as parsed JSON (an array
 * of arrays). Lines that do not parse (a torn last line) are skipped. */
json_t *vm_journal_read_dir(const char *dir, char **err);

#endif
