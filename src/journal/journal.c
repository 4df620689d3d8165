/* journal.c — see journal.h. */
#include "journal/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

struct vm_journal {
    int fd;
    char *path;
    char run_id[64];
};

static int mkdir_p(const char *dir)
{
    char *p = xstrdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) < 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *s = '/';
        }
    }
    int rc = mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

struct vm_journal *vm_journal_open(const char *dir)
{
    if (mkdir_p(dir) < 0) {
        vm_error("journal: cannot create '%s': %s", dir, strerror(errno));
        return NULL;
    }
    struct vm_journal *j = xcalloc(1, sizeof(*j));
    char ts[32];
    vm_rfc3339(vm_wall_ms(), ts, sizeof(ts));
    for (char *c = ts; *c; c++)
        if (*c == ':')
            *c = '-';
    snprintf(j->run_id, sizeof(j->run_id), "%s-%d", ts, (int)getpid());
    j->path = xasprintf("%s/%s.ndjson", dir, j->run_id);
    j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        vm_error("journal: cannot create '%s': %s", j->path, strerror(errno));
        free(j->path);
        free(j);
        return NULL;
    }
    /* The new file's name must survive a crash too. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return j;
}

const char *vm_journal_run_id(const struct vm_journal *j)
{
    return j->run_id;
}

const char *vm_journal_path(const struct vm_journal *j)
{
    return j->path;
}

int vm_journal_write(struct vm_journal *j, const char *vm, const char *uuid, const char *source,
                     const char *target, const char *record, json_t *fields)
{
    json_t *o = fields ? fields : json_object();
    json_object_set_new(o, "ts", json_integer((json_int_t)vm_wall_ms()));
    json_object_set_new(o, "run", json_string(j->run_id));
    json_object_set_new(o, "record", json_string(record));
    if (vm)
        json_object_set_new(o, "vm", json_string(vm));
    if (uuid)
        json_object_set_new(o, "uuid", json_string(uuid));
    if (source)
        json_object_set_new(o, "source", json_string(source));
    if (target)
        json_object_set_new(o, "target", json_string(target));
    char *line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    size_t len = strlen(line);
    line[len] = '\n';
    ssize_t w = write(j->fd, line, len + 1);
    free(line);
    if (w != (ssize_t)(len + 1) || fdatasync(j->fd) < 0) {
        vm_error("journal: cannot write '%s': %s", j->path,
                 w < 0 ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

void vm_journal_close(struct vm_journal *j)
{
    if (!j)
        return;
    close(j->fd);
    free(j->path);
    free(j);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_journal(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 7 && strcmp(d->d_name + n - 7, ".ndjson") == 0;
}

json_t *vm_journal_read_dir(const char *dir, char **err)
{
    struct dirent **names;
    int n = scandir(dir, &names, is_journal, by_name);
    if (n < 0) {
        if (errno == ENOENT)
            return json_array();
        *err = xasprintf("cannot read journal directory '%s': %s", dir, strerror(errno));
        return NULL;
    }
    json_t *all = json_array();
    for (int i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]->d_name);
        FILE *f = fopen(path, "re");
        json_t *recs = json_array();
        char line[65536];
        while (f && fgets(line, sizeof(line), f)) {
            json_t *o = json_loads(line, 0, NULL);
            if (json_is_object(o))
                json_array_append_new(recs, o);
            else
                json_decref(o);
        }
        if (f)
            fclose(f);
        json_array_append_new(all, recs);
        free(path);
        free(names[i]);
    }
    free(names);
    return all;
}
