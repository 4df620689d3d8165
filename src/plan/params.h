/* SPDX-License-Identifier: MIT */
/* params.h — the libvirt knobs of one migration, as plain data.
 *
 * Filled by the CLI (defaults and options), a policy's decision
 * (plan/decision.h) and the plan; carried out by the migration state
 * machine (migrate/mig.h). No libvirt here: the plan can be made and
 * tested without it.
 */
#ifndef VMM_PARAMS_H
#define VMM_PARAMS_H

#include <stdbool.h>

enum vm_mig_timeout_action {
    VM_MIG_TIMEOUT_ABORT,
    VM_MIG_TIMEOUT_SUSPEND,
    VM_MIG_TIMEOUT_POSTCOPY,
};

/* The libvirt knobs of one migration. Strings are borrowed (they live as
 * long as the job). Zero means "libvirt's default". */
struct vm_mig_params {
    unsigned long bandwidth_mibs;
    unsigned long long max_downtime_ms;
    bool auto_converge;
    bool postcopy;
    int parallel;
    const char *compression; /* "xbzrle,mt" */
    bool tls;
    bool persistent;
    bool undefine_source;
    bool p2p;
    bool unsafe;
    const char *migrate_uri;
    unsigned timeout_s;
    enum vm_mig_timeout_action timeout_action;
};

#endif
