/* SPDX-License-Identifier: MIT */
/* test_docs.c — the documentation cannot drift from the command tables.
 *
 * Fails when the committed man/vmmigrate.1, completions/vmmigrate.bash or
 * completions/_vmmigrate differ from what cli_docs.c generates now (fix:
 * `cmake --build build --target docs`), when a visible option is missing from
 * --help, the man page or a completion, when an option has no group or is
 * not under its group's heading in --help and the man page, when the exit codes of exitcode.h,
 * cli.c's vm_cli_exits[] and the man page's EXIT STATUS disagree, when a man
 * page example no longer parses, when `mandoc -T lint` warns, or when
 * vmmigrate-policy(7) (written by hand) states other bounds or choices for
 * settings(run) than the settings table (plan/settings.h), or lacks a
 * built-in feature of feature_builtin.c's table.
 *
 * Reads the committed files from $VMM_SOURCE_DIR (set by ctest). */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "cli/cli.h"
#include "feature/feature_builtin.h"
#include "journal/journal.h"
#include "plan/settings.h"
#include "run/lock.h"
#include "util/exitcode.h"
#include "util/util.h"

static const char *const fix_hint = "cmake --build build --target docs";

/* ---- helpers ---------------------------------------------------------- */

static char *slurp(FILE *f)
{
    size_t len = 0, cap = 4096;
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

/* The file's text, or NULL when it cannot be read. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = slurp(f);
    fclose(f);
    return s;
}

static char *source_path(const char *rel)
{
    const char *dir = getenv("VMM_SOURCE_DIR");
    if (!dir || !*dir)
        CHECK_FAIL("VMM_SOURCE_DIR is not set: run this test with ctest, or set it to the "
                   "source tree");
    return xasprintf("%s/%s", dir, rel);
}

/* What vm_cli_print_help(cmd) writes on stdout. */
static char *capture_help(const struct vm_cli_command *cmd)
{
    fflush(stdout);
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL);
    int saved = dup(STDOUT_FILENO);
    CHECK(saved >= 0);
    CHECK(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    vm_cli_print_help(cmd);
    fflush(stdout);
    CHECK(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    char *s = slurp(tmp);
    fclose(tmp);
    return s;
}

/* The text from the line `start` (which must be there) up to the next line
 * starting with one of the `ends` prefixes (or the end); caller frees. */
static char *section(const char *text, const char *start, const char *const *ends)
{
    const char *p = text;
    size_t slen = strlen(start);
    while (p && !(strncmp(p, start, slen) == 0 && (p[slen] == '\n' || !p[slen]))) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    if (!p)
        CHECK_FAIL("no line \"%s\" in the generated text", start);
    const char *q = strchr(p, '\n');
    while (q) {
        q++;
        for (const char *const *e = ends; *e; e++)
            if (strncmp(q, *e, strlen(*e)) == 0)
                return xstrndup(p, (size_t)(q - p));
        q = strchr(q, '\n');
    }
    return xstrdup(p);
}

/* roff's spelling of an option name: every '-' as \-. */
static char *roff_name(const char *name)
{
    char *s = xmalloc(strlen(name) * 2 + 1), *d = s;
    for (; *name; name++) {
        if (*name == '-')
            *d++ = '\\';
        *d++ = *name;
    }
    *d = '\0';
    return s;
}

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        bool start = p == list || isspace((unsigned char)p[-1]);
        bool end = !p[n] || isspace((unsigned char)p[n]);
        if (start && end)
            return true;
    }
    return false;
}

#define FOR_EACH_SHOWN_COMMAND(c)                                                                  \
    for (size_t ci_ = 0; vm_cli_commands[ci_]; ci_++)                                              \
        for (const struct vm_cli_command *c = vm_cli_commands[ci_]; c; c = NULL)                   \
            if (!(c->flags & VM_CLI_HIDDEN))

/* ---- the committed files are the generated ones ------------------------ */

static void check_committed(const char *rel, enum vm_cli_doc_kind kind)
{
    char *path = source_path(rel);
    char *committed = read_file(path);
    char *generated = vm_cli_docs_generate(kind);
    if (!committed)
        CHECK_FAIL("%s cannot be read; generate it with `%s`", path, fix_hint);
    if (strcmp(committed, generated) != 0) {
        const char *a = committed, *b = generated;
        int line = 1;
        for (;;) {
            size_t na = strcspn(a, "\n"), nb = strcspn(b, "\n");
            if (na != nb || memcmp(a, b, na) != 0 || !a[na] != !b[nb])
                break;
            if (!a[na])
                break;
            a += na + 1;
            b += nb + 1;
            line++;
        }
        CHECK_FAIL("%s is out of date with the command tables; first difference at line %d:\n"
                   "  committed: %.*s\n"
                   "  generated: %.*s\n"
                   "Regenerate it with `%s` and commit the result.",
                   rel, line, *a ? (int)strcspn(a, "\n") : 13, *a ? a : "(end of file)",
                   *b ? (int)strcspn(b, "\n") : 13, *b ? b : "(end of file)", fix_hint);
    }
    free(path);
    free(committed);
    free(generated);
}

