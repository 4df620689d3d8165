/* SPDX-License-Identifier: MIT */
/* lock.h — one run per source host.
 *
 * A run holds an exclusive flock on DIR/<key>.lock for each of its source
 * hosts (key: the host's libvirt UUID, else its URI, made file-name safe)
 * until it exits; the kernel releases it even after kill -9. The file holds
 * one JSON line about its holder, {"pid", "source", "hostname", "run"},
 * which `vmmigrate abort` reads (vm_lock_read) to stop the runs it is asked
 * for. The caller owns the descriptor vm_lock_take returns and closes it to
 * release; a vm_lock_entry's strings belong to it (vm_lock_entry_clear). */
#ifndef VMM_LOCK_H
#define VMM_LOCK_H

#include <sys/types.h>

/* Who holds a lock. */
struct vm_lock_entry {
    pid_t pid;      /* the run's */
    char *source;   /* the source host's URI, as the run was given it; "" if unknown */
    char *hostname; /* its libvirt hostname; "" if unknown */
    char *run;      /* the run's id (its journal's); "" if unknown (an older holder) */
};

/* Where the locks live unless --lock-dir says otherwise. */
#define VM_LOCK_DEFAULT_DIR "/run/vmmigrate"

/* Take KEY's lock in DIR (created if missing). Returns the lock's
 * descriptor; -1 if another process holds it (its PID in *holder, 0 if
 * unknown); -2 if the lock file cannot be opened (warned once here: the
 * caller goes on without a lock). */
int vm_lock_take(const char *dir, const char *key, pid_t *holder);

/* Say who holds the lock fd (our PID, and e's source, hostname, run: NULL
 * for unknown). Called when the lock is taken: the run's id is known from its start. */
void vm_lock_note(int fd, const char *source, const char *hostname, const char *run);

/* 1 with *e filled if a process holds the lock file PATH; 0 if none does or
 * the file cannot be read. A bare PID (an older holder) is read too. */
int vm_lock_read(const char *path, struct vm_lock_entry *e);
void vm_lock_entry_clear(struct vm_lock_entry *e);

#endif
