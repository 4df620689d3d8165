/* SPDX-License-Identifier: MIT */
/* job.h — one `vmmigrate run` or `vmmigrate plan`: connect, inventory,
 * plan (explicit VMs or a policy), preflight, migrate, report.
 *
 * vm_job_run() owns the loop, the host connections (virt.h), the policy
 * (policy.h), the plan (plan.h), every per-VM state machine (mig.h) and the
 * reporters (report.h, progress.h) from start to end, and frees them all
 * before returning the exit code. The spec is borrowed. */
#ifndef VMM_JOB_H
#define VMM_JOB_H

#include <stdbool.h>

#include "plan/decision.h"
#include "migrate/mig.h"

enum vm_job_mode {
    VM_JOB_RUN,  /* migrate */
    VM_JOB_PLAN, /* print what would be done; change nothing */
};

struct vm_job_qmp {
    char *vm;
    const char *path;
};

struct vm_job_spec {
    enum vm_job_mode mode;
    const char *command; /* for messages: run, plan, drain; NULL: from mode */
    const char **sources, **targets;
    int nsources, ntargets;
    const char **vms; /* explicit VMs (no policy): all must migrate */
    int nvms;
    const char *policy_path; /* or a policy decides (then nvms == 0) */
    struct vm_job_qmp *qmp;
    int nqmp;
    const char **host_execs;     /* --host-exec URI=PREFIX (exec.h), owned by the caller */
    struct vm_mig_params params; /* defaults; a policy may override per VM */
    int default_class;           /* enum vm_class where no decision sets one */
    int concurrency;             /* --parallel: migrations at once, in all */
    int max_out, max_in;         /* per source / target host; 0: no limit */
    int max_failures;            /* start no new migration after this many failed (0: no limit) */
    int retries;                 /* a failed migration is started again up to this often */
    enum vm_on_abort on_abort;   /* what a stop request does to running migrations */
    unsigned given;      /* vm_setting_bit: options given on the command line, which win over the
                            policy's settings(run) */
    unsigned deadline_s; /* the whole run: then start none, abort what runs (0: none) */
    unsigned connect_timeout_s; /* opening each host's connection (0: as long as libvirt takes) */
    unsigned estimate_mibs;     /* plan estimates where no bandwidth is set */
    bool json;                  /* final report (or plan) on stdout as JSON */
    bool wide;                  /* plan's table: hosts by URI, not by name */
    const char *events_path;    /* NDJSON stream, "-" = stdout, NULL = none */
    const char *journal_dir;    /* journal.h */
    const char *lock_dir;       /* one run per source host: flock files here */
    const char *status_path, *metrics_path; /* status.h, or NULL */
    const char **notify_urls;               /* webhooks (notify.h) */
    int nnotify;
    const char *notify_token_file;
    bool wait_lock; /* wait for the lock instead of exiting 7 */
    bool progress;  /* progress meter if stderr is a TTY */
};

/* Run the job to the end; returns a VM_EXIT_* code. */
int vm_job_run(const struct vm_job_spec *spec);
/* What a run does with a policy hook stuck where the sandbox cannot stop it
 * (vm_policy_set_stuck, which vm_job_run sets at its start): one line on
 * stderr, then the process ends with VM_EXIT_POLICY. */
void vm_job_policy_stuck(void *data, const char *what);

#endif
