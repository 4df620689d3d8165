/* SPDX-License-Identifier: MIT */
/* cli.c — option parsing and --help from the command tables (see cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/exec.h"
#include "util/exitcode.h"
#include "util/util.h"

extern const struct vm_cli_command vm_cmd_drain_entry;
extern const struct vm_cli_command vm_cmd_plan_entry;
extern const struct vm_cli_command vm_cmd_policy_entry;
extern const struct vm_cli_command vm_cmd_qemu_entry;
extern const struct vm_cli_command vm_cmd_recover_entry;
extern const struct vm_cli_command vm_cmd_run_entry;
extern const struct vm_cli_command vm_cmd_status_entry;
extern const struct vm_cli_command vm_cmd_help_entry;
extern const struct vm_cli_command vm_cmd_version_entry;
extern const struct vm_cli_command vm_cmd_abort_entry;
extern const struct vm_cli_command vm_cmd_docs_entry;

/* Sorted by name, as they appear in --help and the man page; one per line. */
/* clang-format off */
const struct vm_cli_command *const vm_cli_commands[] = {
    &vm_cmd_abort_entry,
    &vm_cmd_docs_entry,
    &vm_cmd_drain_entry,
    &vm_cmd_help_entry,
    &vm_cmd_plan_entry,
    &vm_cmd_policy_entry,
    &vm_cmd_qemu_entry,
    &vm_cmd_recover_entry,
    &vm_cmd_run_entry,
    &vm_cmd_status_entry,
    &vm_cmd_version_entry,
    NULL,
};
/* clang-format on */

/* The headings of --help and the man page, in vm_cli_group order. */
const char *const vm_cli_groups[VM_CLI_GROUP_COUNT] = {
    [VM_CLI_GROUP_NONE] = NULL,
    [VM_CLI_GROUP_GENERAL] = "Options",
    [VM_CLI_GROUP_HOSTS] = "Hosts and VMs",
    [VM_CLI_GROUP_POLICY] = "Policy and plan",
    [VM_CLI_GROUP_CONNECTION] = "Connections",
    [VM_CLI_GROUP_MIGRATION] = "Migration",
    [VM_CLI_GROUP_LIMITS] = "Limits",
    [VM_CLI_GROUP_OUTPUT] = "Output",
    [VM_CLI_GROUP_CRON] = "Cron and timers",
};

const struct vm_cli_option vm_cli_common_options[] = {
    {.name = "help",
     .short_name = 'h',
     .id = VM_CLI_OPT_HELP,
     .help = "show this help and exit",
     .group = VM_CLI_GROUP_GENERAL},
    {.name = "quiet",
     .short_name = 'q',
     .id = VM_CLI_OPT_QUIET,
     .help = "print errors only (for cron); no progress meter",
     .doc = "Print nothing on standard error but errors, even with --verbose, and no progress "
            "meter. Meant for cron and systemd timers; --syslog still gets what --verbose "
            "asks for.",
     .group = VM_CLI_GROUP_OUTPUT},
    {.name = "syslog",
     .id = VM_CLI_OPT_SYSLOG,
     .help = "also send every log line to syslog (daemon facility)",
     .doc = "Also send every message to syslog(3): identity vmmigrate with its process id, "
            "facility daemon, priority err, warning, info or debug, no timestamp (syslog adds "
            "its own). Warnings and errors by default, info and debug with --verbose, "
            "whatever --quiet leaves on standard error.",
     .group = VM_CLI_GROUP_OUTPUT},
    {.name = "verbose",
     .short_name = 'v',
     .id = VM_CLI_OPT_VERBOSE,
     .flags = VM_CLI_REPEAT,
     .help = "log more on stderr (twice: debug)",
     .doc = "Log what vmmigrate does on standard error. Given twice, also debug messages. On a "
            "terminal, info and debug lines carry a timestamp; when standard error is a file "
            "or a pipe (cron's mail, a log file) every line does; when it is the journal "
            "(systemd sets JOURNAL_STREAM), lines carry the sd-daemon(3) priority prefix (<3> "
            "error, <4> warning, <6> info, <7> debug) and no timestamp.",
     .group = VM_CLI_GROUP_OUTPUT},
    {0},
};

