/* SPDX-License-Identifier: MIT */
/* check.h — the unit tests' assertions. Each prints both values and the
 * location, then exits non-zero (libuv's test/task.h style): the case fails,
 * and runner.h, which runs each case in its own process with a timeout, goes
 * on with the next. */
#ifndef VMM_CHECK_H
#define VMM_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_FAIL(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            CHECK_FAIL("check failed: %s", #cond);                                                 \
    } while (0)

#define CHECK_INT(a, op, b)                                                                        \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (!(va_ op vb_))                                                                         \
            CHECK_FAIL("check failed: %s %s %s (%lld vs %lld)", #a, #op, #b, va_, vb_);            \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0)                                                 \
            CHECK_FAIL("check failed: %s == %s (\"%s\" vs \"%s\")", #a, #b, sa_ ? sa_ : "(null)",  \
                       sb_ ? sb_ : "(null)");                                                      \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            CHECK_FAIL("check failed: \"%s\" contains \"%s\"", h_ ? h_ : "(null)", n_);            \
    } while (0)

/* Run a named test function, printing its name first (for ctest logs): for a
 * program with a main of its own, not on runner.h. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
    } while (0)

#endif
