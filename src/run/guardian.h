/* SPDX-License-Identifier: MIT */
/* guardian.h — a bounded pause at the commit gate, whatever happens to the
 * run's process.
 *
 * A gated migration holds the guest paused on both hosts until the run
 * decides. If the run cannot decide — stopped (SIGSTOP, a debugger), hung
 * (its loop blocked), or dead (SIGKILL, OOM) — nothing inside it can end
 * that pause. The guardian is a second process of the same binary, started
 * by the run once its journal is open, before the first migration:
 *
 *   - the run writes a heartbeat byte to a pipe every VM_GUARDIAN_BEAT_MS
 *     from its loop (vm_guardian_start's timer);
 *   - the guardian follows the run's journal (the records are fsync'd
 *     before they are acted on) and knows which gated migrations are open
 *     (started, not finished) and since when each holds at its gate
 *     (gate-reached, no commit-decided or rollback-decided yet);
 *   - when a gated migration is open and the heartbeat is older than
 *     VM_GUARDIAN_STALE_MS, or the run is gone (the pipe closed), or a gate
 *     is held longer than its budget + VM_GUARDIAN_GRACE_MS, the guardian
 *     SIGKILLs the run, waits until it is gone, and becomes
 *     `vmmigrate recover` for the run's journal directory (with the run's
 *     --policy and --host-exec), which settles every open migration by the
 *     usual rules: the target is asked first; no commit-decided means the
 *     source resumes and the target copy goes.
 *   - When the run ends on its own (the pipe closes with nothing open), the
 *     guardian exits quietly.
 * The pause at the gate is then bounded by the gate budget plus the
 * guardian's reaction (≤ VM_GUARDIAN_GRACE_MS) plus recover's two looks a
 * second apart; docs/operations.md states it.
 *
 * The guardian ignores SIGINT, SIGTERM and SIGHUP (the run handles them, and
 * the guardian must outlive a run that handles them badly) and runs in its
 * own session. */
#ifndef VMM_GUARDIAN_H
#define VMM_GUARDIAN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#define VM_GUARDIAN_COMMAND "__guardian" /* argv[1] of the guardian process */
#define VM_GUARDIAN_BEAT_MS 250
#define VM_GUARDIAN_STALE_MS 3000
#define VM_GUARDIAN_GRACE_MS 2000

/* -- the run's side ------------------------------------------------------ */

struct vm_guardian;

/* Start the guardian for the journal at journal_path (in journal_dir);
 * recover_args: the options `recover` must get besides --journal-dir
 * (--policy FILE, --host-exec SPEC, ...; NULL-terminated, copied). The
 * heartbeat timer runs on loop and does not keep it alive. NULL and *err
 * (owned by the caller) if it cannot start. */
struct vm_guardian *vm_guardian_start(uv_loop_t *loop, const char *journal_dir,
                                      const char *journal_path, const char *const *recover_args,
                                      char **err);
/* The run is over: stop the heartbeat and close the pipe (the guardian sees
 * the end, finds nothing open and exits). Closes the handles; the loop
 * must run once more. NULL is fine. */
void vm_guardian_stop(struct vm_guardian *g);

/* -- the guardian's side ------------------------------------------------- */

/* What the guardian knows of the run, from its journal. */
struct vm_guardian_watch {
    json_t *open; /* uuid -> {vm, gated, budget_ms, gate_at (mono ms, 0: not at the gate)} */
};

struct vm_journal_record;
/* Take one journal record (journal/journal.h's parser) seen at now_ms
 * (monotonic). */
void vm_guardian_watch_record(struct vm_guardian_watch *w, const struct vm_journal_record *rec,
                              uint64_t now_ms);
/* Must the guardian end the run now? beat_age_ms: since the last heartbeat;
 * run_gone: the pipe closed. NULL: no; else why (owned by the caller),
 * naming the VM. */
char *vm_guardian_verdict(const struct vm_guardian_watch *w, uint64_t now_ms, uint64_t beat_age_ms,
                          bool run_gone);
void vm_guardian_watch_clear(struct vm_guardian_watch *w);

/* The guardian process: argv = {VM_GUARDIAN_COMMAND, RUN_PID, HEARTBEAT_FD,
 * JOURNAL_PATH, "--", recover's argv...}. Returns an exit status (or does
 * not return: it becomes recover). */
int vm_guardian_main(int argc, char **argv);

#endif