static void test_committed_man(void)
{
    check_committed("man/vmmigrate.1", VM_CLI_DOC_MAN);
}

static void test_committed_bash(void)
{
    check_committed("completions/vmmigrate.bash", VM_CLI_DOC_BASH);
}

static void test_committed_zsh(void)
{
    check_committed("completions/_vmmigrate", VM_CLI_DOC_ZSH);
}

/* ---- every visible option everywhere ----------------------------------- */

static void check_option_in_help(const char *help, const struct vm_cli_command *c,
                                 const struct vm_cli_option *o)
{
    char *want = o->short_name ? xasprintf("-%c, --%s", o->short_name, o->name)
                               : xasprintf("    --%s", o->name);
    const char *p = strstr(help, want);
    size_t n = strlen(want);
    while (p && p[n] != ' ' && p[n] != '\n')
        p = strstr(p + 1, want);
    if (!p)
        CHECK_FAIL("'vmmigrate %s --help' lacks \"%s\":\n%s", c->name, want, help);
    CHECK_CONTAINS(help, o->help);
    free(want);
}

static void test_help_lists_every_option(void)
{
    char *top = capture_help(NULL);
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        char *line = xasprintf("  %-10s  %s\n", c->name, c->summary);
        if (c->flags & VM_CLI_HIDDEN) {
            if (strstr(top, line))
                CHECK_FAIL("hidden command '%s' is in 'vmmigrate --help'", c->name);
        } else {
            CHECK_CONTAINS(top, line);
        }
        free(line);
    }
    free(top);

    FOR_EACH_SHOWN_COMMAND(c)
    {
        char *help = capture_help(c);
        char *usage = xasprintf("Usage: vmmigrate %s %s\n", c->name, c->usage);
        CHECK_CONTAINS(help, usage);
        free(usage);
        for (const struct vm_cli_option *o = c->options; o && o->name; o++) {
            if (!vm_cli_option_shown(c, o)) {
                char *name = xasprintf("--%s ", o->name);
                if (strstr(help, name))
                    CHECK_FAIL("hidden option --%s is in 'vmmigrate %s --help'", o->name, c->name);
                free(name);
                continue;
            }
            check_option_in_help(help, c, o);
        }
        for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
            if (vm_cli_option_shown(NULL, o))
                check_option_in_help(help, c, o);
        free(help);
    }
}

/* The man page's .TP tag of an option. */
static char *man_tag(const struct vm_cli_option *o)
{
    char *name = roff_name(o->name);
    char *tag = o->short_name ? xasprintf("\\fB\\-%c\\fR, \\fB\\-\\-%s\\fR", o->short_name, name)
                              : xasprintf("\\fB\\-\\-%s\\fR", name);
    free(name);
    return tag;
}

static void check_man_option(const char *sec, const char *where, const struct vm_cli_command *c,
                             const struct vm_cli_option *o)
{
    char *tag = man_tag(o);
    char *line = xasprintf(".TP\n%s", tag);
    const char *p = strstr(sec, line);
    bool shown = vm_cli_option_shown(c, o);
    if (!shown && p)
        CHECK_FAIL("hidden option --%s is in the man page (%s)", o->name, where);
    if (shown && !p)
        CHECK_FAIL("the man page's %s lacks --%s (\"%s\")", where, o->name, line);
    if (p && o->arg == VM_CLI_ARG_INT) {
        char *range = xasprintf("from %lld to %lld", (long long)o->min, (long long)o->max);
        const char *next = strstr(p + 1, ".TP\n");
        const char *r = strstr(p, range);
        if (!r || (next && r > next))
            CHECK_FAIL("the man page does not give --%s's range (\"%s\")", o->name, range);
        free(range);
    }
    free(line);
    free(tag);
}

static void test_man_lists_every_option(void)
{
    char *man = vm_cli_docs_generate(VM_CLI_DOC_MAN);
    static const char *const sh_or_ss[] = {".SH ", ".SS ", NULL};
    static const char *const sh[] = {".SH ", NULL};
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        char *title = xasprintf(".SS %s", c->name);
        char *synopsis = xasprintf(".SY vmmigrate\n.B %s\n", c->name);
        if (c->flags & VM_CLI_HIDDEN) {
            char *at = xasprintf("%s\n", title);
            if (strstr(man, at) || strstr(man, synopsis))
                CHECK_FAIL("hidden command '%s' is in the man page", c->name);
            free(at);
        } else {
            char *syn = section(man, ".SH SYNOPSIS", sh);
            CHECK_CONTAINS(syn, synopsis);
            free(syn);
            char *sec = section(man, title, sh_or_ss);
            for (const struct vm_cli_option *o = c->options; o && o->name; o++)
                check_man_option(sec, title, c, o);
            free(sec);
        }
        free(synopsis);
        free(title);
    }
    char *common = section(man, ".SH COMMON OPTIONS", sh);
    for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
        check_man_option(common, "COMMON OPTIONS", NULL, o);
    free(common);
    free(man);
}

