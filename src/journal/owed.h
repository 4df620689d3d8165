/* SPDX-License-Identifier: MIT */
/* owed.h — run the feature steps that crashed runs still owe.
 *
 * A network-critical migration whose run died (kill -9, power loss) after
 * its features began to prepare still owes, if its guest turned out to
 * stay on the source, their deinit steps (a VDP association prepared on the
 * target, whatever a policy's feature set up); if the guest ended on the
 * target, their after steps (the VDP association left on the source).
 * recover.h finds them in the journals (vm_recover_owed); this runs them on
 * the loop, one migration at a time (deinit: every feature, in reverse
 * order, since deinit steps must tolerate a prepare that was cut short;
 * after: in order), and journals "deinit-done" / "after-done" for each so
 * that none runs twice. A policy feature needs the policy that defined it:
 * without it the step fails, stays owed, and is reported for an operator.
 *
 * Used by run (before the drain goes on) and by `recover --policy`. A
 * `struct vm_owed` owns itself: it is freed after done ran. */
#ifndef VMM_OWED_H
#define VMM_OWED_H

#include <jansson.h>
#include <uv.h>

struct vm_exec_hosts;
struct vm_policy;

/* results: [{step, run, vm, uuid, source, target, ok, features | error}] (borrowed
 * for the call); failed: how many migrations' deinits did not all succeed. */
typedef void (*vm_owed_done_cb)(json_t *results, int failed, void *data);

/* Run OWED (vm_recover_owed's list, borrowed) on LOOP, commands reaching
 * their hosts through HOSTS (exec.h; borrowed until done ran, NULL: no
 * overrides); journal records go to JOURNAL (borrowed until done ran: the
 * recovery's, journal.h's vm_journal_new), or with NULL to a new journal in
 * DIR. done runs once, possibly before this returns (nothing owed). */
struct vm_journal;
void vm_owed_run(uv_loop_t *loop, const char *dir, struct vm_journal *journal, json_t *owed,
                 struct vm_policy *policy, const struct vm_exec_hosts *hosts,
                 vm_owed_done_cb done, void *data);

#endif
