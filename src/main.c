/* SPDX-License-Identifier: MIT */
/* main.c — finds the command in cli.c's table, parses its options, runs it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "feature/feature.h"
#include "policy/policy.h"
#include "run/guardian.h"
#include "run/job.h"
#include "util/exitcode.h"
#include "util/fault.h"
#include "util/util.h"

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* Test-only fault points (util/fault.h): a typo must not pass unseen. */
    char *fault_err = vm_fault_check();
    if (fault_err) {
        vm_error("%s", fault_err);
        free(fault_err);
        return VM_EXIT_USAGE;
    }
    /* Every command that runs policy code (policy check, qemu, recover, and
     * the runs, which set it again) ends on a stuck hook as a run does. */
    vm_policy_set_stuck(vm_job_policy_stuck, NULL);
    /* The built-in features' names are reserved in every policy. */
    vm_policy_set_reserved(vm_feature_builtin);

    if (argc < 2) {
        vm_error("no command given (see 'vmmigrate --help')");
        return VM_EXIT_USAGE;
    }
    /* The run's guardian (run/guardian.h): internal, not in the table. */
    if (strcmp(argv[1], VM_GUARDIAN_COMMAND) == 0)
        return vm_guardian_main(argc - 1, argv + 1);
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    else if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        name = "version";
    const struct vm_cli_command *cmd = vm_cli_find(name);
    if (!cmd) {
        const char *near = vm_cli_suggest_command(argv[1]);
        if (near)
            vm_error("unknown command '%s'; did you mean '%s'?", argv[1], near);
        else
            vm_error("unknown command '%s' (see 'vmmigrate --help')", argv[1]);
        return VM_EXIT_USAGE;
    }
    int rc;
    struct vm_cli_args *args = vm_cli_parse(cmd, argc - 1, argv + 1, &rc);
    if (!args)
        return rc;
    /* -v says what is logged; -q keeps all but errors off stderr only. */
    int verbose = vm_cli_count(args, VM_CLI_OPT_VERBOSE);
    enum vm_log_level level = verbose > 1 ? VM_LOG_DEBUG : verbose ? VM_LOG_INFO : VM_LOG_WARN;
    vm_log_set_level(vm_cli_flag(args, VM_CLI_OPT_QUIET) ? VM_LOG_ERROR : level);
    if (vm_cli_flag(args, VM_CLI_OPT_SYSLOG))
        vm_log_set_syslog(level);
    rc = cmd->exec(args);
    vm_cli_args_free(args);
    fflush(stdout);
    if (ferror(stdout)) {
        vm_error("error writing to standard output");
        if (rc == VM_EXIT_OK)
            rc = VM_EXIT_INTERNAL;
    }
    return rc;
}