/* ---- option groups: one table for --help's and the man page's headings -- */

static void check_has_group(const char *cmd, const struct vm_cli_option *o)
{
    if (o->group <= VM_CLI_GROUP_NONE || o->group >= VM_CLI_GROUP_COUNT || !vm_cli_groups[o->group])
        CHECK_FAIL("option --%s of '%s' has no group (set .group in its table entry)", o->name,
                   cmd);
}

/* The text from `start` to the first `end` after it (or the end); NULL
 * when start is not there. Caller frees. */
static char *block(const char *text, const char *start, const char *end)
{
    const char *p = strstr(text, start);
    if (!p)
        return NULL;
    const char *q = strstr(p + strlen(start), end);
    return q ? xstrndup(p, (size_t)(q - p)) : xstrdup(p);
}

/* The --help line of o in text: its names, then a space or a newline. */
static bool help_has_option(const char *text, const struct vm_cli_option *o)
{
    char *want = o->short_name ? xasprintf("  -%c, --%s", o->short_name, o->name)
                               : xasprintf("      --%s", o->name);
    size_t n = strlen(want);
    const char *p = strstr(text, want);
    while (p && p[n] != ' ' && p[n] != '\n')
        p = strstr(p + 1, want);
    free(want);
    return p != NULL;
}

static void test_option_groups(void)
{
    for (size_t i = 0; vm_cli_commands[i]; i++)
        for (const struct vm_cli_option *o = vm_cli_commands[i]->options; o && o->name; o++)
            check_has_group(vm_cli_commands[i]->name, o);
    for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
        check_has_group("common options", o);

    /* run, plan and drain show their options under several headings. */
    static const char *const grouped[] = {"run", "plan", "drain", "qemu"};
    for (size_t i = 0; i < VM_ARRAY_LEN(grouped); i++) {
        const struct vm_cli_command *c = vm_cli_find(grouped[i]);
        CHECK(c != NULL);
        if (!vm_cli_grouped(c))
            CHECK_FAIL("'vmmigrate %s --help' does not group its options", c->name);
    }

    char *man = vm_cli_docs_generate(VM_CLI_DOC_MAN);
    static const char *const sh_or_ss[] = {".SH ", ".SS ", NULL};
    FOR_EACH_SHOWN_COMMAND(c)
    {
        char *help = capture_help(c);
        char *title = xasprintf(".SS %s", c->name);
        char *sec = section(man, title, sh_or_ss);
        bool grouped_cmd = vm_cli_grouped(c);
        for (const struct vm_cli_option *o = c->options; o && o->name; o++) {
            if (!vm_cli_option_shown(c, o))
                continue;
            enum vm_cli_group g = grouped_cmd ? o->group : VM_CLI_GROUP_GENERAL;
            /* --help: the option is in the block under its heading, which
             * ends at the next blank line. */
            char *heading = xasprintf("\n\n%s:\n", vm_cli_groups[g]);
            char *hb = block(help, heading, "\n\n");
            if (!hb)
                CHECK_FAIL("'vmmigrate %s --help' lacks the heading \"%s:\":\n%s", c->name,
                           vm_cli_groups[g], help);
            if (!help_has_option(hb, o))
                CHECK_FAIL("'vmmigrate %s --help' does not list --%s under \"%s:\":\n%s", c->name,
                           o->name, vm_cli_groups[g], help);
            free(hb);
            free(heading);
            if (!grouped_cmd)
                continue;
            /* The man page: under ".B HEADING", up to the next heading. */
            char *mhead = xasprintf(".PP\n.B %s\n", vm_cli_groups[g]);
            char *mb = block(sec, mhead, ".PP\n.B ");
            if (!mb)
                CHECK_FAIL("the man page's %s lacks the heading \"%s\"", title, mhead);
            char *tag = man_tag(o);
            char *line = xasprintf(".TP\n%s", tag);
            if (!strstr(mb, line))
                CHECK_FAIL("the man page's %s does not list --%s under \"%s\"", title, o->name,
                           vm_cli_groups[g]);
            free(line);
            free(tag);
            free(mb);
            free(mhead);
        }
        free(sec);
        free(title);
        free(help);
    }
    free(man);
}

