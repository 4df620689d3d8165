/* SPDX-License-Identifier: MIT */
/* cmd_run.c — `vmmigrate run` and `vmmigrate plan`, which take the same
 * options so that a plan shows exactly what the same run would do, and
 * `vmmigrate drain SOURCE`, cron's shorthand for `run --source SOURCE` with
 * the installed evacuate.lua as the default policy (same table, same code
 * path). Turns the command line into a `struct vm_job_spec` and hands it to
 * job.c; owns nothing past the call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_options.h"
#include "util/exitcode.h"
#include "plan/decision.h"
#include "journal/journal.h"
#include "run/job.h"
#include "run/lock.h"
#include "util/util.h"

enum {
    OPT_SOURCE = 1,
    OPT_TARGET,
    OPT_VM,
    OPT_JSON,
    OPT_EVENTS,
    OPT_BANDWIDTH,
    OPT_MAX_DOWNTIME,
    OPT_AUTO_CONVERGE,
    OPT_POSTCOPY,
    OPT_PARALLEL,
    OPT_COMPRESSION,
    OPT_TLS,
    OPT_PERSISTENT,
    OPT_UNDEFINE_SOURCE,
    OPT_DIRECT,
    OPT_TIMEOUT,
    OPT_TIMEOUT_ACTION,
    OPT_CONCURRENCY,
    OPT_MIGRATE_URI,
    OPT_UNSAFE,
    OPT_QMP_SOCKET,
    OPT_NO_PROGRESS,
    OPT_POLICY,
    OPT_ASSUME_BANDWIDTH,
    OPT_CLASS,
    OPT_HOST_EXEC,
    OPT_JOURNAL_DIR,
    OPT_MAX_OUT,
    OPT_MAX_IN,
    OPT_LOCK_DIR,
    OPT_WAIT_LOCK,
    OPT_STATUS_FILE,
    OPT_METRICS_FILE,
    OPT_NOTIFY,
    OPT_NOTIFY_TOKEN_FILE,
    OPT_MAX_FAILURES,
    OPT_DEADLINE,
    OPT_RETRIES,
    OPT_ON_ABORT,
    OPT_CONNECT_TIMEOUT,
    OPT_WIDE,
};

/* Sorted by long name. */
static const struct vm_cli_option job_options[] = {
    {.name = "assume-bandwidth",
     .arg = VM_CLI_ARG_INT,
     .metavar = "MIB/S",
     .id = OPT_ASSUME_BANDWIDTH,
     .min = 1,
     .max = 1000000,
     .help = "bandwidth the plan's estimates assume where none is set (1000)",
     .doc = "The migration bandwidth, in MiB/s, that the plan's time estimates assume for "
            "VMs with no --bandwidth or policy bandwidth. Default 1000.",
     .group = VM_CLI_GROUP_POLICY},
    {.name = "auto-converge",
     .id = OPT_AUTO_CONVERGE,
     .help = "throttle guest vCPUs when the migration does not converge",
     .doc = "Let QEMU throttle the guest's vCPUs, step by step, while memory is dirtied faster "
            "than it is copied (VIR_MIGRATE_AUTO_CONVERGE).",
     .group = VM_CLI_GROUP_MIGRATION},
    VM_CLI_OPTION_BANDWIDTH(OPT_BANDWIDTH, VM_CLI_HELP_BANDWIDTH,
                            "Cap the bandwidth of each migration at MIB/S mebibytes per second "
                            "(VIR_MIGRATE_PARAM_BANDWIDTH). Default: libvirt's (unlimited)."),
    VM_CLI_OPTION_CLASS(
        OPT_CLASS, "urgent (default) or network-critical (commit gate)",
        "The class of migrations whose policy decision sets none (and of every --vm): "
        "urgent, finish fast, peer-to-peer, features may come up late (the default); or "
        "network-critical, run through the commit gate: the guest resumes on the target "
        "only after its required features initialised there, else it stays on the "
        "source."),
    {.name = "compression",
     .arg = VM_CLI_ARG_CHOICES,
     .metavar = "METHODS",
     .id = OPT_COMPRESSION,
     .choices = "xbzrle|mt|zlib|zstd",
     .help = "compress migration data: comma list of xbzrle,mt,zlib,zstd",
     .doc = "Compress migration data with the given comma-separated methods "
            "(VIR_MIGRATE_COMPRESSED with VIR_MIGRATE_PARAM_COMPRESSION). zlib and zstd need "
            "--parallel-connections.",
     .group = VM_CLI_GROUP_MIGRATION},
    VM_CLI_OPTION_CONNECT_TIMEOUT(OPT_CONNECT_TIMEOUT),
    VM_CLI_OPTION_SETTING(
        deadline_s, 0, "SECONDS", OPT_DEADLINE, VM_CLI_GROUP_LIMITS,
        "end the whole run after SECONDS (abort what runs)",
        "When the run has taken SECONDS, start no more migrations and abort the running "
        "ones (at the commit gate: roll back); every guest stays where it is, and the "
        "report says so. For maintenance windows."),
    {.name = "direct",
     .id = OPT_DIRECT,
     .help = "client-driven migration instead of peer-to-peer",
     .doc = "Drive the migration from vmmigrate over connections to both hosts "
            "(virDomainMigrate3) instead of letting the source libvirtd talk to the target "
            "(peer-to-peer, VIR_MIGRATE_PEER2PEER, the default, which survives a crash of "
            "vmmigrate).",
     .group = VM_CLI_GROUP_MIGRATION},
    VM_CLI_OPTION_EVENTS(
        OPT_EVENTS, VM_CLI_HELP_EVENTS,
        "Append one JSON object per line to FILE ('-': standard output) for every event: "
        "phases, progress, libvirt and QMP events, results. Every line carries the run's id "
        "(\"run\"), made when the run starts, before it connects: the report's, the status "
        "file's and the journal's, so the streams of runs appended to one FILE split by it. "
        "See schema/event.schema.json."),
    VM_CLI_OPTION_HOST_EXEC(OPT_HOST_EXEC),
    VM_CLI_OPTION_JOURNAL_DIR(
        OPT_JOURNAL_DIR, "where run writes its journal (" VM_JOURNAL_DEFAULT_DIR ")",
        "The directory of the append-only journals (one file per run, fsync'd at every "
        "step that decides where a guest runs) that vmmigrate recover reads after a "
        "crash. Default " VM_JOURNAL_DEFAULT_DIR "."),
    VM_CLI_OPTION_JSON(
        OPT_JSON, VM_CLI_HELP_JSON_REPORT,
        "Print one JSON report on standard output when the run ends, success or not. See "
        "schema/report.schema.json."),
    VM_CLI_OPTION_LOCK_DIR(
        OPT_LOCK_DIR, "where the per-source-host run locks live (" VM_LOCK_DEFAULT_DIR ")",
        "The directory of the run locks: one run at a time per source host (keyed by "
        "its libvirt host UUID). Default " VM_LOCK_DEFAULT_DIR "."),
    VM_CLI_OPTION_MAX_DOWNTIME(
        OPT_MAX_DOWNTIME, "maximum tolerable guest downtime in milliseconds",
        "Set the maximum downtime QEMU may take for the final switchover, in milliseconds "
        "(virDomainMigrateSetMaxDowntime)."),
    VM_CLI_OPTION_SETTING(
        max_failures, 0, "N", OPT_MAX_FAILURES, VM_CLI_GROUP_LIMITS,
        "start no new migration after N failed",
        "After N migrations failed (or were aborted or rolled back), start no new ones; "
        "the running ones finish. Default: go on with the others whatever fails."),
    VM_CLI_OPTION_SETTING(
        max_in, 0, "N", OPT_MAX_IN, VM_CLI_GROUP_LIMITS,
        "at most N migrations into one target host at once (" VM_SETTING_DEFAULT_STR(max_in) ")",
        "At most N migrations arrive at any one target host at the same time. "
        "Default " VM_SETTING_DEFAULT_STR(max_in) "."),
    VM_CLI_OPTION_SETTING(
        max_out, 0, "N", OPT_MAX_OUT, VM_CLI_GROUP_LIMITS,
        "at most N migrations out of one source host at once (" VM_SETTING_DEFAULT_STR(max_out) ")",
        "At most N migrations leave any one source host at the same time (KubeVirt's "
        "default, " VM_SETTING_DEFAULT_STR(
            max_out) "). With --parallel the overall limit, the next migration in plan "
                     "order whose hosts have room starts the moment a slot frees."),
    {.name = "metrics-file",
     .arg = VM_CLI_ARG_FILE,
     .metavar = "FILE",
     .id = OPT_METRICS_FILE,
     .help = "keep Prometheus metrics in FILE (node_exporter textfile)",
     .doc = "Rewrite FILE atomically (write, then rename) at most twice a second and at every "
            "state change with the run's metrics in the Prometheus text format, for "
            "node_exporter's textfile collector: migrations by state, in flight (what --parallel "
            "limits), retries, bytes, durations, downtimes, run state and exit code, every series "
            "labelled with its source host's URI (source), so the files of several drains can "
            "share one textfile directory. The names are listed in docs/metrics.md.",
     .group = VM_CLI_GROUP_OUTPUT},
    {.name = "migrate-uri",
     .arg = VM_CLI_ARG_URI,
     .metavar = "URI",
     .id = OPT_MIGRATE_URI,
     .help = "address for the migration data stream (e.g. tcp://10.0.0.2)",
     .doc = "Send the migration data to this URI instead of the address the target libvirtd "
            "chooses (VIR_MIGRATE_PARAM_URI).",
     .group = VM_CLI_GROUP_MIGRATION},
    {.name = "no-progress",
     .id = OPT_NO_PROGRESS,
     .help = "do not draw the progress meter",
     .doc = "Do not draw the progress meter even on a terminal. The meter (only when standard "
            "error is a terminal, and not with --quiet or --verbose) shows a row per VM: target "
            "host, phase, % sent, rate, remaining, ETA, elapsed and downtime; what a queued VM "
            "waits for; \"not converging\" when its guest dirties memory about as fast "
            "as it is sent (the event migration.not-converging); a total line; and at the end a "
            "summary of what moved, what failed and why, and what the exit code means.",
     .group = VM_CLI_GROUP_OUTPUT},
    {.name = "notify",
     .arg = VM_CLI_ARG_URI,
     .metavar = "URL",
     .id = OPT_NOTIFY,
     .flags = VM_CLI_REPEAT,
     .help = "POST run and failure events to URL (repeatable)",
     .doc = "POST a JSON event to URL (libcurl, on the loop, never delaying a migration) when "
            "the run starts and finishes, a VM failed or was rolled back, or an operator is "
            "needed; retried with backoff (1, 2, 4 s); the last ones get 5 s at the end of "
            "the run. Give it once per URL.",
     .group = VM_CLI_GROUP_OUTPUT},
    {.name = "notify-token-file",
     .arg = VM_CLI_ARG_FILE,
     .metavar = "FILE",
     .id = OPT_NOTIFY_TOKEN_FILE,
     .help = "send 'Authorization: Bearer' with the token in FILE (mode 600)",
     .doc = "Read a bearer token from FILE (which group and others must not be able to read) "
            "and send it with every webhook. It is never logged.",
     .group = VM_CLI_GROUP_OUTPUT},
    VM_CLI_OPTION_SETTING_CHOICE(
        on_abort, "WHAT", OPT_ON_ABORT, VM_CLI_GROUP_CRON,
        "on SIGTERM/abort: rollback (default) or finish running migrations",
        "What a stop request (SIGTERM, SIGINT, vmmigrate abort) does to the migrations "
        "running then: rollback (the default) aborts them, and their guests stay on the "
        "source (gated ones roll back); finish lets them end normally. Either way no new "
        "migration starts, and the exit status is 5. With finish, a second signal aborts "
        "the running ones. A policy's settings(run) may set on_abort."),
    VM_CLI_OPTION_SETTING(
        parallel, 'j', "N", OPT_CONCURRENCY, VM_CLI_GROUP_LIMITS,
        "migrate at most N VMs at once, in all (default " VM_SETTING_DEFAULT_STR(parallel) ")",
        "Run at most N migrations at the same time in all (see also --max-out and "
        "--max-in); the next starts the moment one ends. A migration holds its slot until "
        "the guest runs on the target (phase on-target) or the migration ends: libvirt's "
        "clean-up of the source QEMU afterwards does not hold back the next one. "
        "Default " VM_SETTING_DEFAULT_STR(parallel) "."),
    {.name = "parallel-connections",
     .short_name = 'P',
     .arg = VM_CLI_ARG_INT,
     .metavar = "N",
     .id = OPT_PARALLEL,
     .min = 1,
     .max = 255,
     .help = "send each migration over N parallel connections",
     .doc = "Send each migration's data over N parallel connections (VIR_MIGRATE_PARALLEL "
            "with VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS).",
     .group = VM_CLI_GROUP_MIGRATION},
    {.name = "persistent",
     .id = OPT_PERSISTENT,
     .help = "make the domain persistent on the target",
     .doc = "Define the domain persistently on the target (VIR_MIGRATE_PERSIST_DEST).",
     .group = VM_CLI_GROUP_MIGRATION},
    VM_CLI_OPTION_POLICY(
        OPT_POLICY, 'p', "let the Lua policy FILE decide which VMs move, where and how",
        "Load the Lua policy FILE (see vmmigrate-policy(7)) and let its decide() hook "
        "choose, for every VM on the --source hosts, whether it moves, to which --target, "
        "in which order, as urgent or network-critical, with which parameters and "
        "features; its on_progress() hook may react while a migration runs. The file "
        "must not be writable by group or others. Not together with --vm."),
    {.name = "postcopy",
     .id = OPT_POSTCOPY,
     .help = "allow switching to post-copy (see --timeout-action)",
     .doc = "Allow the migration to switch to post-copy (VIR_MIGRATE_POSTCOPY); needed by "
            "--timeout-action postcopy.",
     .group = VM_CLI_GROUP_MIGRATION},
    {.name = "qmp-socket",
     .arg = VM_CLI_ARG_STRING,
     .metavar = "VM=PATH",
     .id = OPT_QMP_SOCKET,
     .flags = VM_CLI_REPEAT,
     .help = "also watch VM's extra QMP monitor at PATH on the source",
     .doc = "Connect to an extra QMP monitor of VM on the source host at PATH (a unix socket, "
            "e.g. added with <qemu:commandline> -qmp) and copy its events (MIGRATION, STOP, "
            "RESUME, ...) into the event stream. Never sends migration commands to it.",
     .group = VM_CLI_GROUP_OUTPUT},
    VM_CLI_OPTION_SETTING(
        retries, 0, "K", OPT_RETRIES, VM_CLI_GROUP_LIMITS,
        "retry a VM whose migration failed up to K times",
        "A migration that failed or rolled back with its guest verified on the source is "
        "started again, at most K times (default " VM_SETTING_DEFAULT_STR(
            retries) "), after the others queued before it; "
                     "a VM the policy placed by default goes to another target with room if there "
                     "is "
                     "one. Aborted migrations (signal, deadline, policy, timeout) are not retried. "
                     "A "
                     "policy's decision may set its own retries."),
    {.name = "source",
     .short_name = 's',
     .arg = VM_CLI_ARG_URI,
     .metavar = "URI",
     .id = OPT_SOURCE,
     .flags = VM_CLI_REPEAT,
     .help = "libvirt URI of a host to move VMs from (required)",
     .doc = "The libvirt connection URI of a host the VMs run on, e.g. "
            "qemu+ssh://hv12/system. Required; with --policy it may be given several times.",
     .group = VM_CLI_GROUP_HOSTS},
    {.name = "status-file",
     .arg = VM_CLI_ARG_FILE,
     .metavar = "FILE",
     .id = OPT_STATUS_FILE,
     .help = "keep the run's status as JSON in FILE",
     .doc = "Rewrite FILE atomically, at most twice a second and at every state change, with "
            "the run's status (schema/status.schema.json): run id, state, summary, and per VM "
            "its state, target, progress and error.",
     .group = VM_CLI_GROUP_OUTPUT},
    {.name = "target",
     .short_name = 't',
     .arg = VM_CLI_ARG_URI,
     .metavar = "URI",
     .id = OPT_TARGET,
     .flags = VM_CLI_REPEAT,
     .help = "libvirt URI of a host to move them to (required, repeatable)",
     .doc = "The libvirt connection URI of a host to move VMs to; give it several times to "
            "let vmmigrate (or the policy) choose. A target must be another host than every "
            "source (compared by host UUID). Required.",
     .group = VM_CLI_GROUP_HOSTS},
    VM_CLI_OPTION_TIMEOUT(OPT_TIMEOUT, "act on a migration still running after SECONDS",
                          "When a migration is still running SECONDS after it started, take the "
                          "--timeout-action."),
    {.name = "timeout-action",
     .arg = VM_CLI_ARG_CHOICE,
     .metavar = "ACTION",
     .id = OPT_TIMEOUT_ACTION,
     .choices = "abort|suspend|postcopy",
     .help = "abort (default), suspend or postcopy at --timeout",
     .doc = "What to do at --timeout: abort (the guest keeps running on the source; the "
            "default), suspend (pause the guest so the migration completes; it is resumed on "
            "the target), postcopy (switch to post-copy; needs --postcopy).",
     .group = VM_CLI_GROUP_MIGRATION},
    {.name = "tls",
     .id = OPT_TLS,
     .help = "encrypt the migration stream with TLS",
     .doc = "Encrypt the migration data with TLS (VIR_MIGRATE_TLS); both hosts need libvirt's "
            "migration TLS certificates.",
     .group = VM_CLI_GROUP_MIGRATION},
    {.name = "undefine-source",
     .id = OPT_UNDEFINE_SOURCE,
     .help = "undefine the domain on the source after success",
     .doc = "Remove the persistent definition from the source once the migration succeeded "
            "(VIR_MIGRATE_UNDEFINE_SOURCE).",
     .group = VM_CLI_GROUP_MIGRATION},
    {.name = "unsafe",
     .id = OPT_UNSAFE,
     .help = "migrate even if libvirt thinks it unsafe (local disks)",
     .doc = "Migrate even when libvirt considers it unsafe, e.g. disks without cache=none "
            "(VIR_MIGRATE_UNSAFE).",
     .group = VM_CLI_GROUP_MIGRATION},
    {.name = "vm",
     .short_name = 'm',
     .arg = VM_CLI_ARG_VM,
     .metavar = "NAME",
     .id = OPT_VM,
     .flags = VM_CLI_REPEAT,
     .help = "a VM to migrate, by libvirt name (repeatable)",
     .doc = "The libvirt domain name of a VM to migrate; once per VM. Each must be running "
            "on the (single) --source, or nothing is migrated. Either --vm or --policy.",
     .group = VM_CLI_GROUP_HOSTS},
    {.name = "wait-lock",
     .id = OPT_WAIT_LOCK,
     .help = "wait while another run works on a source host",
     .doc = "When another vmmigrate run holds a source host's lock, wait for it to end "
            "instead of exiting at once with status 7.",
     .group = VM_CLI_GROUP_CRON},
    {.name = "wide",
     .id = OPT_WIDE,
     .help = "show the hosts' full URIs in the table",
     .doc = "Name each VM's source and target in the table by the libvirt URI given. Without "
            "it a host is named by its libvirt hostname, else by its URI's host part, else by "
            "its URI (qemu:///system).",
     .group = VM_CLI_GROUP_OUTPUT},
    {0},
};

