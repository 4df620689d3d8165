/* SPDX-License-Identifier: MIT */
/* cli_docs.c — the man page and the bash and zsh completions, generated from
 * the command tables (cli.h) so that what parsing accepts, what --help says
 * and what the documentation and completions offer cannot drift apart (curl's
 * docs/cmdline-opts).
 *
 * The committed man/vmmigrate.1, completions/vmmigrate.bash and
 * completions/_vmmigrate are this file's output (`vmmigrate docs man|bash|zsh`;
 * `cmake --build build --target docs` rewrites them). tests/unit/test_docs.c
 * fails when they differ from what the tables generate now.
 *
 * The output depends on the tables and VMM_VERSION only: no build date,
 * install prefix or locale, so the committed files are reproducible. Hidden
 * commands and options (VM_CLI_HIDDEN) appear in none of the three.
 *
 * The completions' values that are not in the tables come at completion
 * time: VM names from the source host on the line (a read-only virsh list,
 * bounded and quiet), run ids from the journals in its --journal-dir, files
 * by an option's glob.
 *
 * Owns nothing past a call; the returned string belongs to the caller. */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "journal/journal.h"
#include "util/util.h"

/* The man page's date (.TH): the date of the release it documents, fixed so
 * the page does not change every day. CMake may define it next to
 * VMM_VERSION; bump the fallback with the version. */
#ifndef VMM_RELEASE_DATE
#define VMM_RELEASE_DATE "2026-11-21"
#endif

/* The examples of the man page. A shell example is a command line as typed
 * at a shell (words separated by single spaces), broken with backslashes
 * where it is long; a verbatim one (a crontab line, a config file) is set
 * as it is, a line per '\n'. In both, the words after a word `vmmigrate` up
 * to a redirection must parse: test_docs.c checks them. */
static const struct {
    const char *what;
    const char *text;
    bool verbatim;
} man_examples[] = {
    {"Migrate two VMs, save the JSON report and write every event to a file as it happens:",
     "vmmigrate run --source qemu+ssh://hv12/system --target qemu+ssh://hv13/system "
     "--vm web1 --vm db1 --json --events run.ndjson >report.json",
     false},
    {"Move four VMs three at a time, at most 500 MiB/s each; pause a guest whose migration "
     "still runs after ten minutes so that it completes:",
     "vmmigrate run -s qemu+ssh://hv12/system -t qemu+ssh://hv13/system -j 3 -b 500 "
     "--timeout 600 --timeout-action suspend -m web1 -m web2 -m db1 -m cache1",
     false},
    {"See what draining hv12 onto two spare hosts would do, then drain it with the shipped "
     "evacuate policy, at most two VMs leaving at a time, within an hour:",
     "vmmigrate plan -s qemu+ssh://hv12/system -t qemu+ssh://spare1/system "
     "-t qemu+ssh://spare2/system --policy /usr/share/vmmigrate/policies/evacuate.lua\n"
     "vmmigrate drain qemu+ssh://hv12/system -t qemu+ssh://spare1/system "
     "-t qemu+ssh://spare2/system --max-out 2 --deadline 3600 --json >drain.json",
     false},
    {"Drain hv12 every Sunday at 02:00 from cron, with a line in /etc/cron.d/vmmigrate: "
     "--quiet leaves only errors for cron's mail, --wait-lock waits for a run still working "
     "on the host, and the status file says how far the drain is:",
     "0 2 * * 0 root vmmigrate drain qemu+ssh://hv12/system -t qemu+ssh://spare1/system "
     "--quiet --wait-lock --deadline 3600 --status-file /run/vmmigrate/hv12.status.json",
     true},
    {"The same with systemd: vmmigrate-drain@HOST.service drains the host its "
     "/etc/vmmigrate/HOST.conf names, with --quiet, --wait-lock and the status file "
     "/run/vmmigrate/HOST.status.json, and runs recover after every stop; "
     "vmmigrate-drain@HOST.timer starts it every Sunday at 02:00 (systemctl edit "
     "vmmigrate-drain@hv12.timer changes that). Copy the example config for hv12:",
     "cp /etc/vmmigrate/example.conf /etc/vmmigrate/hv12.conf", true},
    {"set the host and the drain's options in it (KEY=value lines, as systemd's "
     "EnvironmentFile reads them):",
     "VMMIGRATE_SOURCE=qemu+ssh://hv12/system\n"
     "VMMIGRATE_OPTIONS=\"--target qemu+ssh://spare1/system --max-out 2 --deadline 3600\"",
     true},
    {"then enable the host's timer, or drain at once, and see what the last drains did:",
     "systemctl enable --now vmmigrate-drain@hv12.timer\n"
     "systemctl start vmmigrate-drain@hv12.service\n"
     "vmmigrate status",
     true},
};

/* The FILES section: a path, then what it is. Paths starting with '/' are
 * absolute (those under /etc move with the prefix, see below); the others
 * are under the installation prefix. Every default path of the code is
 * here, and every shipped policy and schema (test_docs.c checks both). */