/* The word list of `opts='...'` in the bash branch of command c. */
static char *bash_opts(const char *bash, const struct vm_cli_command *c)
{
    char *branch = xasprintf("\n    %s)\n", c->name);
    const char *p = strstr(bash, branch);
    if (!p)
        CHECK_FAIL("the bash completion has no branch for '%s'", c->name);
    free(branch);
    p = strstr(p, "opts='");
    CHECK(p != NULL);
    p += strlen("opts='");
    return xstrndup(p, strcspn(p, "'"));
}

/* c: the command whose completion it is; table: c, or NULL for a common option. */
static void check_bash_option(const char *opts, const struct vm_cli_command *c,
                              const struct vm_cli_command *table, const struct vm_cli_option *o)
{
    char *lng = xasprintf("--%s", o->name), shrt[3] = {'-', o->short_name, '\0'};
    bool hidden = !vm_cli_option_shown(table, o);
    if (has_word(opts, lng) == hidden || (o->short_name && has_word(opts, shrt) == hidden))
        CHECK_FAIL("the bash completion of '%s' %s %s (opts: %s)", c->name,
                   hidden ? "offers the hidden" : "lacks", lng, opts);
    free(lng);
}

static void test_bash_lists_every_option(void)
{
    char *bash = vm_cli_docs_generate(VM_CLI_DOC_BASH);
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        char *branch = xasprintf("\n    %s)\n", c->name);
        if (c->flags & VM_CLI_HIDDEN) {
            if (strstr(bash, branch))
                CHECK_FAIL("the bash completion offers the hidden command '%s'", c->name);
            free(branch);
            continue;
        }
        free(branch);
        char *opts = bash_opts(bash, c);
        for (const struct vm_cli_option *o = c->options; o && o->name; o++) {
            check_bash_option(opts, c, c, o);
            if (vm_cli_option_shown(c, o) &&
                (o->arg == VM_CLI_ARG_CHOICE || o->arg == VM_CLI_ARG_CHOICES)) {
                char *words = xstrdup(o->choices);
                for (char *w = words; *w; w++)
                    if (*w == '|')
                        *w = ' ';
                char *call = xasprintf("'%s'", words);
                CHECK_CONTAINS(bash, call);
                free(call);
                free(words);
            }
        }
        for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
            check_bash_option(opts, c, NULL, o);
        free(opts);
    }
    free(bash);
}

/* c: the command whose completion it is; table: c, or NULL for a common option. */
static void check_zsh_option(const char *fn, const struct vm_cli_command *c,
                             const struct vm_cli_command *table, const struct vm_cli_option *o)
{
    char *lng = xasprintf("--%s", o->name);
    bool found = false;
    size_t n = strlen(lng);
    for (const char *p = fn; (p = strstr(p, lng)) != NULL; p += n)
        found |= strchr("[=}", p[n]) != NULL;
    if (found != vm_cli_option_shown(table, o))
        CHECK_FAIL("the zsh completion of '%s' %s %s:\n%s", c->name,
                   found ? "offers the hidden" : "lacks", lng, fn);
    if (found && o->short_name) {
        char *pair = xasprintf("{-%c%s,%s%s}", o->short_name, o->arg == VM_CLI_ARG_NONE ? "" : "+",
                               lng, o->arg == VM_CLI_ARG_NONE ? "" : "=");
        CHECK_CONTAINS(fn, pair);
        free(pair);
    }
    if (found) {
        char *bracket = xstrdup(o->help); /* the explanation, less what zsh escapes */
        const char *cut = strpbrk(bracket, "'[]\\");
        if (cut)
            bracket[cut - bracket] = '\0';
        CHECK_CONTAINS(fn, bracket);
        free(bracket);
    }
    free(lng);
}

static void test_zsh_lists_every_option(void)
{
    char *zsh = vm_cli_docs_generate(VM_CLI_DOC_ZSH);
    CHECK(strncmp(zsh, "#compdef vmmigrate\n", 19) == 0);
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        char *head = xasprintf("_vmmigrate_%s()", c->name);
        const char *p = strstr(zsh, head);
        if (c->flags & VM_CLI_HIDDEN) {
            char *item = xasprintf("'%s:", c->name);
            if (p || strstr(zsh, item))
                CHECK_FAIL("the zsh completion offers the hidden command '%s'", c->name);
            free(item);
            free(head);
            continue;
        }
        if (!p)
            CHECK_FAIL("the zsh completion has no %s", head);
        char *fn = xstrndup(p, strstr(p, "\n}\n") ? (size_t)(strstr(p, "\n}\n") - p) : strlen(p));
        for (const struct vm_cli_option *o = c->options; o && o->name; o++) {
            check_zsh_option(fn, c, c, o);
            if (vm_cli_option_shown(c, o) && o->arg == VM_CLI_ARG_CHOICE) {
                char *words = xasprintf("(%s)", o->choices);
                for (char *w = words; *w; w++)
                    if (*w == '|')
                        *w = ' ';
                CHECK_CONTAINS(fn, words);
                free(words);
            }
        }
        for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
            check_zsh_option(fn, c, NULL, o);
        char *item = xasprintf("'%s:", c->name);
        CHECK_CONTAINS(zsh, item);
        free(item);
        free(fn);
        free(head);
    }
    free(zsh);
}

