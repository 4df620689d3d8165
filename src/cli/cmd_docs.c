/* SPDX-License-Identifier: MIT */
/* cmd_docs.c — hidden `vmmigrate docs man|bash|zsh`: prints the man page or a
 * completion script generated from the command tables (cli_docs.c). The
 * committed man/ and completions/ files are its output; tests check drift. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/exitcode.h"
#include "util/util.h"

static int cmd_docs_exec(const struct vm_cli_args *args)
{
    const char *what = vm_cli_pos(args, 0);
    enum vm_cli_doc_kind kind;
    if (what && strcmp(what, "man") == 0)
        kind = VM_CLI_DOC_MAN;
    else if (what && strcmp(what, "bash") == 0)
        kind = VM_CLI_DOC_BASH;
    else if (what && strcmp(what, "zsh") == 0)
        kind = VM_CLI_DOC_ZSH;
    else {
        vm_error("docs: expected one of man, bash, zsh");
        return VM_EXIT_USAGE;
    }
    char *text = vm_cli_docs_generate(kind);
    fputs(text, stdout);
    free(text);
    return VM_EXIT_OK;
}

const struct vm_cli_command vm_cmd_docs_entry = {
    .name = "docs",
    .usage = "man|bash|zsh",
    .summary = "print the generated man page or a completion script",
    .doc = "Print the man page (roff) or the bash or zsh completion script, generated from the "
           "same tables that drive option parsing and --help.",
    .flags = VM_CLI_HIDDEN,
    .exec = cmd_docs_exec,
};
