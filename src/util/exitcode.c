/* SPDX-License-Identifier: MIT */
/* exitcode.c — see exitcode.h. */
#include "util/exitcode.h"

#include <stddef.h>

const char *vm_exit_brief(int code)
{
    switch ((enum vm_exit)code) {
    case VM_EXIT_OK:
        return "every requested migration succeeded";
    case VM_EXIT_FAILED:
        return "at least one migration failed; such guests kept running on the source";
    case VM_EXIT_USAGE:
        return "bad command line";
    case VM_EXIT_PREFLIGHT:
        return "bad input found before anything changed";
    case VM_EXIT_UNREACHABLE:
        return "a libvirt host could not be reached";
    case VM_EXIT_INTERRUPTED:
        return "interrupted: in-flight migrations were aborted";
    case VM_EXIT_POLICY:
        return "the policy failed to load or decide";
    case VM_EXIT_LOCKED:
        return "another run holds the lock for a source host";
    case VM_EXIT_NOTHING:
        return "nothing to do";
    case VM_EXIT_OPERATOR:
        return "an operator must look";
    case VM_EXIT_JOURNAL:
        return "the journal could not be written";
    case VM_EXIT_INTERNAL:
        return "internal error (a bug)";
    }
    return NULL;
}
