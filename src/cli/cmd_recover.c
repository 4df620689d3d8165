/* SPDX-License-Identifier: MIT */
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
 * Each outcome is appended to this recover's journal ("recovered" records,
 * all of them under its one run id, which --json reports),
 * so a second recover does nothing. Then the feature steps crashed runs
 * owe run (owed.h): deinit where the guest stayed on the source, after
 * where it ended on the target.
 *
 * The work is recover.c's, which run also does first (on its thread pool). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "cli/cli.h"
#include "cli/cli_options.h"
#include "util/exitcode.h"
#include "util/exec.h"
#include "journal/journal.h"
#include "journal/owed.h"
#include "policy/policy.h"
#include "journal/recover.h"
#include "util/util.h"
#include "backend/libvirt/virt.h"

enum {
    OPT_JOURNAL_DIR = 1,
    OPT_JSON,
    OPT_POLICY,
    OPT_HOST_EXEC,
    OPT_PRUNE_AFTER,
};

static const struct vm_cli_option recover_options[] = {
    VM_CLI_OPTION_HOST_EXEC(OPT_HOST_EXEC),
    VM_CLI_OPTION_JOURNAL_DIR(OPT_JOURNAL_DIR,
                              "the journals to reconcile (" VM_JOURNAL_DEFAULT_DIR ")",
                              VM_CLI_DOC_JOURNAL_READ),
    VM_CLI_OPTION_JSON(
        OPT_JSON, "print what was found and done as JSON",
        "Print {\"run\": ID, \"journal\": PATH, \"recovered\": [{vm, uuid, run, source, "
        "target, last_record, found, action, ok, location}], \"owed\": [{step, vm, uuid, run, "
        "source, target, ok, features, error}], \"needs_operator\": N, \"pruned\": [PATH]} on "
        "standard output: run is this recover's id, the run of the records it journaled, in "
        "journal (null when it journaled nothing); each entry's run is the run it settled."),
    VM_CLI_OPTION_POLICY(
        OPT_POLICY, 0, "the policy whose features' steps are owed",
        "Load FILE so that the steps of the features it defines can run for migrations a "
        "crash left owing them: deinit (the guest stayed on the source) or after (it ended "
        "on the target). Without it, only built-in features' steps run; the others stay "
        "owed and are reported (exit status 9)."),
    {.name = "prune-after",
     .arg = VM_CLI_ARG_INT,
     .metavar = "DAYS",
     .id = OPT_PRUNE_AFTER,
     .min = 1,
     .max = 36500,
     .help = "then remove journals of closed runs older than DAYS",
     .doc = "After settling, remove the journals last written more than DAYS days ago whose "
            "run is closed: every VM finished or recovered, no feature step started and not "
            "done, or failed. A journal that cannot be read whole, or of a run with anything "
            "open, stays, whatever its age. Each removed journal is logged (and listed as "
            "\"pruned\" with --json). Without it nothing is removed. vmmigrate-drain@.service "
            "runs recover --prune-after 90 after every drain.",
     .group = VM_CLI_GROUP_CRON},
    {0},
};

struct deinits {
    json_t *results;
    int failed;
};

static void deinits_done(json_t *results, int failed, void *data)
{
    struct deinits *d = data;
    d->results = json_incref(results);
    d->failed = failed;
}

static int recover(const struct vm_cli_args *args, const char *dir,
                   const struct vm_exec_hosts *hosts);

static int cmd_recover_exec(const struct vm_cli_args *args)
{
    const char *dir = vm_cli_str(args, OPT_JOURNAL_DIR);
    if (!dir)
        dir = VM_JOURNAL_DEFAULT_DIR;
    if (vm_cli_npos(args) > 0) {
        vm_error("recover: unexpected argument '%s'", vm_cli_pos(args, 0));
        return VM_EXIT_USAGE;
    }
    int nexec;
    const char **execs = vm_cli_host_execs(args, OPT_HOST_EXEC, "recover", &nexec);
    if (!execs)
        return VM_EXIT_USAGE;
    struct vm_exec_hosts *hosts = vm_exec_hosts_new(execs);
    free(execs);
    int rc = recover(args, dir, hosts);
    vm_exec_hosts_free(hosts);
    return rc;
}

/* Reconcile, then run the owed feature steps (their commands reach their
 * hosts through HOSTS). */