const struct vm_cli_exit vm_cli_exits[] = {
    {VM_EXIT_OK, "ok", "Every requested migration succeeded."},
    {VM_EXIT_FAILED, "failed",
     "At least one migration failed or was aborted, or a VM's domain XML could not be read "
     "(that VM is left alone and named); each such guest kept running on its source (the JSON "
     "report says where every guest runs). status --failed: it lists a failed, aborted or "
     "rolled-back migration, and none that needs an operator."},
    {VM_EXIT_USAGE, "usage", "Bad command line: unknown option, missing or bad value."},
    {VM_EXIT_PREFLIGHT, "preflight",
     "Bad input found before anything was changed: unknown VM, VM not running, VM already on "
     "the target, source and target are the same host."},
    {VM_EXIT_UNREACHABLE, "unreachable",
     "A libvirt host could not be connected to, or did not answer within --connect-timeout."},
    {VM_EXIT_INTERRUPTED, "interrupted",
     "Interrupted by SIGINT or SIGTERM: migrations not yet started were skipped, running ones "
     "were aborted (a migration that completed before the abort took effect is reported as "
     "migrated)."},
    {VM_EXIT_POLICY, "policy",
     "The policy failed to load, or failed (error, limit, bad return) for at least one VM, "
     "which was then left alone or had its migration aborted (fail closed)."},
    {VM_EXIT_LOCKED, "locked",
     "Another vmmigrate run works on a source host (its lock is held); nothing was done. "
     "--wait-lock waits instead."},
    {VM_EXIT_NOTHING, "nothing",
     "run --policy: the policy chose no VM to migrate; abort: no run was going on."},
    {VM_EXIT_OPERATOR, "operator",
     "A guest's location is unknown, a feature could not be undone (deinit failed), or "
     "recover found a state it must not decide alone (a run leaves such a VM where it is and "
     "names it): an operator must look. status --failed: it lists such a VM, or one of a run "
     "that is not finished (running, or crashed: see recover)."},
    {VM_EXIT_JOURNAL, "journal",
     "The journal could not be written (a full or read-only filesystem, see --journal-dir). A "
     "run that cannot write and fsync its first record starts nothing and changes nothing; one "
     "whose journal fails later starts no more migrations (running ones finish or roll back "
     "as usual), as does one whose journal's filesystem filled by its end. A migration starts "
     "only while the journal's filesystem has room for its records (64 KiB)."},
    {VM_EXIT_INTERNAL, "internal", "Internal error: a bug in vmmigrate."},
    {-1, NULL, NULL},
};

struct vm_cli_value {
    int id;
    const char *str;
    int64_t num;
};

struct vm_cli_args {
    const struct vm_cli_command *cmd;
    int nvalues;
    struct vm_cli_value *values;
    int npos;
    char **pos;
};

const struct vm_cli_command *vm_cli_find(const char *name)
{
    for (size_t i = 0; vm_cli_commands[i]; i++)
        if (strcmp(vm_cli_commands[i]->name, name) == 0)
            return vm_cli_commands[i];
    return NULL;
}

const char **vm_cli_list(const struct vm_cli_args *args, int id, int *n)
{
    *n = vm_cli_count(args, id);
    const char **v = xcalloc((size_t)*n + 1, sizeof(*v));
    for (int i = 0; i < *n; i++)
        v[i] = vm_cli_nth(args, id, i);
    return v;
}

const char **vm_cli_host_execs(const struct vm_cli_args *args, int id, const char *cmd, int *n)
{
    const char **v = vm_cli_list(args, id, n);
    for (int i = 0; i < *n; i++) {
        if (!vm_exec_override_valid(v[i])) {
            vm_error("%s: --host-exec '%s' is not URI=PREFIX", cmd, v[i]);
            free(v);
            return NULL;
        }
    }
    return v;
}

bool vm_cli_option_shown(const struct vm_cli_command *cmd, const struct vm_cli_option *o)
{
    if (o->flags & VM_CLI_HIDDEN)
        return false;
    for (const int *id = cmd ? cmd->hidden_ids : NULL; id && *id; id++)
        if (*id == o->id)
            return false;
    return true;
}

bool vm_cli_grouped(const struct vm_cli_command *cmd)
{
    int n = 0;
    for (const struct vm_cli_option *o = cmd->options; o && o->name; o++)
        n += vm_cli_option_shown(cmd, o);
    return n > VM_CLI_GROUP_MIN_OPTIONS;
}

/* ---- did you mean ------------------------------------------------------ */

size_t vm_cli_edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Optimal string alignment: insertions, deletions, substitutions and
     * transpositions of neighbours ("darin" is one from "drain"); three
     * rows of the matrix. */
    size_t *rows = xcalloc(3 * (blen + 1), sizeof(*rows));
    size_t *prev2 = rows, *prev = rows + blen + 1, *cur = rows + 2 * (blen + 1);
    for (size_t j = 0; j <= blen; j++)
        prev[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (prev[j - 1] + cost < d)
                d = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    size_t d = prev[blen];
    free(rows);
    return d;
}

