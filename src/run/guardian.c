/* SPDX-License-Identifier: MIT */
/* guardian.c — see guardian.h. */
#include "run/guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal.h"
#include "migrate/commit.h"
#include "util/fault.h"
#include "util/util.h"

/* -- the run's side ------------------------------------------------------ */

struct vm_guardian {
    uv_timer_t beat;
    uv_process_t proc;
    int wfd;
    int open_handles;
    bool exited, stopping;
};

static void beat(uv_timer_t *t)
{
    struct vm_guardian *g = t->data;
    /* Non-blocking: a guardian that stopped reading must not stop the run. */
    if (g->wfd >= 0 && write(g->wfd, "h", 1) < 0 && errno != EAGAIN)
        (void)0;
}

static void guardian_exited(uv_process_t *p, int64_t status, int sig)
{
    struct vm_guardian *g = p->data;
    g->exited = true;
    if (!g->stopping)
        vm_warn("the guardian process exited (status %lld, signal %d): this run's gates are "
                "guarded by this process only",
                (long long)status, sig);
}

static void closed(uv_handle_t *h)
{
    struct vm_guardian *g = h->data;
    if (--g->open_handles == 0)
        free(g);
}

struct vm_guardian *vm_guardian_start(uv_loop_t *loop, const char *journal_dir,
                                      const char *journal_path, const char *const *recover_args,
                                      char **err)
{
    int fds[2];
    *err = NULL;
    if (vm_fault("guardian-start")) {
        *err = xstrdup("cannot start the guardian: fault point guardian-start");
        return NULL;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        *err = xasprintf("cannot start the guardian: pipe: %s", strerror(errno));
        return NULL;
    }
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    size_t n = 0;
    while (recover_args && recover_args[n])
        n++;
    char **argv = xcalloc(n + 12, sizeof(*argv));
    char pid[32];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    int k = 0;
    argv[k++] = (char *)"vmmigrate";
    argv[k++] = (char *)VM_GUARDIAN_COMMAND;
    argv[k++] = pid;
    argv[k++] = (char *)"3";
    argv[k++] = (char *)journal_path;
    argv[k++] = (char *)"--";
    argv[k++] = (char *)"vmmigrate";
    argv[k++] = (char *)"recover";
    argv[k++] = (char *)"--journal-dir";
    argv[k++] = (char *)journal_dir;
    for (size_t i = 0; i < n; i++)
        argv[k++] = (char *)recover_args[i];
    argv[k] = NULL;

    struct vm_guardian *g = xcalloc(1, sizeof(*g));
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD,
         .data.fd = STDERR_FILENO}, /* recover's text: not in a --json report */
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
        {.flags = UV_INHERIT_FD, .data.fd = fds[0]},
    };
    uv_process_options_t opts = {
        .exit_cb = guardian_exited,
        .file = "/proc/self/exe",
        .args = argv,
        .stdio_count = 4,
        .stdio = stdio,
        .flags = UV_PROCESS_DETACHED,
    };
    g->proc.data = g;
    int rc = uv_spawn(loop, &g->proc, &opts);
    free(argv);
    close(fds[0]);
    if (rc < 0) {
        close(fds[1]);
        *err = xasprintf("cannot start the guardian: %s", uv_strerror(rc));
        free(g);
        return NULL;
    }
    g->wfd = fds[1];
    g->open_handles = 2;
    uv_unref((uv_handle_t *)&g->proc);
    uv_timer_init(loop, &g->beat);
    g->beat.data = g;
    uv_timer_start(&g->beat, beat, 0, VM_GUARDIAN_BEAT_MS);
    uv_unref((uv_handle_t *)&g->beat);
    return g;
}

void vm_guardian_stop(struct vm_guardian *g)
{
    if (!g)
        return;
    g->stopping = true;
    uv_timer_stop(&g->beat);
    if (g->wfd >= 0)
        close(g->wfd);
    g->wfd = -1;
    uv_close((uv_handle_t *)&g->beat, closed);
    uv_close((uv_handle_t *)&g->proc, closed);
}

/* -- what the guardian knows -------------------------------------------- */