static int recover(const struct vm_cli_args *args, const char *dir,
                   const struct vm_exec_hosts *hosts)
{
    char *err = NULL;
    struct vm_policy *policy = NULL;
    const char *policy_path = vm_cli_str(args, OPT_POLICY);
    if (policy_path && !(policy = vm_policy_load(policy_path, &err))) {
        vm_error("recover: %s", err);
        free(err);
        return VM_EXIT_POLICY;
    }
    int lock = vm_journal_lock_settle(dir, 120000, &err);
    if (lock == -1) {
        vm_error("recover: %s", err);
        free(err);
        vm_policy_free(policy);
        return VM_EXIT_OPERATOR;
    }
    vm_virt_global_init();
    /* This recover's one journal, under its run id (the --json report's
     * run), created with its first record. */
    char run[VM_JOURNAL_RUN_ID_SIZE];
    vm_journal_new_run_id(run);
    struct vm_journal *journal = vm_journal_new(dir, run);
    json_t *out = NULL;
    int unreachable = 0;
    int needs_operator = vm_recover(dir, journal, &out, &unreachable, &err);
    if (needs_operator >= 0) {
        /* Then what the hosts the journals name show, whatever they say. */
        int ev = vm_recover_evidence_journals(dir, journal, out, &unreachable, &err);
        needs_operator = ev < 0 ? -1 : needs_operator + ev;
    }
    json_t *owed = needs_operator < 0 ? NULL : vm_recover_owed(dir, &err);
    if (!owed) {
        vm_error("recover: %s", err);
        free(err);
        if (lock >= 0)
            close(lock);
        json_decref(out);
        vm_journal_close(journal);
        vm_policy_free(policy);
        return VM_EXIT_USAGE;
    }
    /* Owed deinits run on a loop of their own (commands, policy steps). */
    struct deinits d = {0};
    uv_loop_t loop;
    uv_loop_init(&loop);
    vm_owed_run(&loop, dir, journal, owed, policy, hosts, deinits_done, &d);
    uv_run(&loop, UV_RUN_DEFAULT);
    vm_policy_shutdown(policy);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    vm_policy_free(policy);
    json_decref(owed);
    needs_operator += d.failed;
    /* Retention: what is closed and old goes, under the settle lock. */
    json_t *pruned = NULL;
    int64_t days = vm_cli_int(args, OPT_PRUNE_AFTER, 0);
    if (days > 0 && lock >= 0) {
        if (vm_journal_prune(dir, (long)days * 86400, &pruned, &err) < 0) {
            vm_warn("recover: journals not pruned: %s", err);
            free(err);
            err = NULL;
        }
        size_t i;
        json_t *p;
        json_array_foreach(pruned, i, p)
        {
            vm_info("recover: removed journal '%s' (closed, older than %lld days)",
                    json_string_value(p), (long long)days);
        }
    }
    if (!pruned)
        pruned = json_array();
    if (vm_cli_flag(args, OPT_JSON)) {
        json_t *rep = json_pack("{s:s, s:o, s:O, s:O, s:i, s:o}", "run", run, "journal",
                                vm_journal_count(journal) ? json_string(vm_journal_path(journal))
                                                          : json_null(),
                                "recovered", out, "owed", d.results, "needs_operator",
                                needs_operator, "pruned", pruned);
        pruned = NULL;
        json_dumpf(rep, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(rep);
    } else if (json_array_size(out) == 0 && json_array_size(d.results) == 0) {
        printf("recover: nothing to do\n");
    }
    json_decref(pruned);
    json_decref(d.results);
    json_decref(out);
    vm_journal_close(journal);
    if (lock >= 0)
        close(lock);
    return needs_operator ? (unreachable ? VM_EXIT_UNREACHABLE : VM_EXIT_OPERATOR) : VM_EXIT_OK;
}

const struct vm_cli_command vm_cmd_recover_entry = {
    .name = "recover",
    .usage = "[--journal-dir DIR] [--json] [--policy FILE] [--prune-after DAYS] "
             "[--host-exec URI=PREFIX]...",
    .summary = "after a crash, make every half-migrated guest run exactly once",
    .doc =
        "Read the journals and reconcile every migration a crash left open with what the "
        "hosts say. The target is asked first, twice: a guest running there moved, and a "
        "copy paused on the source is destroyed; a guest not running there never left, and "
        "a paused source is resumed. Two running copies, none at all, or an unreachable "
        "host are reported for an operator (exit status 9, or 4) and changed in no way. "
        "Then the feature steps a crash left owed run, once: for a network-critical "
        "migration whose guest stayed on the source, its features' deinit steps in reverse "
        "order; for one whose guest ended on the target, their after steps (policy features "
        "need --policy). A plain QEMU guest of `vmmigrate qemu` (journaled as qemu+qmp://SOCKET) "
        "is settled over QMP by the same rules: a commit journaled but not carried out is "
        "carried out (migrate-continue), the source copy is removed by quitting its QEMU "
        "once the target ran twice, a target that never ran the guest is quit; a socket "
        "that does not answer is for an operator (exit status 9). Lines of a journal that "
        "are not whole records of its run (torn, damaged, of another run) are skipped with "
        "a warning naming file and line; a journal of a run no longer going on whose first "
        "record, or a record before its last, cannot be read may hide an open migration: "
        "it is named, and the exit status is 9. One recover at a time settles a journal "
        "directory (a run's own settling and a run's guardian included): another waits up to "
        "120 s for it, then exits 9. Safe to run again: what it settled is journaled.",
    .options = recover_options,
    .exec = cmd_recover_exec,
};
