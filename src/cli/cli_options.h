/* SPDX-License-Identifier: MIT */
/* cli_options.h — the options several commands take, each defined once.
 *
 * A definition fixes what parsing, the completions and the man page see the
 * same in every command: the name, short name, kind of value, metavar,
 * bounds, choices and the heading it is listed under (its vm_cli_group). The command gives its own option id and, since what an
 * option does can differ by command (run's --json prints the run report,
 * recover's what it found), its --help line and man page paragraph; the
 * VM_CLI_HELP_* / VM_CLI_DOC_* texts serve where they are the same. A command
 * taking --json adds one line to its table:
 *
 *     VM_CLI_OPTION_JSON(OPT_JSON, VM_CLI_HELP_JSON_REPORT, "Print ..."),
 *
 * The run settings' options (--parallel, --max-in, --on-abort, ...) take
 * their name, bounds and choices from the settings table (plan/settings.h),
 * which settings(run)'s validation reads too. */
#ifndef VMM_CLI_OPTIONS_H
#define VMM_CLI_OPTIONS_H

#include "backend/libvirt/virt.h"
#include "cli/cli.h"
#include "journal/journal.h"
#include "plan/settings.h"

/* ---- reports and journals ---------------------------------------------- */

#define VM_CLI_HELP_JSON_REPORT "print the final JSON report on stdout"
#define VM_CLI_HELP_EVENTS "write an NDJSON event stream to FILE ('-' for stdout)"
#define VM_CLI_DOC_JOURNAL_READ                                                                    \
    "The directory run wrote its journals to. Default " VM_JOURNAL_DEFAULT_DIR "."

#define VM_CLI_OPTION_JSON(ID, HELP, DOC)                                                          \
    {                                                                                              \
        .name = "json", .id = (ID), .help = HELP, .doc = DOC, .group = VM_CLI_GROUP_OUTPUT         \
    }

#define VM_CLI_OPTION_EVENTS(ID, HELP, DOC)                                                        \
    {                                                                                              \
        .name = "events", .short_name = 'e', .arg = VM_CLI_ARG_FILE, .metavar = "FILE",            \
        .id = (ID), .help = HELP, .doc = DOC, .group = VM_CLI_GROUP_OUTPUT                         \
    }

#define VM_CLI_OPTION_JOURNAL_DIR(ID, HELP, DOC)                                                   \
    {                                                                                              \
        .name = "journal-dir", .arg = VM_CLI_ARG_FILE, .metavar = "DIR", .id = (ID), .help = HELP, \
        .doc = DOC, .group = VM_CLI_GROUP_CRON                                                     \
    }

#define VM_CLI_OPTION_LOCK_DIR(ID, HELP, DOC)                                                      \
    {                                                                                              \
        .name = "lock-dir", .arg = VM_CLI_ARG_FILE, .metavar = "DIR", .id = (ID), .help = HELP,    \
        .doc = DOC, .group = VM_CLI_GROUP_CRON                                                     \
    }

/* ---- connections (run, plan, drain) ------------------------------------ */

/* The help and doc below say 30. */
#define VM_CLI_CONNECT_TIMEOUT_DEFAULT VM_VIRT_CONNECT_TIMEOUT_DEFAULT_S
_Static_assert(VM_VIRT_CONNECT_TIMEOUT_DEFAULT_S == 30, "--connect-timeout's help names 30");
#define VM_CLI_OPTION_CONNECT_TIMEOUT(ID)                                                          \
    {                                                                                              \
        .name = "connect-timeout", .arg = VM_CLI_ARG_INT, .metavar = "SECONDS", .id = (ID),        \
        .min = 0, .max = 3600, .help = "give up on a host not connected within SECONDS (30)",      \
        .doc = "Give up on a libvirt host whose connection is not open SECONDS after the run "     \
               "began connecting (a peer that accepts and never answers, an ssh that hangs): "     \
               "the run then ends with exit status 4, naming the URI, before anything changed. "   \
               "0 waits as long as libvirt does, which may be forever. Once connected, libvirt's " \
               "keepalive (every 5 s, 6 missed) fails any call to a host that stops answering. "   \
               "Default 30.",                                                                      \
        .group = VM_CLI_GROUP_CONNECTION                                                           \
    }

/* ---- policies and feature commands ------------------------------------- */

