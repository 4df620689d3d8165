/* SPDX-License-Identifier: MIT */
/* test_cli.c — option parsing (vm_cli_parse) on the run command's table, and
 * the invariants every command table keeps (sorted, unique names and ids,
 * help text for every option, an option several commands take the same in
 * each, the run settings' bounds those of plan/settings.h).
 *
 * What the binary prints for whole command lines is tested by tests/cli/. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "cli/cli.h"
#include "plan/settings.h"
#include "util/exitcode.h"
#include "util/util.h"

/* One parse of a command line, with what it printed. */
struct parse {
    char *line;  /* owns the words argv points into */
    char **argv; /* args points into it */
    struct vm_cli_args *args;
    int rc;
    char *out, *err;
};

static char *slurp(FILE *f)
{
    size_t len = 0, cap = 1024;
    char *s = xmalloc(cap);
    size_t n;
    while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            s = xrealloc(s, cap);
        }
    }
    s[len] = '\0';
    return s;
}

/* Point fd at a fresh temporary file; returns the saved fd. */
static int capture_begin(int fd, FILE **tmp)
{
    *tmp = tmpfile();
    CHECK(*tmp != NULL);
    int saved = dup(fd);
    CHECK(saved >= 0);
    CHECK(dup2(fileno(*tmp), fd) >= 0);
    return saved;
}

static char *capture_end(int fd, int saved, FILE *tmp)
{
    CHECK(dup2(saved, fd) >= 0);
    close(saved);
    rewind(tmp);
    char *s = slurp(tmp);
    fclose(tmp);
    return s;
}

/* s without the timestamp vm_log puts after "vmmigrate: " when stderr is a
 * file (vm_log_format is tested in test_log.c); in place. */
static char *unstamp(char *s)
{
    static const char head[] = "vmmigrate: ";
    static const char shape[] = "0000-00-00T00:00:00.000Z ";
    for (char *line = s; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
        if (strncmp(line, head, strlen(head)) != 0)
            continue;
        char *ts = line + strlen(head);
        size_t k = 0;
        for (; shape[k] && ts[k]; k++)
            if (shape[k] == '0' ? !(ts[k] >= '0' && ts[k] <= '9') : ts[k] != shape[k])
                break;
        if (!shape[k])
            memmove(ts, ts + k, strlen(ts + k) + 1);
    }
    return s;
}

/* Parse `line` (words separated by single spaces; the first is the command)
 * as main() does. */
static struct parse parse(const char *line)
{
    struct parse p = {.line = xstrdup(line), .rc = -1};
    size_t n = 1;
    for (const char *c = line; *c; c++)
        n += *c == ' ';
    p.argv = xcalloc(n + 1, sizeof(*p.argv));
    int argc = 0;
    for (char *w = p.line, *sp;; w = sp + 1) {
        p.argv[argc++] = w;
        sp = strchr(w, ' ');
        if (!sp)
            break;
        *sp = '\0';
    }
    const struct vm_cli_command *cmd = vm_cli_find(p.argv[0]);
    if (!cmd)
        CHECK_FAIL("no command '%s'", p.argv[0]);

    fflush(stdout);
    fflush(stderr);
    FILE *out, *err;
    int saved_out = capture_begin(STDOUT_FILENO, &out);
    int saved_err = capture_begin(STDERR_FILENO, &err);
    p.args = vm_cli_parse(cmd, argc, p.argv, &p.rc);
    fflush(stdout);
    fflush(stderr);
    p.err = unstamp(capture_end(STDERR_FILENO, saved_err, err));
    p.out = capture_end(STDOUT_FILENO, saved_out, out);
    return p;
}

static void parse_free(struct parse *p)
{
    vm_cli_args_free(p->args);
    free(p->argv);
    free(p->line);
    free(p->out);
    free(p->err);
}

