/* SPDX-License-Identifier: MIT */
/* run_qemu.h — the run of one QMP migration (`vmmigrate qemu`): two QEMU
 * processes that libvirt does not manage, addressed by their QMP sockets
 * and a migration URI, migrated by the QMP state machine
 * (migrate/qmp_mig.h) through the same commit gate as libvirt guests.
 *
 * vm_qemu_migrate() runs on the run's spine (run_priv.h, job.c): the run's
 * loop, its SIGINT/SIGTERM handling (cancel while copying, roll back at
 * the gate), a short stage table (journal → migrate → report) and the
 * sinks (report/sinks.h: trace events, the VM's state records, the finish
 * record with the report). It owns everything it creates until it returns;
 * the spec is borrowed.
 *
 * It journals like a run (journal/journal.h), one journal per migration in
 * spec->journal_dir, the source and target named by their QMP sockets
 * (backend/qemu/qmp_sync.h: "qemu+qmp:///path"). `vmmigrate recover`
 * settles what a crash leaves open (journal/recover.c), `vmmigrate status`
 * shows it. */
#ifndef VMM_RUN_QEMU_H
#define VMM_RUN_QEMU_H

#include <jansson.h>

#include "migrate/qmp_mig.h"

struct vm_qemu_spec {
    struct vm_qmig_spec mig; /* the migration */
    const char *events_path;
    const char *journal_dir; /* required */
};

/* Returns a VM_EXIT_* code; *report (new reference) describes the outcome. */
int vm_qemu_migrate(const struct vm_qemu_spec *spec, json_t **report);

#endif
