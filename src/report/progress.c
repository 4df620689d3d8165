/* progress.c — see progress.h. */
#include "report/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/util.h"

#define REDRAW_MS 500

struct vm_progress {
    uv_timer_t timer;
    struct vm_mig *const *migs;
    int n;
    int drawn; /* lines currently on screen */
};

void vm_progress_fmt_bytes(char *buf, size_t len, uint64_t b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < VM_ARRAY_LEN(units)) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)b);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
}

static void clear(struct vm_progress *p)
{
    for (; p->drawn > 0; p->drawn--)
        fputs("\033[1A\033[2K", stderr);
    fputs("\r\033[2K", stderr);
}

static void draw(struct vm_progress *p)
{
    clear(p);
    for (int i = 0; i < p->n; i++) {
        const struct vm_mig *m = p->migs[i];
        const struct vm_mig_progress *g = &m->progress;
        char rate[32], rem[32];
        vm_progress_fmt_bytes(rate, sizeof(rate), g->mem_bps);
        vm_progress_fmt_bytes(rem, sizeof(rem), g->data_remaining);
        int pct =
            g->data_total ? (int)(100.0 * (double)g->data_processed / (double)g->data_total) : 0;
        if (m->state == VM_MIG_STATE_DONE)
            pct = 100;
        if (pct > 100)
            pct = 100;
        fprintf(stderr, "%-20.20s %-9s %3d%%  %10s/s  rem %10s  iter %llu\n", m->name,
                vm_mig_state_name(m->state), pct, rate, rem, (unsigned long long)g->iteration);
        p->drawn++;
    }
    fflush(stderr);
}

static void tick(uv_timer_t *t)
{
    draw(t->data);
}

static void log_hook(void *data)
{
    clear(data);
}

struct vm_progress *vm_progress_start(uv_loop_t *loop, struct vm_mig *const *migs, int n)
{
    if (!isatty(STDERR_FILENO))
        return NULL;
    struct vm_progress *p = xcalloc(1, sizeof(*p));
    p->migs = migs;
    p->n = n;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, tick, REDRAW_MS, REDRAW_MS);
    vm_log_set_hook(log_hook, p);
    return p;
}

static void closed(uv_handle_t *h)
{
    free(h->data);
}

void vm_progress_stop(struct vm_progress *p)
{
    if (!p)
        return;
    vm_log_set_hook(NULL, NULL);
    draw(p);
    p->drawn = 0;
    uv_close((uv_handle_t *)&p->timer, closed);
}
