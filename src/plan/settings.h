/* SPDX-License-Identifier: MIT */
/* settings.h — the run-level settings: one table of their keys, bounds and
 * defaults, and what a policy's settings(run) hook returns, validated.
 *
 * Each setting is a row {key, CLI option, bit, min, max, default, choices}:
 * the key a policy's settings(run) table uses, the `run` option that sets
 * the same thing (and wins over the policy), its bit in
 * `struct vm_run_settings.set`, the bounds of an integer (the index range of
 * `choices` for a choice), the value the run uses when neither sets it, and
 * the choices ("a|b", index 0 first) or NULL for an integer. The table drives
 * vm_settings_parse() (settings(run)), the command line's option bounds and
 * defaults (cli/cli_options.h), and through them the man page;
 * tests/unit/test_docs.c checks vmmigrate-policy(7) states the same bounds.
 *
 * The rows are macros so that the option tables, which are static
 * initialisers, can take a bound as a constant: VM_SETTING_MIN(max_in) is 1,
 * VM_SETTING_DEFAULT_STR(max_in) is "2". No libvirt, nothing owned here but
 * what `struct vm_run_settings` says. */
#ifndef VMM_SETTINGS_H
#define VMM_SETTINGS_H

#include <stdint.h>

#include <jansson.h>

/* What happens to running migrations when the run is told to stop
 * (SIGTERM, SIGINT, `vmmigrate abort`): aborted (the guests stay on their
 * sources; gated ones roll back), or left to finish. The values are the
 * indexes of the on_abort row's choices. */
enum vm_on_abort {
    VM_ON_ABORT_ROLLBACK,
    VM_ON_ABORT_FINISH,
};

/* The run-level settings a policy's settings(run) hook returns: concurrency
 * budgets, failure handling, what an abort does, more webhooks. A command
 * line option given explicitly wins over the policy's value. */
enum vm_setting_bit {
    VM_SET_PARALLEL = 1 << 0,
    VM_SET_MAX_OUT = 1 << 1,
    VM_SET_MAX_IN = 1 << 2,
    VM_SET_MAX_FAILURES = 1 << 3,
    VM_SET_RETRIES = 1 << 4,
    VM_SET_DEADLINE = 1 << 5,
    VM_SET_ON_ABORT = 1 << 6,
    VM_SET_NOTIFY = 1 << 7,
};

/* One macro per row, X(key, option, bit, min, max, default, choices); a
 * default outside [min, max] means "no limit" (max_failures, deadline_s). */
/* clang-format off */
#define VM_SETTING_parallel(X)     X(parallel,     "parallel",     VM_SET_PARALLEL,     1, 64,     2, NULL)
#define VM_SETTING_max_out(X)      X(max_out,      "max-out",      VM_SET_MAX_OUT,      1, 64,     2, NULL)
#define VM_SETTING_max_in(X)       X(max_in,       "max-in",       VM_SET_MAX_IN,       1, 64,     2, NULL)
#define VM_SETTING_max_failures(X) X(max_failures, "max-failures", VM_SET_MAX_FAILURES, 1, 100000, 0, NULL)
#define VM_SETTING_retries(X)      X(retries,      "retries",      VM_SET_RETRIES,      0, 10,     0, NULL)
#define VM_SETTING_deadline_s(X)   X(deadline_s,   "deadline",     VM_SET_DEADLINE,     1, 604800, 0, NULL)
#define VM_SETTING_on_abort(X)     X(on_abort,     "on-abort",     VM_SET_ON_ABORT,     0, 1,      0, "rollback|finish")

/* The table, in the order of settings(run)'s documentation. */
#define VM_SETTINGS(X) \
    VM_SETTING_parallel(X) VM_SETTING_max_out(X) VM_SETTING_max_in(X) \
    VM_SETTING_max_failures(X) VM_SETTING_retries(X) VM_SETTING_deadline_s(X) \
    VM_SETTING_on_abort(X)
/* clang-format on */

/* One column of the row of KEY (a bare word: max_in), as a constant. */
#define VM_SETTING_OPTION(KEY) VM_SETTING_##KEY(VM_SETTING_COL_OPTION_)
#define VM_SETTING_MIN(KEY) VM_SETTING_##KEY(VM_SETTING_COL_MIN_)
#define VM_SETTING_MAX(KEY) VM_SETTING_##KEY(VM_SETTING_COL_MAX_)
#define VM_SETTING_DEFAULT(KEY) VM_SETTING_##KEY(VM_SETTING_COL_DEFAULT_)
#define VM_SETTING_DEFAULT_STR(KEY) VM_SETTING_##KEY(VM_SETTING_COL_DEFAULT_STR_)
#define VM_SETTING_CHOICES(KEY) VM_SETTING_##KEY(VM_SETTING_COL_CHOICES_)

#define VM_SETTING_COL_OPTION_(key, option, bit, min, max, def, choices) option
#define VM_SETTING_COL_MIN_(key, option, bit, min, max, def, choices) (min)
#define VM_SETTING_COL_MAX_(key, option, bit, min, max, def, choices) (max)
#define VM_SETTING_COL_DEFAULT_(key, option, bit, min, max, def, choices) (def)
#define VM_SETTING_COL_DEFAULT_STR_(key, option, bit, min, max, def, choices) #def
#define VM_SETTING_COL_CHOICES_(key, option, bit, min, max, def, choices) choices

/* The table as data, ended by a row whose key is NULL. */
struct vm_setting {
    const char *key;     /* settings(run)'s key: "max_in" */
    const char *option;  /* the command line's option, without dashes: "max-in" */
    unsigned bit;        /* vm_setting_bit */
    int64_t min, max;    /* an integer's bounds; a choice's index range */
    int64_t def;         /* the run's value when neither sets it */
    const char *choices; /* "a|b": a choice, its index the value; NULL: an integer */
};

extern const struct vm_setting vm_settings[];

/* The row of key, or NULL. */
const struct vm_setting *vm_setting_find(const char *key);

struct vm_run_settings {
    unsigned set; /* vm_setting_bit: which keys the policy gave */
    int parallel, max_out, max_in, max_failures, retries;
    unsigned deadline_s;
    enum vm_on_abort on_abort;
    json_t *notify; /* array of URL strings, owned */
};

/* Parse and validate settings(run)'s table: 0, or -1 with *err naming the
 * key ("max_out must be an integer from 1 to 64"). out is cleared first. */
int vm_settings_parse(json_t *j, struct vm_run_settings *out, char **err);
void vm_settings_clear(struct vm_run_settings *s);
json_t *vm_settings_to_json(const struct vm_run_settings *s);

#endif
