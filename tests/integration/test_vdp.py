#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The built-in vdp feature against real lldpad peers (tests/lab/vdp): a
station per lab host, one bridge. Commit: the VSI ends associated at the
bridge on the target's port and gone from the source's. The switch
unreachable (bridge stopped): the pre-association times out, the migration
rolls back, the guest keeps running on the source. The switch rejecting the
association at the gate (test bridge): rollback, and the VSI pre-associated
on the target is disassociated again (deinit)."""
import os
import subprocess
import tempfile

from labtest import (Guest, Run, SOURCE_DIR, check, check_eq, check_in, lab, log, main, uri,
                     vm_entry)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
VDP = os.path.join(SOURCE_DIR, "tests", "lab", "vdp", "vdp.sh")
POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies", "vdp.lua")
VLAN = "10"


def vdp(*args, check_rc=True):
    p = subprocess.run([VDP, *args], capture_output=True, text=True, timeout=120)
    if check_rc and p.returncode != 0:
        raise AssertionError(f"vdp.sh {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout.strip()


def bridge():
    """{(port, uuid): mode} of what the bridge holds."""
    out = {}
    for line in vdp("bridge-list").splitlines():
        port, uuid, _mac, _vlan, mode = line.split()
        out[(port, uuid)] = mode
    return out


def guest_with_port(mac):
    g = Guest("a")
    uuid = lab("virsh", "a", "domuuid", g.name).strip()
    g.tag("a", test="vdp", ifa="evb-a", ifb="evb-b", mac=mac, vlan=VLAN)
    # As on a real host, the port is associated where the guest runs now.
    check_eq(vdp("assoc", "a", uuid, mac, VLAN), "ok", "initial association on a")
    return g, uuid


def run(name):
    args = ["run", "--policy", POLICY, "-s", uri("a"), "-t", uri("b"), "--json", "--events",
            os.path.join(TMP, f"{name}.ndjson"),
            "--host-exec", f"{uri('a')}={VDP} exec a --",
            "--host-exec", f"{uri('b')}={VDP} exec b --"]
    return Run(args).wait(180)


def test_commit():
    g, uuid = guest_with_port("52:54:00:00:10:01")
    before = g.ticks("a")
    r = run("commit")
    check_eq(r.rc, 0, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("migrated", "target"), "result")
    fr = v["feature_results"][0]
    check_eq((fr["probe"], fr["prepare"], fr["gate"], fr["after"], fr["deinit"]),
             ("ok", "ok", "ok", "ok", None), "vdp steps")
    b = bridge()
    check_eq(b.get(("port-b", uuid)), "assoc", f"associated on the target's port: {b}")
    check_eq(b.get(("port-a", uuid)), None, f"gone from the source's port: {b}")
    g.check_runs_only_on("b")
    g.check_survived_on("b", before)


def test_switch_unreachable_rolls_back():
    g, uuid = guest_with_port("52:54:00:00:10:02")
    before = g.ticks("a")
    vdp("stop-bridge")
    try:
        r = run("unreachable")
    finally:
        vdp("start-bridge")
    check_eq(r.rc, 1, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("rolled-back", "source"), "result")
    g.check_only_on("a")
    fr = v["feature_results"][0]
    check(fr["prepare"].startswith("failed:"), f"pre-association failed: {fr}")
    check_eq(fr["deinit"], "ok", "nothing left to undo: the bridge never answered")
    check_in("feature 'vdp' prepare", v["gate"]["reason"], "gate reason")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def test_switch_rejects_rolls_back():
    g, uuid = guest_with_port("52:54:00:00:10:03")
    before = g.ticks("a")
    vdp("stop-bridge")
    vdp("start-bridge", "--peer")
    vdp("policy", f"{uuid} assoc reject:2")
    try:
        r = run("reject")
        b = bridge()
    finally:
        vdp("policy", "--clear")
        vdp("stop-bridge")
        vdp("start-bridge")
    check_eq(r.rc, 1, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("rolled-back", "source"), "result")
    g.check_only_on("a")
    fr = v["feature_results"][0]
    check_eq(fr["prepare"], "ok", "pre-association accepted")
    check_eq(fr["gate"], "failed: rejected by the bridge: Insufficient resources at bridge",
             "association rejected")
    check_eq(fr["deinit"], "ok", "the pre-association undone")
    check_eq(b.get(("port-b", uuid)), None, f"nothing left on the target's port: {b}")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def setup():
    out = vdp("up", "a", "b")
    log(f"vdp lab: {out}")


if __name__ == "__main__":
    setup()
    try:
        main([test_commit, test_switch_unreachable_rolls_back, test_switch_rejects_rolls_back])
    finally:
        vdp("down", check_rc=False)
