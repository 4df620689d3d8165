#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Crash safety of the commit gate: vmmigrate SIGKILLed while both sides wait
at the gate, and SIGKILLed after the commit decision (between libvirt's
Finish and Confirm, held there by fault injection): `vmmigrate recover`
restores a single running copy -- the source resumed in the first case, the
stale source copy removed in the second. Never two running copies, never
none; a second recover does nothing."""
import json
import os
import signal
import subprocess
import tempfile
import time

from labtest import (BINARY, NO_GUARDIAN, SOURCE_DIR, Guest, Run, check, check_eq, check_in, lab,
                     log, main, uri, vmmigrate)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
HOLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies", "hold.lua")


def state(host, name):
    return lab("virsh", host, "domstate", name, "--reason", check_rc=False)


def recover(journal):
    r = vmmigrate("recover", "--journal-dir", journal, "--json")
    check_eq(r.rc, 0, f"recover exit code (stderr: {r.stderr.strip()})")
    return json.loads(r.stdout)


def test_killed_at_the_gate():
    g = Guest("a")
    g.tag("a", test="hold")
    before = g.ticks("a")
    journal = os.path.join(TMP, "j1")
    ev = os.path.join(TMP, "gate-kill.ndjson")
    # As after a power loss: no guardian settles it first (recover's job here).
    os.environ["VMM_FAULT"] = NO_GUARDIAN
    try:
        r = Run(["run", "--policy", HOLD, "-s", uri("a"), "-t", uri("b"), "--journal-dir",
                 journal, "--events", ev])
    finally:
        del os.environ["VMM_FAULT"]
    r.wait_event(lambda e: e["event"] == "phase" and e["details"]["phase"] == "gate", 60)
    time.sleep(0.5)
    r.proc.send_signal(signal.SIGKILL)
    r.wait(30)
    log(f"after the kill: a={state('a', g.name)!r} b={state('b', g.name)!r}")
    check_in("paused", state("a", g.name), "the source waits paused")
    st = vmmigrate("status", "--journal-dir", journal, "--json")
    check_eq(st.rc, 0, "status exit code")
    runs = json.loads(st.stdout)["runs"]
    check_eq([(r["finished"], r["vms"][g.name]["state"]) for r in runs],
             [(False, "gate-reached")], "status before recover: the run is open")
    rep = recover(journal)
    check_eq(len(rep["recovered"]), 1, f"one open migration: {rep}")
    rec = rep["recovered"][0]
    check_eq(rec["vm"], g.name, "recovered VM")
    check_eq(rec["last_record"], "gate-reached", "last journal record")
    check_eq(rec["found"], {"target": "absent", "source": "paused"}, "what recover found")
    check_eq(rec["action"], "resumed the source", "action")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)
    check_eq(recover(journal)["recovered"], [], "a second recover finds nothing to do")
    runs = json.loads(vmmigrate("status", "--journal-dir", journal, "--json").stdout)["runs"]
    check_eq([(r["finished"], r["vms"][g.name]["state"], r["vms"][g.name]["location"])
              for r in runs], [(True, "recovered", "source")], "status after recover")


def test_killed_after_commit_decided():
    g = Guest("a")
    before = g.ticks("a")
    journal = os.path.join(TMP, "j2")
    ev = os.path.join(TMP, "commit-kill.ndjson")
    env = dict(os.environ, VMM_FAULT="before-confirm:sleep=20000," + NO_GUARDIAN)
    args = [BINARY, "run", "--vm", g.name, "--class", "network-critical", "-s", uri("a"), "-t",
            uri("b"), "--journal-dir", journal, "--events", ev]
    log("$ " + " ".join(args))
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    decided = False
    while time.time() < deadline and not decided:
        if os.path.exists(ev):
            with open(ev) as f:
                decided = any(json.loads(l)["event"] == "gate.decided" for l in f
                              if l.endswith("\n"))
        time.sleep(0.1)
    check(decided, "the commit was decided")
    # Finish takes a few hundred ms; then the fault holds Confirm back.
    for _ in range(100):
        if state("b", g.name).startswith("running"):
            break
        time.sleep(0.1)
    log(f"before the kill: a={state('a', g.name)!r} b={state('b', g.name)!r}")
    p.kill()
    p.wait()
    time.sleep(1)
    log(f"after the kill: a={state('a', g.name)!r} b={state('b', g.name)!r}")
    check(state("b", g.name).startswith("running"), "the guest runs on the target")
    check_in("paused", state("a", g.name), "a stale copy waits paused on the source")
    rep = recover(journal)
    rec = rep["recovered"][0]
    check_eq(rec["last_record"], "commit-decided", "last journal record")
    check_eq(rec["found"], {"target": "running", "source": "paused"}, "what recover found")
    check_eq(rec["action"], "destroyed the stale paused copy on the source", "action")
    g.check_runs_only_on("b")
    check_eq(g.where().get("a"), None, "no copy left on the source")
    g.check_survived_on("b", before)
    check_eq(recover(journal)["recovered"], [], "a second recover finds nothing to do")


def test_drain_rerun_after_kill_mid_copy():
    """kill -9 of vmmigrate while libvirt copies a VM peer-to-peer, then the
    same command again: it waits for libvirt's migration of that VM to end,
    finds it on the target, and drains the rest. Every guest exactly once."""
    guests = [Guest("a", dirty=0) for _ in range(4)]
    for g in guests:
        g.tag("a", move="yes")
    before = {g.name: g.ticks("a") for g in guests}
    journal = os.path.join(TMP, "j3")
    args = ["run", "--policy", os.path.join(SOURCE_DIR, "policies", "tagged-only.lua"), "-s",
            uri("a"), "-t", uri("b"), "--parallel", "1", "--bandwidth", "16", "--journal-dir",
            journal]
    first = Run(args + ["--events", os.path.join(TMP, "crash1.ndjson")])
    first.wait_event(lambda e: e["event"] == "progress" and e["details"]["data_processed"] > 0,
                     60)
    first.proc.send_signal(signal.SIGKILL)
    first.wait(30)
    second = Run(args + ["--json", "--events", os.path.join(TMP, "crash2.ndjson")]).wait(300)
    check_eq(second.rc, 0, "exit code of the re-run")
    recovered = [e for e in second.events() if e["event"] == "recovered"]
    check_eq(len(recovered), 1, f"one migration of the killed run settled: {recovered}")
    check_eq(recovered[0]["details"]["found"], {"target": "running", "source": "absent"},
             "libvirt finished it on its own")
    moved = {v["name"] for v in second.report()["vms"]}
    check_eq(len(moved), 3, f"the re-run moved the other three: {moved}")
    for g in guests:
        g.check_only_on("b")
        g.check_survived_on("b", before[g.name])
    runs = json.loads(vmmigrate("status", "--journal-dir", journal, "--json").stdout)["runs"]
    check(all(r["finished"] for r in runs), f"every run settled in the journal: {runs}")


def test_unsettled_vm_left_alone():
    """An earlier run's migration that recover cannot settle (its target
    cannot be reached: the journal names a socket nothing listens on) keeps
    that VM where it is: the re-run names it and moves only the others.
    Moving it again could leave it running twice."""
    stuck, other = Guest("a", dirty=0), Guest("a", dirty=0)
    for g in (stuck, other):
        g.tag("a", move="yes")
    before = stuck.ticks("a")
    journal = os.path.join(TMP, "j4")
    os.makedirs(journal)
    gone = os.path.join(TMP, "no-such-host", "libvirt-sock")
    dead = "2026-01-01T00-00-00.000Z-4194303"  # a run whose PID cannot exist
    uuid = lab("virsh", "a", "domuuid", stuck.name).strip()
    with open(os.path.join(journal, dead + ".ndjson"), "w") as f:
        f.write(json.dumps({"record": "started", "run": dead, "vm": stuck.name, "uuid": uuid,
                            "source": uri("a"), "target": f"qemu+unix:///system?socket={gone}",
                            "ts": 1767225600000, "attempt": 1, "gated": False,
                            "features": []}) + "\n")
    r = Run(["run", "--policy", os.path.join(SOURCE_DIR, "policies", "tagged-only.lua"), "-s",
             uri("a"), "-t", uri("b"), "--journal-dir", journal, "--json", "--events",
             os.path.join(TMP, "unsettled.ndjson")]).wait(300)
    log(f"exit {r.rc}; stderr: {r.stderr.strip()}")
    check(f"run: '{stuck.name}': the migration of run {dead} is not settled" in r.stderr,
          f"the re-run names {stuck.name} and why it stays")
    moved = {v["name"] for v in r.report()["vms"] if v.get("result") == "migrated"}
    check_eq(moved, {other.name}, "only the other VM moved")
    stuck.check_only_on("a")
    stuck.check_survived_on("a", before)
    other.check_only_on("b")
    check_eq(r.rc, 9, "exit code: an operator must look")


if __name__ == "__main__":
    main([test_killed_at_the_gate, test_killed_after_commit_decided,
          test_drain_rerun_after_kill_mid_copy, test_unsettled_vm_left_alone])
