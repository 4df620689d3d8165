/* progress.h — the progress meter on a terminal.
 *
 * One line per VM on stderr (phase, % transferred, rate, remaining,
 * iteration), redrawn at most twice a second and only when stderr is a TTY
 * (curl's tool_progress.c). Log lines clear the meter first (vm_log hook).
 * Either fed records as the "progress" sink (it starts drawing with the
 * first VM's record, stops at on_finish), or given the run's migrations
 * (vm_progress_start: borrowed, read afresh at each redraw). It owns its
 * timer, which closes asynchronously. */
#ifndef VMM_PROGRESS_H
#define VMM_PROGRESS_H

#include <uv.h>

#include "migrate/mig.h"
#include "report/sink.h"

struct vm_progress;

/* NULL when stderr is not a terminal: then there is nothing to draw. */
struct vm_progress *vm_progress_start(uv_loop_t *loop, struct vm_mig *const *migs, int n);
/* Draw a last time, leave the lines on screen, free. */
void vm_progress_stop(struct vm_progress *p);
/* The sink: NULL unless cfg->progress (the caller decides whether the log
 * level leaves room for a meter) and stderr is a terminal. */
int vm_progress_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err);

/* Format helpers, exposed for tests: "12.3 MiB", "45.0 MiB/s". */
void vm_progress_fmt_bytes(char *buf, size_t len, uint64_t bytes);

#endif
