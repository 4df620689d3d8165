/* SPDX-License-Identifier: MIT */
/* virt_checks.h — what the run asks libvirt besides migrating: a domain's
 * state and CPU against a target (preflight), QEMU's announce-self on the
 * target and the SPICE channels on the source (through libvirt's monitor
 * passthrough), and domain handle references.
 *
 * Inputs are plain (connections, a domain UUID); nothing here knows the
 * run's or the migration's structs. Blocking calls say so; the others run
 * on the thread pool (virt.h) and call back on the loop thread, exactly
 * once, also when they could not be queued. */
#ifndef VMM_VIRT_CHECKS_H
#define VMM_VIRT_CHECKS_H

#include <stdbool.h>

#include <libvirt/libvirt.h>
#include <uv.h>

#include "backend/libvirt/virt.h"

enum vm_virt_check {
    VM_VIRT_CHECK_OK,               /* running; its CPU fits (or cannot be compared) */
    VM_VIRT_CHECK_NO_DOMAIN,        /* not found on the source: err says why */
    VM_VIRT_CHECK_NOT_RUNNING,      /* found, not running */
    VM_VIRT_CHECK_CPU_INCOMPATIBLE, /* its CPU model is not compatible with the target */
};

/* Blocking (a task's work function). Look up UUID on src, check it runs,
 * and compare its CPU model (if it has one to compare: not
 * host-passthrough) with dst's hypervisor for ARCH and virt TYPE (either
 * may be NULL). *dom is the domain found (the caller owns it, also when
 * the check fails) or NULL. */
enum vm_virt_check vm_virt_check_domain(virConnectPtr src, virConnectPtr dst, const char *uuid,
                                        const char *arch, const char *type, virDomainPtr *dom,
                                        struct vm_virt_err *err);

/* QEMU's announce-self (the guest's MACs told to the network again) for
 * UUID on conn; done(ok, why if not, data). */
typedef void (*vm_virt_announce_cb)(bool ok, const char *why, void *data);
void vm_virt_announce_self(uv_loop_t *loop, virConnectPtr conn, const char *uuid,
                           vm_virt_announce_cb done, void *data);

/* The SPICE channels clients hold to UUID on conn (query-spice); done(n,
 * why, data) with n < 0 if it failed (why borrowed). */
typedef void (*vm_virt_spice_cb)(int n, const char *why, void *data);
void vm_virt_spice_count(uv_loop_t *loop, virConnectPtr conn, const char *uuid,
                         vm_virt_spice_cb done, void *data);

/* One more reference to d (0, or -1); drop one (d may be NULL). */
int vm_virt_domain_ref(virDomainPtr d);
void vm_virt_domain_free(virDomainPtr d);

#endif