static const struct {
    const char *path;
    const char *doc;
} man_files[] = {
    {"/var/lib/vmmigrate/journal/RUN.ndjson",
     "The journal of each run (and of each vmmigrate qemu migration): one JSON record per "
     "line, fsync'd before it is acted on, which recover reads after a crash and status "
     "shows (schema/journal.schema.json). --journal-dir changes the directory; recover "
     "--prune-after removes the journals of old closed runs."},
    {"/var/lib/vmmigrate/journal/recover.lock",
     "Held by recover while it settles the journals, so that two never decide the same "
     "migration."},
    {"/run/vmmigrate/KEY.lock",
     "The lock of one source host (KEY: its libvirt host UUID), held by the run working on "
     "it; it names the run, which abort reads. --lock-dir changes the directory."},
    {"/run/vmmigrate/HOST.status.json",
     "The status file the systemd drain unit of HOST keeps (--status-file; "
     "schema/status.schema.json). A run writes no status file unless asked."},
    {"/var/lib/prometheus/node-exporter/vmmigrate-HOST.prom",
     "Where the example config keeps a drain's --metrics-file, for node_exporter's textfile "
     "collector (metric names in docs/metrics.md). A run writes no metrics file unless "
     "asked."},
    {"/etc/vmmigrate/HOST.conf",
     "The drain of HOST for vmmigrate-drain@HOST.service: VMMIGRATE_SOURCE, "
     "VMMIGRATE_OPTIONS, and optionally VMMIGRATE_POLICY and VMMIGRATE_RECOVER_OPTIONS."},
    {"/etc/vmmigrate/example.conf", "A commented HOST.conf to copy."},
    {"/etc/vmmigrate/recover.conf",
     "Optional: VMMIGRATE_RECOVER_OPTIONS for vmmigrate-recover.service (default: --policy "
     "with the shipped evacuate.lua)."},
    {"share/vmmigrate/policies/evacuate.lua",
     "The policy drain uses without --policy or --vm: every running VM leaves, largest "
     "first, placed on the target with the most free memory left; tagged or VDP VMs as "
     "network-critical. See vmmigrate-policy(7)."},
    {"share/vmmigrate/policies/maintenance-window.lua",
     "A gentle drain for a maintenance window: one migration out of each host at a time, a "
     "bandwidth cap, pinned VMs and VMs with local writable disks left alone."},
    {"share/vmmigrate/policies/tagged-only.lua",
     "Moves only the VMs whose domain metadata tags them with move, optionally to the "
     "target it names."},
    {"share/vmmigrate/lua/vmm.lua",
     "The Lua half of the vmm module that policies require (built into vmmigrate, which "
     "does not read this copy)."},
    {"share/vmmigrate/schema/report.schema.json",
     "The JSON Schema of the report that --json prints."},
    {"share/vmmigrate/schema/qemu-report.schema.json",
     "The JSON Schema of the report that vmmigrate qemu --json prints."},
    {"share/vmmigrate/schema/event.schema.json",
     "The JSON Schema of each line of the event stream that --events writes."},
    {"share/vmmigrate/schema/status.schema.json", "The JSON Schema of the --status-file."},
    {"share/vmmigrate/schema/journal.schema.json", "The JSON Schema of a journal's records."},
    {"share/vmmigrate/prometheus/vmmigrate.rules.yml",
     "Prometheus alerting rules on the --metrics-file series, with their tests "
     "(vmmigrate.rules.test.yml)."},
    {"share/vmmigrate/grafana/vmmigrate.json", "A Grafana dashboard of the same series."},
    {"lib/systemd/system/vmmigrate-drain@.service",
     "Drains the host of /etc/vmmigrate/INSTANCE.conf once, then runs recover."},
    {"lib/systemd/system/vmmigrate-drain@.timer",
     "Starts vmmigrate-drain@INSTANCE.service every Sunday at 02:00 (within half an hour)."},
    {"lib/systemd/system/vmmigrate-recover.service",
     "Runs recover at boot, before any timer, to settle what a crash left half-done."},
    {"lib/tmpfiles.d/vmmigrate.conf", "Creates /run/vmmigrate and /var/lib/vmmigrate/journal."},
};

/* The SEE ALSO section: by section, then by name. */
static const struct {
    const char *name, *section;
} man_see_also[] = {
    {"virsh", "1"},
    {"crontab", "5"},
    {"systemd.exec", "5"},
    {"systemd.service", "5"},
    {"systemd.timer", "5"},
    {"tmpfiles.d", "5"},
    {"vmmigrate-policy", "7"},
    {"libvirtd", "8"},
};

/* ---- a growing string ------------------------------------------------ */

struct buf {
    char *s;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_putc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    buf_puts(b, s);
    free(s);
}

/* Drop the last n bytes. */
static void buf_chop(struct buf *b, size_t n)
{
    b->len = n < b->len ? b->len - n : 0;
    if (b->s)
        b->s[b->len] = '\0';
}

static char *buf_finish(struct buf *b)
{
    return b->s ? b->s : xstrdup("");
}

/* ---- the tables ------------------------------------------------------- */

static bool command_shown(const struct vm_cli_command *c)
{
    return !(c->flags & VM_CLI_HIDDEN);
}

/* c: the command whose table it is, NULL for the common options. */
static bool option_shown(const struct vm_cli_command *c, const struct vm_cli_option *o)
{
    return vm_cli_option_shown(c, o);
}

static bool option_takes_value(const struct vm_cli_option *o)
{
    return o->arg != VM_CLI_ARG_NONE;
}

static bool has_value_options(const struct vm_cli_command *c, const struct vm_cli_option *opts)
{
    for (const struct vm_cli_option *o = opts; o && o->name; o++)
        if (option_shown(c, o) && option_takes_value(o))
            return true;
    return false;
}

/* The choices "a|b|c" joined with `sep` instead of '|'; caller frees. */
static char *choices_join(const char *choices, const char *sep)
{
    struct buf b = {0};
    for (const char *p = choices; *p; p++) {
        if (*p == '|')
            buf_puts(&b, sep);
        else
            buf_putc(&b, *p);
    }
    return buf_finish(&b);
}

/* Whether a command's usage names a COMMAND positional (`help [COMMAND]`):
 * the completions then offer the command names there. */
static bool usage_takes_command(const struct vm_cli_command *c)
{
    const char *p = c->usage ? strstr(c->usage, "COMMAND") : NULL;
    return p && (p == c->usage || !isalnum((unsigned char)p[-1])) &&
           !isalnum((unsigned char)p[strlen("COMMAND")]);
}

/* The visible command names separated by spaces; caller frees. */
static char *command_names(void)
{
    struct buf b = {0};
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        if (!command_shown(vm_cli_commands[i]))
            continue;
        if (b.len)
            buf_putc(&b, ' ');
        buf_puts(&b, vm_cli_commands[i]->name);
    }
    return buf_finish(&b);
}

/* ---- man(7) ----------------------------------------------------------- */

static bool is_upper_word_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Length of an option name at s ("-x" or "--long-name"), or 0. */
static size_t option_word_len(const char *s)
{
    size_t n = s[0] == '-' ? (s[1] == '-' ? 2 : 1) : 0;
    if (!n || !isalpha((unsigned char)s[n]))
        return 0;
    while (isalnum((unsigned char)s[n]) || (s[n] == '-' && isalnum((unsigned char)s[n + 1])))
        n++;
    return n;
}

/* Whether the all-capitals word [w, w+n) is a component of the metavar
 * ("VM" and "PATH" of "VM=PATH"). */
static bool metavar_has_word(const char *metavar, const char *w, size_t n)
{
    if (!metavar)
        return false;
    for (const char *p = metavar; *p;) {
        while (*p && !is_upper_word_char(*p))
            p++;
        const char *start = p;
        while (is_upper_word_char(*p))
            p++;
        if ((size_t)(p - start) == n && n && memcmp(start, w, n) == 0)
            return true;
    }
    return false;
}

/* Plain text to roff: backslashes as \e; with `minus`, every hyphen as \-
 * (option names, command lines: text a reader types). */
static void roff_escape(struct buf *b, const char *s, size_t n, bool minus)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            buf_puts(b, "\\e");
        else if (s[i] == '"') /* would end a quoted macro argument */
            buf_puts(b, "\\(dq");
        else if (s[i] == '-' && minus)
            buf_puts(b, "\\-");
        else
            buf_putc(b, s[i]);
    }
}

