/* SPDX-License-Identifier: MIT */
/* test_journal.c — the journal's one record parser (journal.c), on the
 * journals in tests/unit/journal/ (see its README.txt): the fields of a
 * record and its kind, a torn last line, garbage and JSON that is not an
 * object skipped, records of another run (of_run), the journals of a
 * directory oldest first, what the writer writes read back, a line longer
 * than any buffer, and `vmmigrate status` on the same journals. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"
#include "journal/journal.h"
#include "util/util.h"

#define RUN_A "2026-01-01T00-00-00.000Z-101"
#define RUN_B "2026-01-01T00-10-00.000Z-102"
#define LONG_RUN "2026-01-01T00-00-00.000Z-1"

/* tests/unit/journal/NAME. */
static char *fixture(const char *name)
{
    char *rel = xasprintf("journal/%s", name);
    char *path = vm_test_path(rel);
    free(rel);
    return path;
}

static void test_parse_line(void)
{
    struct vm_journal_record r;
    CHECK_INT(vm_journal_parse_line("{\"record\":\"finished\",\"run\":\"r1\",\"vm\":\"web1\","
                                    "\"uuid\":\"u1\",\"source\":\"s\",\"target\":\"t\","
                                    "\"ts\":1767225600000,\"result\":\"migrated\"}\n",
                                    &r),
              ==, 0);
    CHECK_INT(r.kind, ==, VM_JOURNAL_KIND_FINISHED);
    CHECK_STR(r.record, "finished");
    CHECK_STR(r.run, "r1");
    CHECK_STR(r.vm, "web1");
    CHECK_STR(r.uuid, "u1");
    CHECK_STR(r.source, "s");
    CHECK_STR(r.target, "t");
    CHECK_INT(r.ts, ==, 1767225600000LL);
    CHECK(r.of_run == NULL);
    CHECK(!r.about_earlier);
    CHECK_INT(r.file, ==, 0);
    CHECK_STR(json_string_value(json_object_get(r.json, "result")), "migrated"); /* the raw JSON */
    json_decref(r.json);

    /* Fields that are not strings (or not there) are NULL. */
    CHECK_INT(vm_journal_parse_line("{\"record\":7,\"run\":5,\"vm\":null,\"ts\":\"x\"}", &r), ==,
              0);
    CHECK_INT(r.kind, ==, VM_JOURNAL_KIND_UNKNOWN);
    CHECK(r.record == NULL && r.run == NULL && r.vm == NULL && r.uuid == NULL);
    CHECK_INT(r.ts, ==, 0);
    json_decref(r.json);

    /* A kind this version does not know: kept, by its name. */
    CHECK_INT(vm_journal_parse_line("{\"record\":\"paused-for-lunch\"}", &r), ==, 0);
    CHECK_INT(r.kind, ==, VM_JOURNAL_KIND_UNKNOWN);
    CHECK_STR(r.record, "paused-for-lunch");
    json_decref(r.json);

    /* About an earlier run; an of_run that is not a string still says so. */
    CHECK_INT(
        vm_journal_parse_line("{\"record\":\"recovered\",\"run\":\"r2\",\"of_run\":\"r1\"}", &r),
        ==, 0);
    CHECK_INT(r.kind, ==, VM_JOURNAL_KIND_RECOVERED);
    CHECK_STR(r.of_run, "r1");
    CHECK(r.about_earlier);
    json_decref(r.json);
    CHECK_INT(vm_journal_parse_line("{\"record\":\"recovered\",\"of_run\":5}", &r), ==, 0);
    CHECK(r.of_run == NULL);
    CHECK(r.about_earlier);
    json_decref(r.json);

    /* Not a JSON object: a torn line, garbage, other JSON, nothing. */
    static const char *const bad[] = {
        "{\"record\":\"rollback-decided\",\"run\":\"r1\",\"sou",
        "this line is garbage\n",
        "[1, 2, 3]\n",
        "\"finished\"\n",
        "42\n",
        "{} {}\n",
        "\n",
        "",
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++) {
        r.json = NULL;
        if (vm_journal_parse_line(bad[i], &r) == 0)
            CHECK_FAIL("line '%s' parsed", bad[i]);
        CHECK(r.json == NULL);
    }
}

/* A record's "crc" is zlib's crc32 of its canonical JSON without it (the
 * value below is Python's zlib.crc32 of that text); a record it does not
 * match is damaged; records of older builds have none and are read. */
