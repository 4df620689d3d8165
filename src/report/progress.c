/* SPDX-License-Identifier: MIT */
/* progress.c — see progress.h. */
#include "report/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/util.h"

#define REDRAW_MS 500

struct vm_progress {
    struct vm_sink base; /* the "progress" sink */
    uv_loop_t *loop;
    uv_timer_t *timer;         /* NULL until drawing starts, and once it stopped */
    struct vm_state_table vms; /* what is drawn */
    int drawn;                 /* lines currently on screen */
};

static const struct vm_sink_ops progress_ops;

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
    for (int i = 0; i < p->vms.n; i++) {
        const struct vm_state_rec *r = &p->vms.v[i];
        if (!r->name)
            continue;
        char rate[32], rem[32];
        vm_progress_fmt_bytes(rate, sizeof(rate), r->mem_bps);
        vm_progress_fmt_bytes(rem, sizeof(rem), r->data_remaining);
        int pct =
            r->data_total ? (int)(100.0 * (double)r->data_processed / (double)r->data_total) : 0;
        if (r->state == VM_REC_DONE)
            pct = 100;
        if (pct > 100)
            pct = 100;
        fprintf(stderr, "%-20.20s %-9s %3d%%  %10s/s  rem %10s  iter %llu\n", r->name, r->result,
                pct, rate, rem, (unsigned long long)r->iteration);
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

static void start_drawing(struct vm_progress *p)
{
    p->timer = xmalloc(sizeof(*p->timer));
    uv_timer_init(p->loop, p->timer);
    p->timer->data = p;
    uv_timer_start(p->timer, tick, REDRAW_MS, REDRAW_MS);
    vm_log_set_hook(log_hook, p);
}

/* Draw a last time and leave the lines on screen. */
static void stop_drawing(struct vm_progress *p, bool last_draw)
{
    if (!p->timer)
        return;
    vm_log_set_hook(NULL, NULL);
    if (last_draw)
        draw(p);
    p->drawn = 0;
    uv_close((uv_handle_t *)p->timer, (uv_close_cb)free);
    p->timer = NULL;
}

static struct vm_progress *progress_new(uv_loop_t *loop)
{
    if (!isatty(STDERR_FILENO))
        return NULL;
    struct vm_progress *p = xcalloc(1, sizeof(*p));
    p->base.ops = &progress_ops;
    p->loop = loop;
    return p;
}

static void progress_free(struct vm_progress *p)
{
    if (!p)
        return;
    stop_drawing(p, false);
    vm_state_table_clear(&p->vms);
    free(p);
}

/* ---- as a sink: fed records ------------------------------------------ */

static void sink_on_state(struct vm_sink *s, const struct vm_state_rec *st)
{
    struct vm_progress *p = (struct vm_progress *)s;
    vm_state_table_put(&p->vms, st);
    if (!p->timer)
        start_drawing(p);
}

static void sink_on_finish(struct vm_sink *s, const struct vm_finish_rec *fin)
{
    (void)fin;
    stop_drawing((struct vm_progress *)s, true);
}

static void sink_free(struct vm_sink *s)
{
    progress_free((struct vm_progress *)s);
}

static const struct vm_sink_ops progress_ops = {
    .name = "progress", .on_state = sink_on_state, .on_finish = sink_on_finish, .free = sink_free};

int vm_progress_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    (void)err;
    struct vm_progress *p = cfg->progress ? progress_new(cfg->loop) : NULL;
    *out = p ? &p->base : NULL;
    return 0;
}