/* ---- exit codes --------------------------------------------------------- */

/* exitcode.h, spelled out: adding a code means adding it here too. */
static const struct {
    int code;
    const char *name;
} exits[] = {
    {VM_EXIT_OK, "ok"},
    {VM_EXIT_FAILED, "failed"},
    {VM_EXIT_USAGE, "usage"},
    {VM_EXIT_PREFLIGHT, "preflight"},
    {VM_EXIT_UNREACHABLE, "unreachable"},
    {VM_EXIT_INTERRUPTED, "interrupted"},
    {VM_EXIT_POLICY, "policy"},
    {VM_EXIT_LOCKED, "locked"},
    {VM_EXIT_NOTHING, "nothing"},
    {VM_EXIT_OPERATOR, "operator"},
    {VM_EXIT_JOURNAL, "journal"},
    {VM_EXIT_INTERNAL, "internal"},
};

static size_t count_cli_exits(void)
{
    size_t n = 0;
    while (vm_cli_exits[n].name)
        n++;
    return n;
}

static const struct vm_cli_exit *cli_exit(int code)
{
    for (const struct vm_cli_exit *e = vm_cli_exits; e->name; e++)
        if (e->code == code)
            return e;
    return NULL;
}

static void test_exit_table_matches_list(void)
{
    CHECK_INT(count_cli_exits(), ==, VM_ARRAY_LEN(exits));
    for (size_t i = 0; i < VM_ARRAY_LEN(exits); i++) {
        const struct vm_cli_exit *e = cli_exit(exits[i].code);
        if (!e)
            CHECK_FAIL("exit code %d (%s) is not in cli.c's vm_cli_exits[]", exits[i].code,
                       exits[i].name);
        CHECK_STR(e->name, exits[i].name);
        CHECK(e->doc && *e->doc);
        /* ... and the meter's summary says it in a few words */
        CHECK(vm_exit_brief(exits[i].code) && *vm_exit_brief(exits[i].code));
    }
    CHECK(vm_exit_brief(-1) == NULL);
    CHECK(vm_exit_brief(71) == NULL);
    for (const struct vm_cli_exit *e = vm_cli_exits; e->name; e++)
        for (const struct vm_cli_exit *f = e + 1; f->name; f++)
            if (e->code == f->code)
                CHECK_FAIL("exit code %d is in vm_cli_exits[] twice", e->code);
}

