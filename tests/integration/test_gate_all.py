#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The commit gate with real peers, all at once: a network-critical VM with
its 802.1Qbg port (lldpad stations and bridge), a connected SPICE client and
a feature of the policy's own, all required. Commit: the counter continues
on the target, the bridge holds the VSI on the target's port only, the SPICE
client ends on the target, the policy feature's steps are on record. Then
the target QEMU killed while the gate is held: rollback, the guest keeps
running on the source, every initialised feature undone once."""
import os
import signal
import subprocess
import tempfile

from labtest import (Guest, Run, SOURCE_DIR, check, check_eq, check_in, lab, log, main, uri,
                     vm_entry)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
VDP = os.path.join(SOURCE_DIR, "tests", "lab", "vdp", "vdp.sh")
SPICE = os.path.join(SOURCE_DIR, "tests", "lab", "spice", "spice.sh")
POLICIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies")


def sh(tool, *args, check_rc=True):
    p = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
    if check_rc and p.returncode != 0:
        raise AssertionError(f"{os.path.basename(tool)} {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout.strip()


def bridge():
    out = {}
    for line in sh(VDP, "bridge-list").splitlines():
        port, uuid, _mac, _vlan, mode = line.split()
        out[(port, uuid)] = mode
    return out


def prepare_guest(mac, test="all"):
    g = Guest("a", spice=True)
    uuid = lab("virsh", "a", "domuuid", g.name).strip()
    g.tag("a", test=test, ifa="evb-a", ifb="evb-b", mac=mac, vlan="10", dir=TMP)
    check_eq(sh(VDP, "assoc", "a", uuid, mac, "10"), "ok", "initial association on a")
    sh(SPICE, "start", "a", g.name)
    return g, uuid


def run(policy, name, *extra):
    return Run(["run", "--policy", os.path.join(POLICIES, policy), "-s", uri("a"), "-t",
                uri("b"), "--json", "--events", os.path.join(TMP, f"{name}.ndjson"),
                "--host-exec", f"{uri('a')}={VDP} exec a --",
                "--host-exec", f"{uri('b')}={VDP} exec b --", *extra])


def test_commit_with_every_feature():
    g, uuid = prepare_guest("52:54:00:00:20:01")
    try:
        before = g.ticks("a")
        r = run("combined.lua", "all").wait(180)
        check_eq(r.rc, 0, "exit code")
        v = vm_entry(r.report(), g.name)
        check_eq((v["result"], v["location"], v["gate"]["decision"]),
                 ("migrated", "target", "commit"), "result")
        check_eq({f["name"]: f["gate"] for f in v["feature_results"]},
                 {"vdp": "ok", "spice": "ok", "mark": "ok"}, "gate steps")
        b = bridge()
        check_eq(b.get(("port-b", uuid)), "assoc", f"VSI on the target's port: {b}")
        check_eq(b.get(("port-a", uuid)), None, f"VSI gone from the source's port: {b}")
        sh(SPICE, "wait", g.name, "b", "20")
        st = sh(SPICE, "status", g.name)
        check_in(":" + sh(SPICE, "port", "b", g.name), st, "SPICE client on the target")
        with open(os.path.join(TMP, g.name + ".steps")) as f:
            check_eq(f.read().split(), ["prepare", "gate", "after"], "the policy feature's steps")
        g.check_runs_only_on("b")
        g.check_survived_on("b", before)
    finally:
        sh(SPICE, "stop", g.name, check_rc=False)


def test_target_qemu_killed_at_the_gate():
    g, uuid = prepare_guest("52:54:00:00:20:02", test="hold")
    try:
        before = g.ticks("a")
        r = run("hold.lua", "killed")
        r.wait_event(lambda e: e["event"] == "phase" and e["details"]["phase"] == "gate", 120)
        lab_dir = os.environ.get("VMM_LAB_DIR", "/var/tmp/vmmigrate-lab")
        with open(os.path.join(lab_dir, "b", "run", "qemu", f"{g.name}.pid")) as f:
            pid = int(f.read().strip())
        log(f"killing the target QEMU {pid} at the gate")
        os.kill(pid, signal.SIGKILL)
        r.wait(180)
        v = vm_entry(r.report(), g.name)
        check_eq(r.rc, 1, "exit code")
        check_eq((v["result"], v["location"]), ("rolled-back", "source"), "result")
        g.check_only_on("a")
        check_eq(v["gate"]["reason"], "the target domain stopped at the gate", "gate reason")
        check(v["gate"]["held_ms"] < 10000, f"noticed at once, not after the hold: {v['gate']}")
        g.check_runs_only_on("a")
        g.check_survived_on("a", before)
    finally:
        sh(SPICE, "stop", g.name, check_rc=False)


if __name__ == "__main__":
    sh(VDP, "up", "a", "b")
    try:
        main([test_commit_with_every_feature, test_target_qemu_killed_at_the_gate])
    finally:
        sh(VDP, "down", check_rc=False)