/* Whether the '.' at `dot` ends a sentence: the next word starts with a
 * capital, or the word before is no abbreviation ("e.g.") or file name. */
static bool sentence_ends(const char *text, const char *dot, const char *next)
{
    if (isupper((unsigned char)*next))
        return true;
    const char *w = dot;
    while (w > text && w[-1] != ' ')
        w--;
    return !memchr(w, '.', (size_t)(dot - w));
}

/* A paragraph of the tables' plain text as roff text lines: option names in
 * bold, the words of `metavar` in italics, one sentence per line, and no
 * line that starts with a control character. Ends with a newline. */
static void roff_para(struct buf *b, const char *text, const char *metavar)
{
    bool line_start = true;
    for (const char *p = text; *p;) {
        /* A new sentence starts a new line. */
        if (*p == ' ' && p > text && p[-1] == '.' && sentence_ends(text, p - 1, p + 1)) {
            buf_putc(b, '\n');
            line_start = true;
            p++;
            continue;
        }
        if (line_start && (*p == '.' || *p == '\''))
            buf_puts(b, "\\&");
        line_start = false;
        bool word_start = p == text || strchr(" ('\"[/", p[-1]);
        size_t n = word_start ? option_word_len(p) : 0;
        if (n) {
            buf_puts(b, "\\fB");
            roff_escape(b, p, n, true);
            buf_puts(b, "\\fR");
            p += n;
            continue;
        }
        if (word_start && is_upper_word_char(*p)) {
            while (is_upper_word_char(p[n]))
                n++;
            if (!isalnum((unsigned char)p[n]) && metavar_has_word(metavar, p, n)) {
                buf_puts(b, "\\fI");
                buf_add(b, p, n);
                buf_puts(b, "\\fR");
                p += n;
                continue;
            }
        }
        /* A lone '-' (standard output) is a minus too. */
        roff_escape(b, p, 1, word_start);
        p++;
    }
    buf_putc(b, '\n');
}

/* Append roff text lines, each broken at spaces to at most ROFF_WIDTH bytes
 * where it can be; a continuation line that would start with a control
 * character gets a \& in front. */
enum { ROFF_WIDTH = 78 };

static void roff_wrap(struct buf *b, const char *text)
{
    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        const char *end = line + len;
        bool first = true;
        for (const char *p = line; p < end;) {
            while (!first && *p == ' ')
                p++;
            size_t n = (size_t)(end - p), cut = n;
            if (n > ROFF_WIDTH) {
                cut = 0;
                for (size_t i = 1; i <= ROFF_WIDTH; i++)
                    if (p[i] == ' ')
                        cut = i;
                if (!cut) /* one long word: up to the next space */
                    cut = strcspn(p, " ") < n ? strcspn(p, " ") : n;
            }
            if (!first && (*p == '.' || *p == '\''))
                buf_puts(b, "\\&");
            buf_add(b, p, cut);
            buf_putc(b, '\n');
            p += cut;
            first = false;
        }
        line = *end ? end + 1 : end;
    }
}

/* roff_para, wrapped. */
static void man_para(struct buf *b, const char *text, const char *metavar)
{
    struct buf tmp = {0};
    roff_para(&tmp, text, metavar);
    roff_wrap(b, tmp.s);
    free(tmp.s);
}

/* One word of a usage string as a line of man(7) font macros: "--vm" bold,
 * "NAME" italic, brackets and "..." roman. */
static void man_usage_word(struct buf *b, const char *w, size_t n)
{
    size_t pre = 0, post = 0;
    while (pre < n && w[pre] == '[')
        pre++;
    while (post < n - pre && w[n - 1 - post] == ']')
        post++;
    const char *core = w + pre;
    size_t clen = n - pre - post;
    if (clen == 0 || (clen == 3 && memcmp(core, "...", 3) == 0)) {
        buf_puts(b, "\\&");
        buf_add(b, w, n);
        buf_putc(b, '\n');
        return;
    }
    bool italic = core[0] != '-';
    for (size_t i = 0; italic && i < clen; i++)
        italic = is_upper_word_char(core[i]) || core[i] == '=' || core[i] == '/';
    char font = italic ? 'I' : 'B';
    if (!pre && !post)
        buf_printf(b, ".%c ", font);
    else if (pre)
        buf_printf(b, ".R%c %.*s ", font, (int)pre, w);
    else
        buf_printf(b, ".%cR ", font);
    roff_escape(b, core, clen, true);
    if (post)
        buf_printf(b, " %.*s", (int)post, core + clen);
    buf_putc(b, '\n');
}

static void man_synopsis(struct buf *b, const struct vm_cli_command *c)
{
    buf_printf(b, ".SY vmmigrate\n.B %s\n", c->name);
    for (const char *p = c->usage ? c->usage : ""; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n)
            man_usage_word(b, p, n);
        p += n;
    }
    buf_puts(b, ".YS\n");
}

/* "-b, --bandwidth MIB/S" as a .TP tag, then the paragraph. */
static void man_option(struct buf *b, const struct vm_cli_option *o)
{
    buf_puts(b, ".TP\n");
    if (o->short_name)
        buf_printf(b, "\\fB\\-%c\\fR, ", o->short_name);
    buf_puts(b, "\\fB\\-\\-");
    roff_escape(b, o->name, strlen(o->name), true);
    buf_puts(b, "\\fR");
    const char *mv = o->metavar ? o->metavar : "VALUE";
    if (option_takes_value(o)) {
        buf_puts(b, " \\fI");
        roff_escape(b, mv, strlen(mv), true);
        buf_puts(b, "\\fR");
    }
    buf_putc(b, '\n');

    struct buf text = {0};
    if (o->doc) {
        buf_puts(&text, o->doc);
    } else {
        /* The --help line as a sentence. */
        buf_putc(&text, (char)toupper((unsigned char)o->help[0]));
        buf_puts(&text, o->help + 1);
        buf_putc(&text, '.');
    }
    if (o->arg == VM_CLI_ARG_INT)
        buf_printf(&text, " %s is an integer from %lld to %lld.", mv, (long long)o->min,
                   (long long)o->max);
    if (o->arg == VM_CLI_ARG_CHOICE || o->arg == VM_CLI_ARG_CHOICES) {
        char *list = choices_join(o->choices, ", ");
        buf_printf(&text,
                   o->arg == VM_CLI_ARG_CHOICE ? " %s is one of: %s."
                                               : " %s is a comma-separated list of: %s.",
                   mv, list);
        free(list);
    }
    if (o->flags & VM_CLI_REPEAT)
        buf_puts(&text, " May be given more than once.");
    man_para(b, text.s, mv);
    free(text.s);
}