/* SHORT: 'p', or 0 where the command has no -p (recover). */
#define VM_CLI_OPTION_POLICY(ID, SHORT, HELP, DOC)                                                 \
    {                                                                                              \
        .name = "policy", .short_name = (SHORT), .arg = VM_CLI_ARG_FILE, .metavar = "FILE",        \
        .id = (ID), .glob = "*.lua", .help = HELP, .doc = DOC, .group = VM_CLI_GROUP_POLICY     \
    }

/* --host-exec, for the commands that run feature steps (run, drain,
 * recover). */
#define VM_CLI_OPTION_HOST_EXEC(ID)                                                                \
    {                                                                                              \
        .name = "host-exec", .arg = VM_CLI_ARG_STRING, .metavar = "URI=PREFIX", .id = (ID),        \
        .flags = VM_CLI_REPEAT, .help = "run feature commands for host URI through PREFIX",        \
        .doc =                                                                                     \
            "How features run commands (vmm.exec, vdptool) on the host with libvirt URI: PREFIX, " \
            "split on spaces, followed by the command's arguments (no shell), e.g. "               \
            "qemu+tcp://hv12/system='ssh -i /etc/vmm/key hv12 --'. Without it, local URIs run "    \
            "commands here and qemu+ssh URIs through ssh with BatchMode.",                         \
        .group = VM_CLI_GROUP_CONNECTION                                                           \
    }

/* ---- migration knobs (run, plan, drain, qemu) -------------------------- */

#define VM_CLI_HELP_BANDWIDTH "cap the migration bandwidth (MiB/s)"

#define VM_CLI_OPTION_BANDWIDTH(ID, HELP, DOC)                                                     \
    {                                                                                              \
        .name = "bandwidth", .short_name = 'b', .arg = VM_CLI_ARG_INT, .metavar = "MIB/S",         \
        .id = (ID), .min = 1, .max = 1000000, .help = HELP, .doc = DOC,                            \
        .group = VM_CLI_GROUP_MIGRATION                                                            \
    }

#define VM_CLI_OPTION_MAX_DOWNTIME(ID, HELP, DOC)                                                  \
    {                                                                                              \
        .name = "max-downtime", .short_name = 'd', .arg = VM_CLI_ARG_INT, .metavar = "MS",         \
        .id = (ID), .min = 1, .max = 2000000, .help = HELP, .doc = DOC,                            \
        .group = VM_CLI_GROUP_MIGRATION                                                            \
    }

#define VM_CLI_OPTION_TIMEOUT(ID, HELP, DOC)                                                       \
    {                                                                                              \
        .name = "timeout", .arg = VM_CLI_ARG_INT, .metavar = "SECONDS", .id = (ID), .min = 1,      \
        .max = 604800, .help = HELP, .doc = DOC, .group = VM_CLI_GROUP_MIGRATION                   \
    }

#define VM_CLI_OPTION_CLASS(ID, HELP, DOC)                                                         \
    {                                                                                              \
        .name = "class", .arg = VM_CLI_ARG_CHOICE, .metavar = "CLASS", .id = (ID),                 \
        .choices = "urgent|network-critical", .help = HELP, .doc = DOC,                            \
        .group = VM_CLI_GROUP_POLICY                                                               \
    }

/* ---- run settings (plan/settings.h) ------------------------------------ */

/* An integer setting; KEY is its settings(run) key as a bare word
 * (max_in), SHORT its short option or 0, GROUP its vm_cli_group. */
#define VM_CLI_OPTION_SETTING(KEY, SHORT, METAVAR, ID, GROUP, HELP, DOC)                           \
    {                                                                                              \
        .name = VM_SETTING_OPTION(KEY), .short_name = (SHORT), .arg = VM_CLI_ARG_INT,              \
        .metavar = METAVAR, .id = (ID), .min = VM_SETTING_MIN(KEY), .max = VM_SETTING_MAX(KEY),    \
        .help = HELP, .doc = DOC, .group = (GROUP)                                                 \
    }

/* A setting with choices (on_abort). */
#define VM_CLI_OPTION_SETTING_CHOICE(KEY, METAVAR, ID, GROUP, HELP, DOC)                           \
    {                                                                                              \
        .name = VM_SETTING_OPTION(KEY), .arg = VM_CLI_ARG_CHOICE, .metavar = METAVAR, .id = (ID),  \
        .choices = VM_SETTING_CHOICES(KEY), .help = HELP, .doc = DOC, .group = (GROUP)             \
    }

#endif
