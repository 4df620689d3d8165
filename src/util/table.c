/* SPDX-License-Identifier: MIT */
/* table.c — see table.h. */
#include "util/table.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

struct line {
    char **cells; /* ncols cells; NULL: a text line */
    char *text;
};

struct vm_table {
    int ncols, indent, nrows;
    struct line *lines; /* lines[0]: the header */
    size_t n, cap;
};

static void add_line(struct vm_table *t, struct line l)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->lines = xrealloc(t->lines, t->cap * sizeof(*t->lines));
    }
    t->lines[t->n++] = l;
}

static void add_cells(struct vm_table *t, const char *const *cells)
{
    struct line l = {.cells = xcalloc((size_t)t->ncols, sizeof(char *))};
    for (int i = 0; i < t->ncols; i++)
        l.cells[i] = xstrdup(cells[i] && *cells[i] ? cells[i] : "-");
    add_line(t, l);
}

struct vm_table *vm_table_new(int ncols, const char *const *header, int indent)
{
    struct vm_table *t = xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    t->indent = indent;
    add_cells(t, header);
    return t;
}

void vm_table_row(struct vm_table *t, const char *const *cells)
{
    add_cells(t, cells);
    t->nrows++;
}

void vm_table_text(struct vm_table *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_line(t, (struct line){.text = xvasprintf(fmt, ap)});
    va_end(ap);
}

int vm_table_rows(const struct vm_table *t)
{
    return t->nrows;
}

void vm_table_print(const struct vm_table *t, FILE *f)
{
    size_t *w = xcalloc((size_t)t->ncols, sizeof(*w));
    for (size_t i = 0; i < t->n; i++)
        for (int c = 0; t->lines[i].cells && c < t->ncols; c++)
            if (strlen(t->lines[i].cells[c]) > w[c])
                w[c] = strlen(t->lines[i].cells[c]);
    for (size_t i = 0; i < t->n; i++) {
        const struct line *l = &t->lines[i];
        if (!l->cells) {
            fprintf(f, "%s\n", l->text);
            continue;
        }
        fprintf(f, "%*s", t->indent, "");
        for (int c = 0; c < t->ncols; c++) {
            if (c == t->ncols - 1)
                fprintf(f, "%s\n", l->cells[c]);
            else
                fprintf(f, "%-*s  ", (int)w[c], l->cells[c]);
        }
    }
    free(w);
}

void vm_table_free(struct vm_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        for (int c = 0; t->lines[i].cells && c < t->ncols; c++)
            free(t->lines[i].cells[c]);
        free(t->lines[i].cells);
        free(t->lines[i].text);
    }
    free(t->lines);
    free(t);
}

const char *vm_duration_fmt(uint64_t ms, char *buf, size_t len)
{
    uint64_t s = ms / 1000;
    if (ms < 10000)
        snprintf(buf, len, "%llu.%llus", (unsigned long long)s,
                 (unsigned long long)(ms % 1000) / 100);
    else if (s < 60)
        snprintf(buf, len, "%llus", (unsigned long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    return buf;
}