static void man_section_commands(struct buf *b)
{
    buf_puts(b, ".SH COMMANDS\n");
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        if (!command_shown(c))
            continue;
        buf_printf(b, ".SS %s\n", c->name);
        man_synopsis(b, c);
        buf_puts(b, ".PP\n");
        man_para(b, c->doc ? c->doc : c->summary, c->usage);
        if (!vm_cli_grouped(c)) {
            for (const struct vm_cli_option *o = c->options; o && o->name; o++)
                if (option_shown(c, o))
                    man_option(b, o);
            continue;
        }
        /* Under the headings of --help, in the same order. */
        for (int g = VM_CLI_GROUP_NONE + 1; g < VM_CLI_GROUP_COUNT; g++) {
            bool first = true;
            for (const struct vm_cli_option *o = c->options; o && o->name; o++) {
                if (!option_shown(c, o) || o->group != (enum vm_cli_group)g)
                    continue;
                if (first)
                    buf_printf(b, ".PP\n.B %s\n", vm_cli_groups[g]);
                first = false;
                man_option(b, o);
            }
        }
    }
}

/* An example shell line in an .EX block, broken with backslashes before an
 * option (keeping it with its value) or a redirection. */
static void man_example(struct buf *b, const char *line)
{
    const size_t width = 72;
    size_t col = 0;
    for (const char *p = line; *p;) {
        /* The unit: a word, and the value after an option. */
        size_t n = strcspn(p, " ");
        if (p[0] == '-' && p[n] == ' ' && p[n + 1] != '-' && p[n + 1] != '>')
            n += 1 + strcspn(p + n + 1, " ");
        if (col && col + 1 + n + 2 > width) {
            buf_puts(b, " \\e\n    ");
            col = 4;
        } else if (col) {
            buf_putc(b, ' ');
            col++;
        }
        roff_escape(b, p, n, true);
        col += n;
        p += n;
        while (*p == ' ')
            p++;
    }
    buf_putc(b, '\n');
}

static char *man_generate(void)
{
    struct buf b = {0};
    buf_puts(&b, ".\\\" Generated by `vmmigrate docs man` from the command tables (src/cli.c,\n"
                 ".\\\" src/cmd_*.c). Do not edit: change the tables, then run\n"
                 ".\\\" `cmake --build build --target docs`.\n");
    buf_printf(&b, ".TH VMMIGRATE 1 %s \"vmmigrate %s\" \"User Commands\"\n", VMM_RELEASE_DATE,
               VMM_VERSION);

    buf_puts(&b, ".SH NAME\nvmmigrate \\- live\\-migrate virtual machines between libvirt hosts\n");

    buf_puts(&b, ".SH SYNOPSIS\n");
    for (size_t i = 0; vm_cli_commands[i]; i++)
        if (command_shown(vm_cli_commands[i]))
            man_synopsis(&b, vm_cli_commands[i]);

    buf_puts(&b, ".SH DESCRIPTION\n");
    man_para(&b,
             "vmmigrate live-migrates running virtual machines from one libvirt host to "
             "another. What it does is chosen by the command, the first argument; the "
             "options follow the command. Each command and its options are described under "
             "COMMANDS below; every command also accepts the COMMON OPTIONS.",
             NULL);
    buf_puts(&b, ".PP\n");
    man_para(&b,
             "A long option's value is the next argument or follows an equals sign "
             "(--vm=web1); a short option's value is the next argument or follows the letter "
             "(-mweb1). Option processing stops at the first argument that is not an option. "
             "vmmigrate --help and vmmigrate --version are short for vmmigrate help and "
             "vmmigrate version.",
             NULL);

    man_section_commands(&b);

    buf_puts(&b, ".SH COMMON OPTIONS\n");
    man_para(&b, "Every command accepts these options.", NULL);
    for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
        if (option_shown(NULL, o))
            man_option(&b, o);

    buf_puts(&b, ".SH EXIT STATUS\n");
    for (const struct vm_cli_exit *e = vm_cli_exits; e->name; e++) {
        buf_printf(&b, ".TP\n\\fB%d\\fR (%s)\n", e->code, e->name);
        man_para(&b, e->doc, NULL);
    }

    buf_puts(&b, ".SH ENVIRONMENT\n.TP\n.B UV_THREADPOOL_SIZE\n");
    man_para(&b,
             "The number of threads libuv runs vmmigrate's blocking libvirt calls on; each "
             "running migration holds one for its whole duration. Unless it is set, vmmigrate "
             "sets it from --parallel.",
             NULL);

    buf_puts(&b, ".SH FILES\n");
    man_para(&b,
             "Paths starting with share/ or lib/ are under the installation prefix (/usr or "
             "/usr/local); /etc is PREFIX/etc for another prefix than /usr.",
             NULL);
    for (size_t i = 0; i < VM_ARRAY_LEN(man_files); i++) {
        buf_puts(&b, ".TP\n.I ");
        roff_escape(&b, man_files[i].path, strlen(man_files[i].path), true);
        buf_putc(&b, '\n');
        man_para(&b, man_files[i].doc, NULL);
    }

    buf_puts(&b, ".SH EXAMPLES\n");
    for (size_t i = 0; i < VM_ARRAY_LEN(man_examples); i++) {
        if (i)
            buf_puts(&b, ".PP\n");
        man_para(&b, man_examples[i].what, NULL);
        buf_puts(&b, ".PP\n.EX\n");
        for (const char *line = man_examples[i].text; *line;) {
            size_t n = strcspn(line, "\n");
            char *one = xstrndup(line, n);
            if (man_examples[i].verbatim) {
                roff_escape(&b, one, n, true);
                buf_putc(&b, '\n');
            } else {
                man_example(&b, one);
            }
            free(one);
            line += line[n] ? n + 1 : n;
        }
        buf_puts(&b, ".EE\n");
    }

    buf_puts(&b, ".SH SEE ALSO\n");
    for (size_t i = 0; i < VM_ARRAY_LEN(man_see_also); i++) {
        buf_puts(&b, ".BR ");
        roff_escape(&b, man_see_also[i].name, strlen(man_see_also[i].name), true);
        buf_printf(&b, " (%s)%s\n", man_see_also[i].section,
                   i + 1 < VM_ARRAY_LEN(man_see_also) ? "," : "");
    }
    return buf_finish(&b);
}

/* ---- bash ------------------------------------------------------------- */

/* The column the next byte of b lands in. */
static size_t buf_col(const struct buf *b)
{
    size_t i = b->len;
    while (i > 0 && b->s[i - 1] != '\n')
        i--;
    return b->len - i;
}

