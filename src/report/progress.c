/* SPDX-License-Identifier: MIT */
/* progress.c — see progress.h. */
#include "report/progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/exitcode.h"
#include "util/uri.h"
#include "util/util.h"

#define REDRAW_MS 500
#define DEFAULT_WIDTH 80

struct vm_progress {
    struct vm_sink base; /* the "progress" sink */
    FILE *out;
    uv_loop_t *loop;
    int width;                 /* 0: the terminal's */
    uint64_t (*now)(void);     /* monotonic ms */
    uint64_t start_ms;         /* the first record */
    uv_timer_t *timer;         /* NULL without a loop, before drawing starts and once it stopped */
    bool drawing;              /* between the first record and on_finish */
    struct vm_state_table vms; /* what is drawn */
    int drawn;                 /* lines currently on screen */
};

static const struct vm_sink_ops progress_ops;

/* ---- formats ----------------------------------------------------------- */

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

void vm_progress_fmt_duration(char *buf, size_t len, uint64_t ms)
{
    uint64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, len, "%llu ms", (unsigned long long)ms);
    else if (s < 60)
        snprintf(buf, len, "%llu s", (unsigned long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%llu m %02llu s", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, len, "%llu h %02llu m", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60));
}

static void fmt_rate(char *buf, size_t len, uint64_t bps)
{
    char b[24];
    vm_progress_fmt_bytes(b, sizeof(b), bps);
    snprintf(buf, len, "%s/s", b);
}

/* ---- one frame ---------------------------------------------------------- */

enum col { C_NAME, C_TARGET, C_PHASE, C_PCT, C_RATE, C_REM, C_ETA, C_ELAPSED, C_DOWNTIME, NCOL };

static const struct {
    const char *head;
    int width; /* at least */
    bool right;
} cols[NCOL] = {
    [C_NAME] = {"VM", 2, false},          [C_TARGET] = {"TARGET", 6, false},
    [C_PHASE] = {"PHASE", 14, false},     [C_PCT] = {"%", 4, true},
    [C_RATE] = {"RATE", 10, true},        [C_REM] = {"REMAINING", 9, true},
    [C_ETA] = {"ETA", 9, true},           [C_ELAPSED] = {"ELAPSED", 9, true},
    [C_DOWNTIME] = {"DOWNTIME", 8, true},
};
/* What goes first when the terminal is narrow: the total line keeps the
 * run's elapsed time and ETA. */
static const enum col drop_order[] = {C_ELAPSED, C_DOWNTIME, C_ETA, C_REM, C_RATE, C_PCT};

struct layout {
    int w[NCOL];
    bool on[NCOL];
    int width; /* of the screen */
};

/* A line being built, cut to the screen's width when written. */
struct line {
    char buf[1024];
    size_t len;
};

static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len = l->len + (size_t)n < sizeof(l->buf) ? l->len + (size_t)n : sizeof(l->buf) - 1;
}

static void cell(struct line *l, const struct layout *lo, enum col c, const char *text)
{
    if (!lo->on[c])
        return;
    if (l->len)
        put(l, " ");
    char *t = vm_utf8_cut(text, (size_t)lo->w[c]); /* a long name keeps the columns */
    put(l, cols[c].right ? "%*s" : "%-*s", lo->w[c], t);
    free(t);
}

/* The line, cut to one column less than the screen (a line that fills the
 * last column wraps on some terminals): never two screen lines. */
static void emit(FILE *f, const struct line *l, int width)
{
    size_t end = l->len;
    if (width > 1 && end > (size_t)width - 1)
        end = (size_t)width - 1;
    char *cut = vm_utf8_cut(l->buf, end);
    end = strlen(cut);
    while (end && cut[end - 1] == ' ')
        end--;
    fprintf(f, "%.*s\n", (int)end, cut);
    free(cut);
}

static int screen_width(const struct vm_progress *p)
{
    if (p->width > 0)
        return p->width;
    struct winsize ws;
    if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return DEFAULT_WIDTH;
}

static char *target_name(const struct vm_state_rec *r)
{
    return vm_host_label(r->target_host, r->target);
}