void vm_guardian_watch_record(struct vm_guardian_watch *w, const struct vm_journal_record *rec,
                              uint64_t now_ms)
{
    if (!w->open)
        w->open = json_object();
    if (!rec->uuid || rec->about_earlier)
        return; /* records about an earlier run are recover's business */
    if (rec->kind == VM_JOURNAL_KIND_STARTED) {
        json_int_t budget = json_integer_value(
            json_object_get(json_object_get(rec->json, "decision"), "gate_timeout_ms"));
        json_object_set_new(
            w->open, rec->uuid,
            json_pack("{s:o, s:b, s:I, s:I}", "vm", rec->vm ? json_string(rec->vm) : json_null(),
                      "gated", json_is_true(json_object_get(rec->json, "gated")), "budget_ms",
                      budget > 0 ? budget : (json_int_t)VM_COMMIT_DEFAULT_BUDGET_MS, "gate_at",
                      (json_int_t)0));
        return;
    }
    json_t *m = json_object_get(w->open, rec->uuid);
    if (!m)
        return;
    if (rec->kind == VM_JOURNAL_KIND_GATE_REACHED)
        json_object_set_new(m, "gate_at", json_integer((json_int_t)(now_ms ? now_ms : 1)));
    else if (rec->kind == VM_JOURNAL_KIND_COMMIT_DECIDED ||
             rec->kind == VM_JOURNAL_KIND_ROLLBACK_DECIDED)
        json_object_set_new(m, "gate_at", json_integer(0));
    else if (rec->kind == VM_JOURNAL_KIND_FINISHED)
        json_object_del(w->open, rec->uuid);
}

char *vm_guardian_verdict(const struct vm_guardian_watch *w, uint64_t now_ms, uint64_t beat_age_ms,
                          bool run_gone)
{
    const char *uuid;
    json_t *m;
    char *why = NULL;
    json_object_foreach(w->open, uuid, m)
    {
        if (!json_is_true(json_object_get(m, "gated")))
            continue; /* libvirt goes on by itself (peer-to-peer): recover waits for it */
        const char *vm = json_string_value(json_object_get(m, "vm"));
        uint64_t gate_at = (uint64_t)json_integer_value(json_object_get(m, "gate_at"));
        uint64_t budget = (uint64_t)json_integer_value(json_object_get(m, "budget_ms"));
        if (run_gone)
            why = xasprintf("the run ended with %s's gated migration open", vm ? vm : uuid);
        else if (beat_age_ms >= VM_GUARDIAN_STALE_MS)
            why = xasprintf("the run has not answered for %llu ms with %s's gated migration "
                            "open%s",
                            (unsigned long long)beat_age_ms, vm ? vm : uuid,
                            gate_at ? " at its gate" : "");
        else if (gate_at && now_ms > gate_at && now_ms - gate_at > budget + VM_GUARDIAN_GRACE_MS)
            why = xasprintf("%s has been held at its gate for %llu ms, beyond its budget of "
                            "%llu ms",
                            vm ? vm : uuid, (unsigned long long)(now_ms - gate_at),
                            (unsigned long long)budget);
        if (why)
            return why;
    }
    return NULL;
}

void vm_guardian_watch_clear(struct vm_guardian_watch *w)
{
    json_decref(w->open);
    w->open = NULL;
}

/* -- the guardian process ------------------------------------------------- */

/* Read the journal's records added since *offset (whole lines only). */
static void follow(const char *path, long *offset, struct vm_guardian_watch *w, uint64_t now)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fseek(f, *offset, SEEK_SET) == 0) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            if (line[len - 1] != '\n')
                break; /* torn or still being written: next time */
            *offset += len;
            struct vm_journal_record rec;
            if (vm_journal_parse_line(line, &rec) == 0) {
                vm_guardian_watch_record(w, &rec, now);
                json_decref(rec.json);
            }
        }
        free(line);
    }
    fclose(f);
}

/* Gone, or a zombie nobody has reaped yet. */
static bool process_gone(pid_t pid)
{
    return !vm_process_alive((long)pid);
}

int vm_guardian_main(int argc, char **argv)
{
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        vm_error("%s: internal command, not for operators", VM_GUARDIAN_COMMAND);
        return 2;
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    pid_t run = (pid_t)atol(argv[1]);
    int fd = atoi(argv[2]);
    const char *path = argv[3];
    char **recover = argv + 5;
    fcntl(fd, F_SETFL, O_NONBLOCK);

    struct vm_guardian_watch w = {json_object()};
    long offset = 0;
    uint64_t last_beat = vm_mono_ms();
    bool gone = false;
    char *why = NULL;
    while (!why) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (!gone && poll(&p, 1, 100) > 0) {
            char buf[64];
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n > 0)
                last_beat = vm_mono_ms();
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                gone = true;
        }
        uint64_t now = vm_mono_ms();
        follow(path, &offset, &w, now);
        why = vm_guardian_verdict(&w, now, now - last_beat, gone || process_gone(run));
        if (gone && !why) {
            vm_guardian_watch_clear(&w);
            return 0; /* the run ended with nothing open */
        }
        if (gone)
            break;
        if (!why && process_gone(run))
            gone = true;
    }
    vm_guardian_watch_clear(&w);
    vm_error("guardian of run %ld: %s: ending the run and settling its migrations", (long)run, why);
    free(why);
    kill(run, SIGKILL);
    for (int i = 0; i < 100 && !process_gone(run); i++)
        usleep(50 * 1000);
    close(fd);
    execv("/proc/self/exe", recover);
    vm_error("guardian of run %ld: cannot run recover: %s", (long)run, strerror(errno));
    return 9;
}
