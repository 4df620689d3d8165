/* SPDX-License-Identifier: MIT */
/* fault.h — named fault points, for tests only.
 *
 * Crash and hang tests must hit a boundary on purpose, not by timing. Code
 * marks its boundaries with vm_fault("name"); the environment variable
 *
 *     VMM_FAULT=POINT:ACTION[@N][,POINT:ACTION[@N]...]
 *
 * makes the Nth time (default: every time) the process reaches POINT do
 * ACTION:
 *     kill        SIGKILL this process (a crash: nothing runs after it)
 *     stop        SIGSTOP this process (a hang the kernel imposes; SIGCONT
 *                 resumes it)
 *     sleep=MS    block the calling thread MS milliseconds (a stuck call)
 *     fail        vm_fault() returns true: the caller acts as if the step
 *                 failed (e.g. a write that cannot be made durable)
 * Each firing is announced on stderr ("vmmigrate: fault point 'P': ACTION")
 * before it acts. Without VMM_FAULT nothing happens and vm_fault() costs one
 * load. The points are listed in docs/testing.md; they are for the project's
 * tests and never to be set in production.
 *
 * Thread-safe: the specification is read once, the counters are atomic. */
#ifndef VMM_FAULT_H
#define VMM_FAULT_H

#include <stdbool.h>

/* At POINT: true if the caller must fail here ("fail"); the other actions
 * act and return false (if they return at all). */
bool vm_fault(const char *point);
/* Is the specification in VMM_FAULT well-formed? (NULL: yes.) Else a
 * message naming the culprit, owned by the caller. */
char *vm_fault_check(void);

#endif
