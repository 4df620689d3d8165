#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Hosts reached over qemu+ssh:// (a real sshd on loopback, sshd.py), and a
run stopped the way systemd's default KillMode=control-group stops a unit:
SIGTERM to vmmigrate's whole process group, so the ssh processes libvirt
started for its connections die with the signal. vmmigrate loses both
connections while it aborts; it connects again, aborts the migration on the
source, verifies where the guest runs, and exits 5 (interrupted) with the
guest running on its source only, its counter going on, no migration job
left there. And the other order: the ssh processes die first, vmmigrate
connects again and waits while the migration job goes on on the source;
SIGTERM then aborts it there. One 64 MiB guest per case, which cannot
converge (a 48 MiB working set at 8 MiB/s)."""
import os
import signal
import subprocess
import tempfile

from labtest import Failure, Guest, Run, check, check_eq, check_in, lab, log, main, vm_entry
from sshd import Sshd

TMP = tempfile.mkdtemp(prefix="vmm-it-ssh-")
STUCK = dict(mem=64, dirty=48)
SLOW = ["--bandwidth", "8"]
SSHD = None


def job_type(host, name):
    for line in lab("virsh", host, "domjobinfo", name).splitlines():
        if line.startswith("Job type:"):
            return line.split(":", 1)[1].strip()
    return None


def test_migrate_over_ssh():
    """The plain case works over ssh: a guest moves a -> b."""
    g = Guest("a")
    before = g.ticks("a")
    ev = os.path.join(TMP, "plain.ndjson")
    r = Run(["run", "-s", SSHD.uri("a"), "-t", SSHD.uri("b"), "--vm", g.name, "--json",
             "--events", ev, "--journal-dir", os.path.join(TMP, "journal")]).wait(300)
    check_eq(r.rc, 0, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("migrated", "target"), "the report")
    g.check_only_on("b")
    g.check_survived_on("b", before)


def test_sigterm_to_the_process_group():
    g = Guest("a", **STUCK)
    before = g.ticks("a")
    ev = os.path.join(TMP, "sigterm-group.ndjson")
    r = Run(["run", "-s", SSHD.uri("a"), "-t", SSHD.uri("b"), "--vm", g.name, "--json",
             "--events", ev, "--journal-dir", os.path.join(TMP, "journal"), *SLOW],
            new_session=True)
    r.wait_event(lambda e: e["vm"] == g.name and e["event"] == "progress"
                 and e["details"]["data_processed"] > 0, timeout=120)
    log("copying: SIGTERM to the process group")
    r.signal_group(signal.SIGTERM)
    try:
        r.wait(120)
    except subprocess.TimeoutExpired:
        r.signal_group(signal.SIGKILL)
        r.proc.wait(30)
        raise Failure("vmmigrate still runs 120 s after SIGTERM to its process group")
    evs = r.events()
    names = [e["event"] for e in evs if e["vm"] == g.name]
    # The scenario happened: the ssh children died, the connections with them.
    check_in("libvirt.connection-lost", names, "events of the guest")
    check_eq(r.rc, 5, "exit code after SIGTERM to the process group")
    rep = r.report()
    check_eq(rep["result"], "interrupted", "run result")
    v = vm_entry(rep, g.name)
    check_eq((v["result"], v["location"]), ("aborted", "source"), "the report")
    check_eq(v["abort_reason"], "interrupted", "abort reason")
    check_eq(v["error"]["name"], "VIR_ERR_OPERATION_ABORTED", "error of the aborted migration")
    check_in("libvirt.reconnected", names, "events of the guest")
    verified = [e["details"] for e in evs if e["vm"] == g.name and e["event"] == "verified"]
    check(verified, "a verified event")
    check_eq(verified[-1]["source_state"], "running", "verified source state")
    g.check_only_on("a")  # running there (not paused); no copy left on b
    check_eq(job_type("a", g.name), "None", "migration job left on the source")
    g.check_survived_on("a", before)


def children(pid):
    """PIDs of the processes whose parent is pid (libvirt's ssh for each
    connection of vmmigrate's)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d))
    return out


def test_connection_lost_then_sigterm():
    """The other order: the ssh processes die first (the migration call
    fails on the lost connection while the source's libvirtd carries the
    peer-to-peer migration on), vmmigrate connects again and waits while
    that migration job runs; then SIGTERM: it aborts the job there. Exit 5,
    the guest on its source only."""
    g = Guest("a", **STUCK)
    before = g.ticks("a")
    ev = os.path.join(TMP, "lost-then-sigterm.ndjson")
    r = Run(["run", "-s", SSHD.uri("a"), "-t", SSHD.uri("b"), "--vm", g.name, "--json",
             "--events", ev, "--journal-dir", os.path.join(TMP, "journal"), *SLOW])
    r.wait_event(lambda e: e["vm"] == g.name and e["event"] == "progress"
                 and e["details"]["data_processed"] > 0, timeout=120)
    ssh = children(r.proc.pid)
    check(ssh, "vmmigrate has ssh children")
    log(f"copying: SIGTERM to the ssh processes {ssh}")
    for pid in ssh:
        os.kill(pid, signal.SIGTERM)
    r.wait_event(lambda e: e["vm"] == g.name and e["event"] == "migrate-failed", timeout=60)
    r.wait_event(lambda e: e["vm"] == g.name and e["event"] == "libvirt.job-running", timeout=60)
    check_eq(job_type("a", g.name), "Unbounded", "the migration job goes on on the source")
    log("verification waits for the job on the source: SIGTERM to vmmigrate")
    r.signal(signal.SIGTERM)
    try:
        r.wait(120)
    except subprocess.TimeoutExpired:
        r.proc.kill()
        r.proc.wait(30)
        raise Failure("vmmigrate still runs 120 s after SIGTERM")
    check_eq(r.rc, 5, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("aborted", "source"), "the report")
    check_eq(v["error"]["name"], "VIR_ERR_OPERATION_ABORTED", "error of the aborted migration")
    names = [e["event"] for e in r.events() if e["vm"] == g.name]
    check_in("libvirt.reconnected", names, "events of the guest")
    g.check_only_on("a")
    check_eq(job_type("a", g.name), "None", "migration job left on the source")
    g.check_survived_on("a", before)


if __name__ == "__main__":
    with Sshd() as s:
        SSHD = s
        main([test_migrate_over_ssh, test_sigterm_to_the_process_group,
              test_connection_lost_then_sigterm])
