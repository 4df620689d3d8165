/* SPDX-License-Identifier: MIT */
/* journal.c — see journal.h. */
#include "journal/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util/fault.h"
#include "util/util.h"

struct vm_journal {
    int fd; /* -1 once a first record failed and the file was removed; -2 not yet
               created (vm_journal_new) */
    char *path;
    char *dir;
    char run_id[VM_JOURNAL_RUN_ID_SIZE];
    off_t size;     /* of the records written whole */
    unsigned count; /* records written whole and fsync'd */
};

/* ---- the records' checksum ---------------------------------------------- */

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320: the checksum of zlib,
 * gzip and PNG), four bits at a time. */
static uint32_t crc32_of(const char *s, size_t n)
{
    static const uint32_t nibble[16] = {
        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
        0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
        0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
    };
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= (unsigned char)s[i];
        c = (c >> 4) ^ nibble[c & 15];
        c = (c >> 4) ^ nibble[c & 15];
    }
    return c ^ 0xffffffffu;
}

/* The canonical form of a record: compact, keys sorted. */
static char *canonical(const json_t *o)
{
    return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

/* The checksum of O (which has no "crc") as its field's value. */
static void crc_field(const json_t *o, char out[9])
{
    char *c = canonical(o);
    snprintf(out, 9, "%08" PRIx32, crc32_of(c, strlen(c)));
    free(c);
}

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

static void sync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

void vm_journal_new_run_id(char out[VM_JOURNAL_RUN_ID_SIZE])
{
    /* The last millisecond an id was made of, in this process (ids are made
     * on the loop and on the thread pool). */
    static _Atomic uint64_t last_ms;
    uint64_t prev = atomic_load(&last_ms), ms;
    do {
        uint64_t now = vm_wall_ms();
        ms = now > prev ? now : prev + 1;
    } while (!atomic_compare_exchange_weak(&last_ms, &prev, ms));
    char ts[32];
    vm_rfc3339(ms, ts, sizeof(ts));
    for (char *c = ts; *c; c++)
        if (*c == ':')
            *c = '-';
    snprintf(out, VM_JOURNAL_RUN_ID_SIZE, "%s-%d", ts, (int)getpid());
}

struct vm_journal *vm_journal_open(const char *dir)
{
    char id[VM_JOURNAL_RUN_ID_SIZE];
    vm_journal_new_run_id(id);
    return vm_journal_open_as(dir, id);
}

struct vm_journal *vm_journal_new(const char *dir, const char *run_id)
{
    struct vm_journal *j = xcalloc(1, sizeof(*j));
    snprintf(j->run_id, sizeof(j->run_id), "%s", run_id);
    j->path = xasprintf("%s/%s.ndjson", dir, j->run_id);
    j->dir = xstrdup(dir);
    j->fd = -2;
    return j;
}

/* Create the file of a journal of vm_journal_new: 0, or -1 (logged; the
 * journal then takes no records). */
static int create(struct vm_journal *j)
{
    if (mkdir_p(j->dir) < 0) {
        vm_error("journal: cannot create '%s': %s", j->dir, strerror(errno));
        j->fd = -1;
        return -1;
    }
    j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        vm_error("journal: cannot create '%s': %s", j->path, strerror(errno));
        return -1;
    }
    /* The new file's name must survive a crash too. */
    sync_dir(j->dir);
    return 0;
}

