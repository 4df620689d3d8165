/* SPDX-License-Identifier: MIT */
/* util.c — see util.h. */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "vmmigrate: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
    if (!p)
        oom(nmemb * n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    n = strnlen(s, n);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        oom(0);
    char *p = xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

uint64_t vm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t vm_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *vm_rfc3339(uint64_t wall_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(wall_ms / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", base, (unsigned)(wall_ms % 1000u));
    return buf;
}

static enum vm_log_level log_level = VM_LOG_WARN;
static bool log_sink_known;
static enum vm_log_sink log_sink;
static bool log_syslog;
static enum vm_log_level log_syslog_level;
static void (*log_hook)(void *, bool);
static void *log_hook_data;

void vm_log_set_level(enum vm_log_level level)
{
    log_level = level;
}

enum vm_log_level vm_log_get_level(void)
{
    return log_level;
}

void vm_log_set_syslog(enum vm_log_level level)
{
    if (!log_syslog)
        openlog("vmmigrate", LOG_PID, LOG_DAEMON);
    log_syslog = true;
    log_syslog_level = level;
}

void vm_log_set_hook(void (*hook)(void *, bool), void *data)
{
    log_hook = hook;
    log_hook_data = data;
}

int vm_log_priority(enum vm_log_level level)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    return prio[level];
}

enum vm_log_sink vm_log_sink_of(int fd, const char *journal_stream)
{
    struct stat st;
    uintmax_t dev, ino;
    char end;
    if (journal_stream && fstat(fd, &st) == 0 &&
        sscanf(journal_stream, "%ju:%ju%c", &dev, &ino, &end) == 2 && dev == (uintmax_t)st.st_dev &&
        ino == (uintmax_t)st.st_ino)
        return VM_LOG_SINK_JOURNAL;
    return isatty(fd) ? VM_LOG_SINK_TTY : VM_LOG_SINK_FILE;
}

char *vm_log_format(enum vm_log_level level, enum vm_log_sink sink, uint64_t wall_ms,
                    const char *msg)
{
    static const char *const word[] = {"error: ", "warning: ", "", "debug: "};
    char prefix[64];
    char ts[32];
    switch (sink) {
    case VM_LOG_SINK_TTY: /* errors and warnings stand out without a time */
        if (level >= VM_LOG_INFO)
            snprintf(prefix, sizeof(prefix), "vmmigrate: %s %s",
                     vm_rfc3339(wall_ms, ts, sizeof(ts)), word[level]);
        else
            snprintf(prefix, sizeof(prefix), "vmmigrate: %s", word[level]);
        break;
    case VM_LOG_SINK_FILE:
        snprintf(prefix, sizeof(prefix), "vmmigrate: %s %s", vm_rfc3339(wall_ms, ts, sizeof(ts)),
                 word[level]);
        break;
    case VM_LOG_SINK_JOURNAL:
        snprintf(prefix, sizeof(prefix), "<%d>%s", vm_log_priority(level), word[level]);
        break;
    case VM_LOG_SINK_SYSLOG:
    default:
        snprintf(prefix, sizeof(prefix), "%s", word[level]);
        break;
    }
    size_t plen = strlen(prefix), len = 0, cap = strlen(msg) + plen + 2;
    char *out = xmalloc(cap);
    const char *line = msg;
    for (;;) {
        size_t n = strcspn(line, "\n");
        if (len + plen + n + 2 > cap) {
            cap = (len + plen + n + 2) * 2;
            out = xrealloc(out, cap);
        }
        memcpy(out + len, prefix, plen);
        memcpy(out + len + plen, line, n);
        len += plen + n;
        out[len++] = '\n';
        if (line[n] == '\0' || line[n + 1] == '\0')
            break;
        line += n + 1;
    }
    out[len] = '\0';
    return out;
}

void vm_log(enum vm_log_level level, const char *fmt, ...)
{
    bool to_stderr = level <= log_level;
    bool to_syslog = log_syslog && level <= log_syslog_level;
    if (!to_stderr && !to_syslog)
        return;
    char *msg;
    va_list ap;
    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    uint64_t now = vm_wall_ms();
    if (to_stderr) {
        if (!log_sink_known) {
            log_sink = vm_log_sink_of(STDERR_FILENO, getenv("JOURNAL_STREAM"));
            log_sink_known = true;
        }
        if (log_hook)
            log_hook(log_hook_data, false);
        char *text = vm_log_format(level, log_sink, now, msg);
        fputs(text, stderr);
        free(text);
        if (log_hook)
            log_hook(log_hook_data, true);
    }
    if (to_syslog) {
        char *text = vm_log_format(level, VM_LOG_SINK_SYSLOG, now, msg);
        for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
            *nl = '\0';
            syslog(vm_log_priority(level), "%s", line);
        }
        free(text);
    }
    free(msg);
}

char *vm_utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    /* Do not end inside a multi-byte character: drop continuation bytes
     * (10xxxxxx) and the lead byte they belong to. */
    if (n == max && s[n] != '\0') {
        size_t k = n;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        n = k;
    }
    return xstrndup(s, n);
}

int vm_write_atomic(const char *path, const char *data, size_t len)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            free(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

bool vm_process_alive(long pid)
{
    char path[64], buf[512];
    if (pid <= 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* pid (comm) STATE ...: comm may hold spaces and parentheses. */
    const char *p = strrchr(buf, ')');
    return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}
