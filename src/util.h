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

enum vm_log_level {
    VM_LOG_ERROR,
    VM_LOG_WARN,
    VM_LOG_INFO,
    VM_LOG_DEBUG,
};
/* Messages at or below the level are printed ("vmmigrate: " + message).
 * Default VM_LOG_WARN; --quiet sets ERROR, --verbose INFO/DEBUG. */
void vm_log_set_level(enum vm_log_level level);
enum vm_log_level vm_log_get_level(void);
/* Hook called before every log line is written (the progress meter uses it
 * to clear its lines first). */
void vm_log_set_hook(void (*hook)(void *), void *data);
void vm_log(enum vm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define vm_error(...) vm_log(VM_LOG_ERROR, __VA_ARGS__)
#define vm_warn(...) vm_log(VM_LOG_WARN, __VA_ARGS__)
#define vm_info(...) vm_log(VM_LOG_INFO, __VA_ARGS__)
#define vm_debug(...) vm_log(VM_LOG_DEBUG, __VA_ARGS__)

#define VM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
