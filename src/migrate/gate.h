/* SPDX-License-Identifier: MIT */
/* gate.h — libvirt's migration protocol v3 driven phase by phase, so that a
 * decision point, the commit gate, sits between Perform and Finish.
 *
 * libvirt's one-call APIs run Begin (source), Prepare (target), Perform
 * (source), Finish (target) and Confirm (source) themselves and offer no
 * point where the caller can decide. Run by hand, the phases give one: after
 * Perform the source QEMU has sent everything and is paused, the target holds
 * the full state, paused. Finish + Confirm then commit (the guest resumes on
 * the target) or, cancelled, roll back (the source resumes, the target's
 * incoming domain is destroyed). Time held at the gate adds to the guest's
 * downtime one for one.
 *
 * The phase entry points are libvirt-private symbols with a per-release
 * symbol version: they are resolved at run time with dlsym, never linked, so
 * a libvirt without them gives a clear error (vm_gate_available) instead of
 * a binary that does not load.
 *
 * A `struct vm_gate_session` is owned by the migration that uses it (mig.c)
 * and freed with vm_gate_session_free(); the two blocking steps run on the
 * thread pool, one at a time. */
#ifndef VMM_GATE_H
#define VMM_GATE_H

#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "backend/libvirt/virt.h"

/* Are the phase entry points there? If not, *why says what is missing. */
bool vm_gate_available(const char **why);

struct vm_gate_session {
    virDomainPtr dom;    /* source domain (borrowed) */
    virConnectPtr dconn; /* target connection (borrowed) */
    virTypedParameterPtr params;
    int nparams;
    unsigned flags;     /* for the source phases */
    unsigned destflags; /* for the target phases */
    char *cookie;       /* the last phase's cookie out */
    int cookielen;
    char *dom_xml;
    char *uri_out;
    bool performed; /* Perform succeeded: both sides wait at the gate */
    bool finished;  /* Finish + Confirm ran */
    bool committed; /* ... with commit, and the target domain came up */
};

/* Take over params (freed with the session). flags: virDomainMigrateFlags
 * without VIR_MIGRATE_PEER2PEER. */
struct vm_gate_session *vm_gate_session_new(virDomainPtr dom, virConnectPtr dconn,
                                            virTypedParameterPtr params, int nparams,
                                            unsigned flags);
void vm_gate_session_free(struct vm_gate_session *s);

/* Thread pool: Begin, Prepare, Perform. 0: both sides wait at the gate.
 * -1 and *err: the migration failed before the gate, and this function has
 * already cancelled what the protocol requires (the guest runs on the source
 * or the verification that follows must find out). */
int vm_gate_to_gate(struct vm_gate_session *s, struct vm_virt_err *err);

/* Thread pool: Finish + Confirm, committing or cancelling. 0: done (with
 * commit: the target domain is running). -1 and *err: commit failed (Finish
 * could not start the guest on the target; Confirm cancelled, so the source
 * resumes) or a cancelling phase reported an error (verify!). */
int vm_gate_finish(struct vm_gate_session *s, bool commit, struct vm_virt_err *err);

#endif