/* The id of a command's option, by long name. */
static int opt(const char *cmd_name, const char *name)
{
    const struct vm_cli_command *cmd = vm_cli_find(cmd_name);
    CHECK(cmd != NULL);
    for (const struct vm_cli_option *o = cmd->options; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o->id;
    for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o->id;
    CHECK_FAIL("%s has no option --%s", cmd_name, name);
}

/* The line parses, silently. */
static struct parse parse_ok(const char *line)
{
    struct parse p = parse(line);
    if (!p.args)
        CHECK_FAIL("'%s' did not parse (exit %d): %s", line, p.rc, p.err);
    CHECK_INT(p.rc, ==, VM_EXIT_OK);
    CHECK_STR(p.err, "");
    CHECK_STR(p.out, "");
    return p;
}

/* The line is a usage error whose one line of stderr is `message`. */
static void parse_fails(const char *line, const char *message)
{
    struct parse p = parse(line);
    if (p.args)
        CHECK_FAIL("'%s' parsed, but should fail with: %s", line, message);
    CHECK_INT(p.rc, ==, VM_EXIT_USAGE);
    char *want = xasprintf("vmmigrate: error: %s\n", message);
    CHECK_STR(p.err, want);
    CHECK_STR(p.out, "");
    free(want);
    parse_free(&p);
}

/* ---- values ------------------------------------------------------------- */

static void test_required_and_defaults(void)
{
    struct parse p = parse_ok("run --source qemu:///a --target qemu:///b --vm web1");
    CHECK_STR(vm_cli_str(p.args, opt("run", "source")), "qemu:///a");
    CHECK_STR(vm_cli_str(p.args, opt("run", "target")), "qemu:///b");
    CHECK_STR(vm_cli_str(p.args, opt("run", "vm")), "web1");
    CHECK(vm_cli_str(p.args, opt("run", "events")) == NULL);
    CHECK_INT(vm_cli_int(p.args, opt("run", "parallel"), 2), ==, 2);
    CHECK(!vm_cli_flag(p.args, opt("run", "json")));
    CHECK_INT(vm_cli_npos(p.args), ==, 0);
    CHECK(vm_cli_pos(p.args, 0) == NULL);
    CHECK(vm_cli_args_command(p.args) == vm_cli_find("run"));
    parse_free(&p);
}

static void test_short_and_attached_values(void)
{
    struct parse p = parse_ok("run -s qemu:///a -tqemu:///b -mweb1 --bandwidth=500 -j4 -qv");
    CHECK_STR(vm_cli_str(p.args, opt("run", "source")), "qemu:///a");
    CHECK_STR(vm_cli_str(p.args, opt("run", "target")), "qemu:///b");
    CHECK_STR(vm_cli_str(p.args, opt("run", "vm")), "web1");
    CHECK_INT(vm_cli_int(p.args, opt("run", "bandwidth"), 0), ==, 500);
    CHECK_INT(vm_cli_int(p.args, opt("run", "parallel"), 2), ==, 4);
    CHECK(vm_cli_flag(p.args, VM_CLI_OPT_QUIET));
    CHECK_INT(vm_cli_count(p.args, VM_CLI_OPT_VERBOSE), ==, 1);
    parse_free(&p);
}

static void test_repeated_vm(void)
{
    struct parse p = parse_ok("run -s a -t b --vm web1 -m db1 --vm=cache1 --vm web1");
    int vm = opt("run", "vm");
    CHECK_INT(vm_cli_count(p.args, vm), ==, 4);
    CHECK_STR(vm_cli_nth(p.args, vm, 0), "web1");
    CHECK_STR(vm_cli_nth(p.args, vm, 1), "db1");
    CHECK_STR(vm_cli_nth(p.args, vm, 2), "cache1");
    CHECK_STR(vm_cli_nth(p.args, vm, 3), "web1"); /* duplicates are cmd_run's to reject */
    CHECK(vm_cli_nth(p.args, vm, 4) == NULL);
    CHECK_STR(vm_cli_str(p.args, vm), "web1");
    parse_free(&p);

    p = parse_ok("run -s a -t b -m web1 --qmp-socket web1=/x --qmp-socket web1=/y -v -v");
    CHECK_INT(vm_cli_count(p.args, opt("run", "qmp-socket")), ==, 2);
    CHECK_INT(vm_cli_count(p.args, VM_CLI_OPT_VERBOSE), ==, 2);
    parse_free(&p);
}

static void test_int_ranges(void)
{
    struct parse p = parse_ok("run -b 1 -j 64 -P 255 --timeout 604800 -d 2000000");
    CHECK_INT(vm_cli_int(p.args, opt("run", "bandwidth"), 0), ==, 1);
    CHECK_INT(vm_cli_int(p.args, opt("run", "parallel"), 0), ==, 64);
    CHECK_INT(vm_cli_int(p.args, opt("run", "parallel-connections"), 0), ==, 255);
    CHECK_INT(vm_cli_int(p.args, opt("run", "timeout"), 0), ==, 604800);
    CHECK_INT(vm_cli_int(p.args, opt("run", "max-downtime"), 0), ==, 2000000);
    parse_free(&p);
    p = parse_ok("run --bandwidth 1000000");
    CHECK_INT(vm_cli_int(p.args, opt("run", "bandwidth"), 0), ==, 1000000);
    parse_free(&p);

    parse_fails("run --bandwidth 0", "run: --bandwidth: '0' is not an integer from 1 to 1000000");
    parse_fails("run --bandwidth 1000001",
                "run: --bandwidth: '1000001' is not an integer from 1 to 1000000");
    parse_fails("run -j 0", "run: --parallel: '0' is not an integer from 1 to 64");
    parse_fails("run -j 65", "run: --parallel: '65' is not an integer from 1 to 64");
    parse_fails("run -P 256", "run: --parallel-connections: '256' is not an integer from 1 to 255");
    parse_fails("run --timeout 604801",
                "run: --timeout: '604801' is not an integer from 1 to 604800");
}

static void test_bad_ints(void)
{
    parse_fails("run -b abc", "run: --bandwidth: 'abc' is not an integer from 1 to 1000000");
    parse_fails("run -b 12x", "run: --bandwidth: '12x' is not an integer from 1 to 1000000");
    parse_fails("run -b 1.5", "run: --bandwidth: '1.5' is not an integer from 1 to 1000000");
    parse_fails("run -b 0x10", "run: --bandwidth: '0x10' is not an integer from 1 to 1000000");
    parse_fails("run -b -5", "run: --bandwidth: '-5' is not an integer from 1 to 1000000");
    parse_fails("run --bandwidth=", "run: --bandwidth: '' is not an integer from 1 to 1000000");
    parse_fails("run -b 99999999999999999999",
                "run: --bandwidth: '99999999999999999999' is not an integer from 1 to 1000000");
}

static void test_choices(void)
{
    int action = opt("run", "timeout-action");
    const char *ok[] = {"abort", "suspend", "postcopy"};
    for (size_t i = 0; i < VM_ARRAY_LEN(ok); i++) {
        char *line = xasprintf("run --timeout-action %s", ok[i]);
        struct parse p = parse_ok(line);
        CHECK_STR(vm_cli_str(p.args, action), ok[i]);
        parse_free(&p);
        free(line);
    }
    parse_fails("run --timeout-action kill",
                "run: --timeout-action: 'kill' is not one of abort|suspend|postcopy");
    parse_fails("run --timeout-action Abort",
                "run: --timeout-action: 'Abort' is not one of abort|suspend|postcopy");
    parse_fails("run --timeout-action abor",
                "run: --timeout-action: 'abor' is not one of abort|suspend|postcopy");
    parse_fails("run --timeout-action abort,suspend",
                "run: --timeout-action: 'abort,suspend' is not one of abort|suspend|postcopy");
    parse_fails("run --timeout-action=",
                "run: --timeout-action: '' is not one of abort|suspend|postcopy");
}

static void test_comma_lists(void)
{
    int compression = opt("run", "compression");
    struct parse p = parse_ok("run --compression xbzrle");
    CHECK_STR(vm_cli_str(p.args, compression), "xbzrle");
    parse_free(&p);
    p = parse_ok("run --compression zstd,xbzrle,mt,zlib");
    CHECK_STR(vm_cli_str(p.args, compression), "zstd,xbzrle,mt,zlib");
    parse_free(&p);

    parse_fails("run --compression lz4",
                "run: --compression: 'lz4' is not one of xbzrle|mt|zlib|zstd");
    parse_fails("run --compression xbzrle,lz4,mt",
                "run: --compression: 'lz4' is not one of xbzrle|mt|zlib|zstd");
    parse_fails("run --compression xbzrle,,mt",
                "run: --compression: '' is not one of xbzrle|mt|zlib|zstd");
    parse_fails("run --compression xbzrle,",
                "run: --compression: '' is not one of xbzrle|mt|zlib|zstd");
    parse_fails("run --compression ,mt",
                "run: --compression: '' is not one of xbzrle|mt|zlib|zstd");
    parse_fails("run --compression zlib|zstd",
                "run: --compression: 'zlib|zstd' is not one of xbzrle|mt|zlib|zstd");
}

static void test_empty_values(void)
{
    parse_fails("run --source=", "run: --source: empty value");
    parse_fails("run --vm=", "run: --vm: empty value");
    parse_fails("run --events=", "run: --events: empty value");
}

/* ---- errors --------------------------------------------------------------- */

static void test_unknown_options(void)
{
    parse_fails("run --live", "run: unknown option '--live' (see 'vmmigrate run --help')");
    parse_fails("run --live=1", "run: unknown option '--live=1' (see 'vmmigrate run --help')");
    parse_fails("run -x", "run: unknown option '-x' (see 'vmmigrate run --help')");
    parse_fails("run -qx", "run: unknown option '-x' (see 'vmmigrate run --help')");
    /* A flag given a value. */
    parse_fails("run --json=yes", "run: unknown option '--json=yes' (see 'vmmigrate run --help')");
    /* Another command's option. */
    parse_fails("version --vm x",
                "version: unknown option '--vm' (see 'vmmigrate version --help')");
}

static void test_suggestions(void)
{
    CHECK_INT(vm_cli_edit_distance("drain", 5, "drain", 5), ==, 0);
    CHECK_INT(vm_cli_edit_distance("darin", 5, "drain", 5), ==, 1);
    CHECK_INT(vm_cli_edit_distance("paralel", 7, "parallel", 8), ==, 1);
    CHECK_INT(vm_cli_edit_distance("", 0, "run", 3), ==, 3);
    CHECK_INT(vm_cli_edit_distance("kitten", 6, "sitting", 7), ==, 3);
    CHECK_STR(vm_cli_suggest_command("darin"), "drain");
    CHECK_STR(vm_cli_suggest_command("stauts"), "status");
    CHECK(vm_cli_suggest_command("rn") == NULL); /* two letters: too short to guess */
    CHECK(vm_cli_suggest_command("migrate") == NULL);
    CHECK(vm_cli_suggest_command("x") == NULL);
    parse_fails("run --paralel 3", "run: unknown option '--paralel'; did you mean '--parallel'?");
    parse_fails("run --max-ot=1", "run: unknown option '--max-ot=1'; did you mean '--max-out'?");
    parse_fails("run --quite", "run: unknown option '--quite'; did you mean '--quiet'?");
    parse_fails("run --band 5", "run: unknown option '--band'; did you mean '--bandwidth'?");
    parse_fails("status --jsno", "status: unknown option '--jsno'; did you mean '--json'?");
}

static void test_ambiguous_prefix(void)
{
    /* getopt_long accepts unambiguous prefixes of long names; an ambiguous one
     * (--t: --target, --timeout, --timeout-action, --tls) is an error. */
    struct parse p = parse("run --t x");
    CHECK(p.args == NULL);
    CHECK_INT(p.rc, ==, VM_EXIT_USAGE);
    CHECK_CONTAINS(p.err, "'--t'");
    parse_free(&p);
}

static void test_missing_values(void)
{
    parse_fails("run --source", "run: option '--source' needs a value");
    parse_fails("run -m web1 -s", "run: option '-s' needs a value");
    parse_fails("run -m", "run: option '-m' needs a value");
    parse_fails("run --timeout-action", "run: option '--timeout-action' needs a value");
}

static void test_duplicates(void)
{
    parse_fails("run --bandwidth 1 --bandwidth 2", "run: --bandwidth given more than once");
    parse_fails("run -b 1 --bandwidth=1", "run: --bandwidth given more than once");
    parse_fails("run -b 1 --bandwidth 1", "run: --bandwidth given more than once");
    parse_fails("run --timeout-action abort --timeout-action suspend",
                "run: --timeout-action given more than once");
    parse_fails("run --compression mt --compression xbzrle",
                "run: --compression given more than once");
    /* A flag given twice is the same flag. */
    struct parse p = parse_ok("run --json --json -q -q");
    CHECK(vm_cli_flag(p.args, opt("run", "json")));
    CHECK(vm_cli_flag(p.args, VM_CLI_OPT_QUIET));
    parse_free(&p);
}

/* Each parse starts getopt afresh. glibc's getopt keeps a pointer into the
 * previous argv (the rest of a group of short options) unless optind is set
 * to 0; with optind = 1 the next parse reads that argv again, freed or not.
 * Here the old argument is overwritten with "vvv...": a parse that still
 * reads it sees -v flags that are not on its command line. */
static void test_parse_starts_afresh(void)
{
    const struct vm_cli_command *run = vm_cli_find("run");
    char name[] = "run", old[16] = "-qx";
    char *argv1[] = {name, old, NULL};
    int rc;
    FILE *err;
    fflush(stderr);
    int saved = capture_begin(STDERR_FILENO, &err);
    struct vm_cli_args *args = vm_cli_parse(run, 2, argv1, &rc);
    fflush(stderr);
    free(capture_end(STDERR_FILENO, saved, err));
    CHECK(args == NULL);
    memset(old, 'v', sizeof(old) - 1);

    char opt_s[] = "-s", uri[] = "qemu:///a";
    char *argv2[] = {name, opt_s, uri, NULL};
    args = vm_cli_parse(run, 3, argv2, &rc);
    if (!args)
        CHECK_FAIL("'run -s qemu:///a' did not parse after a failed parse (exit %d): "
                   "vm_cli_parse must reset getopt with optind = 0",
                   rc);
    CHECK_STR(vm_cli_str(args, opt("run", "source")), "qemu:///a");
    if (vm_cli_count(args, VM_CLI_OPT_VERBOSE) != 0)
        CHECK_FAIL("'run -s qemu:///a' parsed %d -v flags from the previous argv: "
                   "vm_cli_parse must reset getopt with optind = 0",
                   vm_cli_count(args, VM_CLI_OPT_VERBOSE));
    vm_cli_args_free(args);
}

/* ---- help and positionals -------------------------------------------------- */

static void test_help(void)
{
    struct parse p = parse("run --help");
    CHECK(p.args == NULL);
    CHECK_INT(p.rc, ==, VM_EXIT_OK);
    CHECK_STR(p.err, "");
    CHECK_CONTAINS(p.out, "Usage: vmmigrate run ");
    CHECK_CONTAINS(p.out, "--timeout-action ACTION");
    parse_free(&p);

    /* --help wins over values that are fine but incomplete... */
    p = parse("run -s a -h");
    CHECK(p.args == NULL);
    CHECK_INT(p.rc, ==, VM_EXIT_OK);
    CHECK_CONTAINS(p.out, "Usage: vmmigrate run ");
    parse_free(&p);

    /* ...but not over a bad one. */
    parse_fails("run -b 0 --help", "run: --bandwidth: '0' is not an integer from 1 to 1000000");
    parse_fails("run --help --live", "run: unknown option '--live' (see 'vmmigrate run --help')");

    /* Every command has --help. */
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        char *line = xasprintf("%s --help", vm_cli_commands[i]->name);
        p = parse(line);
        CHECK(p.args == NULL);
        CHECK_INT(p.rc, ==, VM_EXIT_OK);
        char *usage = xasprintf("Usage: vmmigrate %s ", vm_cli_commands[i]->name);
        CHECK_CONTAINS(p.out, usage);
        free(usage);
        parse_free(&p);
        free(line);
    }
}

