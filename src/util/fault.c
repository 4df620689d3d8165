/* SPDX-License-Identifier: MIT */
/* fault.c — see fault.h. */
#include "util/fault.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define MAX_RULES 16

enum action { ACT_KILL, ACT_STOP, ACT_SLEEP, ACT_FAIL };

struct rule {
    char point[64];
    enum action action;
    long sleep_ms;
    long nth; /* 0: every time */
    atomic_long hits;
};

static struct rule rules[MAX_RULES];
static int nrules;
static char *spec_error;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool armed;

static int parse_rule(const char *s, size_t len, struct rule *r)
{
    char buf[160];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *colon = strchr(buf, ':');
    if (!colon || colon == buf || (size_t)(colon - buf) >= sizeof(r->point))
        return -1;
    *colon = '\0';
    char *act = colon + 1, *at = strchr(act, '@'), *end;
    r->nth = 0;
    if (at) {
        *at = '\0';
        r->nth = strtol(at + 1, &end, 10);
        if (*end || r->nth < 1)
            return -1;
    }
    memcpy(r->point, buf, (size_t)(colon - buf) + 1);
    if (strcmp(act, "kill") == 0)
        r->action = ACT_KILL;
    else if (strcmp(act, "stop") == 0)
        r->action = ACT_STOP;
    else if (strcmp(act, "fail") == 0)
        r->action = ACT_FAIL;
    else if (strncmp(act, "sleep=", 6) == 0) {
        r->action = ACT_SLEEP;
        r->sleep_ms = strtol(act + 6, &end, 10);
        if (*end || end == act + 6 || r->sleep_ms < 0)
            return -1;
    } else
        return -1;
    return 0;
}

static void load(void)
{
    const char *spec = getenv("VMM_FAULT");
    if (!spec || !*spec)
        return;
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",");
        if (nrules == MAX_RULES || parse_rule(p, len, &rules[nrules]) < 0) {
            spec_error = xasprintf("VMM_FAULT: bad fault point '%.*s' (want POINT:kill|stop|fail|"
                                   "sleep=MS[@N], at most %d)",
                                   (int)len, p, MAX_RULES);
            nrules = 0;
            return;
        }
        nrules++;
        p += len + (p[len] == ',');
    }
    atomic_store(&armed, nrules > 0);
}

char *vm_fault_check(void)
{
    pthread_once(&once, load);
    return spec_error ? xstrdup(spec_error) : NULL;
}

bool vm_fault(const char *point)
{
    pthread_once(&once, load);
    if (!atomic_load_explicit(&armed, memory_order_relaxed))
        return false;
    bool fail = false;
    for (int i = 0; i < nrules; i++) {
        struct rule *r = &rules[i];
        if (strcmp(r->point, point) != 0)
            continue;
        long n = atomic_fetch_add(&r->hits, 1) + 1;
        if (r->nth && n != r->nth)
            continue;
        static const char *const names[] = {"kill", "stop", "sleep", "fail"};
        /* One write(2): the announcement must reach stderr before a kill. */
        char msg[160];
        int len = snprintf(msg, sizeof(msg), "vmmigrate: fault point '%s': %s\n", point,
                           names[r->action]);
        if (len > 0 && write(STDERR_FILENO, msg, (size_t)len) < 0)
            (void)0;
        switch (r->action) {
        case ACT_KILL:
            raise(SIGKILL);
            break;
        case ACT_STOP:
            raise(SIGSTOP);
            break;
        case ACT_SLEEP: {
            struct timespec ts = {r->sleep_ms / 1000, (r->sleep_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) < 0)
                ;
            break;
        }
        case ACT_FAIL:
            fail = true;
            break;
        }
    }
    return fail;
}
