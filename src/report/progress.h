/* SPDX-License-Identifier: MIT */
/* progress.h — the progress meter on a terminal.
 *
 * One line per VM on stderr (phase, % transferred, rate, remaining,
 * iteration), redrawn at most twice a second and only when stderr is a TTY
 * (curl's tool_progress.c). Log lines clear the meter first (vm_log hook).
 * Fed records as the "progress" sink: it starts drawing with the first
 * VM's record and stops at on_finish. It owns its timer, which closes
 * asynchronously. */
#ifndef VMM_PROGRESS_H
#define VMM_PROGRESS_H

#include <uv.h>

#include "report/sink.h"

struct vm_progress;

/* The sink: NULL unless cfg->progress (the caller decides whether the log
 * level leaves room for a meter) and stderr is a terminal. */
int vm_progress_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err);

/* Format helpers, exposed for tests: "12.3 MiB", "45.0 MiB/s". */
void vm_progress_fmt_bytes(char *buf, size_t len, uint64_t bytes);

#endif
