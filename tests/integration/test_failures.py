#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Migrations that fail or are stopped end with the guest running on its
source, and say so: SIGINT mid-migration, the target QEMU killed
mid-migration, --timeout with the abort action. The guest used cannot
converge (large dirty working set, low bandwidth cap)."""
import os
import signal
import tempfile
import time

from labtest import (Guest, Run, check, check_eq, check_in, lab, log, main, uri,
                     vm_entry, vmmigrate)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
# 256 MiB guest dirtying 200 MiB per tick at a 8 MiB/s cap: never converges.
STUCK = dict(mem=256, dirty=200)
SLOW = ["--bandwidth", "8"]


def wait_migrating(r, name):
    r.wait_event(lambda e: e["vm"] == name and e["event"] == "progress"
                 and e["details"]["data_processed"] > 0, timeout=60)


def check_back_on_source(g, r, before, result, abort_reason=None):
    rep = r.report()
    v = vm_entry(rep, g.name)
    check_eq(v["result"], result, "VM result")
    check_eq(v["location"], "source", "VM location")
    check(v["error"] is not None, "the error is reported")
    if abort_reason:
        check_eq(v["abort_reason"], abort_reason, "abort reason")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)
    return v


def test_sigint_aborts():
    g = Guest("a", **STUCK)
    before = g.ticks("a")
    ev = os.path.join(TMP, "sigint.ndjson")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--json", "--events", ev,
             *SLOW])
    wait_migrating(r, g.name)
    r.signal(signal.SIGINT)
    r.wait(120)
    check_eq(r.rc, 5, "exit code after SIGINT")
    rep = r.report()
    check_eq(rep["result"], "interrupted", "run result")
    v = check_back_on_source(g, r, before, "aborted", "interrupted")
    check_eq(v["error"]["name"], "VIR_ERR_OPERATION_ABORTED", "libvirt error")
    check_in("signal", [e["event"] for e in r.events()], "events")


def test_abort_with_a_shutoff_definition_on_the_target():
    """The target holds a shut-off definition of the guest (an earlier
    drain's leftover without --undefine-source): an aborted migration is an
    ordinary abort (exit 5, the guest on its source), not "runs on an
    unknown host" (exit 9), and status says so."""
    g = Guest("a", **STUCK)
    before = g.ticks("a")
    xml = os.path.join(TMP, f"{g.name}.xml")
    with open(xml, "w") as f:
        f.write(lab("virsh", "a", "dumpxml", "--inactive", g.name))
    lab("virsh", "b", "define", xml)
    check_eq(g.where().get("b", "").split()[0], "shut", f"{g.name} defined, shut off, on b")
    ev = os.path.join(TMP, "shutoff-def.ndjson")
    journal = os.path.join(TMP, "shutoff-def-journal")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--json", "--events", ev,
             "--journal-dir", journal, *SLOW])
    wait_migrating(r, g.name)
    r.signal(signal.SIGTERM)
    r.wait(120)
    check_eq(r.rc, 5, "exit code of the abort")
    verified = [e["details"] for e in r.events() if e["event"] == "verified"]
    check_eq(verified, [{"source_state": "running", "target_state": "shutoff"}], "verified")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("aborted", "source"), "the report")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)
    st = vmmigrate("status", "--journal-dir", journal, "--json")
    check_eq(st.rc, 0, "status exit code")
    check("unknown" not in st.stdout, f"status knows where the guest runs: {st.stdout[:400]}")
    lab("virsh", "b", "undefine", g.name)


def test_sigterm_skips_queued():
    g1, g2 = Guest("a", **STUCK), Guest("a")
    before1, before2 = g1.ticks("a"), g2.ticks("a")
    ev = os.path.join(TMP, "sigterm.ndjson")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g1.name, "--vm", g2.name,
             "--parallel", "1", "--json", "--events", ev, *SLOW])
    wait_migrating(r, g1.name)
    r.signal(signal.SIGTERM)
    r.wait(120)
    check_eq(r.rc, 5, "exit code after SIGTERM")
    rep = r.report()
    check_back_on_source(g1, r, before1, "aborted", "interrupted")
    v2 = vm_entry(rep, g2.name)
    check_eq(v2["result"], "skipped", "queued VM result")
    check_eq(v2["location"], "source", "queued VM location")
    g2.check_runs_only_on("a")
    g2.check_survived_on("a", before2)


def qemu_pid(host, name):
    """PID of the QEMU running `name` on lab host `host` (libvirt's pid file)."""
    lab_dir = os.environ.get("VMM_LAB_DIR", "/var/tmp/vmmigrate-lab")
    with open(os.path.join(lab_dir, host, "run", "qemu", f"{name}.pid")) as f:
        return int(f.read().strip())


