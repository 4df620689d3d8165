/* SPDX-License-Identifier: MIT */
/* test_progress.c — the progress meter (report/progress.h) fed records,
 * drawn into a memory stream at a fixed width on a fake clock, no terminal:
 * the rows (target host, phase, %, rate, remaining, ETA, elapsed, downtime),
 * what a queued VM waits for, the not-converging state, the total line, a
 * narrow terminal's columns, the final summary, log lines that clear the
 * meter and draw it again below them, and no meter off a terminal. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "report/progress.h"
#include "util/util.h"

#define MIB (1024ull * 1024ull)

static uint64_t clock_ms;
static uint64_t fake_now(void)
{
    return clock_ms;
}

struct mem {
    char *buf;
    size_t len;
    FILE *f;
};

static struct vm_sink *meter(struct mem *m, int width)
{
    m->f = open_memstream(&m->buf, &m->len);
    CHECK(m->f);
    return vm_progress_open(
        &(struct vm_progress_opts){.out = m->f, .width = width, .now_ms = fake_now});
}

/* What was written since the last call (the caller frees). */
static char *taken(struct mem *m, size_t *from)
{
    fflush(m->f);
    char *s = xstrndup(m->buf + *from, m->len - *from);
    *from = m->len;
    return s;
}

static char *frame(struct vm_sink *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vm_progress_frame(s, f);
    fclose(f);
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The run of the tests: five VMs, each in another state. */
static struct vm_state_rec rec(int index, const char *name, int state)
{
    static const char *const names[] = {"queued",    "starting",   "migrating", "gate",
                                        "verifying", "migrated",   "failed",    "aborted",
                                        "skipped",   "rolled-back"};
    return (struct vm_state_rec){
        .index = index,
        .name = name,
        .uuid = "",
        .state = state,
        .result = names[state],
        .location = state == VM_REC_DONE ? "target" : "source",
        .final = state >= VM_REC_DONE,
        .source = "qemu+ssh://root@hv12.example.org/system",
        .target = "qemu+ssh://root@hv13.example.org:2222/system",
        .target_host = "hv13.example.org",
        .memory_bytes = 2048 * MIB,
    };
}

static void feed(struct vm_sink *s, const struct vm_state_rec *r)
{
    s->ops->on_state(s, r);
}

static void feed_run(struct vm_sink *s)
{
    clock_ms = 1000;
    struct vm_state_rec web = rec(0, "web1", VM_REC_MIGRATING);
    web.start_mono_ms = 1000;
    web.data_total = 1024 * MIB;
    web.data_processed = 512 * MIB;
    web.data_remaining = 512 * MIB;
    web.mem_bps = 64 * MIB;
    web.iteration = 1;
    feed(s, &web);
    struct vm_state_rec db = rec(1, "db1", VM_REC_QUEUED);
    db.wait_reason = "a slot into hv13 (--max-in 1)";
    feed(s, &db);
    struct vm_state_rec app = rec(2, "app1", VM_REC_DONE);
    app.target = "qemu+tcp://10.0.0.14/system"; /* no hostname: the URI's host */
    app.target_host = NULL;
    app.start_mono_ms = 1000;
    app.end_mono_ms = 6000;
    app.data_total = app.data_processed = 900 * MIB;
    app.has_downtime = true;
    app.downtime_ms = 32;
    feed(s, &app);
    struct vm_state_rec big = rec(3, "big1", VM_REC_MIGRATING);
    big.start_mono_ms = 2000;
    big.data_total = 3072 * MIB;
    big.data_processed = 5000 * MIB; /* pages sent again: past the total */
    big.data_remaining = 512 * MIB;
    big.mem_bps = 64 * MIB;
    big.iteration = 7;
    big.not_converging = true;
    feed(s, &big);
    struct vm_state_rec bad = rec(4, "bad1", VM_REC_FAILED);
    bad.start_mono_ms = 1000;
    bad.end_mono_ms = 1500;
    bad.error_message = "unable to connect to 'hv13': connection refused";
    feed(s, &bad);
    clock_ms = 11000;
}

static void done_with(struct vm_sink *s, struct mem *m)
{
    s->ops->free(s);
    fclose(m->f);
    free(m->buf);
}

/* The whole frame at 100 columns, as drawn: the target's short name (the
 * hostname's first label, else the URI's host), %, rate, remaining and ETA
 * while it moves, elapsed and downtime once known; what the queued one
 * waits for; the run's total with its ETA (what is left at the rate sent
 * now: 3 GiB at 128 MiB/s). */
static void test_progress_frame(void)
{
    struct mem m;
    struct vm_sink *s = meter(&m, 100);
    feed_run(s);
    char *got = frame(s);
    CHECK_STR(
        got,
        "VM   TARGET    PHASE             %       RATE REMAINING       ETA   ELAPSED DOWNTIME\n"
        "web1 hv13      migrating       50% 64.0 MiB/s 512.0 MiB       8 s      10 s\n"
        "db1  hv13      queued         waits for a slot into hv13 (--max-in 1)\n"
        "app1 10.0.0.14 migrated       100%                                      5 s    32 ms\n"
        "big1 hv13      not converging  83% 64.0 MiB/s 512.0 MiB       8 s       9 s\n"
        "bad1 hv13      failed                                                500 ms\n"
        "2/5 done (1 failed), 2 running, 1 queued, ETA 24 s, 10 s elapsed\n");
    free(got);
    done_with(s, &m);
}

/* A narrow terminal: columns go (elapsed, downtime, ETA first) until the
 * rest fits, and no line reaches the last column (none wraps, so the meter
 * clears whole). */
static void test_progress_narrow(void)
{
    struct mem m;
    struct vm_sink *s = meter(&m, 60);
    feed_run(s);
    char *got = frame(s);
    char *head = xstrndup(got, strcspn(got, "\n"));
    CHECK_STR(head, "VM   TARGET    PHASE             %       RATE REMAINING");
    int lines = 0;
    for (const char *l = got; *l; l = strchr(l, '\n') + 1, lines++)
        CHECK_INT(strcspn(l, "\n"), <=, 59);
    CHECK_INT(lines, ==, 7);
    CHECK_CONTAINS(got, "\ndb1  hv13      queued         waits for a slot into hv13 (-\n");
    CHECK_CONTAINS(got, "\n2/5 done (1 failed), 2 running, 1 queued, ETA 24 s, 10 s el\n");
    free(head);
    free(got);
    /* Far too narrow: what is left is cut, never wrapped. */
    struct mem m2;
    struct vm_sink *s2 = meter(&m2, 12);
    feed_run(s2);
    got = frame(s2);
    CHECK_CONTAINS(got, "VM   TARGET\nweb1 hv13\ndb1  hv13\napp1 10.0.0\n");
    free(got);
    done_with(s2, &m2);
    done_with(s, &m);
}

/* A name longer than its column (24) is cut there: the columns after it
 * stay where the header says. */
static void test_progress_long_name(void)
{
    struct mem m;
    struct vm_sink *s = meter(&m, 120);
    struct vm_state_rec v = rec(0, "a-very-long-domain-name-from-a-big-cloud", VM_REC_MIGRATING);
    v.data_total = 100 * MIB;
    v.data_remaining = 25 * MIB;
    feed(s, &v);
    char *got = frame(s);
    CHECK_CONTAINS(got, "VM                       TARGET PHASE ");
    CHECK_CONTAINS(got, "\na-very-long-domain-name- hv13   migrating       75% ");
    free(got);
    done_with(s, &m);
}

/* The end: the last frame stays on screen, the summary below it says what
 * moved, what did not and why (and where each guest runs), the longest
 * downtime, the total time (the report's) and what the exit code means. */
static void test_progress_summary(void)
{
    struct mem m;
    size_t from = 0;
    struct vm_sink *s = meter(&m, 100);
    feed_run(s);
    struct vm_state_rec web = rec(0, "web1", VM_REC_DONE);
    web.start_mono_ms = 1000;
    web.end_mono_ms = 12000;
    web.has_downtime = true;
    web.downtime_ms = 120;
    feed(s, &web);
    struct vm_state_rec db = rec(1, "db1", VM_REC_SKIPPED);
    db.abort_reason = "max-failures";
    feed(s, &db);
    struct vm_state_rec big = rec(3, "big1", VM_REC_ABORTED);
    big.start_mono_ms = 2000;
    big.end_mono_ms = 14000;
    big.abort_reason = "timeout";
    big.error_message = "operation aborted: job 'migration out' canceled by client";
    feed(s, &big);
    free(taken(&m, &from));
    clock_ms = 15000;
    json_t *report = json_pack("{s:i, s:n}", "duration_ms", 192000, "error");
    s->ops->on_finish(s, &(struct vm_finish_rec){
                             .run = "r1", .result = "failed", .exit_code = 1, .report = report});
    char *got = taken(&m, &from);
    const char *sum = strstr(got, "\n\nmoved ");
    CHECK(sum);
    CHECK_CONTAINS(got, "\n5/5 done (2 failed, 1 not started), 0 running, 0 queued, 14 s "
                        "elapsed\n");
    CHECK_STR(sum + 2,
              "moved 2 of 5, 2 failed, 1 not started in 3 m 12 s; longest downtime 120 ms (web1)\n"
              "  moved: web1 -> hv13, app1 -> 10.0.0.14\n"
              "  not started: db1 (max-failures)\n"
              "  aborted: big1 -> hv13, runs on the source: timeout (operation aborted: job "
              "'migration out' canceled by client)\n"
              "  failed: bad1 -> hv13, runs on the source: unable to connect to 'hv13': "
              "connection refused\n"
              "exit 1 (failed): at least one migration failed; such guests kept running on the "
              "source\n");
    free(got);
    /* After the end, a log line leaves the screen alone. */
    vm_log(VM_LOG_ERROR, "after the end");
    got = taken(&m, &from);
    CHECK_STR(got, "");
    free(got);
    json_decref(report);
    done_with(s, &m);
}

/* A run that failed as a whole says so, under the VMs. */
static void test_progress_summary_run_error(void)
{
    struct mem m;
    size_t from = 0;
    struct vm_sink *s = meter(&m, 100);
    struct vm_state_rec v = rec(0, "web1", VM_REC_SKIPPED);
    v.abort_reason = "journal";
    feed(s, &v);
    free(taken(&m, &from));
    json_t *report = json_pack("{s:s}", "error", "cannot write the journal in '/j'");
    s->ops->on_finish(
        s, &(struct vm_finish_rec){.result = "journal", .exit_code = 10, .report = report});
    char *got = taken(&m, &from);
    CHECK_CONTAINS(got, "\nmoved 0 of 1, 1 not started in ");
    CHECK_CONTAINS(got, "\n  not started: web1 (journal)\n"
                        "  run: cannot write the journal in '/j'\n"
                        "exit 10 (journal): the journal could not be written\n");
    free(got);
    json_decref(report);
    done_with(s, &m);
}

/* What made the exit code beyond the VMs (the run's say) follows its
 * meaning: every VM moved, and still an operator must look. */
static void test_progress_summary_why(void)
{
    struct mem m;
    size_t from = 0;
    struct vm_sink *s = meter(&m, 100);
    struct vm_state_rec v = rec(0, "web1", VM_REC_DONE);
    feed(s, &v);
    free(taken(&m, &from));
    s->ops->on_finish(
        s, &(struct vm_finish_rec){.result = "operator",
                                   .exit_code = 9,
                                   .why = "1 migration of an earlier run could not be settled: see "
                                          "'vmmigrate recover'"});
    char *got = taken(&m, &from);
    CHECK_CONTAINS(got, "\nmoved 1 of 1 in ");
    CHECK_CONTAINS(got, "\n  moved: web1 -> hv13\n"
                        "exit 9 (operator): an operator must look: 1 migration of an earlier "
                        "run could not be settled: see 'vmmigrate recover'\n");
    free(got);
    done_with(s, &m);
}

/* No VM ever: the meter never drew, and the end adds nothing (whatever
 * ended the run was logged). */
static void test_progress_no_vm(void)
{
    struct mem m;
    size_t from = 0;
    struct vm_sink *s = meter(&m, 100);
    s->ops->on_finish(s, &(struct vm_finish_rec){.result = "preflight", .exit_code = 3});
    char *got = taken(&m, &from);
    CHECK_STR(got, "");
    free(got);
    done_with(s, &m);
}

/* Log lines never tear the meter: it is drawn with its first record; a log
 * line clears every line of it first and draws it again after. */
static void test_progress_log_line(void)
{
    struct mem m;
    size_t from = 0;
    struct vm_sink *s = meter(&m, 100);
    feed_run(s);
    char *got = taken(&m, &from);
    CHECK_CONTAINS(got, "VM   TARGET");
    CHECK_INT(count(got, "\n"), ==, 3); /* drawn at the first record: header, web1, total */
    free(got);
    char *want = frame(s);
    vm_log(VM_LOG_ERROR, "a line in between");
    got = taken(&m, &from);
    /* three lines up and erased, then the frame again, whole */
    const char *clear = "\033[1A\033[2K\033[1A\033[2K\033[1A\033[2K\r\033[2K";
    CHECK_INT(strncmp(got, clear, strlen(clear)), ==, 0);
    const char *again = strstr(got + strlen(clear), "\033[2K");
    CHECK(again);
    CHECK_STR(again + strlen("\033[2K"), want);
    free(got);
    free(want);
    done_with(s, &m);
}

/* Off a terminal (a file, a pipe, the journal) there is no meter, asked
 * for or not; the log says it all. */
static void test_progress_not_a_terminal(void)
{
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
    CHECK(saved >= 0 && null >= 0);
    dup2(null, STDERR_FILENO);
    struct vm_sink *s = (struct vm_sink *)&s;
    char *err = NULL;
    int rc = vm_progress_sink_new(&(struct vm_sinks_config){.progress = true}, &s, &err);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(null);
    CHECK_INT(rc, ==, 0);
    CHECK(s == NULL);
    CHECK(err == NULL);
}

static void test_progress_formats(void)
{
    static const struct {
        uint64_t ms;
        const char *want;
    } d[] = {
        {0, "0 ms"},         {999, "999 ms"},      {1000, "1 s"},          {59999, "59 s"},
        {60000, "1 m 00 s"}, {100000, "1 m 40 s"}, {3599000, "59 m 59 s"}, {7500000, "2 h 05 m"}};
    char buf[32];
    for (size_t i = 0; i < VM_ARRAY_LEN(d); i++) {
        vm_progress_fmt_duration(buf, sizeof(buf), d[i].ms);
        CHECK_STR(buf, d[i].want);
    }
    vm_progress_fmt_bytes(buf, sizeof(buf), 1023);
    CHECK_STR(buf, "1023 B");
    vm_progress_fmt_bytes(buf, sizeof(buf), 45 * MIB + MIB / 10);
    CHECK_STR(buf, "45.1 MiB");
}

static const struct vm_test tests[] = {
    VM_TEST(test_progress_frame),
    VM_TEST(test_progress_narrow),
    VM_TEST(test_progress_long_name),
    VM_TEST(test_progress_summary),
    VM_TEST(test_progress_summary_run_error),
    VM_TEST(test_progress_summary_why),
    VM_TEST(test_progress_no_vm),
    VM_TEST(test_progress_log_line),
    VM_TEST(test_progress_not_a_terminal),
    VM_TEST(test_progress_formats),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};
int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
