/* SPDX-License-Identifier: MIT */
/* util.h — allocation that never fails, clocks, logging.
 *
 * Owns nothing. xmalloc() and friends abort the process on OOM (tmux's
 * xmalloc.c), so no other file carries out-of-memory branches. Strings
 * returned by x*printf/xstrdup belong to the caller (free()).
 * Logging goes to stderr only; machine-readable output lives in report.h. */
#ifndef VMM_UTIL_H
#define VMM_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n); /* at most n bytes of s */
/* At most max bytes of s, never ending inside a UTF-8 character. */
char *vm_utf8_cut(const char *s, size_t max);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Monotonic milliseconds (for durations) and wall-clock milliseconds since
 * the epoch (for timestamps in reports). */
uint64_t vm_mono_ms(void);
uint64_t vm_wall_ms(void);
/* Format wall-clock ms as RFC 3339 UTC with milliseconds into buf (>= 32). */
const char *vm_rfc3339(uint64_t wall_ms, char *buf, size_t len);

/* Replace PATH with DATA atomically (write a temporary file beside it, then
 * rename): readers see the old or the new content, never a mix. 0 or -1
 * (errno). */
int vm_write_atomic(const char *path, const char *data, size_t len);

/* Does process pid still run? A zombie (ended, its parent has not reaped
 * it yet) does not: it holds no lock, no connection, and acts no more. */
bool vm_process_alive(long pid);

enum vm_log_level {
    VM_LOG_ERROR,
    VM_LOG_WARN,
    VM_LOG_INFO,
    VM_LOG_DEBUG,
};
/* What standard error is, which decides the form of a line (vm_log_format):
 *   TTY      "vmmigrate: error: MSG", "vmmigrate: TIME MSG" (info, debug)
 *   FILE     "vmmigrate: TIME error: MSG": every line timestamped (a pipe or
 *            a file: cron's mail, a log file)
 *   JOURNAL  "<3>error: MSG": the sd-daemon(3) priority prefix, no time and
 *            no name (journald records both)
 *   SYSLOG   "error: MSG": the message of a syslog(3) record */
enum vm_log_sink {
    VM_LOG_SINK_TTY,
    VM_LOG_SINK_FILE,
    VM_LOG_SINK_JOURNAL,
    VM_LOG_SINK_SYSLOG,
};

/* The line(s) MSG makes at LEVEL for SINK at wall-clock WALL_MS, each ending
 * in a newline; every line of a multi-line MSG gets the prefix. Pure; the
 * caller frees. */
char *vm_log_format(enum vm_log_level level, enum vm_log_sink sink, uint64_t wall_ms,
                    const char *msg);
/* LOG_ERR, LOG_WARNING, LOG_INFO or LOG_DEBUG: also the sd-daemon prefix. */
int vm_log_priority(enum vm_log_level level);
/* What FD is: the journal when JOURNAL_STREAM ("DEV:INO", as systemd sets
 * it; NULL: unset) names it, else a terminal or a file. */
enum vm_log_sink vm_log_sink_of(int fd, const char *journal_stream);

/* Messages at or below the level are written to stderr, in the form its
 * sink (vm_log_sink_of(2, $JOURNAL_STREAM), looked up at the first message)
 * takes. Default VM_LOG_WARN; --quiet sets ERROR, --verbose INFO/DEBUG. */
void vm_log_set_level(enum vm_log_level level);
enum vm_log_level vm_log_get_level(void);
/* --syslog: also send messages at or below LEVEL to syslog(3) (ident
 * "vmmigrate", LOG_PID, facility LOG_DAEMON), whatever stderr's level. */
void vm_log_set_syslog(enum vm_log_level level);
/* Hook called around every log line written to stderr: with after = false
 * before it, true once it is written (the progress meter clears its lines
 * first and draws them again below the line). */
void vm_log_set_hook(void (*hook)(void *data, bool after), void *data);
void vm_log(enum vm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define vm_error(...) vm_log(VM_LOG_ERROR, __VA_ARGS__)
#define vm_warn(...) vm_log(VM_LOG_WARN, __VA_ARGS__)
#define vm_info(...) vm_log(VM_LOG_INFO, __VA_ARGS__)
#define vm_debug(...) vm_log(VM_LOG_DEBUG, __VA_ARGS__)

#define VM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
