/* SPDX-License-Identifier: MIT */
/* test_log.c — the form of a log line (vm_log_format) on a terminal, a file
 * or pipe, the journal and syslog; how standard error's sink is recognised
 * (vm_log_sink_of, JOURNAL_STREAM); and vm_log itself writing to a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "runner.h"
#include "util/util.h"

/* 2024-05-01T12:00:00.123Z */
static const uint64_t when = 1714564800123u;

static void check_format(enum vm_log_level level, enum vm_log_sink sink, const char *msg,
                         const char *want)
{
    char *got = vm_log_format(level, sink, when, msg);
    CHECK_STR(got, want);
    free(got);
}

static void test_tty_as_before(void)
{
    check_format(VM_LOG_ERROR, VM_LOG_SINK_TTY, "run: boom", "vmmigrate: error: run: boom\n");
    check_format(VM_LOG_WARN, VM_LOG_SINK_TTY, "slow", "vmmigrate: warning: slow\n");
    check_format(VM_LOG_INFO, VM_LOG_SINK_TTY, "moved web1",
                 "vmmigrate: 2024-05-01T12:00:00.123Z moved web1\n");
    check_format(VM_LOG_DEBUG, VM_LOG_SINK_TTY, "x",
                 "vmmigrate: 2024-05-01T12:00:00.123Z debug: x\n");
}

static void test_file_stamps_every_line(void)
{
    check_format(VM_LOG_ERROR, VM_LOG_SINK_FILE, "run: boom",
                 "vmmigrate: 2024-05-01T12:00:00.123Z error: run: boom\n");
    check_format(VM_LOG_WARN, VM_LOG_SINK_FILE, "slow",
                 "vmmigrate: 2024-05-01T12:00:00.123Z warning: slow\n");
    check_format(VM_LOG_INFO, VM_LOG_SINK_FILE, "moved web1",
                 "vmmigrate: 2024-05-01T12:00:00.123Z moved web1\n");
    check_format(VM_LOG_DEBUG, VM_LOG_SINK_FILE, "x",
                 "vmmigrate: 2024-05-01T12:00:00.123Z debug: x\n");
}

static void test_journal_priority_prefix(void)
{
    check_format(VM_LOG_ERROR, VM_LOG_SINK_JOURNAL, "run: boom", "<3>error: run: boom\n");
    check_format(VM_LOG_WARN, VM_LOG_SINK_JOURNAL, "slow", "<4>warning: slow\n");
    check_format(VM_LOG_INFO, VM_LOG_SINK_JOURNAL, "moved web1", "<6>moved web1\n");
    check_format(VM_LOG_DEBUG, VM_LOG_SINK_JOURNAL, "x", "<7>debug: x\n");
}

static void test_syslog_message(void)
{
    check_format(VM_LOG_ERROR, VM_LOG_SINK_SYSLOG, "run: boom", "error: run: boom\n");
    check_format(VM_LOG_INFO, VM_LOG_SINK_SYSLOG, "moved web1", "moved web1\n");
    CHECK_INT(vm_log_priority(VM_LOG_ERROR), ==, LOG_ERR);
    CHECK_INT(vm_log_priority(VM_LOG_WARN), ==, LOG_WARNING);
    CHECK_INT(vm_log_priority(VM_LOG_INFO), ==, LOG_INFO);
    CHECK_INT(vm_log_priority(VM_LOG_DEBUG), ==, LOG_DEBUG);
    /* sd-daemon(3)'s prefixes are the syslog priorities. */
    CHECK_INT(LOG_ERR, ==, 3);
    CHECK_INT(LOG_WARNING, ==, 4);
    CHECK_INT(LOG_INFO, ==, 6);
    CHECK_INT(LOG_DEBUG, ==, 7);
}

static void test_every_line_of_a_message_prefixed(void)
{
    check_format(VM_LOG_ERROR, VM_LOG_SINK_JOURNAL, "one\ntwo\n", "<3>error: one\n<3>error: two\n");
    check_format(VM_LOG_WARN, VM_LOG_SINK_FILE, "a\nb",
                 "vmmigrate: 2024-05-01T12:00:00.123Z warning: a\n"
                 "vmmigrate: 2024-05-01T12:00:00.123Z warning: b\n");
    check_format(VM_LOG_INFO, VM_LOG_SINK_SYSLOG, "", "\n");
}

static void test_sink_of(void)
{
    FILE *f = tmpfile();
    CHECK(f != NULL);
    int fd = fileno(f);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    char js[64];
    snprintf(js, sizeof(js), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    CHECK_INT(vm_log_sink_of(fd, js), ==, VM_LOG_SINK_JOURNAL);
    CHECK_INT(vm_log_sink_of(fd, NULL), ==, VM_LOG_SINK_FILE);
    snprintf(js, sizeof(js), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino + 1);
    CHECK_INT(vm_log_sink_of(fd, js), ==, VM_LOG_SINK_FILE); /* another stream: not ours */
    snprintf(js, sizeof(js), "%ju:%jux", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    CHECK_INT(vm_log_sink_of(fd, js), ==, VM_LOG_SINK_FILE);
    CHECK_INT(vm_log_sink_of(fd, ""), ==, VM_LOG_SINK_FILE);
    CHECK_INT(vm_log_sink_of(fd, "garbage"), ==, VM_LOG_SINK_FILE);
    fclose(f);

    int p[2];
    CHECK(pipe(p) == 0);
    CHECK_INT(vm_log_sink_of(p[1], NULL), ==, VM_LOG_SINK_FILE);
    close(p[0]);
    close(p[1]);
}

/* vm_log on a file: every line stamped, the level filter applied. */
static void test_log_to_file(void)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL);
    int saved = dup(STDERR_FILENO);
    CHECK(saved >= 0);
    CHECK(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    unsetenv("JOURNAL_STREAM");
    vm_log_set_level(VM_LOG_WARN);
    vm_error("bad %d", 1);
    vm_info("not shown");
    vm_warn("careful");
    fflush(stderr);
    CHECK(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    char buf[512] = {0};
    size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
    fclose(tmp);
    buf[n] = '\0';
    /* "vmmigrate: 2024-05-01T12:00:00.123Z error: bad 1\n" */
    const char *line2 = strchr(buf, '\n');
    CHECK(line2 != NULL);
    CHECK_INT(strlen(buf), ==,
              2 * strlen("vmmigrate: 2024-05-01T12:00:00.123Z ") + strlen("error: bad 1\n") +
                  strlen("warning: careful\n"));
    CHECK(strncmp(buf, "vmmigrate: ", 11) == 0);
    CHECK(buf[11 + 10] == 'T' && buf[11 + 23] == 'Z');
    CHECK(strncmp(buf + 11 + 25, "error: bad 1\n", 13) == 0);
    CHECK(strncmp(line2 + 1 + 11 + 25, "warning: careful\n", 17) == 0);
}

static const struct vm_test tests[] = {
    VM_TEST(test_tty_as_before),
    VM_TEST(test_file_stamps_every_line),
    VM_TEST(test_journal_priority_prefix),
    VM_TEST(test_syslog_message),
    VM_TEST(test_every_line_of_a_message_prefixed),
    VM_TEST(test_sink_of),
    VM_TEST(test_log_to_file),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