static void test_positionals(void)
{
    /* Options may follow arguments (GNU style: `policy check FILE --json`);
     * "--" ends the options. */
    struct parse p = parse_ok("run -s a web1 --json");
    CHECK_INT(vm_cli_npos(p.args), ==, 1);
    CHECK_STR(vm_cli_pos(p.args, 0), "web1");
    CHECK(vm_cli_flag(p.args, opt("run", "json")));
    parse_free(&p);

    p = parse_ok("run -s a -- --json");
    CHECK_INT(vm_cli_npos(p.args), ==, 1);
    CHECK_STR(vm_cli_pos(p.args, 0), "--json");
    parse_free(&p);

    p = parse_ok("help run");
    CHECK_INT(vm_cli_npos(p.args), ==, 1);
    CHECK_STR(vm_cli_pos(p.args, 0), "run");
    parse_free(&p);
}

/* ---- the tables ------------------------------------------------------------ */

static void check_options(const struct vm_cli_command *c, const struct vm_cli_option *opts,
                          bool sorted)
{
    for (const struct vm_cli_option *o = opts; o && o->name; o++) {
        CHECK(o->id > 0);
        if (!o->help || !*o->help || strchr(o->help, '\n'))
            CHECK_FAIL("%s --%s: needs a one-line help text", c->name, o->name);
        if (o->arg != VM_CLI_ARG_NONE && (!o->metavar || !*o->metavar))
            CHECK_FAIL("%s --%s takes a value but has no metavar", c->name, o->name);
        if (o->arg == VM_CLI_ARG_INT && o->min > o->max)
            CHECK_FAIL("%s --%s: min %lld > max %lld", c->name, o->name, (long long)o->min,
                       (long long)o->max);
        if ((o->arg == VM_CLI_ARG_CHOICE || o->arg == VM_CLI_ARG_CHOICES) &&
            (!o->choices || !*o->choices))
            CHECK_FAIL("%s --%s has no choices", c->name, o->name);
        if (sorted && o > opts && strcmp(o[-1].name, o->name) >= 0)
            CHECK_FAIL("%s: options are not sorted: --%s before --%s", c->name, o[-1].name,
                       o->name);
    }
}

