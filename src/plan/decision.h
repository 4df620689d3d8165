/* SPDX-License-Identifier: MIT */
/* decision.h — what a policy decides for one VM, validated.
 *
 * A policy's decide() hook returns a table; the sandbox turns it into JSON
 * (lua_sandbox.h) and vm_decision_parse() checks it against the one schema
 * (unknown keys and wrong types are errors naming the key path) and fills a
 * `struct vm_decision`, which owns its strings and JSON (vm_decision_clear).
 * Migration parameters given by the policy override the command line's. */
#ifndef VMM_DECISION_H
#define VMM_DECISION_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "plan/params.h"
#include "plan/settings.h" /* enum vm_on_abort, struct vm_run_settings */

enum vm_class {
    VM_CLASS_URGENT,           /* completion first; features may come up late */
    VM_CLASS_NETWORK_CRITICAL, /* connectivity first; required features gate the commit */
};

struct vm_feature_decl {
    char *name;
    bool required;
    uint64_t timeout_ms;
    json_t *args; /* object, owned */
};

/* Which parameters the policy set (the rest come from the command line). */
enum vm_param_bit {
    VM_PARAM_BANDWIDTH = 1 << 0,
    VM_PARAM_MAX_DOWNTIME = 1 << 1,
    VM_PARAM_AUTO_CONVERGE = 1 << 2,
    VM_PARAM_POSTCOPY = 1 << 3,
    VM_PARAM_PARALLEL = 1 << 4,
    VM_PARAM_COMPRESSION = 1 << 5,
    VM_PARAM_TIMEOUT = 1 << 6,
    VM_PARAM_TIMEOUT_ACTION = 1 << 7,
    VM_PARAM_PERSISTENT = 1 << 8,
    VM_PARAM_UNDEFINE_SOURCE = 1 << 9,
    VM_PARAM_DIRECT = 1 << 10,
};

struct vm_decision {
    char *target; /* NULL: vmmigrate's default placement */
    enum vm_class class;
    bool class_set;
    int64_t priority;
    struct vm_mig_params params; /* only fields flagged in params_set are meaningful */
    unsigned params_set;
    char *compression; /* owned backing store of params.compression */
    struct vm_feature_decl *features;
    int nfeatures;
    char *reason;
    uint64_t gate_timeout_ms; /* network-critical: the most the gate may be held (0: 30 s) */
    int retries;              /* how often a failed migration starts again, if retries_set */
    bool retries_set;
};

/* Parse and validate; returns 0, or -1 with *err (malloc'd, one line, naming
 * the key path, e.g. "params.bandwidth_mibs must be an integer from 1 to
 * 1000000"). out is cleared first. */
int vm_decision_parse(json_t *d, struct vm_decision *out, char **err);
void vm_decision_clear(struct vm_decision *d);
/* base with the decision's parameters applied. */
void vm_decision_apply_params(const struct vm_decision *d, struct vm_mig_params *base);
json_t *vm_decision_to_json(const struct vm_decision *d);

const char *vm_class_name(enum vm_class c);

/* What an on_progress() hook asks for. */
enum vm_action_kind {
    VM_ACTION_CONTINUE,
    VM_ACTION_SET_DOWNTIME,
    VM_ACTION_POSTCOPY,
    VM_ACTION_ABORT,
};

struct vm_action {
    enum vm_action_kind kind;
    uint64_t downtime_ms; /* SET_DOWNTIME */
    char *reason;         /* owned, may be NULL */
};

/* "continue", nil, or {action = "continue"|"set_downtime"|"postcopy"|"abort",
 * downtime_ms = N, reason = "..."}. Returns 0 or -1 with *err. */
int vm_action_parse(json_t *j, struct vm_action *out, char **err);
void vm_action_clear(struct vm_action *a);
const char *vm_action_name(enum vm_action_kind k);

#endif