struct vm_journal *vm_journal_open_as(const char *dir, const char *run_id)
{
    struct vm_journal *j = vm_journal_new(dir, run_id);
    if (create(j) < 0) {
        vm_journal_close(j);
        return NULL;
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

/* A journal whose first record failed holds nothing: it goes, and takes no
 * more records. */
static void remove_if_empty(struct vm_journal *j)
{
    if (j->count > 0)
        return;
    close(j->fd);
    j->fd = -1;
    if (unlink(j->path) == 0)
        sync_dir(j->dir);
}

unsigned vm_journal_count(const struct vm_journal *j)
{
    return j->count;
}

int vm_journal_write(struct vm_journal *j, const char *vm, const char *uuid, const char *source,
                     const char *target, const char *record, json_t *fields)
{
    json_t *o = fields ? fields : json_object();
    if (j->fd == -2)
        create(j);
    if (j->fd < 0) { /* removed: its first record failed (said then), or never created */
        json_decref(o);
        return -1;
    }
    json_object_del(o, "crc");
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
    char crc[9];
    crc_field(o, crc);
    json_object_set_new(o, "crc", json_string(crc));
    char *line = canonical(o);
    json_decref(o);
    size_t len = strlen(line);
    line[len] = '\n';
    errno = 0;
    ssize_t w = -1;
    if (vm_fault("journal-write")) /* tests: as if the disk were full */
        errno = ENOSPC;
    else
        w = write(j->fd, line, len + 1);
    free(line);
    if (w == (ssize_t)(len + 1) && fdatasync(j->fd) == 0) {
        j->size += w;
        j->count++;
        return 0;
    }
    vm_error("journal: cannot write '%s': %s", j->path, errno ? strerror(errno) : "short write");
    /* No torn line is left behind where it can be helped. */
    if (ftruncate(j->fd, j->size) == 0)
        fdatasync(j->fd);
    remove_if_empty(j);
    return -1;
}

bool vm_journal_reserve(struct vm_journal *j)
{
    struct statvfs st;
    if (j->fd < 0)
        return false;
    unsigned long long room = 0;
    bool ok = fstatvfs(j->fd, &st) < 0; /* cannot tell: the writes will */
    if (!ok) {
        room = (unsigned long long)st.f_bavail * st.f_frsize;
        ok = room >= VM_JOURNAL_ROOM;
    }
    /* The blocks the records will take, past the end (the file's size
     * unchanged): taken now, a disk that fills meanwhile cannot take them.
     * A filesystem that cannot preallocate is only asked how full it is. */
    if (ok && fallocate(j->fd, FALLOC_FL_KEEP_SIZE, j->size, VM_JOURNAL_ROOM) < 0 &&
        errno == ENOSPC)
        ok = false;
    if (ok)
        return true;
    vm_error("journal: the filesystem of '%s' is full (%llu bytes free, a migration's records "
             "need %d)",
             j->path, room, VM_JOURNAL_ROOM);
    remove_if_empty(j);
    return false;
}

void vm_journal_close(struct vm_journal *j)
{
    if (!j)
        return;
    if (j->fd >= 0) {
        if (ftruncate(j->fd, j->size) < 0) /* what vm_journal_reserve took and left */
            vm_debug("journal: cannot give back the room reserved past '%s': %s", j->path,
                     strerror(errno));
        close(j->fd);
    }
    free(j->path);
    free(j->dir);
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
    [VM_JOURNAL_KIND_STEP_STARTED] = "step-started",
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

/* Does O's "crc" (if any: older builds wrote none) match the record? */
static bool crc_ok(json_t *o)
{
    json_t *crc = json_object_get(o, "crc");
    if (!crc)
        return true;
    const char *want = json_string_value(crc);
    if (!want)
        return false;
    json_incref(crc);
    json_object_del(o, "crc");
    char got[9];
    crc_field(o, got);
    json_object_set_new(o, "crc", crc);
    return strcmp(want, got) == 0;
}

int vm_journal_parse_line(const char *line, struct vm_journal_record *r)
{
    json_t *o = json_loads(line, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return VM_JOURNAL_NOT_JSON;
    }
    if (!crc_ok(o)) {
        json_decref(o);
        return VM_JOURNAL_BAD_CRC;
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

char *vm_journal_run_of_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 7 && strcmp(base + n - 7, ".ndjson") == 0)
        n -= 7;
    return xstrndup(base, n);
}

static bool blank(const char *line)
{
    return line[strspn(line, " \t\r\n")] == '\0';
}

/* One journal, line by line: each record of its own run to cb; every other
 * line to skip (its number from 1, why), with *hides set when what could
 * not be read may have been a record that mattered: the first line, or a
 * line that is not the last one torn by a crash mid-write. */
typedef void (*skip_cb)(const char *path, int line, const char *why, void *data);

static int read_journal(const char *path, vm_journal_record_cb cb, void *data, skip_cb skip,
                        void *skip_data, bool *hides, char **err)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        *err = xasprintf("cannot open journal '%s': %s", path, strerror(errno));
        return -1;
    }
    char *run = vm_journal_run_of_path(path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    *hides = false;
    for (int no = 1; (len = getline(&line, &cap, f)) >= 0; no++) {
        struct vm_journal_record r;
        bool torn_tail = len > 0 && line[len - 1] != '\n';
        int rc = vm_journal_parse_line(line, &r);
        const char *why = NULL;
        if (rc == 0 && (!r.run || strcmp(r.run, run) != 0)) {
            why = r.run ? "a record of another run" : "a record of no run";
            json_decref(r.json);
        } else if (rc == VM_JOURNAL_BAD_CRC) {
            why = "the checksum does not match: a damaged record";
        } else if (rc < 0) {
            why = blank(line) ? "an empty line"
                  : torn_tail ? "not a whole record (torn: a crash while it was written?)"
                              : "not a JSON object (garbage, or a torn record)";
        }
        if (why) {
            if (rc < 0 && !blank(line) && (no == 1 || !torn_tail))
                *hides = true;
            skip(path, no, why, skip_data);
            continue;
        }
        cb(&r, data);
        json_decref(r.json);
    }
    free(line);
    free(run);
    fclose(f);
    return 0;
}

static void warn_skip(const char *path, int line, const char *why, void *data)
{
    (void)data;
    vm_warn("journal: %s:%d: %s: ignored", path, line, why);
}

int vm_journal_read(const char *path, vm_journal_record_cb cb, void *data, char **err)
{
    bool hides;
    int rc = read_journal(path, cb, data, warn_skip, NULL, &hides, err);
    if (rc == 0 && hides)
        vm_warn("journal: %s: a record that cannot be read may hide an open migration", path);
    return rc;
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

static void collect_skip(const char *path, int line, const char *why, void *data)
{
    struct vm_journal_records *out = data;
    json_array_append_new(out->skipped,
                          json_pack("{s:s, s:i, s:s}", "file", path, "line", line, "why", why));
}

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
    *out = (struct vm_journal_records){.skipped = json_array(), .unreadable = json_array()};
    struct reading rd = {.out = out};
    struct dirent **names;
    int n = scandir(dir, &names, is_journal, by_name);
    if (n < 0) {
        int e = errno;
        vm_journal_records_clear(out); /* nothing to own */
        if (e == ENOENT)
            return 0;
        errno = e;
        *err = xasprintf("cannot read journal directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]->d_name);
        char *gone = NULL;
        bool hides = false;
        if (read_journal(path, keep, &rd, collect_skip, out, &hides, &gone) < 0)
            free(gone); /* removed meanwhile: an empty journal */
        if (hides)
            json_array_append_new(out->unreadable, json_string(path));
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
    json_decref(recs->skipped);
    json_decref(recs->unreadable);
    *recs = (struct vm_journal_records){0};
}

void vm_journal_records_warn(const struct vm_journal_records *recs, const char *who)
{
    size_t i;
    json_t *s;
    json_array_foreach(recs->skipped, i, s)
    {
        vm_warn("%s: journal %s:%d: %s: ignored", who,
                json_string_value(json_object_get(s, "file")),
                (int)json_integer_value(json_object_get(s, "line")),
                json_string_value(json_object_get(s, "why")));
    }
}

int vm_journal_lock_settle(const char *dir, int wait_ms, char **err)
{
    *err = NULL;
    char *path = xasprintf("%s/recover.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        struct stat st;
        if (e == ENOENT && stat(dir, &st) < 0) {
            free(path);
            return -2;
        }
        *err = xasprintf("cannot open '%s': %s", path, strerror(e));
        free(path);
        return -1;
    }
    uint64_t until = vm_mono_ms() + (uint64_t)wait_ms;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            *err = xasprintf("cannot lock '%s': %s", path, strerror(errno));
            break;
        }
        if (vm_mono_ms() >= until) {
            *err = xasprintf("'%s' is held by another recover for more than %d s", path,
                             wait_ms / 1000);
            break;
        }
        usleep(100 * 1000);
    }
    free(path);
    if (*err) {
        close(fd);
        return -1;
    }
    return fd;
}