/* The closest of the names offered to a mistyped word: within one edit
 * (two for words of six letters or more), the first of the nearest in
 * table order; else the one name the word is a prefix of (three letters or
 * more: options are not abbreviated). */
struct suggest {
    const char *word;
    size_t len;
    const char *best;
    size_t best_d;
    const char *prefix;
    int nprefix;
};

static void suggest_offer(struct suggest *s, const char *name)
{
    size_t n = strlen(name);
    if (n == s->len && strncmp(name, s->word, n) == 0)
        return; /* the word is right; something else is wrong */
    size_t d = vm_cli_edit_distance(s->word, s->len, name, n);
    if (!s->best || d < s->best_d) {
        s->best = name;
        s->best_d = d;
    }
    if (s->len >= 3 && n > s->len && strncmp(name, s->word, s->len) == 0) {
        s->prefix = name;
        s->nprefix++;
    }
}

static const char *suggest_result(const struct suggest *s)
{
    size_t limit = s->len >= 6 ? 2 : s->len >= 3 ? 1 : 0;
    if (s->best && s->best_d <= limit)
        return s->best;
    return s->nprefix == 1 ? s->prefix : NULL;
}

const char *vm_cli_suggest_command(const char *name)
{
    struct suggest s = {.word = name, .len = strlen(name)};
    for (size_t i = 0; vm_cli_commands[i]; i++)
        if (!(vm_cli_commands[i]->flags & VM_CLI_HIDDEN))
            suggest_offer(&s, vm_cli_commands[i]->name);
    return suggest_result(&s);
}

/* The long option of cmd (or a common one) closest to "--word[=value]". */
static const char *suggest_option(const struct vm_cli_command *cmd, const char *arg)
{
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    struct suggest s = {.word = arg + 2, .len = strcspn(arg + 2, "=")};
    for (const struct vm_cli_option *o = cmd->options; o && o->name; o++)
        if (vm_cli_option_shown(cmd, o))
            suggest_offer(&s, o->name);
    for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
        if (vm_cli_option_shown(NULL, o))
            suggest_offer(&s, o->name);
    return suggest_result(&s);
}

/* "run: unknown option '--paralel'; did you mean '--parallel'?", or the
 * pointer to --help when no option is close. */
static void unknown_option(const struct vm_cli_command *cmd, const char *arg)
{
    const char *near = suggest_option(cmd, arg);
    if (near)
        vm_error("%s: unknown option '%s'; did you mean '--%s'?", cmd->name, arg, near);
    else
        vm_error("%s: unknown option '%s' (see 'vmmigrate %s --help')", cmd->name, arg, cmd->name);
}

static const struct vm_cli_option *find_by_index(const struct vm_cli_command *cmd, int index)
{
    int n = 0;
    for (const struct vm_cli_option *o = cmd->options; o && o->name; o++, n++)
        if (n == index)
            return o;
    for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++, n++)
        if (n == index)
            return o;
    return NULL;
}

/* Is ARG an option (of this command) that takes a value? */
static bool is_value_of(const struct vm_cli_command *cmd, int nopts, const char *arg)
{
    if (strncmp(arg, "--", 2) == 0 && !strchr(arg, '=')) {
        for (int k = 0; k < nopts; k++) {
            const struct vm_cli_option *o = find_by_index(cmd, k);
            if (strcmp(o->name, arg + 2) == 0)
                return o->arg != VM_CLI_ARG_NONE;
        }
        return false;
    }
    if (arg[0] == '-' && arg[1] && arg[1] != '-') {
        char last = arg[strlen(arg) - 1];
        for (int k = 0; k < nopts; k++) {
            const struct vm_cli_option *o = find_by_index(cmd, k);
            if (o->short_name == last && strlen(arg) == 2)
                return o->arg != VM_CLI_ARG_NONE;
        }
    }
    return false;
}

static bool choice_valid(const char *choices, const char *word, size_t len)
{
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, word, len) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

