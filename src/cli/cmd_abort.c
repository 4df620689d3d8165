/* SPDX-License-Identifier: MIT */
/* cmd_abort.c — `vmmigrate abort`: ask the runs working on source hosts to
 * stop (SIGTERM to the run that holds a source host's lock, lock.h): those of
 * one source host, one run, or all of them. Owns nothing past the call. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_options.h"
#include "run/lock.h"
#include "util/exitcode.h"
#include "util/uri.h"
#include "util/util.h"

enum {
    OPT_LOCK_DIR = 1,
    OPT_RUN,
    OPT_ALL,
};

static const struct vm_cli_option abort_options[] = {
    {.name = "all",
     .arg = VM_CLI_ARG_NONE,
     .id = OPT_ALL,
     .help = "stop every run going on",
     .doc = "Stop every run that holds a source host's lock in the lock directory.",
     .group = VM_CLI_GROUP_GENERAL},
    VM_CLI_OPTION_LOCK_DIR(OPT_LOCK_DIR, "where the run locks live (" VM_LOCK_DEFAULT_DIR ")",
                           "The directory of the run locks (see run --lock-dir)."),
    {.name = "run",
     .arg = VM_CLI_ARG_STRING,
     .metavar = "ID",
     .id = OPT_RUN,
     .help = "stop the run with this id (see status)",
     .doc = "Stop the run whose id (its journal's, as `status`, the report and the events name "
            "it) is ID.",
     .group = VM_CLI_GROUP_GENERAL},
    {0},
};

/* The locks held: one entry per lock, so a run of several sources has one
 * for each (each source can name it); listing and signalling take each run
 * once, by its PID (pid_in). */
struct runs {
    struct vm_lock_entry *v;
    int n;
};

static void runs_clear(struct runs *rs)
{
    for (int i = 0; i < rs->n; i++)
        vm_lock_entry_clear(&rs->v[i]);
    free(rs->v);
}

/* 0, or -1 if DIR cannot be read (ENOENT: no run ever took a lock there). */
static int runs_read(const char *dir, struct runs *rs)
{
    memset(rs, 0, sizeof(*rs));
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".lock") != 0)
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        struct vm_lock_entry le;
        int held = vm_lock_read(path, &le);
        free(path);
        if (!held || le.pid <= 1)
            continue;
        rs->v = xrealloc(rs->v, (size_t)(rs->n + 1) * sizeof(*rs->v));
        rs->v[rs->n++] = le;
    }
    closedir(d);
    return 0;
}

/* SOURCE names the lock's source host: its URI, its libvirt hostname (or
 * that name's first label), or the host of its URI. */
static bool names_source(const struct vm_lock_entry *e, const char *source)
{
    if (!*source)
        return false;
    if (strcmp(e->source, source) == 0 || strcmp(e->hostname, source) == 0)
        return true;
    size_t n = strlen(source);
    if (strncmp(e->hostname, source, n) == 0 && e->hostname[n] == '.')
        return true;
    char *h = vm_uri_host(e->source);
    bool same = h && strcmp(h, source) == 0;
    free(h);
    return same;
}

static void describe(const struct vm_lock_entry *e, char *buf, size_t size)
{
    snprintf(buf, size, "run %s (PID %d, source %s)", *e->run ? e->run : "with no id yet",
             (int)e->pid, *e->source ? e->source : "unknown");
}

static bool pid_in(const pid_t *v, int n, pid_t pid)
{
    for (int k = 0; k < n; k++)
        if (v[k] == pid)
            return true;
    return false;
}

static int cmd_abort_exec(const struct vm_cli_args *args)
{
    const char *dir = vm_cli_str(args, OPT_LOCK_DIR);
    if (!dir)
        dir = VM_LOCK_DEFAULT_DIR;
    const char *run = vm_cli_str(args, OPT_RUN);
    bool all = vm_cli_flag(args, OPT_ALL);
    if (vm_cli_npos(args) > 1) {
        vm_error("abort: unexpected argument '%s' (one SOURCE at a time)", vm_cli_pos(args, 1));
        return VM_EXIT_USAGE;
    }
    const char *source = vm_cli_npos(args) ? vm_cli_pos(args, 0) : NULL;
    if ((source != NULL) + (run != NULL) + all > 1) {
        vm_error("abort: name a SOURCE, --run ID or --all, one of them");
        return VM_EXIT_USAGE;
    }
    struct runs rs;
    if (runs_read(dir, &rs) < 0 && errno != ENOENT) {
        vm_error("abort: cannot read '%s': %s", dir, strerror(errno));
        return VM_EXIT_USAGE;
    }
    char what[1024];
    pid_t *done = xcalloc((size_t)rs.n + 1, sizeof(*done)); /* the runs listed or signalled */
    int n = 0;
    if (!source && !run && !all) {
        int rc = VM_EXIT_NOTHING;
        if (rs.n) {
            vm_error("abort: say which run to stop: abort SOURCE, abort --run ID, or abort --all");
            rc = VM_EXIT_USAGE;
        } else {
            printf("abort: no run is going on\n");
        }
        for (int i = 0; i < rs.n; i++)
            if (!pid_in(done, n, rs.v[i].pid)) {
                describe(&rs.v[i], what, sizeof(what));
                fprintf(stderr, "  %s\n", what);
                done[n++] = rs.v[i].pid;
            }
        free(done);
        runs_clear(&rs);
        return rc;
    }
    for (int i = 0; i < rs.n; i++) {
        const struct vm_lock_entry *e = &rs.v[i];
        bool wanted =
            all || (run && strcmp(e->run, run) == 0) || (source && names_source(e, source));
        if (!wanted || pid_in(done, n, e->pid))
            continue;
        describe(e, what, sizeof(what));
        if (kill(e->pid, SIGTERM) < 0) {
            vm_warn("abort: cannot signal %s: %s", what, strerror(errno));
            continue;
        }
        printf("abort: asked %s to stop (nothing new starts; what runs is aborted, or finishes "
               "with --on-abort finish)\n",
               what);
        done[n++] = e->pid;
    }
    free(done);
    if (!n)
        printf("abort: no run is going on%s%s%s%s\n", source ? " for source " : "",
               source ? source : "", run ? " with id " : "", run ? run : "");
    runs_clear(&rs);
    return n ? VM_EXIT_OK : VM_EXIT_NOTHING;
}

const struct vm_cli_command vm_cmd_abort_entry = {
    .name = "abort",
    .usage = "[--lock-dir DIR] SOURCE | --run ID | --all",
    .summary = "stop the runs that are going on (SIGTERM)",
    .doc = "Send SIGTERM to the vmmigrate runs named: those draining SOURCE (its URI as the run "
           "was given it, its libvirt hostname or the host of its URI), the run with id ID "
           "(--run), or every run that holds a source host's lock (--all). A run told to stop "
           "starts no new migration, aborts the running ones (or rolls them back at the commit "
           "gate) or, if the run was told --on-abort finish (or its policy's settings say so), "
           "lets them finish; it reports and exits with status 5. Without SOURCE, --run or "
           "--all, abort names the runs going on and exits with status 2, stopping none. Exit "
           "status 8 if no run named was going on.",
    .options = abort_options,
    .exec = cmd_abort_exec,
};