static struct layout layout_of(const struct vm_progress *p)
{
    struct layout lo = {.width = screen_width(p)};
    for (int c = 0; c < NCOL; c++) {
        lo.w[c] = cols[c].width;
        lo.on[c] = true;
    }
    for (int i = 0; i < p->vms.n; i++) {
        const struct vm_state_rec *r = &p->vms.v[i];
        if (!r->name)
            continue;
        int n = (int)strlen(r->name);
        if (n > lo.w[C_NAME])
            lo.w[C_NAME] = n < 24 ? n : 24;
        char *t = target_name(r);
        n = (int)strlen(t);
        if (n > lo.w[C_TARGET])
            lo.w[C_TARGET] = n < 12 ? n : 12;
        free(t);
    }
    for (size_t k = 0;; k++) {
        int total = -1;
        for (int c = 0; c < NCOL; c++)
            total += lo.on[c] ? lo.w[c] + 1 : 0;
        if (total < lo.width || k == VM_ARRAY_LEN(drop_order))
            break;
        lo.on[drop_order[k]] = false;
    }
    return lo;
}

static const char *phase_of(const struct vm_state_rec *r)
{
    if (r->state == VM_REC_MIGRATING && r->not_converging)
        return "not converging";
    if (r->state == VM_REC_MIGRATING && r->postcopy)
        return "post-copy";
    if (r->state == VM_REC_GATE)
        return "at the gate";
    return r->result ? r->result : vm_rec_state_name((enum vm_rec_state)r->state);
}

static void row(FILE *f, const struct layout *lo, const struct vm_state_rec *r, uint64_t now)
{
    struct line l = {0};
    char *target = target_name(r);
    char pct[8] = "", rate[32] = "", rem[32] = "", eta[32] = "", elapsed[32] = "", down[32] = "";
    cell(&l, lo, C_NAME, r->name);
    cell(&l, lo, C_TARGET, target);
    cell(&l, lo, C_PHASE, phase_of(r));
    free(target);
    if (r->state == VM_REC_QUEUED) {
        /* what it waits for, in the room the numbers would take */
        if (r->wait_reason)
            put(&l, " waits for %s", r->wait_reason);
        emit(f, &l, lo->width);
        return;
    }
    bool moving = r->state == VM_REC_MIGRATING;
    if (r->state == VM_REC_DONE) {
        snprintf(pct, sizeof(pct), "100%%");
    } else if (r->data_total && r->state >= VM_REC_MIGRATING && !r->final) {
        /* what is sent and clean now: past the first pass, processed
         * counts pages sent again and passes the total */
        uint64_t left = r->data_remaining < r->data_total ? r->data_remaining : r->data_total;
        snprintf(pct, sizeof(pct), "%llu%%",
                 (unsigned long long)((r->data_total - left) * 100 / r->data_total));
    }
    if (moving && r->mem_bps)
        fmt_rate(rate, sizeof(rate), r->mem_bps);
    if (moving && r->data_total)
        vm_progress_fmt_bytes(rem, sizeof(rem), r->data_remaining);
    if (moving && r->mem_bps && r->data_remaining)
        vm_progress_fmt_duration(eta, sizeof(eta), r->data_remaining * 1000 / r->mem_bps);
    if (r->start_mono_ms) {
        uint64_t end = r->end_mono_ms ? r->end_mono_ms : now;
        vm_progress_fmt_duration(elapsed, sizeof(elapsed),
                                 end > r->start_mono_ms ? end - r->start_mono_ms : 0);
    }
    if (r->has_downtime)
        vm_progress_fmt_duration(down, sizeof(down), r->downtime_ms);
    cell(&l, lo, C_PCT, pct);
    cell(&l, lo, C_RATE, rate);
    cell(&l, lo, C_REM, rem);
    cell(&l, lo, C_ETA, eta);
    cell(&l, lo, C_ELAPSED, elapsed);
    cell(&l, lo, C_DOWNTIME, down);
    emit(f, &l, lo->width);
}

/* "3/8 done, 2 running, 3 queued, ETA 1 m 40 s, 2 m 10 s elapsed": the ETA
 * is what is left to send (the running ones' remaining, the queued ones'
 * memory) at the rate the running ones send now. */