/* Every `VM_EXIT_NAME = N` of src/util/exitcode.h is documented, and nothing else. */
static void test_exit_table_matches_header(void)
{
    char *path = source_path("src/util/exitcode.h");
    char *h = read_file(path);
    if (!h)
        CHECK_FAIL("cannot read %s", path);
    size_t found = 0;
    for (const char *p = h; (p = strstr(p, "VM_EXIT_")) != NULL;) {
        const char *name = p + strlen("VM_EXIT_");
        const char *q = name;
        while (isupper((unsigned char)*q) || *q == '_')
            q++;
        size_t nlen = (size_t)(q - name);
        p = q;
        while (*q == ' ' || *q == '\t')
            q++;
        if (!nlen || *q != '=')
            continue; /* a mention in a comment */
        q++;
        char *end;
        long code = strtol(q, &end, 10);
        if (end == q)
            CHECK_FAIL("%s: VM_EXIT_%.*s has no numeric value", path, (int)nlen, name);
        char *lower = xstrndup(name, nlen);
        for (char *c = lower; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        const struct vm_cli_exit *e = cli_exit((int)code);
        if (!e)
            CHECK_FAIL("%s: VM_EXIT_%.*s = %ld is not documented in cli.c's vm_cli_exits[]", path,
                       (int)nlen, name, code);
        if (strcmp(e->name, lower) != 0)
            CHECK_FAIL("%s: VM_EXIT_%.*s = %ld is named \"%s\" in vm_cli_exits[]", path, (int)nlen,
                       name, code, e->name);
        free(lower);
        found++;
    }
    if (found != count_cli_exits())
        CHECK_FAIL("%s defines %zu VM_EXIT_* codes but vm_cli_exits[] documents %zu", path, found,
                   count_cli_exits());
    free(h);
    free(path);
}

static void test_man_exit_status(void)
{
    char *man = vm_cli_docs_generate(VM_CLI_DOC_MAN);
    static const char *const sh[] = {".SH ", NULL};
    char *sec = section(man, ".SH EXIT STATUS", sh);
    char *flat = xstrdup(sec); /* lines joined, for text that was wrapped */
    for (char *c = flat; *c; c++)
        if (*c == '\n')
            *c = ' ';
    for (const struct vm_cli_exit *e = vm_cli_exits; e->name; e++) {
        char *tag = xasprintf(".TP\n\\fB%d\\fR (%s)\n", e->code, e->name);
        CHECK_CONTAINS(sec, tag);
        /* The doc's first words (before anything roff would escape). */
        char *start = xstrndup(e->doc, strcspn(e->doc, ":;,.(-\\"));
        CHECK_CONTAINS(flat, start);
        free(start);
        free(tag);
    }
    free(flat);
    free(sec);
    free(man);
}

/* ---- the man page itself ---------------------------------------------- */

static void test_man_reproducible(void)
{
    char *a = vm_cli_docs_generate(VM_CLI_DOC_MAN);
    char *b = vm_cli_docs_generate(VM_CLI_DOC_MAN);
    CHECK_STR(a, b);
    char *th = xasprintf("\"vmmigrate %s\"", VMM_VERSION);
    const char *line = strstr(a, "\n.TH VMMIGRATE 1 ");
    CHECK(line != NULL);
    CHECK(strstr(line, th) && strstr(line, th) < strchr(line + 1, '\n'));
    for (const char *s = ".SH NAME\n.SH SYNOPSIS\n.SH DESCRIPTION\n.SH COMMANDS\n"
                         ".SH COMMON OPTIONS\n.SH EXIT STATUS\n.SH ENVIRONMENT\n.SH FILES\n"
                         ".SH EXAMPLES\n.SH SEE ALSO\n";
         *s;) {
        size_t n = strcspn(s, "\n") + 1;
        char *sh = xstrndup(s, n);
        CHECK_CONTAINS(a, sh);
        free(sh);
        s += n;
    }
    CHECK_CONTAINS(a, "UV_THREADPOOL_SIZE");
    CHECK_CONTAINS(a, "schema/report.schema.json");
    CHECK_CONTAINS(a, "schema/event.schema.json");
    free(th);
    free(a);
    free(b);
}

/* The positional arguments cmd's usage starts with ("URI" of drain's
 * "URI --target URI ..."): what an example gives before its options. */
static int leading_positionals(const struct vm_cli_command *cmd)
{
    int n = 0;
    for (const char *p = cmd->usage ? cmd->usage : ""; *p;) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '-' || *p == '[' || *p == '(')
            break;
        n++;
        p += strcspn(p, " ");
    }
    return n;
}

/* One example line: the words after the word "vmmigrate" (if any) up to a
 * redirection parse as that command's arguments. Returns whether the line
 * runs vmmigrate. */
static bool check_example_line(char *line, const char *block)
{
    char *argv[64];
    int argc = 0;
    bool on = false;
    for (char *w = strtok(line, " "); w && *w != '>' && *w != '|'; w = strtok(NULL, " ")) {
        if (!on && strcmp(w, "vmmigrate") == 0)
            on = true;
        if (!on)
            continue;
        CHECK(argc < 63);
        argv[argc++] = w;
    }
    if (!on)
        return false;
    argv[argc] = NULL;
    CHECK(argc >= 2);
    const struct vm_cli_command *cmd = vm_cli_find(argv[1]);
    if (!cmd)
        CHECK_FAIL("a man page example runs unknown command '%s'", argv[1]);
    int rc = -1;
    struct vm_cli_args *args = vm_cli_parse(cmd, argc - 1, argv + 1, &rc);
    if (!args)
        CHECK_FAIL("a man page example does not parse (exit %d): %s", rc, block);
    CHECK_INT(vm_cli_npos(args), ==, leading_positionals(cmd));
    vm_cli_args_free(args);
    return true;
}

/* Every vmmigrate command line of the man page's examples (a shell line, or
 * the command of a crontab line) parses with today's options. */