/* Append `word`, after `sep` unless it is the first, or after `brk` (which
 * breaks the line and indents) when the line would grow past 80 columns. */
static void buf_word(struct buf *b, bool *first, const char *sep, const char *brk, const char *word)
{
    if (*first)
        *first = false;
    else if (buf_col(b) + strlen(sep) + strlen(word) + 3 > 80)
        buf_puts(b, brk);
    else
        buf_puts(b, sep);
    buf_puts(b, word);
}

/* Every option of c taking a value, shown or not (they take one), as
 * words: -b --bandwidth ..., lines broken with BREAK. */
static void valued_words(struct buf *b, const struct vm_cli_command *c, const char *brk)
{
    bool first = true;
    for (const struct vm_cli_option *o = c->options; o && o->name; o++) {
        if (!option_takes_value(o))
            continue;
        char name[64];
        if (o->short_name) {
            snprintf(name, sizeof(name), "-%c", o->short_name);
            buf_word(b, &first, " ", brk, name);
        }
        snprintf(name, sizeof(name), "--%s", o->name);
        buf_word(b, &first, " ", brk, name);
    }
}

/* The options of `opts` that pass `want`, with both their names, as words. */
static void bash_option_words(struct buf *b, bool *first, const char *sep, const char *brk,
                              const struct vm_cli_command *c, const struct vm_cli_option *opts,
                              bool (*want)(const struct vm_cli_option *))
{
    for (const struct vm_cli_option *o = opts; o && o->name; o++) {
        if (!option_shown(c, o) || (want && !want(o)))
            continue;
        char name[64];
        if (o->short_name) {
            snprintf(name, sizeof(name), "-%c", o->short_name);
            buf_word(b, first, sep, brk, name);
        }
        snprintf(name, sizeof(name), "--%s", o->name);
        buf_word(b, first, sep, brk, name);
    }
}

static bool bash_value_plain(const struct vm_cli_option *o)
{
    return option_takes_value(o) && o->arg != VM_CLI_ARG_CHOICE && o->arg != VM_CLI_ARG_CHOICES &&
           o->arg != VM_CLI_ARG_FILE && o->arg != VM_CLI_ARG_VM && o->arg != VM_CLI_ARG_RUN;
}

static bool bash_value_file(const struct vm_cli_option *o)
{
    return o->arg == VM_CLI_ARG_FILE && !o->glob;
}

