/* SPDX-License-Identifier: MIT */
/* policy_priv.h — what the policy's files share: struct vm_policy, and the
 * protocol between the `vmm` module's C functions (policy_api.c) and the
 * feature step runner (feature/feature_policy.c), by which vmm.exec and
 * vmm.http yield to the loop. Not for other modules: they see policy.h.
 *
 *   policy/policy.c            load, hooks, decide, reserve, settings,
 *                              on_progress, shutdown
 *   policy/policy_api.c        the C half of the `vmm` module
 *   feature/feature_policy.c   features a policy defines, and their steps
 *                              run as coroutines on the loop
 *
 * Registry fields of the policy's state: "vmmigrate.policy" (light userdata,
 * the struct vm_policy), "vmmigrate.loaded" (true once the main chunk ran),
 * "vmmigrate.features" (name -> table of step functions). */
#ifndef VMM_POLICY_PRIV_H
#define VMM_POLICY_PRIV_H

#include <stdbool.h>

#include <lua.h>

#include "policy/lua_sandbox.h"
#include "policy/policy.h"
#include "util/http.h"

struct vm_policy {
    struct vm_lua *lua;
    struct vm_http *http; /* made on first vmm.http, closed by vm_policy_shutdown */
    vm_policy_log_fn log_cb;
    void *log_data;
    char *path;
    bool has_decide, has_progress, has_settings;
    int run_ref;        /* the run table, or LUA_NOREF */
    char *decide_where; /* "file:line" where decide() is defined */
    int states_ref;     /* per-VM state tables for on_progress, keyed by uuid/name */
};

/* vmm.exec yields (&vm_policy_exec_tag, host, argv); vmm.http yields
 * (&vm_policy_http_tag, request table). Defined in policy_api.c. */
extern const char vm_policy_exec_tag, vm_policy_http_tag;

struct http_args {
    struct vm_http_request rq;
    const char *headers[VM_HTTP_MAX_HEADERS + 1];
    int nheaders;
};

/* Read the request table at IDX into A (strings stay owned by the table):
 * 0, or -1 if it has no url or a header is not a string. */
int vm_policy_http_read(lua_State *L, int idx, struct http_args *a);

/* The `vmm` module's open function (struct vm_lua_module.open): a table of
 * log, feature, exec, http, null, array. */
int vm_policy_api_open(lua_State *L);

#endif
