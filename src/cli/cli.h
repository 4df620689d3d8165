/* SPDX-License-Identifier: MIT */
/* cli.h — the command and option tables: the one description of vmmigrate's
 * command line.
 *
 * Every command lives in its own cmd_*.c file and exports one
 * `struct vm_cli_command` (tmux's cmd-*.c). The tables are the single source
 * for option parsing (getopt_long), `--help`, the man page and the shell
 * completions (cli_docs.c); tests/unit/test_docs.c fails when the committed
 * man/ and completions/ files drift from what the tables generate. Options
 * several commands take are defined once, in cli_options.h.
 *
 * Parsing owns a `struct vm_cli_args` (vm_cli_args_free); values point into
 * argv, which outlives it. */
#ifndef VMM_CLI_H
#define VMM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vm_cli_arg {
    VM_CLI_ARG_NONE,    /* a flag */
    VM_CLI_ARG_STRING,  /* free text */
    VM_CLI_ARG_URI,     /* a libvirt connection URI */
    VM_CLI_ARG_FILE,    /* a path; "-" may mean stdout where documented */
    VM_CLI_ARG_VM,      /* a domain name */
    VM_CLI_ARG_INT,     /* integer in [min, max] */
    VM_CLI_ARG_CHOICE,  /* one of `choices` ("a|b|c") */
    VM_CLI_ARG_CHOICES, /* comma-separated subset of `choices` */
    VM_CLI_ARG_RUN,     /* a run id (its journal's name) */
};

enum vm_cli_flags {
    VM_CLI_REPEAT = 1 << 0, /* may be given several times */
    VM_CLI_HIDDEN = 1 << 1, /* not in --help, man or completions */
};

/* The heading an option appears under in --help and the man page, in this
 * order (vm_cli_groups[] has the headings). Every option has one; 0 is no
 * group, which tests/unit/test_docs.c refuses. A command with at most
 * VM_CLI_GROUP_MIN_OPTIONS shown options lists them under one heading,
 * "Options", whatever their groups. */
enum vm_cli_group {
    VM_CLI_GROUP_NONE,
    VM_CLI_GROUP_GENERAL,    /* what fits no other heading */
    VM_CLI_GROUP_HOSTS,      /* which hosts and VMs */
    VM_CLI_GROUP_POLICY,     /* the policy, classes, features, the plan */
    VM_CLI_GROUP_CONNECTION, /* reaching the hosts */
    VM_CLI_GROUP_MIGRATION,  /* how each migration runs */
    VM_CLI_GROUP_LIMITS,     /* how many, how long, how often */
    VM_CLI_GROUP_OUTPUT,     /* reports, events, files, webhooks, logging */
    VM_CLI_GROUP_CRON,       /* unattended runs: journals, locks, stopping */
    VM_CLI_GROUP_COUNT,
};
enum { VM_CLI_GROUP_MIN_OPTIONS = 8 };

/* vm_cli_groups[g]: the heading of group g ("Migration"), NULL for none. */
extern const char *const vm_cli_groups[VM_CLI_GROUP_COUNT];

struct vm_cli_option {
    const char *name; /* long name without dashes; NULL ends a table */
    char short_name;  /* 0 if none */
    enum vm_cli_arg arg;
    const char *metavar; /* e.g. "URI", "MIB/S" */
    int id;              /* the command's own option id (> 0) */
    unsigned flags;
    int64_t min, max;    /* VM_CLI_ARG_INT */
    const char *choices; /* VM_CLI_ARG_CHOICE(S): "a|b|c" */
    const char *glob;    /* VM_CLI_ARG_FILE: the files the completions offer ("*.lua"); NULL: any */
    const char *help;    /* one line, for --help */
    const char *doc;     /* the man page paragraph (roff-free text); NULL: help */
    enum vm_cli_group group;
};

struct vm_cli_args;