def test_target_qemu_killed():
    g = Guest("a", **STUCK)
    before = g.ticks("a")
    ev = os.path.join(TMP, "kill.ndjson")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--json", "--events", ev,
             *SLOW])
    wait_migrating(r, g.name)
    pid = qemu_pid("b", g.name)
    log(f"killing target QEMU {pid}")
    os.kill(pid, signal.SIGKILL)
    r.wait(120)
    check_eq(r.rc, 1, "exit code after the target QEMU died")
    check_eq(r.report()["result"], "failed", "run result")
    check_back_on_source(g, r, before, "failed")


def test_deadline_aborts_the_stuck_one():
    quick = [Guest("a", dirty=0) for _ in range(2)]
    stuck = Guest("a", **STUCK)
    before = {g.name: g.ticks("a") for g in quick + [stuck]}
    ev = os.path.join(TMP, "deadline.ndjson")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), *sum((["--vm", g.name] for g in
                                                          quick + [stuck]), []),
             "--parallel", "3", "--max-out", "3", "--max-in", "3", "--deadline", "20",
             "--json", "--events", ev, *SLOW]).wait(180)
    check_eq(r.rc, 1, "exit code: some failed")
    rep = r.report()
    check_eq(vm_entry(rep, stuck.name)["abort_reason"], "deadline", "the stuck VM's abort")
    for g in quick:
        check_eq(vm_entry(rep, g.name)["result"], "migrated", f"{g.name} finished in time")
        g.check_only_on("b")
        g.check_survived_on("b", before[g.name])
    stuck.check_only_on("a")
    stuck.check_survived_on("a", before[stuck.name])
    check_in("deadline", [e["event"] for e in r.events()], "events")


def test_abort_command():
    g = Guest("a", **STUCK)
    before = g.ticks("a")
    ev = os.path.join(TMP, "abort.ndjson")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--json", "--events", ev,
             *SLOW])
    wait_migrating(r, g.name)
    run_id = r.wait_event(lambda e: e["event"] == "journal")["details"]["run"]
    plain = vmmigrate("abort")  # names the runs, stops none
    check_eq(plain.rc, 2, "plain abort's exit code")
    check_in(f"run {run_id} (PID {r.proc.pid}, source {uri('a')})", plain.stderr,
             "plain abort names the run")
    check_eq(vmmigrate("abort", uri("b")).rc, 8, "abort of a source no run drains")
    check(r.proc.poll() is None, "the run goes on after abort named no source of it")
    a = vmmigrate("abort", uri("a"))
    check_eq(a.rc, 0, "abort SOURCE's exit code")
    check_in(f"asked run {run_id} (PID {r.proc.pid}", a.stdout, "abort says which run")
    r.wait(120)
    check_eq(r.rc, 5, "the run's exit code")
    check_back_on_source(g, r, before, "aborted", "interrupted")
    check_eq(vmmigrate("abort", "--run", run_id).rc, 8, "abort --run of a run that ended")


def test_timeout_abort():
    g = Guest("a", **STUCK)
    before = g.ticks("a")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--json", "--timeout", "3",
             "--timeout-action", "abort", *SLOW]).wait(120)
    check_eq(r.rc, 1, "exit code after a timeout")
    v = check_back_on_source(g, r, before, "aborted", "timeout")
    check_eq(v["timeout_action"], "abort", "timeout action in report")


def test_second_run_on_the_same_host_is_locked_out():
    g, other = Guest("a", **STUCK), Guest("a")
    before = other.ticks("a")
    ev = os.path.join(TMP, "locked.ndjson")
    first = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--events", ev, *SLOW])
    wait_migrating(first, g.name)
    second = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", other.name, "--json"]).wait(60)
    check_eq(second.rc, 7, "exit code of the second run")
    check_in(f"another vmmigrate run (PID {first.proc.pid}) is working on source", second.stderr,
             "the message names the run holding the lock")
    check_eq(second.report()["result"], "locked", "report result")
    other.check_runs_only_on("a")
    # --wait-lock waits for the first run to end, then goes on.
    waiting = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", other.name, "--wait-lock",
                   "--json"])
    time.sleep(2)
    check(waiting.proc.poll() is None, "the waiting run waits")
    first.signal(signal.SIGINT)
    first.wait(120)
    waiting.wait(120)
    check_eq(waiting.rc, 0, "the waiting run migrated once the lock was free")
    other.check_runs_only_on("b")
    other.check_survived_on("b", before)


if __name__ == "__main__":
    main([test_sigint_aborts, test_abort_with_a_shutoff_definition_on_the_target,
          test_sigterm_skips_queued, test_target_qemu_killed,
          test_timeout_abort, test_second_run_on_the_same_host_is_locked_out,
          test_abort_command, test_deadline_aborts_the_stuck_one])