static void test_man_examples_parse(void)
{
    char *man = vm_cli_docs_generate(VM_CLI_DOC_MAN);
    int examples = 0;
    for (const char *p = man; (p = strstr(p, "\n.EX\n")) != NULL;) {
        p += strlen("\n.EX\n");
        const char *end = strstr(p, "\n.EE\n");
        CHECK(end != NULL);
        /* Un-roff: "\-" is '-', "\e" then a newline continues the line. */
        char *text = xmalloc((size_t)(end - p) + 2), *d = text;
        for (const char *s = p; s < end; s++) {
            if (s[0] == '\\' && s[1] == '-') {
                *d++ = '-';
                s++;
            } else if (s[0] == '\\' && s[1] == 'e' && s[2] == '\n') {
                s += 2;
            } else {
                *d++ = *s;
            }
        }
        *d++ = '\n';
        *d = '\0';
        for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
            *nl = '\0';
            char *copy = xstrdup(line);
            examples += check_example_line(copy, p);
            free(copy);
        }
        free(text);
        p = end;
    }
    CHECK_INT(examples, >=, 1);
    CHECK_CONTAINS(man, "\nvmmigrate drain ");
    CHECK_CONTAINS(man, " root vmmigrate drain "); /* the crontab line */
    CHECK_CONTAINS(man, "vmmigrate\\-drain@hv12.timer");
    free(man);
}

/* FILES names every default path of the code and every file shipped for
 * operators (policies, schemas, units, configs), SEE ALSO the pages the
 * text sends the reader to. */
static void check_files_dir(const char *files, const char *rel, const char *suffix,
                            const char *prefix)
{
    char *dir = source_path(rel);
    char *cmd = xasprintf("ls '%s'", dir);
    FILE *ls = popen(cmd, "r");
    CHECK(ls != NULL);
    char *names = slurp(ls);
    pclose(ls);
    int n = 0;
    for (char *name = strtok(names, "\n"); name; name = strtok(NULL, "\n")) {
        size_t len = strlen(name), slen = strlen(suffix);
        if (len < slen || strcmp(name + len - slen, suffix) != 0)
            continue;
        /* A unit's template (".service.in") is installed without ".in". */
        char *installed = strcmp(suffix, ".in") == 0 ? xstrndup(name, len - slen) : xstrdup(name);
        char *want = xasprintf("%s%s", prefix, installed);
        char *roff = roff_name(want);
        if (!strstr(files, roff))
            CHECK_FAIL("the man page's FILES does not list %s (from %s/%s)", want, rel, name);
        free(roff);
        free(want);
        free(installed);
        n++;
    }
    CHECK_INT(n, >=, 1);
    free(names);
    free(cmd);
    free(dir);
}

static void test_man_files(void)
{
    char *man = vm_cli_docs_generate(VM_CLI_DOC_MAN);
    static const char *const sh[] = {".SH ", NULL};
    char *files = section(man, ".SH FILES", sh);
    static const char *const defaults[] = {VM_JOURNAL_DEFAULT_DIR "/", VM_LOCK_DEFAULT_DIR "/",
                                           VM_JOURNAL_DEFAULT_DIR "/recover.lock"};
    for (size_t i = 0; i < VM_ARRAY_LEN(defaults); i++) {
        char *roff = roff_name(defaults[i]);
        if (!strstr(files, roff))
            CHECK_FAIL("the man page's FILES does not name the default %s", defaults[i]);
        free(roff);
    }
    check_files_dir(files, "policies", ".lua", "share/vmmigrate/policies/");
    check_files_dir(files, "lua", ".lua", "share/vmmigrate/lua/");
    check_files_dir(files, "schema", ".json", "share/vmmigrate/schema/");
    check_files_dir(files, "contrib/systemd", ".in", "lib/systemd/system/");
    check_files_dir(files, "contrib/etc", ".conf", "/etc/vmmigrate/");
    check_files_dir(files, "contrib/tmpfiles", ".conf", "lib/tmpfiles.d/");
    CHECK_CONTAINS(files, "/etc/vmmigrate/HOST.conf");
    char *see = section(man, ".SH SEE ALSO", sh);
    CHECK_CONTAINS(see, ".BR vmmigrate\\-policy (7)");
    CHECK_CONTAINS(see, ".BR systemd.timer (5)");
    CHECK_CONTAINS(see, ".BR virsh (1)");
    free(see);
    free(files);
    free(man);
}

static void test_man_lint(void)
{
    if (system("command -v mandoc >/dev/null 2>&1") != 0) {
        if (getenv("CI"))
            CHECK_FAIL("mandoc is not installed (apt install mandoc): cannot lint the man page");
        fprintf(stderr, "   mandoc is not installed: man page lint skipped\n");
        return;
    }
    char path[] = "/tmp/vmmigrate-man-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    char *man = vm_cli_docs_generate(VM_CLI_DOC_MAN);
    FILE *f = fdopen(fd, "w");
    CHECK(f != NULL);
    fputs(man, f);
    CHECK_INT(fclose(f), ==, 0);
    char *cmd = xasprintf("mandoc -T lint -W warning '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    char *out = slurp(p);
    int status = pclose(p);
    unlink(path);
    if (status != 0 || *out)
        CHECK_FAIL("mandoc -T lint -W warning complains about the generated man page "
                   "(status %d):\n%s",
                   status, out);
    free(out);
    free(cmd);
    free(man);
}

/* ---- vmmigrate-policy(7) states the settings table's bounds ------------ */

/* Whether the roff line holds key as a word of its own. */
static bool line_has_key(const char *line, size_t len, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) && p + n <= line + len; p += n) {
        bool start = p == line || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool end = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (start && end)
            return true;
    }
    return false;
}

