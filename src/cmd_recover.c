/* cmd_recover.c — `vmmigrate recover`: reconcile the journals with reality
 * after a crash, so that every guest runs exactly once.
 *
 * For every migration a journal leaves open (started, no finished, not
 * recovered since), the TARGET is asked first, twice, a second apart: a
 * running copy there means the guest moved (a crash after the commit
 * decision), so a copy left paused on the source is destroyed, never
 * resumed. No running copy on the target means the guest never left the
 * source: a paused source is resumed. Anything else (both running, neither
 * anywhere, a host unreachable) is reported for an operator and left alone.
 * Each outcome is appended to a journal of its own ("recovered" records),
 * so a second recover does nothing.
 *
 * The work is recover.c's, which run also does first (on its thread pool). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "cli.h"
#include "exitcode.h"
#include "journal.h"
#include "recover.h"
#include "util.h"
#include "virt.h"

enum {
    OPT_JOURNAL_DIR = 1,
    OPT_JSON,
};

static const struct vm_cli_option recover_options[] = {
    {.name = "journal-dir",
     .arg = VM_CLI_ARG_FILE,
     .metavar = "DIR",
     .id = OPT_JOURNAL_DIR,
     .help = "the journals to reconcile (" VM_JOURNAL_DEFAULT_DIR ")",
     .doc = "The directory run wrote its journals to. Default " VM_JOURNAL_DEFAULT_DIR "."},
    {.name = "json",
     .id = OPT_JSON,
     .help = "print what was found and done as JSON",
     .doc = "Print {\"recovered\": [{vm, uuid, run, source, target, last_record, found, "
            "action, ok}], \"needs_operator\": N} on standard output."},
    {0},
};

static int cmd_recover_exec(const struct vm_cli_args *args)
{
    const char *dir = vm_cli_str(args, OPT_JOURNAL_DIR);
    if (!dir)
        dir = VM_JOURNAL_DEFAULT_DIR;
    if (vm_cli_npos(args) > 0) {
        vm_error("recover: unexpected argument '%s'", vm_cli_pos(args, 0));
        return VM_EXIT_USAGE;
    }
    vm_virt_global_init();
    char *err = NULL;
    json_t *out = NULL;
    int unreachable = 0;
    int needs_operator = vm_recover(dir, &out, &unreachable, &err);
    if (needs_operator < 0) {
        vm_error("recover: %s", err);
        free(err);
        return VM_EXIT_USAGE;
    }
    if (vm_cli_flag(args, OPT_JSON)) {
        json_t *rep = json_pack("{s:O, s:i}", "recovered", out, "needs_operator", needs_operator);
        json_dumpf(rep, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(rep);
    } else if (json_array_size(out) == 0) {
        printf("recover: nothing to do\n");
    }
    json_decref(out);
    return needs_operator ? (unreachable ? VM_EXIT_UNREACHABLE : VM_EXIT_OPERATOR) : VM_EXIT_OK;
}

const struct vm_cli_command vm_cmd_recover_entry = {
    .name = "recover",
    .usage = "[--journal-dir DIR] [--json]",
    .summary = "after a crash, make every half-migrated guest run exactly once",
    .doc = "Read the journals and reconcile every migration a crash left open with what the "
           "hosts say. The target is asked first, twice: a guest running there moved, and a "
           "copy paused on the source is destroyed; a guest not running there never left, and "
           "a paused source is resumed. Two running copies, none at all, or an unreachable "
           "host are reported for an operator (exit status 9, or 4) and changed in no way. "
           "Safe to run again: what it settled is journaled.",
    .options = recover_options,
    .exec = cmd_recover_exec,
};
