/* progress.h — the progress meter on a terminal.
 *
 * One line per VM on stderr (phase, % transferred, rate, remaining,
 * iteration), redrawn at most twice a second and only when stderr is a TTY
 * (curl's tool_progress.c). Log lines clear the meter first (vm_log hook).
 * The meter borrows the migrations array; it owns its timer and is freed in
 * the timer's close callback after vm_progress_stop(). */
#ifndef VMM_PROGRESS_H
#define VMM_PROGRESS_H

#include <uv.h>

#include "migrate/mig.h"

struct vm_progress;

/* NULL when stderr is not a terminal: then there is nothing to draw. */
struct vm_progress *vm_progress_start(uv_loop_t *loop, struct vm_mig *const *migs, int n);
/* Draw a last time, leave the lines on screen, free asynchronously. */
void vm_progress_stop(struct vm_progress *p);

/* Format helpers, exposed for tests: "12.3 MiB", "45.0 MiB/s". */
void vm_progress_fmt_bytes(char *buf, size_t len, uint64_t bytes);

#endif
