/* SPDX-License-Identifier: MIT */
/* progress.h — the progress meter on a terminal.
 *
 * A header, one row per VM (its target host, phase, % transferred, rate,
 * remaining, ETA, elapsed, downtime once known; a queued VM says what it
 * waits for, a migration whose dirty rate keeps up says "not converging")
 * and a total line, on stderr, redrawn at most twice a second and only
 * when stderr is a TTY (curl's tool_progress.c). Every line is cut to the
 * terminal's width, so that none wraps and the meter can be cleared whole.
 * Log lines never tear it: vm_log's hook clears it before a line and draws
 * it again below (util.h). At on_finish it draws a last time, leaves that on
 * screen and prints the summary: what moved, what failed and why, the
 * longest downtime, the total time and what the exit code means.
 *
 * Fed records as the "progress" sink: it starts drawing with the first
 * VM's record and stops at on_finish. It owns its timer, which closes
 * asynchronously. */
#ifndef VMM_PROGRESS_H
#define VMM_PROGRESS_H

#include <stdio.h>

#include <uv.h>

#include "report/sink.h"

/* The sink: NULL unless cfg->progress (the caller decides whether the log
 * level leaves room for a meter) and stderr is a terminal. */
int vm_progress_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err);

/* A meter on any stream, whatever it is (tests: a memory stream). */
struct vm_progress_opts {
    FILE *out;                /* where it draws (borrowed) */
    uv_loop_t *loop;          /* its redraw timer's; NULL: no timer (it draws at its
                                 first record, around log lines and at the end) */
    int width;                /* columns; 0: the terminal's at each draw, else 80 */
    uint64_t (*now_ms)(void); /* a monotonic clock; NULL: vm_mono_ms */
};
struct vm_sink *vm_progress_open(const struct vm_progress_opts *o);

/* The meter as it would be drawn now (header, rows, total line), each line
 * cut to the width, into f: the number of lines. */
int vm_progress_frame(struct vm_sink *s, FILE *f);

/* Format helpers, exposed for tests: "12.3 MiB", "45.0 MiB/s"; a duration
 * "850 ms", "12 s", "1 m 40 s", "2 h 05 m". */
void vm_progress_fmt_bytes(char *buf, size_t len, uint64_t bytes);
void vm_progress_fmt_duration(char *buf, size_t len, uint64_t ms);

#endif
