/* SPDX-License-Identifier: MIT */
/* recover.h — reconcile the journals with reality after a crash, so that
 * every guest runs exactly once (see cmd_recover.c for the rules: the
 * target is asked first, twice; a running copy there means the guest moved,
 * and a paused source copy is destroyed; none means it never left, and a
 * paused source is resumed; anything else waits for an operator).
 * Migrations of runs still going on are left alone; one that libvirt still
 * runs by itself (peer-to-peer) is waited for first. A plain QEMU guest
 * (`vmmigrate qemu`; the journal names its QMP sockets, qemu+qmp://PATH) is
 * settled over QMP by the same rules: a commit on record that a crash kept
 * from being carried out is carried out, the source copy is removed by
 * quitting its QEMU, a target that never ran the guest is quit (recover.c).
 *
 * Blocking: libvirt and QMP calls, and sleeps. Run it from a thread-pool task (run)
 * or a command that does nothing else (recover). A libvirt host that does
 * not answer is given VM_VIRT_CONNECT_TIMEOUT_DEFAULT_S to connect
 * (vm_virt_connect), then counts as unreachable. */
#ifndef VMM_RECOVER_H
#define VMM_RECOVER_H

#include <jansson.h>

/* Each function below journals what it settled ("recovered" records) to
 * JOURNAL (borrowed: the recovery's, journal.h's vm_journal_new, so that
 * one recover's records carry one run id), or with NULL to a journal of its
 * own in DIR, opened with its first record. */
struct vm_journal;

/* Returns how many migrations need an operator (*unreachable of them because
 * a host could not be reached), *result the list of what was found and done
 * (new reference); -1 and *err if the journals cannot be read. */
int vm_recover(const char *dir, struct vm_journal *journal, json_t **result, int *unreachable,
               char **err);
/* uri's connection died under this process (a keepalive that gave up, an
 * end of file): from now on every settling gives it
 * VM_RECOVER_HUNG_CONNECT_S to connect, not the default, so that a run
 * whose host hangs ends soon (the next run or `vmmigrate recover` asks it
 * again with the whole deadline). A libvirtd that restarts refuses at once
 * until it listens and answers at once after, so it is asked again as
 * before. Any thread. */
void vm_recover_host_hung(const char *uri);
#define VM_RECOVER_HUNG_CONNECT_S 5

/* Recovery from the hosts' evidence, whatever the journals say (one may be
 * torn, lost with a disk): on every host named (sources: hosts guests are
 * moved away from; targets: hosts they move to), each domain paused by a
 * migration (reason "migration") with no job running — no live run is
 * moving it — is settled by the same rules, looking at all the hosts
 * named: a running copy elsewhere makes the paused ones stale (destroyed,
 * after two agreeing looks); none running, the copy on a source host is
 * resumed and paused copies on targets (never run, so never ahead of it)
 * are destroyed; a paused copy on a target alone, or several on sources,
 * is for an operator. Each is journaled ("recovered", of_run "none") in
 * DIR. Appends to *result what vm_recover gives (run "", last_record
 * "none"); returns how many need an operator (*unreachable: a host could
 * not be reached). */
int vm_recover_evidence(const char *dir, struct vm_journal *journal, const char *const *sources,
                        int nsources, const char *const *targets, int ntargets, json_t *result,
                        int *unreachable);

/* vm_recover_evidence on the hosts the journals in DIR name (as sources,
 * as targets); -1 and *err if the journals cannot be read. */
int vm_recover_evidence_journals(const char *dir, struct vm_journal *journal, json_t *result,
                                 int *unreachable, char **err);

/* The feature steps crashed runs still owe (journals only, no libvirt), for
 * the latest attempt of each network-critical migration of a run no longer
 * going on whose "started" record names features with such steps:
 *   deinit  the guest ended on the source ("finished" or "recovered"
 *           location "source") and no "deinit-done" record follows;
 *   after   the guest ended on the target and no "after-done" follows.
 * [{step, run, vm, uuid, source, target, features: [{name, required,
 * timeout_ms, args}], inventory}] (new reference), or NULL and *err.
 * owed.h runs them. */
json_t *vm_recover_owed(const char *dir, char **err);

#endif