#define CRC_REC(vm, crc)                                                                           \
    "{\"crc\":\"" crc "\",\"features\":[{\"name\":\"announce\",\"ok\":true}],"                     \
    "\"location\":\"target\",\"reason\":\"caf\xc3\xa9 / \\\"q\\\"\",\"record\":\"finished\","      \
    "\"result\":\"migrated\",\"run\":\"2026-01-01T00-00-00.000Z-7\",\"ts\":1767225600000,"         \
    "\"uuid\":\"u1\",\"vm\":\"" vm "\"}\n"

static void test_checksum(void)
{
    struct vm_journal_record r;
    CHECK_INT(vm_journal_parse_line(CRC_REC("web1", "73093644"), &r), ==, 0);
    CHECK_INT(r.kind, ==, VM_JOURNAL_KIND_FINISHED);
    CHECK_STR(r.vm, "web1");
    CHECK_STR(json_string_value(json_object_get(r.json, "crc")), "73093644"); /* as written */
    json_decref(r.json);
    /* One field changed, a checksum changed, one that is no string. */
    r.json = NULL;
    CHECK_INT(vm_journal_parse_line(CRC_REC("web2", "73093644"), &r), ==, VM_JOURNAL_BAD_CRC);
    CHECK(r.json == NULL);
    CHECK_INT(vm_journal_parse_line(CRC_REC("web1", "73093645"), &r), ==, VM_JOURNAL_BAD_CRC);
    CHECK_INT(vm_journal_parse_line("{\"crc\":73093644,\"record\":\"started\"}", &r), ==,
              VM_JOURNAL_BAD_CRC);
    /* The same record of an older build (no crc): read. */
    CHECK_INT(vm_journal_parse_line("{\"location\":\"target\",\"record\":\"finished\",\"run\":"
                                    "\"2026-01-01T00-00-00.000Z-7\",\"vm\":\"web2\"}",
                                    &r),
              ==, 0);
    CHECK_STR(r.vm, "web2");
    CHECK(json_object_get(r.json, "crc") == NULL);
    json_decref(r.json);
    CHECK_INT(vm_journal_parse_line("garbage\n", &r), ==, VM_JOURNAL_NOT_JSON);
    char *run = vm_journal_run_of_path("/x/y/2026-01-01T00-00-00.000Z-7.ndjson");
    CHECK_STR(run, "2026-01-01T00-00-00.000Z-7");
    free(run);
}

static void test_kind_names(void)
{
    static const char *const names[] = {
        "started",     "gate-reached", "commit-decided", "rollback-decided", "finished",
        "deinit-done", "after-done",   "recovered",      "step-started",
    };
    CHECK(vm_journal_kind_name(VM_JOURNAL_KIND_UNKNOWN) == NULL);
    for (size_t i = 0; i < VM_ARRAY_LEN(names); i++) {
        char *line = xasprintf("{\"record\":\"%s\"}", names[i]);
        struct vm_journal_record r;
        CHECK_INT(vm_journal_parse_line(line, &r), ==, 0);
        CHECK_INT(r.kind, ==, VM_JOURNAL_KIND_STARTED + (int)i);
        CHECK_STR(vm_journal_kind_name(r.kind), names[i]);
        json_decref(r.json);
        free(line);
    }
    CHECK(vm_journal_kind_name(VM_JOURNAL_KIND_STEP_STARTED + 1) == NULL);
}

static void test_about(void)
{
    struct vm_journal_record own, of, other;
    CHECK_INT(vm_journal_parse_line("{\"run\":\"r1\",\"uuid\":\"u1\"}", &own), ==, 0);
    CHECK_INT(vm_journal_parse_line("{\"run\":\"r2\",\"of_run\":\"r1\",\"uuid\":\"u1\"}", &of), ==,
              0);
    CHECK_INT(vm_journal_parse_line("{\"run\":\"r1\"}", &other), ==, 0);
    CHECK(vm_journal_record_about(&own, "r1", "u1"));
    CHECK(!vm_journal_record_about(&own, "r1", "u2"));
    CHECK(!vm_journal_record_about(&own, "r2", "u1"));
    CHECK(vm_journal_record_about(&of, "r1", "u1")); /* about r1, written by r2 */
    CHECK(!vm_journal_record_about(&of, "r2", "u1"));
    CHECK(!vm_journal_record_about(&other, "r1", "u1")); /* no uuid */
    json_decref(own.json);
    json_decref(of.json);
    json_decref(other.json);
}

/* "kind vm" of each record read, one a line. */
static void describe(const struct vm_journal_record *r, void *data)
{
    char **s = data;
    char *more = xasprintf("%s%s %s\n", *s, r->record ? r->record : "-", r->vm ? r->vm : "-");
    free(*s);
    *s = more;
}