static void test_tables(void)
{
    CHECK(vm_cli_find("nonexistent") == NULL);
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        CHECK(c->name && c->usage && c->summary && c->exec);
        CHECK(vm_cli_find(c->name) == c);
        if (i > 0 && strcmp(vm_cli_commands[i - 1]->name, c->name) >= 0)
            CHECK_FAIL("commands are not sorted: %s before %s", vm_cli_commands[i - 1]->name,
                       c->name);
        check_options(c, c->options, true);
        check_options(c, vm_cli_common_options, false);
        /* Names, short names and ids are unique across the command's options
         * and the common ones. */
        const struct vm_cli_option *all[128];
        size_t n = 0;
        for (const struct vm_cli_option *o = c->options; o && o->name; o++)
            all[n++] = o;
        for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
            all[n++] = o;
        CHECK(n < VM_ARRAY_LEN(all));
        for (size_t a = 0; a < n; a++) {
            for (size_t b = a + 1; b < n; b++) {
                if (strcmp(all[a]->name, all[b]->name) == 0)
                    CHECK_FAIL("%s: --%s twice", c->name, all[a]->name);
                if (all[a]->short_name && all[a]->short_name == all[b]->short_name)
                    CHECK_FAIL("%s: -%c is both --%s and --%s", c->name, all[a]->short_name,
                               all[a]->name, all[b]->name);
                if (all[a]->id == all[b]->id)
                    CHECK_FAIL("%s: --%s and --%s share id %d", c->name, all[a]->name, all[b]->name,
                               all[a]->id);
            }
        }
    }
}

