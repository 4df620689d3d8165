/* job.h — one `vmmigrate run`: preflight, scheduling, signals, reports.
 *
 * vm_job_run() owns the loop, the host connections (virt.h), every
 * per-VM state machine (mig.h) and the reporters (report.h, progress.h)
 * from start to end, and frees them all before returning the exit code.
 * The spec is borrowed. */
#ifndef VMM_JOB_H
#define VMM_JOB_H

#include <stdbool.h>

#include "mig.h"

struct vm_job_qmp {
    char *vm;
    const char *path;
};

struct vm_job_spec {
    const char *source_uri, *target_uri;
    const char **vms;
    int nvms;
    struct vm_job_qmp *qmp;
    int nqmp;
    struct vm_mig_params params;
    int concurrency;
    bool json;               /* final report on stdout */
    const char *events_path; /* NDJSON stream, "-" = stdout, NULL = none */
    bool progress;           /* progress meter if stderr is a TTY */
};

/* Run the job to the end; returns a VM_EXIT_* code. */
int vm_job_run(const struct vm_job_spec *spec);

#endif
