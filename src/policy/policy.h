/* SPDX-License-Identifier: MIT */
/* policy.h — a loaded Lua policy and its hooks, as the job sees them.
 *
 * vm_policy_load() checks and loads the file into its own sandbox
 * (lua_sandbox.h) with the shipped `vmm` module preloaded, and probes once
 * which hooks it defines (decide, on_progress); hooks it leaves out cost
 * nothing. Everything runs on the loop thread. Data crosses as JSON copies
 * (never live handles); what comes back is validated (decision.h).
 *
 * Fallbacks when a hook fails (error, budget, memory, garbage returned) —
 * always fail closed, reported with file:line:
 *   decide()       the VM is not migrated (plan status "error");
 *   on_progress()  the running migration takes the safe path: it is
 *                  aborted, and the guest stays on its source.
 * The `struct vm_policy` is owned by the job and freed with vm_policy_free.
 * Implemented by policy.c, policy_api.c (the `vmm` module) and
 * feature/feature_policy.c (the policy's features), see policy_priv.h. */
#ifndef VMM_POLICY_H
#define VMM_POLICY_H

#include <stdbool.h>

#include <jansson.h>
#include <uv.h>

#include "plan/decision.h"
#include "plan/plan.h"

struct vm_exec_hosts;
struct vm_policy;

/* NULL and *err (malloc'd, one line naming file:line) on failure. */
struct vm_policy *vm_policy_load(const char *path, char **err);
void vm_policy_free(struct vm_policy *p);
/* Before the loop ends: close what runs on it (the HTTP client). */
void vm_policy_shutdown(struct vm_policy *p);
const char *vm_policy_path(const struct vm_policy *p);
/* A hook stuck where the sandbox's limits cannot stop it (lua_sandbox.h,
 * vm_lua_set_stuck): fn(data, what) runs on the sandbox's watchdog thread
 * while the loop thread is still inside the hook, so it may only write(2)
 * and _exit(). Whoever sets it decides what happens (the run ends the
 * process); NULL, the default: nothing happens. One for the process. */
typedef void (*vm_policy_stuck_fn)(void *data, const char *what);
void vm_policy_set_stuck(vm_policy_stuck_fn fn, void *data);
/* Names a policy may not give its own features (vmm.feature): the
 * built-ins, whose table is feature/'s (feature_builtin.c). fn(name) says
 * whether NAME is reserved; set once, before the first vm_policy_load, by
 * whoever links both (main.c). One for the process; NULL, the default:
 * none is. */
typedef bool (*vm_policy_reserved_fn)(const char *name);
void vm_policy_set_reserved(vm_policy_reserved_fn fn);
/* Where vmm.log.*() lines go besides vmmigrate's log (the event stream):
 * level "debug".."error", where = "file:line", the message. */
typedef void (*vm_policy_log_fn)(void *data, const char *level, const char *where, const char *msg);
void vm_policy_set_logger(struct vm_policy *p, vm_policy_log_fn fn, void *data);
bool vm_policy_has_hook(const struct vm_policy *p, const char *name);
/* settings(run) -> the run-level settings, validated (decision.h): 0 and
 * *out (cleared if there is no hook or it returned nil; vm_settings_clear
 * it), or -1 and *err ("FILE: settings: ...", fail closed). */
int vm_policy_settings(struct vm_policy *p, json_t *run, struct vm_run_settings *out, char **err);
/* The hooks found, e.g. ["decide", "on_progress"] (new reference). */
json_t *vm_policy_hooks(const struct vm_policy *p);

/* The run the policy sees in every decide(vm, run): {sources: [host...],
 * targets: [host...], parallel}. Copied into Lua once; the plan's
 * reservations then update targets[i].planned_memory_bytes in place. */
void vm_policy_set_run(struct vm_policy *p, json_t *run);
/* vm_plan_ops backed by the policy's decide() hook. */
void vm_policy_plan_ops(struct vm_policy *p, struct vm_plan_ops *ops);

/* on_progress(vm, progress, state): the action to take (0), or -1 and *err
 * (the caller then aborts the migration: fail closed). `state` is a table
 * kept per VM across calls. */
int vm_policy_progress(struct vm_policy *p, json_t *vm, json_t *progress, struct vm_action *action,
                       char **err);

/* Features the policy defined with vmm.feature(name, steps). */
bool vm_policy_has_feature(const struct vm_policy *p, const char *name);
/* ... and whether it defined STEP ("deinit", ...). */
bool vm_policy_feature_has_step(const struct vm_policy *p, const char *name, const char *step);

/* Run STEP ("probe", "prepare", "gate", "after", "deinit") of feature NAME
 * with (vm, ctx) as a coroutine on the loop, so that steps may call vmm.exec(host,
 * argv) (host "source", "target" or a URI, reached through HOSTS, borrowed
 * until cb ran: exec.h; the step waits for the command without blocking
 * the loop). cb(data, 1 | 0 | -1, reason) runs exactly once,
 * possibly before this returns (then NULL is returned); timeout_ms bounds
 * the whole step (a running command is killed). */
typedef void (*vm_policy_step_cb)(void *data, int rc, const char *reason);
struct vm_policy_step;
struct vm_policy_step *vm_policy_feature_start(struct vm_policy *p, uv_loop_t *loop,
                                               const char *name, const char *step, json_t *vm,
                                               json_t *ctx, const char *source, const char *target,
                                               const struct vm_exec_hosts *hosts,
                                               uint64_t timeout_ms, vm_policy_step_cb cb,
                                               void *data);
/* Stop a running step: its command is killed, cb runs now with 0 and
 * "cancelled: ...". Safe to call only before cb ran. */
void vm_policy_step_cancel(struct vm_policy_step *st);

#endif