/* The command's option named `name` as shown, or NULL. */
static const struct vm_cli_option *shown_option(const struct vm_cli_command *c, const char *name)
{
    for (const struct vm_cli_option *o = c ? c->options : NULL; o && o->name; o++)
        if (option_shown(c, o) && strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* Where a VM option of c takes the VM names from, as the arguments of the
 * completions' _vmmigrate_vms: "--source -s" (the option's names), or
 * "@N" (the Nth positional argument, a URI). Caller frees. */
static char *vm_source_args(const struct vm_cli_command *c)
{
    const struct vm_cli_option *src = shown_option(c, "source");
    if (src)
        return src->short_name ? xasprintf("--%s -%c", src->name, src->short_name)
                               : xasprintf("--%s", src->name);
    int n = 1;
    for (const struct vm_cli_option *p = c ? c->positionals : NULL; p && p->name; p++, n++)
        if (p->arg == VM_CLI_ARG_URI)
            return xasprintf("@%d", n);
    return xstrdup("");
}

/* The completion of one value of kind o (an option's or a positional's) as
 * a bash command, or NULL if there is nothing to offer. Caller frees. */
static char *bash_value_action(const struct vm_cli_command *c, const struct vm_cli_option *o)
{
    char *list = NULL, *out = NULL;
    switch (o->arg) {
    case VM_CLI_ARG_CHOICE:
    case VM_CLI_ARG_CHOICES:
        list = choices_join(o->choices, " ");
        out = xasprintf("%s '%s'",
                        o->arg == VM_CLI_ARG_CHOICE ? "_vmmigrate_words" : "_vmmigrate_list", list);
        break;
    case VM_CLI_ARG_FILE:
        out = o->glob ? xasprintf("_vmmigrate_files '%s'", o->glob) : xstrdup("_vmmigrate_files");
        break;
    case VM_CLI_ARG_VM:
        list = vm_source_args(c);
        out = *list ? xasprintf("_vmmigrate_vms %s", list) : NULL;
        break;
    case VM_CLI_ARG_RUN:
        out = xstrdup("_vmmigrate_runs");
        break;
    default:
        break;
    }
    free(list);
    return out;
}

/* The case branches on $prev completing the values of `opts`, indented by
 * `ind`: each option with something to offer, then one branch for the
 * files of any name, one for the values with nothing to offer. */
static void bash_value_cases(struct buf *b, const struct vm_cli_command *c,
                             const struct vm_cli_option *opts, const char *ind)
{
    char *brk = xasprintf(" | \\\n%s", ind);
    for (const struct vm_cli_option *o = opts; o && o->name; o++) {
        if (!option_shown(c, o) || !option_takes_value(o) || bash_value_file(o))
            continue;
        char *action = bash_value_action(c, o);
        if (!action)
            continue;
        buf_puts(b, ind);
        if (o->short_name)
            buf_printf(b, "-%c | ", o->short_name);
        buf_printf(b, "--%s)\n%s    %s\n%s    return\n%s    ;;\n", o->name, ind, action, ind, ind);
        free(action);
    }
    bool (*groups[])(const struct vm_cli_option *) = {bash_value_file, bash_value_plain};
    for (size_t g = 0; g < VM_ARRAY_LEN(groups); g++) {
        bool first = true;
        size_t start = b->len;
        buf_puts(b, ind);
        bash_option_words(b, &first, " | ", brk, c, opts, groups[g]);
        if (first) { /* no such option */
            buf_chop(b, b->len - start);
            continue;
        }
        buf_printf(b, ")\n%s    %s\n%s    return\n%s    ;;\n", ind,
                   groups[g] == bash_value_file ? "_vmmigrate_files"
                                                : "# a value, but nothing to offer",
                   ind, ind);
    }
    free(brk);
}

/* The helpers every generated bash completion starts with. */
static const char bash_helpers[] =
    "# Complete the current word from the words in $1.\n"
    "_vmmigrate_words()\n"
    "{\n"
    "    mapfile -t COMPREPLY < <(compgen -W \"$1\" -- \"$cur\")\n"
    "}\n"
    "\n"
    "# Complete the last item of a comma-separated list of the words in $1, less\n"
    "# the items the list has already.\n"
    "_vmmigrate_list()\n"
    "{\n"
    "    local prefix='' w left=''\n"
    "    if [[ $cur == *,* ]]; then\n"
    "        prefix=${cur%,*},\n"
    "    fi\n"
    "    for w in $1; do\n"
    "        [[ ,$prefix == *,\"$w\",* ]] || left+=\" $w\"\n"
    "    done\n"
    "    mapfile -t COMPREPLY < <(compgen -P \"$prefix\" -W \"$left\" -- \"${cur##*,}\")\n"
    "    compopt -o nospace 2>/dev/null\n"
    "}\n"
    "\n"
    "# Complete a file name; $1, if given: a glob the files must match (directories\n"
    "# are offered whatever their name, to go down into).\n"
    "_vmmigrate_files()\n"
    "{\n"
    "    compopt -o filenames 2>/dev/null\n"
    "    if [[ -n ${1-} ]]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -d -- \"$cur\"; compgen -f -X \"!$1\" -- \"$cur\")\n"
    "    else\n"
    "        mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
    "    fi\n"
    "}\n"
    "\n"
    "# words: the words before the current one as typed. bash splits words at ':'\n"
    "# and '=' (COMP_WORDBREAKS): a URI split at its ':' is one word again, and\n"
    "# --name=value two words, the name and the value.\n"
    "_vmmigrate_line()\n"
    "{\n"
    "    local i w\n"
    "    words=()\n"
    "    for ((i = 0; i < COMP_CWORD; i++)); do\n"
    "        w=${COMP_WORDS[i]}\n"
    "        if [[ $w == = ]] && ((i > 2)); then\n"
    "            continue\n"
    "        elif [[ $w == : || ${COMP_WORDS[i - 1]} == : ]] && ((i > 2)); then\n"
    "            words[${#words[@]} - 1]+=$w\n"
    "        else\n"
    "            words+=(\"$w\")\n"
    "        fi\n"
    "    done\n"
    "}\n"
    "\n"
    "# REPLY: the value of the last option $1 (or $2, its short name) in words.\n"
    "_vmmigrate_optval()\n"
    "{\n"
    "    local i\n"
    "    REPLY=''\n"
    "    for ((i = 2; i + 1 < ${#words[@]}; i++)); do\n"
    "        if [[ ${words[i]} == \"$1\" || ${words[i]} == \"${2:-$1}\" ]]; then\n"
    "            REPLY=${words[i + 1]}\n"
    "        fi\n"
    "    done\n"
    "}\n"
    "\n"
    "# pos: the positional arguments in words, less the options and the values of\n"
    "# those in $valued.\n"
    "_vmmigrate_positionals()\n"
    "{\n"
    "    local i\n"
    "    pos=()\n"
    "    for ((i = 2; i < ${#words[@]}; i++)); do\n"
    "        if [[ ${words[i]} == -* ]]; then\n"
    "            if [[ \" ${valued//[[:space:]]/ } \" == *\" ${words[i]} \"* ]]; then\n"
    "                i=$((i + 1))\n"
    "            fi\n"
    "        else\n"
    "            pos+=(\"${words[i]}\")\n"
    "        fi\n"
    "    done\n"
    "}\n"
    "\n"
    "# Complete the name of a VM running on the source host: the value of option\n"
    "# $1 (or $2) on the line, or with $1 = @N the Nth positional argument. virsh\n"
    "# lists them, read-only, for at most 5 seconds; its errors are not shown.\n"
    "_vmmigrate_vms()\n"
    "{\n"
    "    local src names\n"
    "    _vmmigrate_line\n"
    "    if [[ $1 == @* ]]; then\n"
    "        _vmmigrate_positionals\n"
    "        src=${pos[${1#@} - 1]-}\n"
    "    else\n"
    "        _vmmigrate_optval \"$1\" \"${2-}\"\n"
    "        src=$REPLY\n"
    "    fi\n"
    "    [[ -n $src ]] || return 0\n"
    "    # over ssh: never ask for a password or a host key (libvirt's no_tty)\n"
    "    if [[ $src == *+ssh://* || $src == *+libssh*://* ]]; then\n"
    "        [[ $src == *\\?* ]] && src+='&no_tty=1' || src+='?no_tty=1'\n"
    "    fi\n"
    "    names=$(timeout 5 virsh -r -q -c \"$src\" list --name 2>/dev/null </dev/null)\n"
    "    mapfile -t COMPREPLY < <(compgen -W \"$names\" -- \"$cur\")\n"
    "}\n"
    "\n"
    "# Complete a run id: the journals in the --journal-dir on the line, else in\n"
    "# the default directory.\n"
    "_vmmigrate_runs()\n"
    "{\n"
    "    local dir f ids=()\n"
    "    _vmmigrate_line\n"
    "    _vmmigrate_optval --journal-dir\n"
    "    dir=${REPLY:-" VM_JOURNAL_DEFAULT_DIR "}\n"
    "    dir=${dir/#\\~/$HOME}\n"
    "    for f in \"$dir\"/*.ndjson; do\n"
    "        [[ -f $f ]] || continue\n"
    "        f=${f##*/}\n"
    "        ids+=(\"${f%.ndjson}\")\n"
    "    done\n"
    "    mapfile -t COMPREPLY < <(compgen -W \"${ids[*]}\" -- \"$cur\")\n"
    "}\n"
    "\n";

static char *bash_generate(void)
{
    struct buf b = {0};
    char *names = command_names();
    buf_puts(&b, "# bash completion for vmmigrate(1)                       -*- shell-script -*-\n"
                 "# Generated by `vmmigrate docs bash` from the command tables (src/cli.c,\n"
                 "# src/cmd_*.c). Do not edit: change the tables, then run\n"
                 "# `cmake --build build --target docs`.\n"
                 "\n");
    buf_puts(&b, bash_helpers);
    buf_puts(&b, "_vmmigrate()\n"
                 "{\n"
                 "    local cur=${COMP_WORDS[COMP_CWORD]} prev='' opts='' valued='' REPLY=''\n"
                 "    local words=() pos=()\n"
                 "    COMPREPLY=()\n"
                 "    if ((COMP_CWORD > 1)); then\n"
                 "        prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
                 "    fi\n"
                 "    # bash splits --name=value into '--name' '=' 'value'.\n"
                 "    if [[ $cur == = ]]; then\n"
                 "        cur=''\n"
                 "    elif [[ $prev == = ]] && ((COMP_CWORD > 2)); then\n"
                 "        prev=${COMP_WORDS[COMP_CWORD - 2]}\n"
                 "    fi\n"
                 "\n"
                 "    if ((COMP_CWORD == 1)); then\n"
                 "        if [[ $cur == -* ]]; then\n"
                 "            _vmmigrate_words '-h --help -V --version'\n"
                 "        else\n");
    buf_printf(&b, "            _vmmigrate_words '%s'\n", names);
    buf_puts(&b, "        fi\n"
                 "        return\n"
                 "    fi\n"
                 "\n");
    if (has_value_options(NULL, vm_cli_common_options)) {
        buf_puts(&b, "    case $prev in\n");
        bash_value_cases(&b, NULL, vm_cli_common_options, "    ");
        buf_puts(&b, "    esac\n\n");
    }
    buf_puts(&b, "    case ${COMP_WORDS[1]} in\n");
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        if (!command_shown(c))
            continue;
        buf_printf(&b, "    %s)\n", c->name);
        if (has_value_options(c, c->options)) {
            /* every option taking a value, shown or not: they take one */
            buf_puts(&b, "        valued='");
            valued_words(&b, c, "\n            ");
            buf_puts(&b, "'\n        case $prev in\n");
            bash_value_cases(&b, c, c->options, "        ");
            buf_puts(&b, "        esac\n");
        }
        buf_puts(&b, "        opts='");
        bool first = true;
        bash_option_words(&b, &first, " ", "\n            ", c, c->options, NULL);
        bash_option_words(&b, &first, " ", "\n            ", NULL, vm_cli_common_options, NULL);
        buf_puts(&b, "'\n");
        buf_puts(&b, "        ;;\n");
    }
    buf_puts(&b, "    *)\n"
                 "        return\n"
                 "        ;;\n"
                 "    esac\n"
                 "\n"
                 "    # A positional argument: what the command takes there.\n"
                 "    if [[ $cur != -* ]]; then\n"
                 "        _vmmigrate_line\n"
                 "        _vmmigrate_positionals\n"
                 "        case ${COMP_WORDS[1]}:${#pos[@]} in\n");
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        if (!command_shown(c))
            continue;
        if (usage_takes_command(c))
            buf_printf(&b,
                       "        %s:0)\n"
                       "            _vmmigrate_words '%s'\n"
                       "            return\n"
                       "            ;;\n",
                       c->name, names);
        int n = 0;
        for (const struct vm_cli_option *p = c->positionals; p && p->name; p++, n++) {
            char *action = bash_value_action(c, p);
            if (action)
                buf_printf(&b,
                           "        %s:%d)\n"
                           "            %s\n"
                           "            return\n"
                           "            ;;\n",
                           c->name, n, action);
            free(action);
        }
    }
    buf_puts(&b, "        esac\n"
                 "    fi\n"
                 "    _vmmigrate_words \"$opts\"\n"
                 "}\n"
                 "\n"
                 "complete -F _vmmigrate vmmigrate\n");
    free(names);
    return buf_finish(&b);
}

