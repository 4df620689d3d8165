/* SPDX-License-Identifier: MIT */
/* exec.h — run a command on a host, without a shell, on the loop.
 *
 * A host is addressed by its libvirt URI; how to reach it is the executor:
 * local URIs (qemu:///, qemu+unix://, test:///) run the command here; an
 * ssh URI (qemu+ssh://[user@]host[:port]/...) runs it through
 * `ssh -o BatchMode=yes [-p port] [user@]host -- ARGV` (each argument
 * quoted for the remote shell); --host-exec URI=PREFIX replaces either with
 * PREFIX (split on spaces) followed by ARGV (the lab uses `ip netns exec NS`),
 * each argument quoted the same way when PREFIX's program is ssh.
 *
 * Output is untrusted: each stream is cut at VM_EXEC_MAX_OUTPUT bytes. A
 * `struct vm_exec` owns its process and pipes and frees itself after its
 * callback returned; vm_exec_kill() ends it early (the callback still runs
 * once). */
#ifndef VMM_EXEC_H
#define VMM_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#define VM_EXEC_MAX_OUTPUT (64 * 1024)

struct vm_exec;

struct vm_exec_result {
    int64_t status; /* exit status, or -1 */
    int signal;     /* terminating signal, or 0 */
    bool timed_out;
    const char *out, *err; /* NUL-terminated, at most VM_EXEC_MAX_OUTPUT bytes */
    size_t out_len, err_len;
    const char *error; /* could not start: why (then status -1) */
};

typedef void (*vm_exec_cb)(const struct vm_exec_result *r, void *data);

/* Executors given on the command line (--host-exec "URI=PREFIX"), one
 * value per run: whoever runs commands for the run (the job, `vmmigrate
 * recover`) creates it with vm_exec_hosts_new, lends it to everything that
 * starts commands (vm_exec_start, vm_exec_argv; NULL: no overrides) and
 * frees it with vm_exec_hosts_free after the last command reported. */
struct vm_exec_hosts;

/* Is "URI=PREFIX" well formed? */
bool vm_exec_override_valid(const char *spec);
/* From SPECS (NULL-terminated, each vm_exec_override_valid; copied; NULL:
 * none). The first spec naming a URI wins. */
struct vm_exec_hosts *vm_exec_hosts_new(const char *const *specs);
void vm_exec_hosts_free(struct vm_exec_hosts *h);
/* URI's PREFIX (borrowed from H), or NULL: no override (also when H is
 * NULL). */
const char *vm_exec_hosts_lookup(const struct vm_exec_hosts *h, const char *uri);

/* Start ARGV (argv[0] looked up in PATH) on the host of URI, through
 * HOSTS' override for URI if it has one (borrowed for the call). cb runs
 * once, on the loop, also when the start fails (then r->error is set).
 * Returns the running command (for vm_exec_kill) or NULL when cb already
 * ran. */
struct vm_exec *vm_exec_start(uv_loop_t *loop, const struct vm_exec_hosts *hosts, const char *uri,
                              const char *const *argv, uint64_t timeout_ms, vm_exec_cb cb,
                              void *data);
void vm_exec_kill(struct vm_exec *e);

/* Commands that answer every caller asking the same question: a probe asks
 * each target the same read-only question for each of its VMs, and a plan
 * of thousands of VMs must not start thousands of processes (or ssh
 * sessions) for a few hundred answers. Whoever runs commands for the run
 * creates one with vm_exec_share_new, lends it to the callers that may
 * share, and frees it with vm_exec_share_free (commands still running then
 * finish unshared). */
struct vm_exec_share;
struct vm_exec_share *vm_exec_share_new(void);
void vm_exec_share_free(struct vm_exec_share *s);
/* vm_exec_start, except that while a command started through SHARE with
 * the same full command line (executor prefix and argv: the same command on
 * the same machine) runs, this call joins it instead of starting another:
 * each caller's cb runs once, with the one result, in the order they
 * joined; the first caller's timeout counts. SHARE NULL: vm_exec_start.
 * Only for commands that change nothing. vm_exec_kill() of a shared
 * command counts one caller giving up (each caller calls it at most once):
 * the process is killed when every caller has; until then its cb runs when
 * the command ends. */
struct vm_exec *vm_exec_start_shared(struct vm_exec_share *share, uv_loop_t *loop,
                                     const struct vm_exec_hosts *hosts, const char *uri,
                                     const char *const *argv, uint64_t timeout_ms, vm_exec_cb cb,
                                     void *data);
/* How many processes SHARE started, and how many calls joined one. */
void vm_exec_share_counts(const struct vm_exec_share *s, long *started, long *joined);

/* The full argv (prefix + argv) vm_exec_start would run; caller frees the
 * array and its strings with vm_exec_argv_free. NULL: unknown transport. */
char **vm_exec_argv(const struct vm_exec_hosts *hosts, const char *uri, const char *const *argv,
                    char **why);
void vm_exec_argv_free(char **argv);

#endif