static void test_read_torn_and_garbage(void)
{
    char *path = fixture(RUN_A ".ndjson"), *err = NULL, *got = xstrdup("");
    CHECK_INT(vm_journal_read(path, describe, &got, &err), ==, 0);
    /* The garbage, the array, the empty line and the torn last line are
     * gone; the unknown kind is kept. */
    CHECK_STR(got, "started web1\n"
                   "gate-reached web1\n"
                   "commit-decided web1\n"
                   "finished web1\n"
                   "started db1\n"
                   "gate-reached db1\n"
                   "paused-for-lunch app1\n");
    free(got);
    free(path);

    got = xstrdup("");
    CHECK_INT(vm_journal_read("/nonexistent/x.ndjson", describe, &got, &err), ==, -1);
    CHECK_STR(err, "cannot open journal '/nonexistent/x.ndjson': No such file or directory");
    CHECK_STR(got, "");
    free(err);
    free(got);
}

static void test_read_dir(void)
{
    char *dir = fixture(""), *err = NULL;
    struct vm_journal_records all;
    CHECK_INT(vm_journal_read_dir(dir, &all, &err), ==, 0);
    CHECK_INT(all.nfiles, ==, 2); /* README.txt is no journal */
    CHECK_INT(all.n, ==, 10);
    for (size_t i = 0; i < all.n; i++) {
        CHECK_INT(all.v[i].file, ==, i < 7 ? 0 : 1);
        CHECK_STR(all.v[i].run, all.v[i].file == 0 ? RUN_A : RUN_B);
    }
    CHECK_INT(all.v[0].kind, ==, VM_JOURNAL_KIND_STARTED);
    CHECK_INT(all.v[6].kind, ==, VM_JOURNAL_KIND_UNKNOWN);
    const struct vm_journal_record *rec = &all.v[7], *deinit = &all.v[8], *odd = &all.v[9];
    CHECK_INT(rec->kind, ==, VM_JOURNAL_KIND_RECOVERED);
    CHECK_STR(rec->of_run, RUN_A);
    CHECK(vm_journal_record_about(rec, RUN_A, "u2"));
    CHECK(!vm_journal_record_about(rec, RUN_B, "u2"));
    CHECK_INT(deinit->kind, ==, VM_JOURNAL_KIND_DEINIT_DONE);
    CHECK(json_is_true(json_object_get(deinit->json, "ok")));
    CHECK(odd->about_earlier && odd->of_run == NULL);
    CHECK(!vm_journal_record_about(odd, RUN_A, "u3"));
    vm_journal_records_clear(&all);
    CHECK_INT(all.n, ==, 0);
    vm_journal_records_clear(&all);
    vm_journal_records_clear(NULL);

    /* No directory: no journals. Not a directory: an error. */
    CHECK_INT(vm_journal_read_dir("/nonexistent/journals", &all, &err), ==, 0);
    CHECK_INT(all.n, ==, 0);
    CHECK_INT(all.nfiles, ==, 0);
    char *file = fixture("README.txt");
    CHECK_INT(vm_journal_read_dir(file, &all, &err), ==, -1);
    CHECK_CONTAINS(err, "cannot read journal directory '");
    CHECK_CONTAINS(err, "README.txt': Not a directory");
    free(err);
    free(file);
    free(dir);
}

static char *temp_dir(void)
{
    char *dir = xstrdup("/tmp/vmm-test-journal-XXXXXX");
    if (!mkdtemp(dir))
        CHECK_FAIL("mkdtemp: %s", strerror(errno));
    return dir;
}

static void remove_dir(char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    CHECK_INT(system(cmd), ==, 0);
    free(cmd);
    free(dir);
}

