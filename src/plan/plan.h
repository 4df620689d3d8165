/* SPDX-License-Identifier: MIT */
/* plan.h — turn an inventory and a policy's decisions into a plan: which VM
 * goes where, in what order, with which parameters and features, and what it
 * will cost. Pure: no libvirt and no Lua here (the inventory comes from
 * inventory.h, decisions through `struct vm_plan_ops`, which policy.c
 * implements), so plans are unit-testable from JSON.
 *
 * A `struct vm_plan` owns its items (JSON references, strings) and is freed
 * with vm_plan_clear(). */
#ifndef VMM_PLAN_H
#define VMM_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "plan/decision.h"

enum vm_plan_status {
    VM_PLAN_MIGRATE, /* will be migrated */
    VM_PLAN_LEAVE,   /* the policy leaves it where it is */
    VM_PLAN_ERROR,   /* the policy failed for it: fail closed, it stays */
    VM_PLAN_REFUSED, /* preflight refused it: it stays */
};

struct vm_plan_item {
    json_t *vm;                       /* the inventory object (reference owned) */
    const char *name, *uuid, *source; /* point into vm / the source host object */
    uint64_t memory_bytes;
    enum vm_plan_status status;
    struct vm_decision d;
    const char *target; /* URI, points into the targets array; NULL unless MIGRATE */
    int target_index;
    bool placed_by_default;      /* the policy named no target */
    struct vm_mig_params params; /* effective: defaults + the decision's */
    char *note;                  /* why it stays (LEAVE/ERROR/REFUSED), or NULL */
    int order;                   /* 1-based start order among MIGRATE items */
    uint64_t est_ms;
};

struct vm_plan {
    struct vm_plan_item *items; /* MIGRATE items first, in start order */
    int n;
    json_t *sources, *targets; /* host objects (references owned) */
    int parallel;
    uint64_t bytes_total;
    uint64_t est_total_ms;
    unsigned est_mibs; /* the bandwidth assumed where none is set */
};

struct vm_plan_ops {
    /* Decide for one VM: 0 and *decision (new reference; NULL = leave it), or
     * -1 and *err (malloc'd). */
    int (*decide)(void *ctx, json_t *vm, json_t **decision, char **err);
    /* Memory planned on target i changed: while deciding, the sum of what
     * decisions naming it chose (so later decide() calls see it); then, while
     * placing in start order, the final reservations. */
    void (*reserve)(void *ctx, int target_index, uint64_t planned_bytes);
    void *ctx;
    /* Optional, before placement: why a VM the policy chose cannot go
     * (malloc'd; it is then REFUSED and reserves nothing), or NULL. */
    char *(*vet)(void *vet_ctx, struct vm_plan_item *it);
    void *vet_ctx;
    /* Where decisions come from, prefixed to errors found in them
     * ("policy.lua:12", the decide() hook), or NULL. */
    const char *origin;
};

/* sources: host objects, each with a "domains" array (inventory.h);
 * targets: host objects. Every domain of every source is considered.
 * Returns the number of items, or -1 if the ops failed globally. */
int vm_plan_build(struct vm_plan *p, json_t *sources, json_t *targets,
                  const struct vm_mig_params *defaults, int parallel, unsigned est_mibs,
                  const struct vm_plan_ops *ops);
/* Mark an item REFUSED by a later preflight check (takes ownership of note)
 * and give back its reservation. */
void vm_plan_refuse(struct vm_plan *p, struct vm_plan_item *it, char *note);
/* Recompute order and estimates after refusals. */
void vm_plan_finish(struct vm_plan *p);
void vm_plan_clear(struct vm_plan *p);

json_t *vm_plan_to_json(const struct vm_plan *p);
json_t *vm_plan_item_to_json(const struct vm_plan_item *it);
/* The human table on f: a line naming the hosts, a header, one row per VM
 * (its hosts by hostname, else by their URI's host, else by URI; by URI
 * with wide), the estimate, the policy's reason (or why it stays), then a
 * line summing it up. */
void vm_plan_print(const struct vm_plan *p, FILE *f, bool wide);
int vm_plan_count(const struct vm_plan *p, enum vm_plan_status s);
const char *vm_plan_status_name(enum vm_plan_status s);

#endif