/* Validate one value; on error print one line and return false. */
static bool check_value(const struct vm_cli_command *cmd, const struct vm_cli_option *o,
                        const char *val, int64_t *num)
{
    const char *cname = cmd->name;
    switch (o->arg) {
    case VM_CLI_ARG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(val, &end, 10);
        bool digits =
            (val[0] >= '0' && val[0] <= '9') || (val[0] == '-' && val[1] >= '0' && val[1] <= '9');
        if (!digits || errno || end == val || *end || v < o->min || v > o->max) {
            vm_error("%s: --%s: '%s' is not an integer from %" PRId64 " to %" PRId64, cname,
                     o->name, val, o->min, o->max);
            return false;
        }
        *num = v;
        return true;
    }
    case VM_CLI_ARG_CHOICE:
        if (!choice_valid(o->choices, val, strlen(val))) {
            vm_error("%s: --%s: '%s' is not one of %s", cname, o->name, val, o->choices);
            return false;
        }
        return true;
    case VM_CLI_ARG_CHOICES: {
        const char *p = val;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            if (!choice_valid(o->choices, p, n)) {
                vm_error("%s: --%s: '%.*s' is not one of %s", cname, o->name, (int)n, p,
                         o->choices);
                return false;
            }
            if (!comma)
                return true;
            p = comma + 1;
        }
    }
    default:
        if (!*val) {
            vm_error("%s: --%s: empty value", cname, o->name);
            return false;
        }
        if (strncmp(val, "--", 2) == 0) {
            vm_error("%s: --%s needs a value, got option '%s'", cname, o->name, val);
            return false;
        }
        return true;
    }
}

struct vm_cli_args *vm_cli_parse(const struct vm_cli_command *cmd, int argc, char **argv,
                                 int *exit_code)
{
    int nopts = 0;
    for (const struct vm_cli_option *o = cmd->options; o && o->name; o++)
        nopts++;
    for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
        nopts++;

    struct option *longopts = xcalloc((size_t)nopts + 1, sizeof(*longopts));
    char *shortopts = xmalloc((size_t)nopts * 2 + 2);
    char *sp = shortopts;
    *sp++ = ':'; /* report a missing argument as ':' */
    for (int i = 0; i < nopts; i++) {
        const struct vm_cli_option *o = find_by_index(cmd, i);
        longopts[i].name = o->name;
        longopts[i].has_arg = o->arg == VM_CLI_ARG_NONE ? no_argument : required_argument;
        longopts[i].val = 0x10000 + i;
        if (o->short_name) {
            *sp++ = o->short_name;
            if (o->arg != VM_CLI_ARG_NONE)
                *sp++ = ':';
        }
    }
    *sp = '\0';

    struct vm_cli_args *args = xcalloc(1, sizeof(*args));
    args->cmd = cmd;
    bool ok = true, help = false;

    /* getopt_long accepts unambiguous prefixes ("--band"); we do not, so
     * that a new option never changes what an old command line means. */
    for (int i = 1; i < argc && ok; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strncmp(a, "--", 2) != 0)
            continue;
        size_t len = strcspn(a + 2, "=");
        bool known = false;
        for (int k = 0; k < nopts && !known; k++) {
            const char *name = find_by_index(cmd, k)->name;
            known = strlen(name) == len && strncmp(name, a + 2, len) == 0;
        }
        if (!known && !(i > 1 && is_value_of(cmd, nopts, argv[i - 1]))) {
            unknown_option(cmd, a);
            ok = false;
        }
    }
    args->values = xcalloc((size_t)argc + 1, sizeof(*args->values));
    *exit_code = VM_EXIT_OK;

    optind = 0; /* 0, not 1: glibc and musl then forget the previous argv */
    opterr = 0;
    int c, longindex;
    while (ok && (c = getopt_long(argc, argv, shortopts, longopts, &longindex)) != -1) {
        const struct vm_cli_option *o = NULL;
        if (c >= 0x10000) {
            o = find_by_index(cmd, c - 0x10000);
        } else if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            if (c == ':')
                vm_error("%s: option '%s' needs a value", cmd->name, bad);
            else if (optopt && optopt < 0x10000)
                vm_error("%s: unknown option '-%c' (see 'vmmigrate %s --help')", cmd->name, optopt,
                         cmd->name);
            else
                unknown_option(cmd, bad);
            ok = false;
            break;
        } else {
            for (int i = 0; i < nopts; i++) {
                const struct vm_cli_option *cand = find_by_index(cmd, i);
                if (cand->short_name == c) {
                    o = cand;
                    break;
                }
            }
        }
        if (!o) {
            vm_error("%s: internal option table error", cmd->name);
            ok = false;
            break;
        }
        if (o->id == VM_CLI_OPT_HELP) {
            help = true;
            continue;
        }
        int64_t num = 0;
        const char *val = o->arg == VM_CLI_ARG_NONE ? "" : optarg;
        if (o->arg != VM_CLI_ARG_NONE && !check_value(cmd, o, val, &num)) {
            ok = false;
            break;
        }
        if (!(o->flags & VM_CLI_REPEAT) && o->arg != VM_CLI_ARG_NONE) {
            for (int i = 0; i < args->nvalues; i++) {
                if (args->values[i].id == o->id) {
                    vm_error("%s: --%s given more than once", cmd->name, o->name);
                    ok = false;
                }
            }
            if (!ok)
                break;
        }
        args->values[args->nvalues++] = (struct vm_cli_value){o->id, val, num};
    }
    free(longopts);
    free(shortopts);

    if (ok && help) {
        vm_cli_print_help(cmd);
        vm_cli_args_free(args);
        return NULL;
    }
    if (!ok) {
        *exit_code = VM_EXIT_USAGE;
        vm_cli_args_free(args);
        return NULL;
    }
    args->npos = argc - optind;
    args->pos = argv + optind;
    return args;
}

