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

#include "util/util.h"

/* The PID in an open lock file, or 0. */
static pid_t read_pid(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    return n > 0 ? (pid_t)atoi(buf) : 0;
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
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) < 0)
        vm_debug("cannot write our PID into the lock");
    return fd;
}

pid_t vm_lock_holder(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* Held? Then its PID is the run's. */
    pid_t pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0)
        pid = read_pid(fd);
    close(fd);
    return pid;
}
