/* SPDX-License-Identifier: MIT */
/* run_records.c — see run_records.h. */
#include "run/run_records.h"

#include <stdlib.h>
#include <string.h>

#include "backend/libvirt/virt.h"
#include "util/util.h"

/* A record's state is a migration's state, value for value. */
_Static_assert((int)VM_MIG_STATE_QUEUED == (int)VM_REC_QUEUED, "queued");
_Static_assert((int)VM_MIG_STATE_STARTING == (int)VM_REC_STARTING, "starting");
_Static_assert((int)VM_MIG_STATE_MIGRATING == (int)VM_REC_MIGRATING, "migrating");
_Static_assert((int)VM_MIG_STATE_GATE == (int)VM_REC_GATE, "gate");
_Static_assert((int)VM_MIG_STATE_VERIFYING == (int)VM_REC_VERIFYING, "verifying");
_Static_assert((int)VM_MIG_STATE_DONE == (int)VM_REC_DONE, "done");
_Static_assert((int)VM_MIG_STATE_FAILED == (int)VM_REC_FAILED, "failed");
_Static_assert((int)VM_MIG_STATE_ABORTED == (int)VM_REC_ABORTED, "aborted");
_Static_assert((int)VM_MIG_STATE_SKIPPED == (int)VM_REC_SKIPPED, "skipped");
_Static_assert((int)VM_MIG_STATE_ROLLED_BACK == (int)VM_REC_ROLLED_BACK, "rolled back");
_Static_assert((int)VM_MIG_STATE_COUNT == (int)VM_REC_STATE_COUNT, "count");

void vm_run_state_of(const struct vm_mig *m, int index, struct vm_state_rec *r)
{
    const struct vm_mig_progress *p = &m->progress;
    memset(r, 0, sizeof(*r));
    r->index = index;
    r->name = m->name;
    r->uuid = m->uuid;
    r->state = (int)m->state;
    r->result = vm_mig_state_name(m->state);
    r->location = vm_mig_location_name(m->location);
    r->final = vm_mig_final(m);
    r->source = m->src->uri;
    r->target = m->dst->uri;
    r->target_host = m->dst->hostname;
    r->memory_bytes = (uint64_t)m->memory_kib * 1024;
    r->start_wall_ms = m->start_wall_ms;
    r->end_wall_ms = m->end_wall_ms;
    r->start_mono_ms = m->start_mono_ms;
    r->end_mono_ms = m->end_mono_ms;
    r->has_downtime = p->has_downtime;
    r->downtime_ms = p->downtime_ms;
    r->data_total = p->data_total;
    r->data_processed = p->data_processed;
    r->data_remaining = p->data_remaining;
    r->iteration = p->iteration;
    r->mem_bps = p->mem_bps;
    r->postcopy = p->postcopy_active;
    r->not_converging = p->not_converging;
    r->attempts = m->attempts;
    r->timeout_action = m->timeout_taken;
    r->abort_reason = m->abort_reason;
    r->gated = m->gated;
    r->gate_reason = m->gate_reason;
    r->gate_commit = m->gate_commit;
    r->gate_ms = m->gate_ms;
    for (int i = 0; i < m->nphases && i < VM_STATE_REC_PHASES; i++) {
        r->phases[i].name = m->phases[i].name;
        r->phases[i].wall_ms = m->phases[i].wall_ms;
        r->nphases = i + 1;
    }
    if (m->err.message) {
        r->error_message = m->err.message;
        r->error_name = vm_virt_err_name(m->err.code);
        r->error_code = m->err.code;
        r->error_domain = m->err.domain;
    }
}

json_t *vm_run_mig_json(const struct vm_mig *m)
{
    struct vm_state_rec r;
    vm_run_state_of(m, 0, &r);
    return vm_report_vm_json(&r);
}

json_t *vm_run_report_json(const struct vm_report_run *run, struct vm_mig *const *migs, int n)
{
    struct vm_state_rec *recs = xcalloc(n ? (size_t)n : 1, sizeof(*recs));
    for (int i = 0; i < n; i++)
        vm_run_state_of(migs[i], i, &recs[i]);
    json_t *o = vm_report_run_json_recs(run, recs, n);
    free(recs);
    return o;
}