/* What vm_journal_write writes, the parser reads. */
static void test_write_read(void)
{
    char *dir = temp_dir(), *err = NULL;
    struct vm_journal *j = vm_journal_open(dir);
    CHECK(j);
    char *run = xstrdup(vm_journal_run_id(j));
    for (int k = VM_JOURNAL_KIND_STARTED; k <= VM_JOURNAL_KIND_RECOVERED; k++)
        CHECK_INT(
            vm_journal_write(
                j, "web1", "u1", "qemu:///s", "qemu:///t", vm_journal_kind_name(k),
                k == VM_JOURNAL_KIND_RECOVERED ? json_pack("{s:s}", "of_run", "earlier-1") : NULL),
            ==, 0);
    CHECK_INT(vm_journal_write(j, NULL, NULL, NULL, NULL, "finished", NULL), ==, 0);
    vm_journal_close(j);

    struct vm_journal_records all;
    CHECK_INT(vm_journal_read_dir(dir, &all, &err), ==, 0);
    CHECK_INT(all.nfiles, ==, 1);
    CHECK_INT(all.n, ==, VM_JOURNAL_KIND_RECOVERED + 1);
    for (size_t i = 0; i + 1 < all.n; i++) {
        const struct vm_journal_record *r = &all.v[i];
        CHECK_INT(r->kind, ==, VM_JOURNAL_KIND_STARTED + (int)i);
        CHECK_STR(r->run, run);
        CHECK_STR(r->vm, "web1");
        CHECK_STR(r->uuid, "u1");
        CHECK_STR(r->source, "qemu:///s");
        CHECK_STR(r->target, "qemu:///t");
        CHECK_INT(r->ts, >, 0);
        CHECK_INT(r->about_earlier, ==, r->kind == VM_JOURNAL_KIND_RECOVERED);
    }
    CHECK_STR(all.v[all.n - 2].of_run, "earlier-1");
    const struct vm_journal_record *bare = &all.v[all.n - 1];
    CHECK(bare->vm == NULL && bare->uuid == NULL && bare->source == NULL);
    CHECK_STR(bare->run, run);
    vm_journal_records_clear(&all);
    free(run);
    remove_dir(dir);
}

/* A run's id is made before its journal: the time and the PID
 * (recover reads the PID back), never twice in a process however fast ids
 * are made; a journal opened as that id is named after it and its records
 * carry it. */
static void test_run_id(void)
{
    char ids[50][VM_JOURNAL_RUN_ID_SIZE];
    for (int i = 0; i < 50; i++)
        vm_journal_new_run_id(ids[i]);
    char pid[16];
    snprintf(pid, sizeof(pid), "-%d", (int)getpid());
    for (int i = 0; i < 50; i++) {
        CHECK_INT(strlen(ids[i]), ==, strlen("2024-05-01T02-00-03.512Z") + strlen(pid));
        CHECK_STR(ids[i] + strlen(ids[i]) - strlen(pid), pid);
        CHECK(!strchr(ids[i], ':') && !strchr(ids[i], '/'));
        for (int k = 0; k < i; k++)
            if (strcmp(ids[i], ids[k]) == 0)
                CHECK_FAIL("run id '%s' made twice", ids[i]);
        /* named by time: sorted as made */
        CHECK_INT(i == 0 || strcmp(ids[i - 1], ids[i]) < 0, ==, 1);
    }
    char *dir = temp_dir(), *err = NULL;
    struct vm_journal *j = vm_journal_open_as(dir, ids[7]);
    CHECK(j);
    CHECK_STR(vm_journal_run_id(j), ids[7]);
    char *want = xasprintf("%s/%s.ndjson", dir, ids[7]);
    CHECK_STR(vm_journal_path(j), want);
    CHECK(!vm_journal_open_as(dir, ids[7])); /* one journal per run */
    CHECK_INT(vm_journal_write(j, "web1", "u1", "qemu:///s", "qemu:///t", "started", NULL), ==, 0);
    vm_journal_close(j);
    struct vm_journal_records all;
    CHECK_INT(vm_journal_read_dir(dir, &all, &err), ==, 0);
    CHECK_INT(all.n, ==, 1);
    CHECK_STR(all.v[0].run, ids[7]);
    vm_journal_records_clear(&all);
    free(want);

    /* recover's: no file until its first record, then named after its id */
    char *sub = xasprintf("%s/later", dir);
    j = vm_journal_new(sub, ids[9]);
    want = xasprintf("%s/%s.ndjson", sub, ids[9]);
    CHECK_STR(vm_journal_path(j), want);
    CHECK_INT(vm_journal_count(j), ==, 0);
    CHECK(access(sub, F_OK) != 0);
    CHECK_INT(vm_journal_write(j, "web1", "u1", "qemu:///s", "qemu:///t", "recovered",
                               json_pack("{s:s}", "of_run", ids[7])),
              ==, 0);
    CHECK_INT(vm_journal_write(j, "web2", "u2", "qemu:///s", "qemu:///t", "recovered",
                               json_pack("{s:s}", "of_run", ids[7])),
              ==, 0);
    CHECK_INT(vm_journal_count(j), ==, 2);
    vm_journal_close(j);
    CHECK_INT(vm_journal_read_dir(sub, &all, &err), ==, 0);
    CHECK_INT(all.nfiles, ==, 1);
    CHECK_INT(all.n, ==, 2);
    CHECK_STR(all.v[1].run, ids[9]);
    vm_journal_records_clear(&all);
    free(want);
    free(sub);
    remove_dir(dir);
}