static bool has_duplicate(const char **v, int n, const char *cmd, const char *opt)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(v[i], v[j]) == 0) {
                vm_error("%s: --%s '%s' given twice", cmd, opt, v[i]);
                return true;
            }
    return false;
}

/* The settings (plan/settings.h) whose option the command line gave: the
 * vm_setting_bit of each. */
static unsigned settings_given(const struct vm_cli_args *args)
{
    unsigned given = 0;
    for (const struct vm_setting *s = vm_settings; s->key; s++)
        for (const struct vm_cli_option *o = job_options; o->name; o++)
            if (strcmp(o->name, s->option) == 0 && vm_cli_count(args, o->id) > 0)
                given |= s->bit;
    return given;
}

/* What drain fills in for run: the source host from the argument, and the
 * policy --policy would otherwise name. */
struct drain {
    const char *source;
    const char *policy;
};

static int job_exec(const struct vm_cli_args *args, enum vm_job_mode mode,
                    const struct drain *drain)
{
    const char *cmd = vm_cli_args_command(args)->name;
    struct vm_job_spec spec = {0};
    int rc = VM_EXIT_OK;
    spec.mode = mode;
    spec.command = cmd;
    if (drain) {
        spec.sources = xcalloc(2, sizeof(*spec.sources));
        spec.sources[0] = drain->source;
        spec.nsources = 1;
    } else {
        spec.sources = vm_cli_list(args, OPT_SOURCE, &spec.nsources);
    }
    spec.targets = vm_cli_list(args, OPT_TARGET, &spec.ntargets);
    spec.vms = vm_cli_list(args, OPT_VM, &spec.nvms);
    spec.policy_path = vm_cli_str(args, OPT_POLICY);
    if (drain && !spec.policy_path && !spec.nvms)
        spec.policy_path = drain->policy;
    spec.qmp = NULL;
    if (!spec.nsources || !spec.ntargets) {
        vm_error("%s: --%s URI is required", cmd, spec.nsources ? "target" : "source");
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    if (!drain && vm_cli_npos(args) > 0) {
        vm_error("%s: unexpected argument '%s' (name VMs with --vm)", cmd, vm_cli_pos(args, 0));
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    if (spec.nvms && spec.policy_path) {
        vm_error("%s: --vm and --policy exclude each other (the policy chooses the VMs)", cmd);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    if (!spec.nvms && !spec.policy_path) {
        vm_error("%s: no VM given (use --vm NAME, once per VM, or --policy FILE)", cmd);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    if (spec.nvms && spec.nsources > 1) {
        vm_error("%s: --vm needs exactly one --source (got %d)", cmd, spec.nsources);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    if (has_duplicate(spec.vms, spec.nvms, cmd, "vm") ||
        has_duplicate(spec.sources, spec.nsources, cmd, "source") ||
        has_duplicate(spec.targets, spec.ntargets, cmd, "target")) {
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    int nexec = 0;
    const char **execs = vm_cli_host_execs(args, OPT_HOST_EXEC, cmd, &nexec);
    if (!execs) {
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    spec.host_execs = execs;
    spec.nqmp = vm_cli_count(args, OPT_QMP_SOCKET);
    spec.qmp = xcalloc((size_t)spec.nqmp + 1, sizeof(*spec.qmp));
    for (int i = 0; i < spec.nqmp; i++) {
        const char *v = vm_cli_nth(args, OPT_QMP_SOCKET, i);
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || !eq[1]) {
            vm_error("%s: --qmp-socket '%s' is not VM=PATH", cmd, v);
            rc = VM_EXIT_USAGE;
            goto cleanup;
        }
        spec.qmp[i].vm = xstrndup(v, (size_t)(eq - v));
        spec.qmp[i].path = eq + 1;
        bool known = false;
        for (int j = 0; j < spec.nvms; j++)
            known |= strcmp(spec.vms[j], spec.qmp[i].vm) == 0;
        if (!known) {
            vm_error("%s: --qmp-socket names VM '%s', which is not given with --vm", cmd,
                     spec.qmp[i].vm);
            rc = VM_EXIT_USAGE;
            goto cleanup;
        }
    }

    struct vm_mig_params *p = &spec.params;
    p->bandwidth_mibs = (unsigned long)vm_cli_int(args, OPT_BANDWIDTH, 0);
    p->max_downtime_ms = (unsigned long long)vm_cli_int(args, OPT_MAX_DOWNTIME, 0);
    p->auto_converge = vm_cli_flag(args, OPT_AUTO_CONVERGE);
    p->postcopy = vm_cli_flag(args, OPT_POSTCOPY);
    p->parallel = (int)vm_cli_int(args, OPT_PARALLEL, 0);
    p->compression = vm_cli_str(args, OPT_COMPRESSION);
    p->tls = vm_cli_flag(args, OPT_TLS);
    p->persistent = vm_cli_flag(args, OPT_PERSISTENT);
    p->undefine_source = vm_cli_flag(args, OPT_UNDEFINE_SOURCE);
    p->p2p = !vm_cli_flag(args, OPT_DIRECT);
    p->unsafe = vm_cli_flag(args, OPT_UNSAFE);
    p->migrate_uri = vm_cli_str(args, OPT_MIGRATE_URI);
    p->timeout_s = (unsigned)vm_cli_int(args, OPT_TIMEOUT, 0);
    const char *action = vm_cli_str(args, OPT_TIMEOUT_ACTION);
    p->timeout_action = VM_MIG_TIMEOUT_ABORT;
    if (action && strcmp(action, "suspend") == 0)
        p->timeout_action = VM_MIG_TIMEOUT_SUSPEND;
    else if (action && strcmp(action, "postcopy") == 0)
        p->timeout_action = VM_MIG_TIMEOUT_POSTCOPY;
    if (action && !p->timeout_s) {
        vm_error("%s: --timeout-action needs --timeout", cmd);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    if (p->timeout_action == VM_MIG_TIMEOUT_POSTCOPY && !p->postcopy) {
        vm_error("%s: --timeout-action postcopy needs --postcopy", cmd);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    if (p->compression && (strstr(p->compression, "zlib") || strstr(p->compression, "zstd")) &&
        !p->parallel) {
        vm_error("%s: --compression %s needs --parallel-connections", cmd, p->compression);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    if (p->undefine_source && !p->persistent) {
        vm_error("%s: --undefine-source needs --persistent (the VM would lose its definition)",
                 cmd);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }

    const char *cls = vm_cli_str(args, OPT_CLASS);
    spec.default_class =
        cls && strcmp(cls, "network-critical") == 0 ? VM_CLASS_NETWORK_CRITICAL : VM_CLASS_URGENT;
    spec.concurrency = (int)vm_cli_int(args, OPT_CONCURRENCY, VM_SETTING_DEFAULT(parallel));
    spec.max_out = (int)vm_cli_int(args, OPT_MAX_OUT, VM_SETTING_DEFAULT(max_out));
    spec.max_in = (int)vm_cli_int(args, OPT_MAX_IN, VM_SETTING_DEFAULT(max_in));
    spec.max_failures = (int)vm_cli_int(args, OPT_MAX_FAILURES, VM_SETTING_DEFAULT(max_failures));
    spec.retries = (int)vm_cli_int(args, OPT_RETRIES, VM_SETTING_DEFAULT(retries));
    const char *on_abort = vm_cli_str(args, OPT_ON_ABORT);
    spec.on_abort =
        on_abort && strcmp(on_abort, "finish") == 0 ? VM_ON_ABORT_FINISH : VM_ON_ABORT_ROLLBACK;
    spec.deadline_s = (unsigned)vm_cli_int(args, OPT_DEADLINE, VM_SETTING_DEFAULT(deadline_s));
    spec.connect_timeout_s =
        (unsigned)vm_cli_int(args, OPT_CONNECT_TIMEOUT, VM_CLI_CONNECT_TIMEOUT_DEFAULT);
    /* What the command line gave wins over the policy's settings(run). */
    spec.given = settings_given(args);
    spec.estimate_mibs = (unsigned)vm_cli_int(args, OPT_ASSUME_BANDWIDTH, 1000);
    spec.json = vm_cli_flag(args, OPT_JSON);
    spec.wide = vm_cli_flag(args, OPT_WIDE);
    if (spec.wide && mode != VM_JOB_PLAN) {
        vm_error("%s: --wide is an option of plan (%s prints no table)", cmd, cmd);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }
    spec.events_path = vm_cli_str(args, OPT_EVENTS);
    spec.journal_dir = vm_cli_str(args, OPT_JOURNAL_DIR);
    spec.lock_dir =
        vm_cli_str(args, OPT_LOCK_DIR) ? vm_cli_str(args, OPT_LOCK_DIR) : VM_LOCK_DEFAULT_DIR;
    spec.wait_lock = vm_cli_flag(args, OPT_WAIT_LOCK);
    spec.status_path = vm_cli_str(args, OPT_STATUS_FILE);
    spec.notify_urls = vm_cli_list(args, OPT_NOTIFY, &spec.nnotify);
    spec.notify_token_file = vm_cli_str(args, OPT_NOTIFY_TOKEN_FILE);
    spec.metrics_path = vm_cli_str(args, OPT_METRICS_FILE);
    if (!spec.journal_dir)
        spec.journal_dir = VM_JOURNAL_DEFAULT_DIR;
    spec.progress = !vm_cli_flag(args, OPT_NO_PROGRESS) && !vm_cli_flag(args, VM_CLI_OPT_QUIET);
    if (spec.json && spec.events_path && strcmp(spec.events_path, "-") == 0) {
        vm_error("%s: --json and --events - would both write to standard output", cmd);
        rc = VM_EXIT_USAGE;
        goto cleanup;
    }

    rc = vm_job_run(&spec);

cleanup:
    for (int i = 0; spec.qmp && i < spec.nqmp; i++)
        free(spec.qmp[i].vm);
    free(spec.qmp);
    free(spec.vms);
    free(spec.sources);
    free(spec.targets);
    free(spec.host_execs);
    free(spec.notify_urls);
    return rc;
}

static int cmd_run_exec(const struct vm_cli_args *args)
{
    return job_exec(args, VM_JOB_RUN, NULL);
}

static int cmd_plan_exec(const struct vm_cli_args *args)
{
    return job_exec(args, VM_JOB_PLAN, NULL);
}

/* The policy drain uses without --policy (or --vm): the installed
 * evacuate.lua. It is looked for first next to the running binary
 * (/proc/self/exe, then VMM_DRAIN_POLICY_REL, the path from the bindir to it
 * that CMakeLists.txt computes), so a tree installed with
 * `cmake --install --prefix P` finds its own copy; then at VMM_DRAIN_POLICY,
 * where the configured prefix puts it. The environment variable
 * VMM_DRAIN_POLICY overrides both; it is not documented for operators and
 * exists for the tests (tests/cli/drain-*.test), which must not depend on
 * what is installed. Returns a static buffer or a constant. */
static const char *drain_default_policy(void)
{
    static char path[4096];
    const char *env = getenv("VMM_DRAIN_POLICY");
    if (env && *env)
        return env;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int len = snprintf(path, sizeof path, "%s/%s", exe, VMM_DRAIN_POLICY_REL);
            if (len > 0 && (size_t)len < sizeof path && access(path, F_OK) == 0)
                return path;
        }
    }
    return VMM_DRAIN_POLICY;
}

static int cmd_drain_exec(const struct vm_cli_args *args)
{
    if (vm_cli_count(args, OPT_SOURCE)) {
        vm_error("drain: --source is not an option of drain: the source host is its argument "
                 "(vmmigrate drain URI)");
        return VM_EXIT_USAGE;
    }
    if (vm_cli_npos(args) == 0) {
        vm_error("drain: no source host given (vmmigrate drain URI --target URI)");
        return VM_EXIT_USAGE;
    }
    if (vm_cli_npos(args) > 1) {
        vm_error("drain: unexpected argument '%s' (drain takes one source host; run --source "
                 "takes several)",
                 vm_cli_pos(args, 1));
        return VM_EXIT_USAGE;
    }
    struct drain drain = {.source = vm_cli_pos(args, 0), .policy = drain_default_policy()};
    if (!vm_cli_str(args, OPT_POLICY) && !vm_cli_count(args, OPT_VM) &&
        access(drain.policy, F_OK) != 0) {
        vm_error("drain: the default policy '%s' does not exist; pass --policy FILE", drain.policy);
        return VM_EXIT_USAGE;
    }
    return job_exec(args, VM_JOB_RUN, &drain);
}

/* plan's own: run and drain print no table. */
static const int run_hidden[] = {OPT_WIDE, 0};

const struct vm_cli_command vm_cmd_run_entry = {
    .name = "run",
    .usage = "--source URI --target URI (--vm NAME ... | --policy FILE) [OPTIONS]",
    .summary = "live-migrate VMs between libvirt hosts, named or chosen by a policy",
    .doc = "Live-migrate every VM named with --vm from the --source host, or every VM the "
           "--policy chooses on the --source hosts, to the --target hosts. Before anything is "
           "changed, vmmigrate connects to every host, reads their inventory, makes the plan "
           "(see plan) and checks every VM: with --vm, an unknown VM, a VM that is not "
           "running or already runs on a target, a target without the free memory, or a "
           "target that is a source host stops the run with exit status 3 and nothing "
           "migrated; with --policy such a VM is left alone and reported, and the others go "
           "on. Migrations then run at most --parallel at a time, in plan order. A migration "
           "that fails or is aborted leaves its guest running on the source, and the report "
           "says so. SIGINT or SIGTERM aborts running migrations (or, with --on-abort finish, "
           "lets them finish), skips the rest and exits with status 5.",
    .options = job_options,
    .hidden_ids = run_hidden,
    .exec = cmd_run_exec,
};

const struct vm_cli_command vm_cmd_plan_entry = {
    .name = "plan",
    .usage = "--source URI --target URI (--vm NAME ... | --policy FILE) [OPTIONS]",
    .summary = "show what run would do with the same options, changing nothing",
    .doc = "Connect to the hosts, read their inventory and make the plan that run would "
           "execute with the same options: for every VM, whether it moves, its target, class, "
           "order, parameters and features, or why it stays; and an estimate of the memory to "
           "move and the time it takes at the chosen bandwidth and --parallel. Nothing is "
           "migrated. A table on standard output, or with --json the report with its \"plan\" "
           "member. The table names the hosts it plans for, then for every VM its start "
           "order, class, memory, source and target (by hostname; --wide: by URI), the "
           "estimated time, its features and the policy's reason for moving it, or why it "
           "stays. Exit status 6 if the policy failed for any VM.",
    .options = job_options,
    .exec = cmd_plan_exec,
};

static const struct vm_cli_option drain_positionals[] = {
    {.name = "source", .arg = VM_CLI_ARG_URI, .metavar = "source URI"},
    {0},
};

/* Accepted only to say, in one line, that the source is the argument. */
static const int drain_hidden[] = {OPT_SOURCE, OPT_WIDE, 0};

const struct vm_cli_command vm_cmd_drain_entry = {
    .name = "drain",
    .usage = "URI --target URI [--policy FILE | --vm NAME ...] [OPTIONS]",
    .summary = "move the VMs off one host, chosen by the evacuate policy (run's shorthand)",
    .doc = "The same as run --source URI with the same options, for cron and systemd timers: "
           "URI is the one host to drain, and without --policy or --vm the evacuate.lua "
           "installed with vmmigrate (share/vmmigrate/policies/evacuate.lua under the "
           "installation prefix, e.g. /usr/share/vmmigrate/policies/evacuate.lua) chooses the "
           "VMs; when that file does not exist drain exits with status 2, naming it, and asks "
           "for --policy. Everything else (preflight, order, limits, journal, reports, exit "
           "status) is run's. --source is not accepted.",
    .options = job_options,
    .positionals = drain_positionals,
    .hidden_ids = drain_hidden,
    .exec = cmd_drain_exec,
};