static void total(FILE *f, const struct vm_progress *p, const struct layout *lo, uint64_t now)
{
    int n = 0, done = 0, failed = 0, skipped = 0, run = 0, queued = 0;
    uint64_t left = 0, bps = 0;
    for (int i = 0; i < p->vms.n; i++) {
        const struct vm_state_rec *r = &p->vms.v[i];
        if (!r->name)
            continue;
        n++;
        if (r->final) {
            done++;
            skipped += r->state == VM_REC_SKIPPED;
            failed += r->state != VM_REC_DONE && r->state != VM_REC_SKIPPED;
        } else if (r->state == VM_REC_QUEUED) {
            queued++;
            left += r->memory_bytes;
        } else {
            run++;
            left += r->data_total ? r->data_remaining : r->memory_bytes;
            bps += r->state == VM_REC_MIGRATING ? r->mem_bps : 0;
        }
    }
    struct line l = {0};
    put(&l, "%d/%d done", done, n);
    if (failed && skipped)
        put(&l, " (%d failed, %d not started)", failed, skipped);
    else if (failed || skipped)
        put(&l, failed ? " (%d failed)" : " (%d not started)", failed ? failed : skipped);
    put(&l, ", %d running, %d queued", run, queued);
    char d[32];
    if (bps && left && (run || queued)) {
        vm_progress_fmt_duration(d, sizeof(d), left * 1000 / bps);
        put(&l, ", ETA %s", d);
    }
    vm_progress_fmt_duration(d, sizeof(d), now > p->start_ms ? now - p->start_ms : 0);
    put(&l, ", %s elapsed", d);
    emit(f, &l, lo->width);
}

int vm_progress_frame(struct vm_sink *s, FILE *f)
{
    const struct vm_progress *p = (const struct vm_progress *)s;
    struct layout lo = layout_of(p);
    uint64_t now = p->now();
    struct line head = {0};
    for (int c = 0; c < NCOL; c++)
        cell(&head, &lo, (enum col)c, cols[c].head);
    emit(f, &head, lo.width);
    int lines = 1;
    for (int i = 0; i < p->vms.n; i++)
        if (p->vms.v[i].name) {
            row(f, &lo, &p->vms.v[i], now);
            lines++;
        }
    total(f, p, &lo, now);
    return lines + 1;
}

/* ---- on the terminal ----------------------------------------------------- */

static void clear(struct vm_progress *p)
{
    for (; p->drawn > 0; p->drawn--)
        fputs("\033[1A\033[2K", p->out);
    fputs("\r\033[2K", p->out);
}

static void draw(struct vm_progress *p)
{
    clear(p);
    p->drawn = vm_progress_frame(&p->base, p->out);
    fflush(p->out);
}

static void tick(uv_timer_t *t)
{
    draw(t->data);
}

/* Around a log line: the meter goes, the line is written where it was, and
 * the meter comes back below it. */
static void log_hook(void *data, bool after)
{
    struct vm_progress *p = data;
    if (after) {
        draw(p);
    } else {
        clear(p);
        fflush(p->out);
    }
}

static void start_drawing(struct vm_progress *p)
{
    p->drawing = true;
    if (p->loop) {
        p->timer = xmalloc(sizeof(*p->timer));
        uv_timer_init(p->loop, p->timer);
        p->timer->data = p;
        uv_timer_start(p->timer, tick, REDRAW_MS, REDRAW_MS);
        uv_unref((uv_handle_t *)p->timer); /* never keeps the run alive */
    }
    vm_log_set_hook(log_hook, p);
    draw(p);
}

/* Draw a last time and leave the lines on screen. */
static void stop_drawing(struct vm_progress *p, bool last_draw)
{
    if (!p->drawing)
        return;
    p->drawing = false;
    vm_log_set_hook(NULL, NULL);
    if (last_draw)
        draw(p);
    p->drawn = 0;
    if (p->timer)
        uv_close((uv_handle_t *)p->timer, (uv_close_cb)free);
    p->timer = NULL;
}

/* ---- the summary ----------------------------------------------------------- */

static const char *where_name(const char *location)
{
    if (location && strcmp(location, "source") == 0)
        return "the source";
    if (location && strcmp(location, "target") == 0)
        return "the target";
    return "an unknown host (check it!)";
}

/* Why a VM did not move: what stopped it (the gate's reason, the abort's),
 * with libvirt's error. Caller frees. */
static char *why_not(const struct vm_state_rec *r)
{
    const char *what = r->state == VM_REC_ROLLED_BACK && r->gate_reason ? r->gate_reason
                       : r->abort_reason                                ? r->abort_reason
                       : r->timeout_action                              ? r->timeout_action
                                                                        : NULL;
    if (what && r->error_message && strcmp(what, r->error_message) != 0)
        return xasprintf("%s (%s)", what, r->error_message);
    return xstrdup(what ? what : r->error_message ? r->error_message : "no reason given");
}

