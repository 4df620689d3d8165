/* SPDX-License-Identifier: MIT */
/* run_records.h — the run's migrations (migrate/mig.h) as the plain records
 * the outputs consume (report/sink.h): the only place that reads a live
 * struct vm_mig to describe it. The QMP run (qemu_mig.c) makes its records
 * itself, with the same state values.
 *
 * Strings and JSON in a record are borrowed from the migration: valid
 * until it changes. JSON values returned are the caller's. */
#ifndef VMM_RUN_RECORDS_H
#define VMM_RUN_RECORDS_H

#include <jansson.h>

#include "migrate/mig.h"
#include "report/report.h"
#include "report/sink.h"

/* Where m stands now, as the record of the VM at index. */
void vm_run_state_of(const struct vm_mig *m, int index, struct vm_state_rec *out);
/* One VM's entry of the report (vm_report_vm_json of its record). */
json_t *vm_run_mig_json(const struct vm_mig *m);
/* The whole report from the migrations (vm_report_run_json_recs). */
json_t *vm_run_report_json(const struct vm_report_run *run, struct vm_mig *const *migs, int n);

#endif
