/* SPDX-License-Identifier: MIT */
/* runner.h — the unit tests' runner (libuv's test/runner.c and task.h
 * style). A test program is a table of cases, each a void function that
 * fails by exiting non-zero (check.h's macros print both values and exit 1),
 * by a signal, or by running past its timeout:
 *
 *   static const struct vm_test tests[] = {
 *       VM_TEST(test_parse),
 *       VM_TEST_TIMEOUT(test_slow, 120000),
 *       {0},
 *   };
 *   static const struct vm_test_suite suite = {.tests = tests, .setup = setup};
 *   int main(int argc, char **argv)
 *   {
 *       return vm_test_main(argc, argv, &suite);
 *   }
 *
 * The program then runs as
 *   test_x            every case, each in a process of its own (forked, its
 *                     own process group, killed with its children at the
 *                     timeout); the first failure hides none of the rest;
 *                     one line per case and a summary on standard error;
 *                     exit status 1 if any case failed
 *   test_x CASE       that case, in this process (ctest runs each case like
 *                     this; so does a debugger); CASE is the function's name
 *                     with or without its "test_"
 *   test_x --list     the cases' names, one a line (ctest's entries)
 *
 * A suite's setup and teardown run in each case's process, around it (once
 * each: one case a process): what a case needs from the program (a loop, a
 * server, a directory) is made afresh for it, and a teardown that runs a
 * loop ends it with uv_loop_close() == 0. check.h's macros and RUN() keep
 * working: a program with a main of its own is one ctest entry. */
#ifndef VMM_TEST_RUNNER_H
#define VMM_TEST_RUNNER_H

#include <jansson.h>

#include "check.h"

/* A case's timeout when its table entry names none. */
#define VM_TEST_DEFAULT_TIMEOUT_MS 60000

struct vm_test {
    const char *name; /* the function's name */
    void (*fn)(void);
    int timeout_ms; /* 0: VM_TEST_DEFAULT_TIMEOUT_MS */
};

#define VM_TEST(fn)                                                                                \
    {                                                                                              \
#fn, fn, 0                                                                                 \
    }
#define VM_TEST_TIMEOUT(fn, ms)                                                                    \
    {                                                                                              \
#fn, fn, ms                                                                                \
    }

struct vm_test_suite {
    const struct vm_test *tests; /* ends with {0} */
    void (*setup)(void);         /* may be NULL */
    void (*teardown)(void);      /* may be NULL; runs if the case returned */
};

/* tests/unit/REL in the source tree (VMM_SOURCE_DIR, which ctest sets; run
 * by hand, next to this file), malloc'd: the fixtures. */
char *vm_test_path(const char *rel);
/* The JSON fixture tests/unit/REL (vm_test_path), a new reference; a file
 * that does not parse fails the case, naming file, line and why. */
json_t *vm_test_fixture(const char *rel);

/* Parse argv as above and run; returns main's exit status. */
int vm_test_main(int argc, char **argv, const struct vm_test_suite *suite);

#endif