/* The writer's records carry a checksum the parser verifies: one byte
 * changed in the file and the record is damaged. */
static void test_checksum_round_trip(void)
{
    char *dir = temp_dir();
    struct vm_journal *j = vm_journal_open(dir);
    CHECK(j);
    CHECK_INT(vm_journal_count(j), ==, 0);
    CHECK_INT(vm_journal_write(j, "web1", "u1", "qemu:///s", "qemu:///t", "started",
                               json_pack("{s:b, s:[], s:f}", "gated", 1, "features", "load", 0.25)),
              ==, 0);
    CHECK_INT(vm_journal_count(j), ==, 1);
    FILE *f = fopen(vm_journal_path(j), "re");
    CHECK(f);
    char *line = NULL;
    size_t cap = 0;
    CHECK_INT(getline(&line, &cap, f), >, 0);
    fclose(f);
    struct vm_journal_record r;
    CHECK_INT(vm_journal_parse_line(line, &r), ==, 0);
    const char *crc = json_string_value(json_object_get(r.json, "crc"));
    CHECK(crc && strlen(crc) == 8 && strspn(crc, "0123456789abcdef") == 8);
    CHECK_STR(r.run, vm_journal_run_id(j));
    json_decref(r.json);
    char *at = strstr(line, "web1");
    CHECK(at);
    at[3] = '2';
    CHECK_INT(vm_journal_parse_line(line, &r), ==, VM_JOURNAL_BAD_CRC);
    free(line);
    vm_journal_close(j);
    remove_dir(dir);
}

/* Point the journal's descriptor at /dev/full: every write fails (ENOSPC). */
static void fill_disk(struct vm_journal *j)
{
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    CHECK_INT(full, >=, 0);
    for (int fd = 3; fd < 1024; fd++) {
        char link[64], target[4096];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, vm_journal_path(j)) == 0) {
            CHECK_INT(dup2(full, fd), ==, fd);
            close(full);
            return;
        }
    }
    CHECK_FAIL("the journal's descriptor is not open");
}

/* A journal whose first record cannot be written leaves nothing behind and
 * takes no more; one that fails later keeps what it holds. */
static void test_write_fails(void)
{
    char *dir = temp_dir();
    struct vm_journal *j = vm_journal_open(dir);
    CHECK(j);
    char *path = xstrdup(vm_journal_path(j));
    CHECK_INT(access(path, F_OK), ==, 0);
    fill_disk(j);
    CHECK_INT(vm_journal_write(j, "web1", "u1", "s", "t", "started", NULL), ==, -1);
    CHECK_INT(vm_journal_count(j), ==, 0);
    CHECK_INT(access(path, F_OK), ==, -1); /* removed: the run did nothing */
    CHECK_INT(vm_journal_write(j, "web1", "u1", "s", "t", "finished", NULL), ==, -1);
    vm_journal_close(j);
    free(path);

    j = vm_journal_open(dir);
    CHECK(j);
    path = xstrdup(vm_journal_path(j));
    CHECK_INT(vm_journal_write(j, "web1", "u1", "s", "t", "started", NULL), ==, 0);
    fill_disk(j);
    CHECK_INT(vm_journal_write(j, "web1", "u1", "s", "t", "gate-reached", NULL), ==, -1);
    CHECK_INT(vm_journal_count(j), ==, 1);
    vm_journal_close(j);
    char *err = NULL, *got = xstrdup("");
    CHECK_INT(vm_journal_read(path, describe, &got, &err), ==, 0);
    CHECK_STR(got, "started web1\n");
    free(got);
    free(path);
    remove_dir(dir);
}

/* The fault point journal-write (fail) fails the Nth record as a full disk
 * would: here the second, the first one kept. */
static void test_write_fault_point(void)
{
    setenv("VMM_FAULT", "journal-write:fail@2", 1);
    char *dir = temp_dir();
    struct vm_journal *j = vm_journal_open(dir);
    CHECK(j);
    CHECK_INT(vm_journal_write(j, "web1", "u1", "s", "t", "started", NULL), ==, 0);
    CHECK_INT(vm_journal_write(j, "web1", "u1", "s", "t", "gate-reached", NULL), ==, -1);
    CHECK_INT(vm_journal_write(j, "web1", "u1", "s", "t", "finished", NULL), ==, 0);
    CHECK_INT(vm_journal_count(j), ==, 2);
    char *err = NULL, *got = xstrdup("");
    CHECK_INT(vm_journal_read(vm_journal_path(j), describe, &got, &err), ==, 0);
    CHECK_STR(got, "started web1\nfinished web1\n");
    free(got);
    vm_journal_close(j);
    remove_dir(dir);
}

