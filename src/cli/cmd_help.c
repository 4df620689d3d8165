/* SPDX-License-Identifier: MIT */
/* cmd_help.c — `vmmigrate help [COMMAND]`. */
#include "cli/cli.h"
#include "util/exitcode.h"
#include "util/util.h"

static int cmd_help_exec(const struct vm_cli_args *args)
{
    const char *name = vm_cli_pos(args, 0);
    if (!name) {
        vm_cli_print_help(NULL);
        return VM_EXIT_OK;
    }
    if (vm_cli_npos(args) > 1) {
        vm_error("help: unexpected argument '%s'", vm_cli_pos(args, 1));
        return VM_EXIT_USAGE;
    }
    const struct vm_cli_command *cmd = vm_cli_find(name);
    if (!cmd) {
        const char *near = vm_cli_suggest_command(name);
        if (near)
            vm_error("help: unknown command '%s'; did you mean '%s'?", name, near);
        else
            vm_error("help: unknown command '%s'", name);
        return VM_EXIT_USAGE;
    }
    vm_cli_print_help(cmd);
    return VM_EXIT_OK;
}

const struct vm_cli_command vm_cmd_help_entry = {
    .name = "help",
    .usage = "[COMMAND]",
    .summary = "show help for vmmigrate or one of its commands",
    .doc = "Print the list of commands, or the options of COMMAND.",
    .exec = cmd_help_exec,
};