static void summary(struct vm_progress *p, const struct vm_finish_rec *fin)
{
    FILE *f = p->out;
    int n = 0, moved = 0, failed = 0, skipped = 0;
    const struct vm_state_rec *longest = NULL;
    for (int i = 0; i < p->vms.n; i++) {
        const struct vm_state_rec *r = &p->vms.v[i];
        if (!r->name)
            continue;
        n++;
        moved += r->state == VM_REC_DONE;
        skipped += r->state == VM_REC_SKIPPED;
        failed += r->state != VM_REC_DONE && r->state != VM_REC_SKIPPED;
        if (r->has_downtime && (!longest || r->downtime_ms > longest->downtime_ms))
            longest = r;
    }
    json_t *dur = fin->report ? json_object_get(fin->report, "duration_ms") : NULL;
    uint64_t now = p->now();
    uint64_t ms = json_is_integer(dur) && json_integer_value(dur) >= 0
                      ? (uint64_t)json_integer_value(dur)
                      : (now > p->start_ms ? now - p->start_ms : 0);
    char d[32];
    vm_progress_fmt_duration(d, sizeof(d), ms);
    fprintf(f, "\nmoved %d of %d", moved, n);
    if (failed)
        fprintf(f, ", %d failed", failed);
    if (skipped)
        fprintf(f, ", %d not started", skipped);
    fprintf(f, " in %s", d);
    if (longest) {
        vm_progress_fmt_duration(d, sizeof(d), longest->downtime_ms);
        fprintf(f, "; longest downtime %s (%s)", d, longest->name);
    }
    fputc('\n', f);
    const char *sep = "  moved:";
    for (int i = 0; i < p->vms.n; i++) {
        const struct vm_state_rec *r = &p->vms.v[i];
        if (!r->name || r->state != VM_REC_DONE)
            continue;
        char *t = target_name(r);
        fprintf(f, "%s %s -> %s", sep, r->name, t);
        free(t);
        sep = ",";
    }
    if (moved)
        fputc('\n', f);
    for (int i = 0; i < p->vms.n; i++) {
        const struct vm_state_rec *r = &p->vms.v[i];
        if (!r->name || !r->final || r->state == VM_REC_DONE)
            continue;
        if (r->state == VM_REC_SKIPPED) {
            fprintf(f, "  not started: %s (%s)\n", r->name,
                    r->abort_reason ? r->abort_reason : "skipped");
            continue;
        }
        char *t = target_name(r), *why = why_not(r);
        fprintf(f, "  %s: %s -> %s, runs on %s: %s\n", r->result, r->name, t,
                where_name(r->location), why);
        free(why);
        free(t);
    }
    json_t *err = fin->report ? json_object_get(fin->report, "error") : NULL;
    if (json_is_string(err))
        fprintf(f, "  run: %s\n", json_string_value(err));
    const char *brief = vm_exit_brief(fin->exit_code);
    fprintf(f, "exit %d (%s): %s%s%s\n", fin->exit_code, fin->result ? fin->result : "?",
            brief ? brief : "unknown exit code", fin->why ? ": " : "", fin->why ? fin->why : "");
    fflush(f);
}

/* ---- as a sink: fed records ------------------------------------------ */

static void sink_on_state(struct vm_sink *s, const struct vm_state_rec *st)
{
    struct vm_progress *p = (struct vm_progress *)s;
    vm_state_table_put(&p->vms, st);
    if (!p->drawing && !p->start_ms) {
        p->start_ms = p->now();
        start_drawing(p);
    }
}

static void sink_on_finish(struct vm_sink *s, const struct vm_finish_rec *fin)
{
    struct vm_progress *p = (struct vm_progress *)s;
    if (!p->drawing)
        return; /* no VM: whatever ended the run was said already */
    stop_drawing(p, true);
    summary(p, fin);
}

static void sink_free(struct vm_sink *s)
{
    struct vm_progress *p = (struct vm_progress *)s;
    if (!p)
        return;
    stop_drawing(p, false);
    vm_state_table_clear(&p->vms);
    free(p);
}

static const struct vm_sink_ops progress_ops = {
    .name = "progress", .on_state = sink_on_state, .on_finish = sink_on_finish, .free = sink_free};

struct vm_sink *vm_progress_open(const struct vm_progress_opts *o)
{
    struct vm_progress *p = xcalloc(1, sizeof(*p));
    p->base.ops = &progress_ops;
    p->out = o->out;
    p->loop = o->loop;
    p->width = o->width;
    p->now = o->now_ms ? o->now_ms : vm_mono_ms;
    return &p->base;
}

int vm_progress_sink_new(const struct vm_sinks_config *cfg, struct vm_sink **out, char **err)
{
    (void)err;
    *out = NULL;
    /* Off the terminal (a file, a pipe, the journal) the log says it all. */
    if (cfg->progress && isatty(STDERR_FILENO))
        *out = vm_progress_open(&(struct vm_progress_opts){.out = stderr, .loop = cfg->loop});
    return 0;
}