/* An option several commands take is the same option in each (cli_options.h):
 * kind of value, metavar, bounds, choices, flags; a short name where it has
 * one. Only the id and the texts are the command's. */
static void test_shared_options_agree(void)
{
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        for (size_t j = i + 1; vm_cli_commands[j]; j++) {
            const struct vm_cli_command *d = vm_cli_commands[j];
            for (const struct vm_cli_option *o = c->options; o && o->name; o++) {
                for (const struct vm_cli_option *q = d->options; q && q->name; q++) {
                    if (strcmp(o->name, q->name) != 0)
                        continue;
                    bool same =
                        o->arg == q->arg && o->flags == q->flags && o->min == q->min &&
                        o->max == q->max &&
                        strcmp(o->metavar ? o->metavar : "", q->metavar ? q->metavar : "") == 0 &&
                        strcmp(o->choices ? o->choices : "", q->choices ? q->choices : "") == 0 &&
                        (!o->short_name || !q->short_name || o->short_name == q->short_name);
                    if (!same)
                        CHECK_FAIL("--%s differs between %s and %s", o->name, c->name, d->name);
                }
            }
        }
    }
}

/* Every run setting has run's option, with the settings table's bounds or
 * choices, and parsing keeps to them. */
static void test_settings_options(void)
{
    const struct vm_cli_command *run = vm_cli_find("run");
    CHECK(run != NULL);
    for (const struct vm_setting *s = vm_settings; s->key; s++) {
        const struct vm_cli_option *o = run->options;
        while (o->name && strcmp(o->name, s->option) != 0)
            o++;
        if (!o->name)
            CHECK_FAIL("setting %s: run has no --%s", s->key, s->option);
        if (s->choices) {
            CHECK_INT(o->arg, ==, VM_CLI_ARG_CHOICE);
            CHECK_STR(o->choices, s->choices);
            continue;
        }
        CHECK_INT(o->arg, ==, VM_CLI_ARG_INT);
        CHECK_INT(o->min, ==, s->min);
        CHECK_INT(o->max, ==, s->max);
        char *line = xasprintf("run -s a -t b -m vm --%s %lld", s->option, (long long)s->max + 1);
        char *msg = xasprintf("run: --%s: '%lld' is not an integer from %lld to %lld", s->option,
                              (long long)s->max + 1, (long long)s->min, (long long)s->max);
        parse_fails(line, msg);
        free(line);
        free(msg);
        line = xasprintf("run -s a -t b -m vm --%s %lld", s->option, (long long)s->min);
        struct parse p = parse_ok(line);
        free(line);
        parse_free(&p);
    }
    CHECK_INT(VM_SETTING_DEFAULT(max_in), ==, vm_setting_find("max_in")->def);
    CHECK_STR(VM_SETTING_DEFAULT_STR(parallel), "2");
}

static const struct vm_test tests[] = {
    /* First, for several cases in one process: without it, a stale getopt
     * makes the later cases fail at random. */
    VM_TEST(test_parse_starts_afresh),
    VM_TEST(test_required_and_defaults),
    VM_TEST(test_short_and_attached_values),
    VM_TEST(test_repeated_vm),
    VM_TEST(test_int_ranges),
    VM_TEST(test_bad_ints),
    VM_TEST(test_choices),
    VM_TEST(test_comma_lists),
    VM_TEST(test_empty_values),
    VM_TEST(test_unknown_options),
    VM_TEST(test_suggestions),
    VM_TEST(test_ambiguous_prefix),
    VM_TEST(test_missing_values),
    VM_TEST(test_duplicates),
    VM_TEST(test_help),
    VM_TEST(test_positionals),
    VM_TEST(test_tables),
    VM_TEST(test_shared_options_agree),
    VM_TEST(test_settings_options),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
