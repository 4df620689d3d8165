/* SPDX-License-Identifier: MIT */
/* cmd_policy.c — `vmmigrate policy check FILE`: load a policy the way run
 * does (file checks, sandbox, limits) and say which hooks it defines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_options.h"
#include "plan/decision.h"
#include "util/exitcode.h"
#include "policy/policy.h"
#include "util/util.h"

enum {
    OPT_JSON = 1,
};

static const struct vm_cli_option policy_options[] = {
    VM_CLI_OPTION_JSON(
        OPT_JSON, "print the result as JSON",
        "Print {\"policy\": FILE, \"ok\": true|false, \"hooks\": [...], \"error\": ...} on "
        "standard output."),
    {0},
};

/* settings(run), if defined, must return valid settings for a plain run. */
static int check_settings(struct vm_policy *p, char **err)
{
    if (!vm_policy_has_hook(p, "settings"))
        return 0;
    json_t *run = json_pack("{s:s, s:[], s:[]}", "command", "run", "sources", "targets");
    struct vm_run_settings st;
    int rc = vm_policy_settings(p, run, &st, err);
    json_decref(run);
    if (rc == 0)
        vm_settings_clear(&st);
    return rc;
}

static int cmd_policy_exec(const struct vm_cli_args *args)
{
    const char *verb = vm_cli_pos(args, 0), *path = vm_cli_pos(args, 1);
    if (!verb || strcmp(verb, "check") != 0) {
        vm_error("policy: expected 'check FILE'%s%s%s", verb ? " (got '" : "", verb ? verb : "",
                 verb ? "')" : "");
        return VM_EXIT_USAGE;
    }
    if (!path || vm_cli_npos(args) > 2) {
        vm_error("policy check: expected exactly one FILE");
        return VM_EXIT_USAGE;
    }
    char *err = NULL;
    struct vm_policy *p = vm_policy_load(path, &err);
    if (p && check_settings(p, &err) < 0) {
        vm_policy_free(p);
        p = NULL;
    }
    if (vm_cli_flag(args, OPT_JSON)) {
        json_t *o = json_pack("{s:s, s:b, s:o, s:o}", "policy", path, "ok", p != NULL, "hooks",
                              p ? vm_policy_hooks(p) : json_array(), "error",
                              err ? json_string(err) : json_null());
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    }
    if (!p) {
        vm_error("%s", err);
        free(err);
        return VM_EXIT_POLICY;
    }
    if (!vm_cli_flag(args, OPT_JSON)) {
        json_t *hooks = vm_policy_hooks(p);
        printf("%s: ok; hooks:", path);
        size_t i;
        json_t *h;
        json_array_foreach(hooks, i, h) printf(" %s", json_string_value(h));
        printf("\n");
        json_decref(hooks);
    }
    vm_policy_free(p);
    return VM_EXIT_OK;
}

static const struct vm_cli_option policy_positionals[] = {
    {.name = "verb", .arg = VM_CLI_ARG_CHOICE, .metavar = "verb", .choices = "check"},
    {.name = "file", .arg = VM_CLI_ARG_FILE, .metavar = "policy file", .glob = "*.lua"},
    {0},
};

const struct vm_cli_command vm_cmd_policy_entry = {
    .name = "policy",
    .usage = "check FILE",
    .summary = "check a Lua policy: load it sandboxed and list its hooks",
    .doc = "Load the policy FILE exactly as run --policy would (ownership and permission "
           "checks, the sandbox, its memory and instruction limits, the shipped vmm module) "
           "and list the hooks it defines. Exit status 0 if it loads, 6 (policy) with the "
           "error naming the file and line if not. See vmmigrate-policy(7).",
    .options = policy_options,
    .positionals = policy_positionals,
    .exec = cmd_policy_exec,
};
