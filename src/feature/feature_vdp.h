/* SPDX-License-Identifier: MIT */
/* feature_vdp.h — the built-in `vdp` feature: 802.1Qbg VSI association of
 * a VM's port on the migration target, through lldpad (`vdptool`, run on the
 * host by its executor, exec.h):
 *   probe    target: lldpad answers for the interface
 *   prepare  target: pre-associate (while memory is copied)
 *   gate     target: associate (the commit waits for the switch's ACK)
 *   after    source: disassociate (the guest left)
 *   deinit   target: disassociate (rollback)
 * vdptool exits 0 even on failure: its output is parsed (untrusted, and
 * size-limited by exec.h). The helpers below are pure (test_vdp.c);
 * feature_vdp.c's vm_feature_vdp_ops (feature_builtin.h) runs the commands. */
#ifndef VMM_FEATURE_VDP_H
#define VMM_FEATURE_VDP_H

#include <jansson.h>

struct vm_vdp {
    char *iface_source, *iface_target; /* the station interface on each host */
    char *mac, *vlan, *mgrid, *typeid, *typeidver, *uuid;
};

/* From the feature's args {interface | interfaces: {URI: IF}, mac, vlan,
 * mgrid, typeid, typeidver, uuid}, filled in from the VM's first 802.1Qbg
 * interface (mac, <virtualport> parameters, <source dev>) and its UUID.
 * 0, or -1 with *why (malloc'd) naming what is missing. */
int vm_vdp_params(json_t *vm, json_t *args, const char *source_uri, const char *target_uri,
                  struct vm_vdp *out, char **why);
void vm_vdp_clear(struct vm_vdp *v);

/* The vdptool argv (NULL-terminated, malloc'd: vm_vdp_argv_free) for MODE
 * ("preassoc", "assoc", "deassoc") on the source or the target interface;
 * or the probe query when mode is NULL. */
char **vm_vdp_argv(const struct vm_vdp *v, const char *mode, int on_target);
void vm_vdp_argv_free(char **argv);

enum vm_vdp_outcome {
    VM_VDP_OK,
    VM_VDP_REJECTED, /* the bridge said no */
    VM_VDP_TIMEOUT,  /* no answer from the bridge */
    VM_VDP_FAILED,   /* lldpad refused locally, or garbage */
};

/* Parse vdptool's output for a request of MODE (NULL: a query). *detail
 * (malloc'd) says why when not OK. */
enum vm_vdp_outcome vm_vdp_parse(const char *out, const char *err, const char *mode, char **detail);

#endif
