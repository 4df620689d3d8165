/* SPDX-License-Identifier: MIT */
/* table.h — the human tables of plan and status: rows of cells printed in
 * columns as wide as their widest cell (a header row first), with lines of
 * free text between the rows (a run's line in status); and durations as a
 * reader takes them in ("42s", "3m05s").
 *
 * A `struct vm_table` owns copies of everything added (vm_table_free). */
#ifndef VMM_TABLE_H
#define VMM_TABLE_H

#include <stdint.h>
#include <stdio.h>

struct vm_table;

/* ncols columns named by header (ncols strings); each row printed after
 * `indent` spaces, cells two spaces apart, the last one unpadded. */
struct vm_table *vm_table_new(int ncols, const char *const *header, int indent);
/* A row of ncols cells; a NULL or empty cell prints as "-". */
void vm_table_row(struct vm_table *t, const char *const *cells);
/* A line of its own between the rows, not in the columns. */
void vm_table_text(struct vm_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The rows added so far (not the header, not the text lines). */
int vm_table_rows(const struct vm_table *t);
/* Print the header and everything added, in order. */
void vm_table_print(const struct vm_table *t, FILE *f);
void vm_table_free(struct vm_table *t);

/* ms as "0.4s", "42s", "3m05s" or "2h07m" into buf (>= 16 bytes). */
const char *vm_duration_fmt(uint64_t ms, char *buf, size_t len);

#endif