/* Room reserved for a migration's records changes no size, and what is
 * left of it goes at close. */
static void test_reserve(void)
{
    char *dir = temp_dir();
    struct vm_journal *j = vm_journal_open(dir);
    CHECK(j);
    char *path = xstrdup(vm_journal_path(j));
    CHECK(vm_journal_reserve(j));
    CHECK_INT(vm_journal_write(j, "web1", "u1", "s", "t", "started", NULL), ==, 0);
    struct stat st;
    CHECK_INT(stat(path, &st), ==, 0);
    off_t size = st.st_size;
    CHECK_INT(size, >, 0);
    CHECK(vm_journal_reserve(j));
    vm_journal_close(j);
    CHECK_INT(stat(path, &st), ==, 0);
    CHECK_INT(st.st_size, ==, size);
    CHECK_INT((long long)st.st_blocks * 512, <, VM_JOURNAL_ROOM); /* given back */
    free(path);
    remove_dir(dir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    CHECK(f);
    fputs(text, f);
    CHECK_INT(fclose(f), ==, 0);
}

#define OWN "2026-01-01T00-00-00.000Z-4194301"
#define TAIL "2026-01-01T00-00-01.000Z-4194302"
#define TORN "2026-01-01T00-00-02.000Z-4194303"

/* Reading a directory: the lines that are not whole records of the file's
 * own run are skipped and named (file, line, why): another run's record, a
 * record of no run, garbage, a damaged record, a torn line; the journals
 * that may hide an open migration are named too (a line that cannot be
 * read before the last, or a first line that cannot be read), not those
 * whose last line only is torn (a crash mid-write). */
static void test_read_skips(void)
{
    char *dir = temp_dir(), *err = NULL;
    char *own = xasprintf("%s/" OWN ".ndjson", dir), *tail = xasprintf("%s/" TAIL ".ndjson", dir),
         *torn = xasprintf("%s/" TORN ".ndjson", dir);
    write_file(own, "{\"record\":\"started\",\"run\":\"" OWN "\",\"vm\":\"web1\",\"uuid\":\"u1\"}\n"
                    "{\"record\":\"finished\",\"run\":\"2026-01-01T00-00-00.000Z-1\",\"vm\":"
                    "\"web1\",\"uuid\":\"u1\",\"location\":\"target\"}\n"
                    "{\"record\":\"finished\",\"vm\":\"web1\"}\n"
                    "this is not json {\n"
                    "\n" CRC_REC("web1", "00000000") "{\"record\":\"gate-reached\",\"run\":\"" OWN
                                                     "\",\"vm\":\"web1\",\"uuid\":"
                                                     "\"u1\"}\n"
                                                     "{\"record\":\"commit-dec");
    write_file(tail,
               "{\"record\":\"started\",\"run\":\"" TAIL "\",\"vm\":\"db1\",\"uuid\":\"u2\"}\n"
               "{\"record\":\"gate-re");
    write_file(torn, "{\"record\":\"started\",\"run\":\"" TORN "\",\"vm\":\"app1\",\"uu");
    struct vm_journal_records all;
    CHECK_INT(vm_journal_read_dir(dir, &all, &err), ==, 0);
    CHECK_INT(all.nfiles, ==, 3);
    CHECK_INT(all.n, ==, 3);
    CHECK_STR(all.v[0].record, "started");
    CHECK_STR(all.v[1].record, "gate-reached");
    CHECK_STR(all.v[1].run, OWN);
    CHECK_STR(all.v[2].run, TAIL);
    char *skipped = json_dumps(all.skipped, JSON_COMPACT);
    char *want = xasprintf(
        "[{\"file\":\"%s\",\"line\":2,\"why\":\"a record of another run\"},"
        "{\"file\":\"%s\",\"line\":3,\"why\":\"a record of no run\"},"
        "{\"file\":\"%s\",\"line\":4,\"why\":\"not a JSON object (garbage, or a torn record)\"},"
        "{\"file\":\"%s\",\"line\":5,\"why\":\"an empty line\"},"
        "{\"file\":\"%s\",\"line\":6,\"why\":\"the checksum does not match: a damaged record\"},"
        "{\"file\":\"%s\",\"line\":8,\"why\":\"not a whole record (torn: a crash while it was "
        "written?)\"},"
        "{\"file\":\"%s\",\"line\":2,\"why\":\"not a whole record (torn: a crash while it was "
        "written?)\"},"
        "{\"file\":\"%s\",\"line\":1,\"why\":\"not a whole record (torn: a crash while it was "
        "written?)\"}]",
        own, own, own, own, own, own, tail, torn);
    CHECK_STR(skipped, want);
    free(skipped);
    free(want);
    skipped = json_dumps(all.unreadable, JSON_COMPACT);
    want = xasprintf("[\"%s\",\"%s\"]", own, torn);
    CHECK_STR(skipped, want);
    free(skipped);
    free(want);
    vm_journal_records_clear(&all);
    CHECK(all.skipped == NULL && all.unreadable == NULL);

    /* One journal alone: the same records, the skipped ones logged. */
    char *got = xstrdup("");
    CHECK_INT(vm_journal_read(own, describe, &got, &err), ==, 0);
    CHECK_STR(got, "started web1\ngate-reached web1\n");
    free(got);
    free(own);
    free(tail);
    free(torn);
    remove_dir(dir);
}

/* Output and exit code of CMD (stderr too). */
static char *run_cmd(const char *cmd, int *rc)
{
    char *full = xasprintf("%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    CHECK(p);
    char *out = xstrdup(""), buf[512];
    while (fgets(buf, sizeof(buf), p)) {
        char *more = xasprintf("%s%s", out, buf);
        free(out);
        out = more;
    }
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    free(full);
    return out;
}

/* A journal whose first record is torn (its run crashed, or its disk lost
 * it): status names it instead of "no runs", recover names it and wants an
 * operator (exit 9): it may hide a migration left open. */
static void test_torn_first_named(void)
{
    const char *bin = getenv("VMM_BINARY");
    if (!bin || !*bin)
        CHECK_FAIL("VMM_BINARY is not set: run this test with ctest, or set it to vmmigrate");
    char *dir = temp_dir();
    char *torn = xasprintf("%s/" TORN ".ndjson", dir);
    write_file(torn, "{\"record\":\"started\",\"run\":\"" TORN "\",\"vm\":\"app1\",\"uu\n"
                     "{\"record\":\"gate-reached\",\"run\":\"" TORN "\",\"vm\":\"app1\"}\n");
    int rc;
    char *cmd = xasprintf("'%s' status --journal-dir '%s'", bin, dir);
    char *out = run_cmd(cmd, &rc);
    CHECK_INT(rc, ==, 0);
    char *line1 = xasprintf("status: journal %s:1: not a JSON object", torn);
    CHECK_CONTAINS(out, line1);
    char *named = xasprintf("status: journal '%s' cannot be read whole", torn);
    CHECK_CONTAINS(out, named);
    free(out);
    free(cmd);
    cmd = xasprintf("'%s' recover --journal-dir '%s'", bin, dir);
    out = run_cmd(cmd, &rc);
    CHECK_INT(rc, ==, 9);
    free(named);
    named = xasprintf("recover: journal '%s' cannot be read whole: it may hide an open migration",
                      torn);
    CHECK_CONTAINS(out, named);
    free(out);
    free(cmd);
    free(named);
    free(line1);
    free(torn);
    remove_dir(dir);
}

/* A record longer than any line buffer (a started record's inventory can
 * be large) is read whole; the torn line after it is not. */
static void test_long_line(void)
{
    char *dir = temp_dir(), *err = NULL;
    char *path = xasprintf("%s/" LONG_RUN ".ndjson", dir);
    size_t big = 200 * 1024;
    char *pad = xmalloc(big + 1);
    memset(pad, 'x', big);
    pad[big] = '\0';
    FILE *f = fopen(path, "we");
    CHECK(f);
    fprintf(f, "{\"record\":\"started\",\"run\":\"%s\",\"inventory\":{\"pad\":\"%s\"}}\n", LONG_RUN,
            pad);
    fprintf(f, "{\"record\":\"finished\",\"run\":\"%s\",\"inventory\":{\"pad\":\"%.1000s", LONG_RUN,
            pad);
    CHECK_INT(fclose(f), ==, 0);
    struct vm_journal_records all;
    CHECK_INT(vm_journal_read_dir(dir, &all, &err), ==, 0);
    CHECK_INT(all.n, ==, 1);
    CHECK_INT(all.v[0].kind, ==, VM_JOURNAL_KIND_STARTED);
    CHECK_INT(strlen(json_string_value(
                  json_object_get(json_object_get(all.v[0].json, "inventory"), "pad"))),
              ==, big);
    vm_journal_records_clear(&all);
    free(pad);
    free(path);
    remove_dir(dir);
}

/* `vmmigrate status --json` on the fixtures: the run that crashed, settled
 * by the later one's records. */
static void test_status(void)
{
    const char *bin = getenv("VMM_BINARY");
    if (!bin || !*bin)
        CHECK_FAIL("VMM_BINARY is not set: run this test with ctest, or set it to vmmigrate");
    char *dir = fixture("");
    char *cmd = xasprintf("'%s' status --json --journal-dir '%s'", bin, dir);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    json_error_t e;
    json_t *o = json_loadf(p, 0, &e);
    CHECK_INT(pclose(p), ==, 0);
    if (!o)
        CHECK_FAIL("status --json: %s", e.text);
    CHECK_INT(json_integer_value(json_object_get(o, "schema_version")), ==, 1);
    json_t *runs = json_object_get(o, "runs");
    CHECK_INT(json_array_size(runs), ==, 1); /* the later run has no VMs of its own */
    json_t *run = json_array_get(runs, 0);
    CHECK_STR(json_string_value(json_object_get(run, "id")), RUN_A);
    CHECK_STR(json_string_value(json_object_get(run, "started_at")), "2026-01-01T00:00:00.000Z");
    CHECK(json_is_false(json_object_get(run, "finished"))); /* app1 is not */
    json_t *vms = json_object_get(run, "vms");
    CHECK_INT(json_object_size(vms), ==, 3);
    char *web1 = json_dumps(json_object_get(vms, "web1"), JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(web1, "{\"location\":\"target\",\"result\":\"migrated\",\"source\":\"qemu+tcp://s1/"
                    "system\",\"state\":\"finished\",\"target\":\"qemu+tcp://t1/system\","
                    "\"uuid\":\"u1\"}");
    char *db1 = json_dumps(json_object_get(vms, "db1"), JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(db1, "{\"deinit\":\"done\",\"location\":\"source\",\"source\":\"qemu+tcp://s1/"
                   "system\",\"state\":\"recovered\",\"target\":\"qemu+tcp://t1/system\","
                   "\"uuid\":\"u2\"}");
    CHECK_STR(json_string_value(json_object_get(json_object_get(vms, "app1"), "state")),
              "paused-for-lunch");
    free(web1);
    free(db1);
    json_decref(o);
    free(cmd);
    free(dir);
}

/* One settling of a directory at a time: a second lock waits, then fails
 * naming the lock; released, it is free again; no directory, no lock. */
static void test_settle_lock(void)
{
    char *dir = temp_dir(), *err = NULL;
    int a = vm_journal_lock_settle(dir, 0, &err);
    CHECK(a >= 0);
    CHECK(err == NULL);
    uint64_t t0 = vm_mono_ms();
    CHECK_INT(vm_journal_lock_settle(dir, 300, &err), ==, -1);
    CHECK_INT(vm_mono_ms() - t0, >=, 300);
    CHECK_CONTAINS(err, "recover.lock' is held by another recover");
    free(err);
    err = NULL;
    close(a);
    int b = vm_journal_lock_settle(dir, 0, &err);
    CHECK(b >= 0);
    close(b);
    char *gone = xasprintf("%s/nowhere", dir);
    CHECK_INT(vm_journal_lock_settle(gone, 0, &err), ==, -2);
    CHECK(err == NULL);
    free(gone);
    remove_dir(dir);
}

/* A run's process that ended but is not reaped yet (a zombie: kill(pid, 0)
 * still succeeds) is not alive: recover settles its journal. */
static void test_zombie_not_alive(void)
{
    CHECK(vm_process_alive((long)getpid()));
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    CHECK(pid > 0);
    uint64_t until = vm_mono_ms() + 30000;
    while (vm_process_alive((long)pid) && vm_mono_ms() < until)
        usleep(10 * 1000);
    CHECK(!vm_process_alive((long)pid));
    CHECK_INT(kill(pid, 0), ==, 0); /* still there, as a zombie */
    CHECK_INT(waitpid(pid, NULL, 0), ==, pid);
    CHECK(!vm_process_alive((long)pid));
}

static const struct vm_test tests[] = {
    VM_TEST(test_settle_lock),
    VM_TEST(test_zombie_not_alive),
    VM_TEST(test_parse_line),
    VM_TEST(test_run_id),
    VM_TEST(test_checksum),
    VM_TEST(test_kind_names),
    VM_TEST(test_about),
    VM_TEST(test_read_torn_and_garbage),
    VM_TEST(test_read_dir),
    VM_TEST(test_write_read),
    VM_TEST(test_checksum_round_trip),
    VM_TEST(test_write_fails),
    VM_TEST(test_write_fault_point),
    VM_TEST(test_reserve),
    VM_TEST(test_read_skips),
    VM_TEST(test_torn_first_named),
    VM_TEST(test_long_line),
    VM_TEST(test_status),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
