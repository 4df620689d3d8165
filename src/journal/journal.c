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

/* ---- reading ----------------------------------------------------------- */

static const char *const kind_names[] = {
    [VM_JOURNAL_KIND_STARTED] = "started",
    [VM_JOURNAL_KIND_GATE_REACHED] = "gate-reached",
    [VM_JOURNAL_KIND_COMMIT_DECIDED] = "commit-decided",
    [VM_JOURNAL_KIND_ROLLBACK_DECIDED] = "rollback-decided",
    [VM_JOURNAL_KIND_FINISHED] = "finished",
    [VM_JOURNAL_KIND_DEINIT_DONE] = "deinit-done",
    [VM_JOURNAL_KIND_AFTER_DONE] = "after-done",
    [VM_JOURNAL_KIND_RECOVERED] = "recovered",
};

const char *vm_journal_kind_name(enum vm_journal_kind kind)
{
    return (size_t)kind < VM_ARRAY_LEN(kind_names) ? kind_names[kind] : NULL;
}

static enum vm_journal_kind kind_of(const char *record)
{
    for (size_t k = 1; record && k < VM_ARRAY_LEN(kind_names); k++)
        if (strcmp(record, kind_names[k]) == 0)
            return (enum vm_journal_kind)k;
    return VM_JOURNAL_KIND_UNKNOWN;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

int vm_journal_parse_line(const char *line, struct vm_journal_record *r)
{
    json_t *o = json_loads(line, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    *r = (struct vm_journal_record){
        .json = o,
        .record = str(o, "record"),
        .run = str(o, "run"),
        .of_run = str(o, "of_run"),
        .about_earlier = json_object_get(o, "of_run") != NULL,
        .vm = str(o, "vm"),
        .uuid = str(o, "uuid"),
        .source = str(o, "source"),
        .target = str(o, "target"),
        .ts = json_integer_value(json_object_get(o, "ts")),
    };
    r->kind = kind_of(r->record);
    return 0;
}

bool vm_journal_record_about(const struct vm_journal_record *r, const char *run, const char *uuid)
{
    const char *about = r->of_run ? r->of_run : r->run;
    return r->uuid && strcmp(r->uuid, uuid) == 0 && about && strcmp(about, run) == 0;
}

int vm_journal_read(const char *path, vm_journal_record_cb cb, void *data, char **err)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        *err = xasprintf("cannot open journal '%s': %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        struct vm_journal_record r;
        if (vm_journal_parse_line(line, &r) < 0)
            continue;
        cb(&r, data);
        json_decref(r.json);
    }
    free(line);
    fclose(f);
    return 0;
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

struct reading {
    struct vm_journal_records *out;
    size_t cap;
};

static void keep(const struct vm_journal_record *r, void *data)
{
    struct reading *rd = data;
    struct vm_journal_records *out = rd->out;
    if (out->n == rd->cap) {
        rd->cap = rd->cap ? 2 * rd->cap : 64;
        out->v = xrealloc(out->v, rd->cap * sizeof(*out->v));
    }
    struct vm_journal_record *k = &out->v[out->n++];
    *k = *r;
    json_incref(k->json);
    k->file = out->nfiles;
}

int vm_journal_read_dir(const char *dir, struct vm_journal_records *out, char **err)
{
    *out = (struct vm_journal_records){0};
    struct reading rd = {.out = out};
    struct dirent **names;
    int n = scandir(dir, &names, is_journal, by_name);
    if (n < 0) {
        if (errno == ENOENT)
            return 0;
        *err = xasprintf("cannot read journal directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]->d_name);
        char *gone = NULL;
        if (vm_journal_read(path, keep, &rd, &gone) < 0)
            free(gone); /* removed meanwhile: an empty journal */
        out->nfiles++;
        free(path);
        free(names[i]);
    }
    free(names);
    return 0;
}

void vm_journal_records_clear(struct vm_journal_records *recs)
{
    if (!recs)
        return;
    for (size_t i = 0; i < recs->n; i++)
        json_decref(recs->v[i].json);
    free(recs->v);
    *recs = (struct vm_journal_records){0};
}