struct vm_cli_command {
    const char *name;
    const char *usage;   /* after "vmmigrate NAME " */
    const char *summary; /* one line */
    const char *doc;     /* the man page's description of the command */
    const struct vm_cli_option *options;
    /* What the completions offer for the positional arguments, in order
     * (a name of no option ends it; NULL: none, or usage's COMMAND): each
     * entry's arg, metavar, choices and glob as an option's. A VM option
     * takes its VM names from the command's --source, or where it shows
     * none (drain) from its VM_CLI_ARG_URI positional. */
    const struct vm_cli_option *positionals;
    /* Ids of `options` this command accepts but does not show (a table
     * shared with another command: drain takes run's, less --source); 0 ends
     * it; NULL: none. */
    const int *hidden_ids;
    unsigned flags; /* VM_CLI_HIDDEN */
    int (*exec)(const struct vm_cli_args *args);
};

/* One entry of the documented exit-code table (mirrors exitcode.h). */
struct vm_cli_exit {
    int code;
    const char *name;
    const char *doc;
};

extern const struct vm_cli_command *const vm_cli_commands[];
extern const struct vm_cli_option vm_cli_common_options[];
extern const struct vm_cli_exit vm_cli_exits[];

/* Ids of the common options (all commands accept them). */
enum {
    VM_CLI_OPT_HELP = 1000,
    VM_CLI_OPT_QUIET,
    VM_CLI_OPT_VERBOSE,
    VM_CLI_OPT_SYSLOG,
};

const struct vm_cli_command *vm_cli_find(const char *name);
/* Whether option o of command cmd (NULL: a common option) appears in --help,
 * the man page and the completions: not VM_CLI_HIDDEN nor in cmd->hidden_ids. */
bool vm_cli_option_shown(const struct vm_cli_command *cmd, const struct vm_cli_option *o);
/* Whether cmd's --help and man page list its options under their groups'
 * headings: it shows more than VM_CLI_GROUP_MIN_OPTIONS of them. */
bool vm_cli_grouped(const struct vm_cli_command *cmd);

/* The shown command nearest to a mistyped name ("darin": "drain"), or NULL
 * when none is close (a static string of the table). */
const char *vm_cli_suggest_command(const char *name);
/* The edit distance of a[0..alen) and b[0..blen): insertions, deletions,
 * substitutions and swaps of neighbours count one each. */
size_t vm_cli_edit_distance(const char *a, size_t alen, const char *b, size_t blen);

/* Parse argv (argv[0] is the command name). On error prints one line naming
 * the culprit (an unknown long option with the nearest one of cmd, if any
 * is close) and returns NULL with *exit_code = VM_EXIT_USAGE; on --help
 * prints the command's help and returns NULL with *exit_code = VM_EXIT_OK. */
struct vm_cli_args *vm_cli_parse(const struct vm_cli_command *cmd, int argc, char **argv,
                                 int *exit_code);
void vm_cli_args_free(struct vm_cli_args *args);

bool vm_cli_flag(const struct vm_cli_args *args, int id);
/* The last value given for the option, or NULL. */
const char *vm_cli_str(const struct vm_cli_args *args, int id);
/* The last integer given (VM_CLI_ARG_INT), or `def`. */
int64_t vm_cli_int(const struct vm_cli_args *args, int id, int64_t def);
/* Number of times a value was given, and the i-th one, in order. */
int vm_cli_count(const struct vm_cli_args *args, int id);
const char *vm_cli_nth(const struct vm_cli_args *args, int id, int i);
/* Every value of a repeated option, NULL-terminated (*n of them); the
 * array is the caller's to free, the strings point into args. */
const char **vm_cli_list(const struct vm_cli_args *args, int id, int *n);
/* The --host-exec values (option id), each checked as URI=PREFIX: as
 * vm_cli_list, or NULL after a one-line error naming cmd and the value. */
const char **vm_cli_host_execs(const struct vm_cli_args *args, int id, const char *cmd, int *n);
/* Positional arguments after the options. */
int vm_cli_npos(const struct vm_cli_args *args);
const char *vm_cli_pos(const struct vm_cli_args *args, int i);
const struct vm_cli_command *vm_cli_args_command(const struct vm_cli_args *args);

/* Help text for the program (cmd NULL) or one command, to stdout. */
void vm_cli_print_help(const struct vm_cli_command *cmd);

/* cli_docs.c: generate the man page / completions from the tables. */
enum vm_cli_doc_kind {
    VM_CLI_DOC_MAN,
    VM_CLI_DOC_BASH,
    VM_CLI_DOC_ZSH,
};
char *vm_cli_docs_generate(enum vm_cli_doc_kind kind); /* caller frees */

#endif
