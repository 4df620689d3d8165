/* SPDX-License-Identifier: MIT */
/* exitcode.h — the process exit codes, a public interface.
 *
 * Documented in man/vmmigrate.1 (generated from cli.c's table, which lists
 * every code below); tests/unit/test_docs.c checks the two agree. Codes are
 * never renumbered: scripts and cron jobs depend on them. */
#ifndef VMM_EXITCODE_H
#define VMM_EXITCODE_H

enum vm_exit {
    VM_EXIT_OK = 0,          /* every requested migration succeeded */
    VM_EXIT_FAILED = 1,      /* at least one migration failed; guests kept running on the source */
    VM_EXIT_USAGE = 2,       /* bad command line: unknown option, bad value */
    VM_EXIT_PREFLIGHT = 3,   /* bad input found before anything changed (unknown VM, not running,
                                same host, ...) */
    VM_EXIT_UNREACHABLE = 4, /* a libvirt host could not be reached (or not within
                                --connect-timeout) */
    VM_EXIT_INTERRUPTED = 5, /* SIGINT/SIGTERM: in-flight migrations were aborted */
    VM_EXIT_POLICY = 6,      /* the policy failed to load or decide */
    VM_EXIT_LOCKED = 7,      /* another run holds the lock for this source host */
    VM_EXIT_NOTHING = 8,     /* nothing to do */
    VM_EXIT_OPERATOR = 9,    /* a cleanup step failed: an operator must look */
    VM_EXIT_JOURNAL = 10,    /* the journal could not be written: nothing started, or (later in
                                the run) nothing more */
    VM_EXIT_INTERNAL = 70,   /* internal error (a bug) */
};

/* What CODE says, in a few words ("at least one migration failed"), for a
 * summary's last line; NULL for a code not listed above. */
const char *vm_exit_brief(int code);

#endif