/* The .TP paragraph of settings(run) whose tag names key: from the tag to
 * the next .TP, .PP or the end of the section; caller frees. */
static char *setting_paragraph(const char *sec, const char *key)
{
    for (const char *p = strstr(sec, ".TP\n"); p; p = strstr(p + 1, ".TP\n")) {
        const char *tag = p + 4;
        size_t len = strcspn(tag, "\n");
        if (!line_has_key(tag, len, key))
            continue;
        const char *end = tag + len;
        while (*end && strncmp(end, "\n.TP\n", 5) != 0 && strncmp(end, "\n.PP\n", 5) != 0)
            end++;
        return xstrndup(tag, (size_t)(end - tag));
    }
    CHECK_FAIL("vmmigrate-policy(7), settings(run): no .TP entry for %s", key);
}

static void test_policy_man_settings(void)
{
    char *path = source_path("man/vmmigrate-policy.7");
    char *man = read_file(path);
    if (!man)
        CHECK_FAIL("cannot read %s", path);
    static const char *const ends[] = {".SH", ".SS", NULL};
    char *sec = section(man, ".SS settings(run)", ends);
    for (const struct vm_setting *s = vm_settings; s->key; s++) {
        char *para = setting_paragraph(sec, s->key);
        if (s->choices) {
            for (const char *c = s->choices; *c;) {
                size_t n = strcspn(c, "|");
                char *want = xasprintf("\\(dq%.*s\\(dq", (int)n, c);
                if (!strstr(para, want))
                    CHECK_FAIL("vmmigrate-policy(7): %s does not name the choice %s:\n%s", s->key,
                               want, para);
                free(want);
                c += c[n] ? n + 1 : n;
            }
        } else {
            char *want = xasprintf("(%lld\\(en%lld", (long long)s->min, (long long)s->max);
            if (!strstr(para, want))
                CHECK_FAIL("vmmigrate-policy(7): %s should state %s (plan/settings.h):\n%s", s->key,
                           want, para);
            free(want);
        }
        free(para);
    }
    free(sec);
    free(man);
    free(path);
}

/* ---- vmmigrate-policy(7) documents every built-in feature ------------- */

static void test_policy_man_features(void)
{
    char *path = source_path("man/vmmigrate-policy.7");
    char *man = read_file(path);
    if (!man)
        CHECK_FAIL("cannot read %s", path);
    static const char *const ends[] = {".SH", NULL};
    char *sec = section(man, ".SH FEATURES", ends);
    const char *built_in = strstr(sec, "\nBuilt in:\n");
    if (!built_in)
        CHECK_FAIL("vmmigrate-policy(7), FEATURES: no \"Built in:\" list");
    for (int i = 0; vm_feature_builtin_at(i); i++) {
        const char *name = vm_feature_builtin_at(i)->name;
        char *tag = xasprintf(".TP\n.B %s\n", name);
        const char *p = strstr(built_in, tag);
        if (!p)
            CHECK_FAIL("vmmigrate-policy(7) does not document the built-in feature %s (\"%s\" "
                       "under \"Built in:\")",
                       name, tag);
        /* More than a line: what it does in its steps. */
        const char *body = p + strlen(tag), *tp = strstr(body, "\n.TP\n"),
                   *pp = strstr(body, "\n.PP\n");
        const char *next = tp && (!pp || tp < pp) ? tp : pp;
        CHECK(next != NULL);
        CHECK_INT(next - body, >, 80);
        free(tag);
    }
    free(sec);
    free(man);
    free(path);
}

/* clang-format off */
static const struct vm_test tests[] = {
    VM_TEST(test_committed_man),
    VM_TEST(test_committed_bash),
    VM_TEST(test_committed_zsh),
    VM_TEST(test_help_lists_every_option),
    VM_TEST(test_man_lists_every_option),
    VM_TEST(test_option_groups),
    VM_TEST(test_bash_lists_every_option),
    VM_TEST(test_zsh_lists_every_option),
    VM_TEST(test_exit_table_matches_list),
    VM_TEST(test_exit_table_matches_header),
    VM_TEST(test_man_exit_status),
    VM_TEST(test_man_reproducible),
    VM_TEST(test_man_examples_parse),
    VM_TEST(test_man_files),
    VM_TEST(test_man_lint),
    VM_TEST(test_policy_man_settings),
    VM_TEST(test_policy_man_features),
    {0},
};
/* clang-format on */
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