/* ---- zsh -------------------------------------------------------------- */

/* Where a string goes inside a single-quoted zsh word. */
enum zsh_field {
    ZSH_EXPLANATION, /* an _arguments [explanation]: \, [ and ] escaped */
    ZSH_FIELD,       /* a colon-separated field (message, _describe name) */
    ZSH_TEXT,        /* free text after the last colon (_describe description) */
};

/* Append s for inside a single-quoted zsh word: ' as '\'', and what would
 * end the field escaped with a backslash. */
static void zsh_quote(struct buf *b, const char *s, enum zsh_field field)
{
    for (; *s; s++) {
        if (*s == '\'')
            buf_puts(b, "'\\''");
        else if (field == ZSH_EXPLANATION && strchr("[]\\", *s))
            buf_printf(b, "\\%c", *s);
        else if (field == ZSH_FIELD && strchr(":\\", *s))
            buf_printf(b, "\\%c", *s);
        else
            buf_putc(b, *s);
    }
}

/* The _arguments action completing a value of kind o (an option's or a
 * positional's) of command c, in a single-quoted word. */
static void zsh_action(struct buf *b, const struct vm_cli_command *c, const struct vm_cli_option *o)
{
    char *list = NULL;
    switch (o->arg) {
    case VM_CLI_ARG_CHOICE:
        list = choices_join(o->choices, " ");
        buf_printf(b, "(%s)", list);
        break;
    case VM_CLI_ARG_CHOICES:
        list = choices_join(o->choices, " ");
        buf_puts(b, "_values -s , ");
        zsh_quote(b, o->metavar ? o->metavar : "value", ZSH_FIELD);
        buf_printf(b, " %s", list);
        break;
    case VM_CLI_ARG_FILE:
        buf_puts(b, "_files");
        if (o->glob)
            buf_printf(b, " -g \"%s\"", o->glob);
        break;
    case VM_CLI_ARG_VM:
        list = vm_source_args(c);
        if (*list)
            buf_printf(b, "_vmmigrate_vms %s", list);
        else
            buf_putc(b, ' ');
        break;
    case VM_CLI_ARG_RUN:
        buf_puts(b, "_vmmigrate_runs");
        break;
    default:
        buf_putc(b, ' '); /* a value, but nothing to offer */
        break;
    }
    free(list);
}

/* One _arguments spec line for an option of c, with its continuation. */
static void zsh_option(struct buf *b, const struct vm_cli_command *c, const struct vm_cli_option *o)
{
    const char *eq = option_takes_value(o) ? "=" : "";
    buf_puts(b, "        ");
    if (o->id == VM_CLI_OPT_HELP)
        buf_puts(b, "'(- *)'"); /* --help: nothing else matters */
    else if (o->short_name && (o->flags & VM_CLI_REPEAT))
        buf_puts(b, "'*'");
    else if (o->short_name)
        buf_printf(b, "'(-%c --%s)'", o->short_name, o->name);
    if (o->short_name)
        buf_printf(b, "{-%c%s,--%s%s}'", o->short_name, option_takes_value(o) ? "+" : "", o->name,
                   eq);
    else
        buf_printf(b, "'%s--%s%s", o->flags & VM_CLI_REPEAT ? "*" : "", o->name, eq);
    buf_putc(b, '[');
    zsh_quote(b, o->help, ZSH_EXPLANATION);
    buf_putc(b, ']');
    if (option_takes_value(o)) {
        buf_putc(b, ':');
        zsh_quote(b, o->metavar ? o->metavar : "value", ZSH_FIELD);
        buf_putc(b, ':');
        zsh_action(b, c, o);
    }
    buf_puts(b, "' \\\n");
}

/* The helpers every generated zsh completion starts with; words and
 * CURRENT are the subcommand's (words[1] is its name). */
