/* lock.h — one run per source host.
 *
 * A run holds an exclusive flock on DIR/<key>.lock for each of its source
 * hosts (key: the host's libvirt UUID, else its URI, made file-name safe)
 * until it exits; the kernel releases it even after kill -9. The file holds
 * the run's PID, which `vmmigrate abort` reads (vm_lock_holder). The caller
 * owns the descriptor vm_lock_take returns and closes it to release. */
#ifndef VMM_LOCK_H
#define VMM_LOCK_H

#include <sys/types.h>

/* Where the locks live unless --lock-dir says otherwise. */
#define VM_LOCK_DEFAULT_DIR "/run/vmmigrate"

/* Take KEY's lock in DIR (created if missing). Returns the lock's
 * descriptor; -1 if another process holds it (its PID in *holder, 0 if
 * unknown); -2 if the lock file cannot be opened (warned once here: the
 * caller goes on without a lock). */
int vm_lock_take(const char *dir, const char *key, pid_t *holder);

/* The PID written in the lock file PATH if a process holds the lock; 0 if
 * none does, or the file cannot be read. */
pid_t vm_lock_holder(const char *path);

#endif
