/* SPDX-License-Identifier: MIT */
/* cmd_qemu.c — `vmmigrate qemu`: one live migration between two QEMU
 * processes libvirt does not manage, over their QMP sockets, through the
 * same commit gate (run/run_qemu.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_options.h"
#include "util/exitcode.h"
#include "feature/feature.h"
#include "journal/journal.h"
#include "policy/policy.h"
#include "run/run_qemu.h"
#include "report/report.h"
#include "util/util.h"

enum {
    OPT_SOURCE_QMP = 1,
    OPT_TARGET_QMP,
    OPT_URI,
    OPT_NAME,
    OPT_CLASS,
    OPT_BANDWIDTH,
    OPT_MAX_DOWNTIME,
    OPT_TIMEOUT,
    OPT_GATE_TIMEOUT,
    OPT_POLICY,
    OPT_FEATURE,
    OPT_JSON,
    OPT_EVENTS,
    OPT_JOURNAL_DIR,
};

static const struct vm_cli_option qemu_options[] = {
    VM_CLI_OPTION_BANDWIDTH(OPT_BANDWIDTH, VM_CLI_HELP_BANDWIDTH,
                            "Cap the bandwidth (QEMU's max-bandwidth parameter), in MiB/s."),
    VM_CLI_OPTION_CLASS(
        OPT_CLASS, "network-critical (commit gate, the default) or urgent",
        "network-critical (the default): QEMU pauses before switchover and the guest "
        "resumes on the target only when every required --feature is ready there; "
        "urgent: no gate, features run best-effort afterwards."),
    VM_CLI_OPTION_EVENTS(OPT_EVENTS, VM_CLI_HELP_EVENTS,
                         "Append the event stream (schema/event.schema.json) to FILE, each "
                         "line with the run's id (\"run\"), the report's and the journal's."),
    {.name = "feature",
     .short_name = 'f',
     .arg = VM_CLI_ARG_STRING,
     .metavar = "NAME[?]",
     .id = OPT_FEATURE,
     .flags = VM_CLI_REPEAT,
     .help = "a feature that must be ready at the gate (NAME? : best effort)",
     .doc = "A feature that must initialise on the target before the commit: announce, or one "
            "the --policy defines with vmm.feature(). A trailing ? makes it best-effort.",
     .group = VM_CLI_GROUP_POLICY},
    {.name = "gate-timeout",
     .arg = VM_CLI_ARG_INT,
     .metavar = "MS",
     .id = OPT_GATE_TIMEOUT,
     .min = 1,
     .max = 600000,
     .help = "the most the gate may be held (30000)",
     .doc = "Roll back if the features are not ready MS milliseconds after the gate was "
            "reached (the guest is paused meanwhile). Default 30000.",
     .group = VM_CLI_GROUP_MIGRATION},
    VM_CLI_OPTION_JOURNAL_DIR(
        OPT_JOURNAL_DIR, "where the migration's journal goes (" VM_JOURNAL_DEFAULT_DIR ")",
        "The directory of the append-only journals, as for run: one file per migration, "
        "fsync'd at every record, the commit decision before it is carried out; the source and "
        "target are named qemu+qmp://PATH after their QMP sockets. `vmmigrate recover` settles "
        "a migration a crash left open, `vmmigrate status` shows it. Default "
        VM_JOURNAL_DEFAULT_DIR "."),
    VM_CLI_OPTION_JSON(OPT_JSON, VM_CLI_HELP_JSON_REPORT,
                       "Print the report (schema/qemu-report.schema.json) on standard output."),
    VM_CLI_OPTION_MAX_DOWNTIME(OPT_MAX_DOWNTIME, "maximum tolerable downtime in milliseconds",
                               "QEMU's downtime-limit parameter, in milliseconds."),
    {.name = "name",
     .arg = VM_CLI_ARG_STRING,
     .metavar = "NAME",
     .id = OPT_NAME,
     .help = "the guest's name in reports and features (qemu)",
     .doc = "A name for the guest in reports, events and the vm table features see.",
     .group = VM_CLI_GROUP_HOSTS},
    VM_CLI_OPTION_POLICY(OPT_POLICY, 'p', "the Lua policy that defines the --feature steps",
                         "Load the policy FILE for the features it defines with vmm.feature()."),
    {.name = "source-qmp",
     .short_name = 's',
     .arg = VM_CLI_ARG_FILE,
     .metavar = "PATH",
     .id = OPT_SOURCE_QMP,
     .help = "the source QEMU's QMP socket (required)",
     .doc = "The unix socket of the source QEMU's QMP monitor (-qmp unix:PATH,server=on).",
     .group = VM_CLI_GROUP_HOSTS},
    {.name = "target-qmp",
     .short_name = 't',
     .arg = VM_CLI_ARG_FILE,
     .metavar = "PATH",
     .id = OPT_TARGET_QMP,
     .help = "the target QEMU's QMP socket (required)",
     .doc = "The unix socket of the target QEMU's QMP monitor; the target must have been "
            "started with -incoming defer.",
     .group = VM_CLI_GROUP_HOSTS},
    VM_CLI_OPTION_TIMEOUT(
        OPT_TIMEOUT, "cancel a migration still running after SECONDS",
        "Cancel the migration (the guest stays on the source) if it has not reached the "
        "gate or completed after SECONDS."),
    {.name = "uri",
     .short_name = 'u',
     .arg = VM_CLI_ARG_URI,
     .metavar = "URI",
     .id = OPT_URI,
     .help = "the migration stream's address, e.g. tcp:10.0.0.2:4444 (required)",
     .doc = "Where the target listens and the source sends (QEMU's migration URI).",
     .group = VM_CLI_GROUP_MIGRATION},
    {0},
};

static int cmd_qemu_exec(const struct vm_cli_args *args)
{
    struct vm_qemu_spec spec = {0};
    spec.mig.source_qmp = vm_cli_str(args, OPT_SOURCE_QMP);
    spec.mig.target_qmp = vm_cli_str(args, OPT_TARGET_QMP);
    spec.mig.uri = vm_cli_str(args, OPT_URI);
    if (!spec.mig.source_qmp || !spec.mig.target_qmp || !spec.mig.uri) {
        vm_error("qemu: --%s is required", !spec.mig.source_qmp   ? "source-qmp"
                                           : !spec.mig.target_qmp ? "target-qmp"
                                                              : "uri");
        return VM_EXIT_USAGE;
    }
    if (vm_cli_npos(args) > 0) {
        vm_error("qemu: unexpected argument '%s'", vm_cli_pos(args, 0));
        return VM_EXIT_USAGE;
    }
    spec.mig.name = vm_cli_str(args, OPT_NAME) ? vm_cli_str(args, OPT_NAME) : "qemu";
    const char *cls = vm_cli_str(args, OPT_CLASS);
    spec.mig.gated = !cls || strcmp(cls, "network-critical") == 0;
    spec.mig.bandwidth_mibs = (uint64_t)vm_cli_int(args, OPT_BANDWIDTH, 0);
    spec.mig.max_downtime_ms = (uint64_t)vm_cli_int(args, OPT_MAX_DOWNTIME, 0);
    spec.mig.timeout_s = (uint64_t)vm_cli_int(args, OPT_TIMEOUT, 0);
    spec.mig.gate_timeout_ms = (uint64_t)vm_cli_int(args, OPT_GATE_TIMEOUT, 0);
    spec.events_path = vm_cli_str(args, OPT_EVENTS);
    spec.journal_dir = vm_cli_str(args, OPT_JOURNAL_DIR);
    if (!spec.journal_dir)
        spec.journal_dir = VM_JOURNAL_DEFAULT_DIR;

    int rc = VM_EXIT_OK;
    const char *ppath = vm_cli_str(args, OPT_POLICY);
    if (ppath) {
        char *err = NULL;
        spec.mig.policy = vm_policy_load(ppath, &err);
        if (!spec.mig.policy) {
            vm_error("qemu: %s", err);
            free(err);
            return VM_EXIT_POLICY;
        }
    }
    int n = vm_cli_count(args, OPT_FEATURE);
    struct vm_feature_decl *decls = xcalloc(n ? (size_t)n : 1, sizeof(*decls));
    for (int i = 0; i < n; i++) {
        const char *v = vm_cli_nth(args, OPT_FEATURE, i);
        size_t len = strlen(v);
        decls[i].required = !(len && v[len - 1] == '?');
        decls[i].name = xstrndup(v, decls[i].required ? len : len - 1);
        decls[i].timeout_ms = 10000;
        decls[i].args = json_object();
        spec.mig.nfeatures++;
        if (!vm_feature_known(decls[i].name, spec.mig.policy)) {
            vm_error("qemu: --feature '%s': not built in (announce) and not defined by %s",
                     decls[i].name, ppath ? ppath : "a --policy");
            rc = VM_EXIT_USAGE;
            goto out;
        }
    }
    spec.mig.features = decls;
    json_t *report = NULL;
    rc = vm_qemu_migrate(&spec, &report);
    if (report && vm_cli_flag(args, OPT_JSON))
        vm_report_print(report);
    json_decref(report);
out:
    for (int i = 0; i < spec.mig.nfeatures; i++) {
        free(decls[i].name);
        json_decref(decls[i].args);
    }
    free(decls);
    vm_policy_free(spec.mig.policy);
    return rc;
}

const struct vm_cli_command vm_cmd_qemu_entry = {
    .name = "qemu",
    .usage = "--source-qmp PATH --target-qmp PATH --uri URI [OPTIONS]",
    .summary = "migrate one QEMU guest that libvirt does not manage, through the commit gate",
    .doc = "Live-migrate the guest of one QEMU process to another over their QMP sockets: the "
           "target (started with -incoming defer) listens on --uri, the source sends. "
           "network-critical (the default) pauses before switchover; the guest resumes on "
           "the target (migrate-continue) only when every required --feature is ready, "
           "else the migration is cancelled, the source resumes and the target QEMU exits. "
           "Journaled as a run is (--journal-dir): after a crash, recover settles it. "
           "Exit status as for run.",
    .options = qemu_options,
    .exec = cmd_qemu_exec,
};