static const char zsh_helpers[] =
    "\n"
    "# REPLY: the value of the last option $1 (or $2, its short name) on the line.\n"
    "_vmmigrate_optval()\n"
    "{\n"
    "    local i\n"
    "    REPLY=\n"
    "    for ((i = 2; i < CURRENT; i++)); do\n"
    "        if [[ $words[i] == $1 || $words[i] == ${2:-$1} ]]; then\n"
    "            REPLY=$words[i+1]\n"
    "        elif [[ $words[i] == $1=* ]]; then\n"
    "            REPLY=${words[i]#*=}\n"
    "        fi\n"
    "    done\n"
    "}\n"
    "\n"
    "# REPLY: the Nth ($1) positional argument on the line, less the options and\n"
    "# the values of those in $valued.\n"
    "_vmmigrate_positional()\n"
    "{\n"
    "    local i n=0\n"
    "    REPLY=\n"
    "    for ((i = 2; i < CURRENT; i++)); do\n"
    "        if [[ $words[i] == -* ]]; then\n"
    "            ((${${=valued}[(Ie)$words[i]]})) && i=$((i + 1))\n"
    "        elif ((++n == $1)); then\n"
    "            REPLY=$words[i]\n"
    "            return\n"
    "        fi\n"
    "    done\n"
    "}\n"
    "\n"
    "# The names of the VMs running on the source host: the value of option $1\n"
    "# (or $2) on the line, or with $1 = @N the Nth positional argument. virsh\n"
    "# lists them, read-only, for at most 5 seconds; its errors are not shown.\n"
    "_vmmigrate_vms()\n"
    "{\n"
    "    local REPLY\n"
    "    local -a vms\n"
    "    if [[ $1 == @* ]]; then\n"
    "        _vmmigrate_positional ${1#@}\n"
    "    else\n"
    "        _vmmigrate_optval $1 $2\n"
    "    fi\n"
    "    if [[ -z $REPLY ]]; then\n"
    "        _message 'VM name (give the source host first)'\n"
    "        return 1\n"
    "    fi\n"
    "    # over ssh: never ask for a password or a host key (libvirt's no_tty)\n"
    "    if [[ $REPLY == *+(ssh|libssh*)://* ]]; then\n"
    "        [[ $REPLY == *\\?* ]] && REPLY+='&no_tty=1' || REPLY+='?no_tty=1'\n"
    "    fi\n"
    "    vms=(${(f)\"$(timeout 5 virsh -r -q -c $REPLY list --name 2>/dev/null </dev/null)\"})\n"
    "    compadd -a vms\n"
    "}\n"
    "\n"
    "# The run ids of the journals in the --journal-dir on the line, else in the\n"
    "# default directory.\n"
    "_vmmigrate_runs()\n"
    "{\n"
    "    local REPLY\n"
    "    local -a ids\n"
    "    _vmmigrate_optval --journal-dir\n"
    "    ids=(${~REPLY:-" VM_JOURNAL_DEFAULT_DIR "}/*.ndjson(N.:t:r))\n"
    "    compadd -a ids\n"
    "}\n";

static char *zsh_generate(void)
{
    struct buf b = {0};
    char *names = command_names();
    buf_puts(&b, "#compdef vmmigrate\n"
                 "# zsh completion for vmmigrate(1).\n"
                 "# Generated by `vmmigrate docs zsh` from the command tables (src/cli.c,\n"
                 "# src/cmd_*.c). Do not edit: change the tables, then run\n"
                 "# `cmake --build build --target docs`.\n");
    buf_puts(&b, zsh_helpers);
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        if (!command_shown(c))
            continue;
        buf_printf(&b, "\n_vmmigrate_%s()\n{\n", c->name);
        if (has_value_options(c, c->options)) {
            /* every option taking a value, shown or not: they take one */
            buf_puts(&b, "    local valued='");
            valued_words(&b, c, "\n        ");
            buf_puts(&b, "'\n");
        }
        buf_puts(&b, "    _arguments -s -S \\\n");
        for (const struct vm_cli_option *o = c->options; o && o->name; o++)
            if (option_shown(c, o))
                zsh_option(&b, c, o);
        for (const struct vm_cli_option *o = vm_cli_common_options; o->name; o++)
            if (option_shown(NULL, o))
                zsh_option(&b, NULL, o);
        if (usage_takes_command(c))
            buf_printf(&b, "        '1:command:(%s)' \\\n", names);
        int n = 1;
        for (const struct vm_cli_option *p = c->positionals; p && p->name; p++, n++) {
            buf_printf(&b, "        '%d:", n);
            zsh_quote(&b, p->metavar ? p->metavar : p->name, ZSH_FIELD);
            buf_putc(&b, ':');
            zsh_action(&b, c, p);
            buf_puts(&b, "' \\\n");
        }
        buf_chop(&b, strlen(" \\\n")); /* the last spec ends the command */
        buf_puts(&b, "\n}\n");
    }
    buf_puts(&b, "\n_vmmigrate()\n"
                 "{\n"
                 "    local curcontext=$curcontext state line\n"
                 "    typeset -A opt_args\n"
                 "    local -a commands=(\n");
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        if (!command_shown(c))
            continue;
        buf_puts(&b, "        '");
        zsh_quote(&b, c->name, ZSH_FIELD);
        buf_putc(&b, ':');
        zsh_quote(&b, c->summary, ZSH_TEXT);
        buf_puts(&b, "'\n");
    }
    buf_puts(&b, "    )\n"
                 "    _arguments -C \\\n"
                 "        '(- *)'{-h,--help}'[show help]' \\\n"
                 "        '(- *)'{-V,--version}'[show the version]' \\\n"
                 "        '1: :->command' \\\n"
                 "        '*:: :->args' && return 0\n"
                 "    case $state in\n"
                 "    command)\n"
                 "        _describe -t commands 'vmmigrate command' commands\n"
                 "        ;;\n"
                 "    args)\n"
                 "        curcontext=${curcontext%:*:*}:vmmigrate-$words[1]:\n"
                 "        case $words[1] in\n");
    for (size_t i = 0; vm_cli_commands[i]; i++) {
        const struct vm_cli_command *c = vm_cli_commands[i];
        if (command_shown(c))
            buf_printf(&b, "        %s) _vmmigrate_%s ;;\n", c->name, c->name);
    }
    buf_puts(&b, "        *) _message 'unknown vmmigrate command' ;;\n"
                 "        esac\n"
                 "        ;;\n"
                 "    esac\n"
                 "}\n"
                 "\n"
                 "_vmmigrate \"$@\"\n");
    free(names);
    return buf_finish(&b);
}

char *vm_cli_docs_generate(enum vm_cli_doc_kind kind)
{
    switch (kind) {
    case VM_CLI_DOC_MAN:
        return man_generate();
    case VM_CLI_DOC_BASH:
        return bash_generate();
    case VM_CLI_DOC_ZSH:
        return zsh_generate();
    }
    return xstrdup("");
}