void vm_cli_args_free(struct vm_cli_args *args)
{
    if (!args)
        return;
    free(args->values);
    free(args);
}

bool vm_cli_flag(const struct vm_cli_args *args, int id)
{
    return vm_cli_count(args, id) > 0;
}

int vm_cli_count(const struct vm_cli_args *args, int id)
{
    int n = 0;
    for (int i = 0; i < args->nvalues; i++)
        if (args->values[i].id == id)
            n++;
    return n;
}

const char *vm_cli_nth(const struct vm_cli_args *args, int id, int nth)
{
    for (int i = 0; i < args->nvalues; i++)
        if (args->values[i].id == id && nth-- == 0)
            return args->values[i].str;
    return NULL;
}

const char *vm_cli_str(const struct vm_cli_args *args, int id)
{
    int n = vm_cli_count(args, id);
    return n ? vm_cli_nth(args, id, n - 1) : NULL;
}

int64_t vm_cli_int(const struct vm_cli_args *args, int id, int64_t def)
{
    for (int i = args->nvalues - 1; i >= 0; i--)
        if (args->values[i].id == id)
            return args->values[i].num;
    return def;
}

int vm_cli_npos(const struct vm_cli_args *args)
{
    return args->npos;
}

const char *vm_cli_pos(const struct vm_cli_args *args, int i)
{
    return i < args->npos ? args->pos[i] : NULL;
}

const struct vm_cli_command *vm_cli_args_command(const struct vm_cli_args *args)
{
    return args->cmd;
}

static void print_option(const struct vm_cli_option *o)
{
    char left[64];
    int n = 0;
    if (o->short_name)
        n = snprintf(left, sizeof(left), "-%c, ", o->short_name);
    else
        n = snprintf(left, sizeof(left), "    ");
    snprintf(left + n, sizeof(left) - (size_t)n, "--%s%s%s", o->name,
             o->arg == VM_CLI_ARG_NONE ? "" : " ", o->arg == VM_CLI_ARG_NONE ? "" : o->metavar);
    if (strlen(left) > 28)
        printf("  %s\n  %-28s  %s\n", left, "", o->help);
    else
        printf("  %-28s  %s\n", left, o->help);
}

/* The shown options of `opts` in group g (VM_CLI_GROUP_NONE: all), under
 * "\nHEADING:\n" when there is one. */
static void print_options(const struct vm_cli_command *cmd, const struct vm_cli_option *opts,
                          enum vm_cli_group g, const char *heading)
{
    bool first = true;
    for (const struct vm_cli_option *o = opts; o && o->name; o++) {
        if (!vm_cli_option_shown(cmd, o) || (g != VM_CLI_GROUP_NONE && o->group != g))
            continue;
        if (first && heading)
            printf("\n%s:\n", heading);
        first = false;
        print_option(o);
    }
}

void vm_cli_print_help(const struct vm_cli_command *cmd)
{
    if (!cmd) {
        printf("Usage: vmmigrate COMMAND [OPTIONS]\n\n"
               "Live-migrates virtual machines between libvirt hosts.\n\nCommands:\n");
        for (size_t i = 0; vm_cli_commands[i]; i++) {
            const struct vm_cli_command *c = vm_cli_commands[i];
            if (!(c->flags & VM_CLI_HIDDEN))
                printf("  %-10s  %s\n", c->name, c->summary);
        }
        printf("\nRun 'vmmigrate COMMAND --help' for a command's options; "
               "'man vmmigrate' for everything.\n");
        return;
    }
    printf("Usage: vmmigrate %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (vm_cli_grouped(cmd)) {
        for (int g = VM_CLI_GROUP_NONE + 1; g < VM_CLI_GROUP_COUNT; g++)
            print_options(cmd, cmd->options, (enum vm_cli_group)g, vm_cli_groups[g]);
    } else {
        print_options(cmd, cmd->options, VM_CLI_GROUP_NONE, vm_cli_groups[VM_CLI_GROUP_GENERAL]);
    }
    print_options(NULL, vm_cli_common_options, VM_CLI_GROUP_NONE, "Common options");
}
