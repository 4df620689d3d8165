/* SPDX-License-Identifier: MIT */
/* feature_builtin.h — how a built-in feature plugs into the step runner
 * (feature.c); private to src/feature/.
 *
 * A built-in is one file defining a `const struct vm_feature_ops
 * vm_feature_NAME_ops` (how it runs a step, how a step is stopped) and one
 * line in feature_builtin.c's table (its name, the steps it acts in, what a
 * crash leaves owed). In the steps it does not act in, the runner records
 * "ok" without calling it.
 *
 * What a built-in needs from the backend (QEMU's announce-self, counting
 * SPICE channels) it asks for through a callback of struct vm_feature_env
 * (feature.h) that the run fills in, and the backend answers through the
 * built-in's own function there (vm_features_announced, ...).
 *
 * The runner owns every struct vm_feature_ctx and the state it points to;
 * a built-in keeps pointers to them only until its step settles (or, for a
 * command it cannot call back, until it releases the features). */
#ifndef VMM_FEATURE_BUILTIN_H
#define VMM_FEATURE_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#include "feature/feature.h"

/* A set of steps: VM_FEATURE_STEP(VM_FEATURE_GATE) | ... */
#define VM_FEATURE_STEP(s) (1u << (s))
#define VM_FEATURE_ALL_STEPS                                                                       \
    (VM_FEATURE_STEP(VM_FEATURE_PROBE) | VM_FEATURE_STEP(VM_FEATURE_PREPARE) |                     \
     VM_FEATURE_STEP(VM_FEATURE_GATE) | VM_FEATURE_STEP(VM_FEATURE_AFTER) |                        \
     VM_FEATURE_STEP(VM_FEATURE_DEINIT))

/* What one feature of one migration sees while a step runs. */
struct vm_feature_ctx {
    struct vm_features *fs; /* for the env's callbacks */
    uv_loop_t *loop;
    const struct vm_feature_env *env;   /* the hosts, the backend's actions */
    json_t *vm;                         /* the VM as the inventory has it */
    const struct vm_feature_decl *decl; /* name, required, timeout_ms, args */
    enum vm_feature_step step;          /* the step in progress */
    void *state; /* the feature's own: state_size bytes, zeroed, freed with the features */
};

struct vm_feature_ops {
    size_t state_size;
    /* Start c->step; settle it once (vm_feature_settle), now or later. */
    void (*run)(struct vm_feature_ctx *c);
    /* Stop the step in progress and settle it (VM_FEATURE_CANCELLED), or do
     * nothing if nothing of it can be stopped (its result settles it when it
     * comes). NULL: never stoppable. */
    void (*cancel)(struct vm_feature_ctx *c);
    /* Take what another instance of the same feature learned at its probe
     * (dst, src: state). NULL: nothing carries over. */
    void (*adopt)(void *dst, const void *src);
};

/* A row of the table. */
struct vm_feature_builtin {
    const char *name;
    unsigned steps; /* the steps it acts in */
    unsigned owed;  /* of deinit and after: those a later run must do if this one crashes first */
    const struct vm_feature_ops *ops;
};

/* NAME's row, or NULL: not built in. */
const struct vm_feature_builtin *vm_feature_builtin_find(const char *name);
/* The I-th row (0..), or NULL past the end. */
const struct vm_feature_builtin *vm_feature_builtin_at(int i);

/* For the built-ins (and the policy's features), from feature.c: */

/* Record the outcome of c's step (rc > 0: ok; else failed, DETAIL says why)
 * and go on with the next feature. */
void vm_feature_settle(struct vm_feature_ctx *c, int rc, const char *detail);
/* The feature whose step is in progress (for a backend's answer). */
struct vm_feature_ctx *vm_features_current(struct vm_features *fs);
/* Something of a step outlives its settling (a killed command, a closing
 * timer): the features stay busy from hold until release. */
void vm_feature_hold(struct vm_feature_ctx *c);
void vm_feature_release(struct vm_feature_ctx *c);

/* The outcome of a step vm_features_cancel() stopped. */
#define VM_FEATURE_CANCELLED "cancelled: the gate was decided without it"

#endif
