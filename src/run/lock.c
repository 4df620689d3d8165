/* SPDX-License-Identifier: MIT */
/* lock.c — see lock.h. */
#include "run/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "util/util.h"

/* What an open lock file says of its holder: 0 if nothing (pid 0). */
static int read_entry(int fd, struct vm_lock_entry *e)
{
    char buf[4096] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    memset(e, 0, sizeof(*e));
    json_t *o = n > 0 ? json_loadb(buf, (size_t)n, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    if (json_is_object(o)) {
        e->pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
        e->source = xstrdup(json_string_value(json_object_get(o, "source")) ?: "");
        e->hostname = xstrdup(json_string_value(json_object_get(o, "hostname")) ?: "");
        e->run = xstrdup(json_string_value(json_object_get(o, "run")) ?: "");
    } else if (n > 0) {
        e->pid = (pid_t)atoi(buf); /* a bare PID */
    }
    json_decref(o);
    if (!e->source) {
        e->source = xstrdup("");
        e->hostname = xstrdup("");
        e->run = xstrdup("");
    }
    return e->pid > 0;
}

static pid_t read_pid(int fd)
{
    struct vm_lock_entry e;
    read_entry(fd, &e);
    vm_lock_entry_clear(&e);
    return e.pid;
}

void vm_lock_note(int fd, const char *source, const char *hostname, const char *run)
{
    json_t *o =
        json_pack("{s:i, s:s, s:s, s:s}", "pid", (int)getpid(), "source", source ? source : "",
                  "hostname", hostname ? hostname : "", "run", run ? run : "");
    char *text = json_dumps(o, JSON_COMPACT);
    char *line = xasprintf("%s\n", text);
    /* one write at offset 0, then cut what an older, longer note left */
    if (pwrite(fd, line, strlen(line), 0) < 0 || ftruncate(fd, (off_t)strlen(line)) < 0)
        vm_debug("cannot write who holds the lock: %s", strerror(errno));
    free(line);
    free(text);
    json_decref(o);
}

int vm_lock_take(const char *dir, const char *key, pid_t *holder)
{
    mkdir(dir, 0755);
    char *name = xstrdup(key);
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            *c = '_';
    char *path = xasprintf("%s/%s.lock", dir, name);
    free(name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    *holder = 0;
    if (fd < 0) {
        vm_warn("cannot open the lock '%s': %s (going on without it)", path, strerror(errno));
        free(path);
        return -2;
    }
    free(path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        *holder = read_pid(fd);
        close(fd);
        return -1;
    }
    vm_lock_note(fd, NULL, NULL, NULL);
    return fd;
}

int vm_lock_read(const char *path, struct vm_lock_entry *e)
{
    memset(e, 0, sizeof(*e));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* Held? Then what it says is the run's. */
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0)
        held = read_entry(fd, e);
    close(fd);
    if (!held)
        vm_lock_entry_clear(e);
    return held;
}

void vm_lock_entry_clear(struct vm_lock_entry *e)
{
    free(e->source);
    free(e->hostname);
    free(e->run);
    e->source = e->hostname = e->run = NULL;
}
