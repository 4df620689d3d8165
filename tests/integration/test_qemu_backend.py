#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The QMP backend: two plain QEMU processes (no libvirt), the same commit
gate. Commit: the tick counter continues in the target's serial log and
stops in the source's. Rollback (a required feature fails at the gate): the
source resumes and goes on counting, the target QEMU exits with status 1,
and the feature that did initialise is undone. The target QEMU killed
mid-migration: the guest keeps running on the source.

Journal and recover: a migration is journaled as a run is (records validate
against schema/journal.schema.json, `vmmigrate status` shows it). Killed
at the gate (fault point gate-reached), `vmmigrate recover` cancels the
migration: the guest goes on on the source, the target QEMU is gone. Killed
right after the commit was journaled (fault point commit-decided), recover
carries the commit out: the guest goes on on the target, the source QEMU is
gone. A second recover has nothing to do."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from labtest import (BINARY, SOURCE_DIR, check, check_eq, check_in, log, main, unique,
                     validate)

KERNEL = os.environ.get("VMM_GUEST_KERNEL")
POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies",
                      "qemu-features.lua")
PORT = 47000 + os.getpid() % 1000


class Qemu:
    def __init__(self, tmp, role, mem=64, dirty=4, incoming=False):
        self.log = os.path.join(tmp, f"{role}.log")
        self.qmp = os.path.join(tmp, f"{role}.qmp")
        args = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", str(mem),
                "-nodefaults", "-display", "none", "-kernel", KERNEL, "-append",
                f"dirty={dirty}", "-serial", f"file:{self.log}", "-qmp",
                f"unix:{self.qmp},server=on,wait=off"]
        if incoming:
            args += ["-incoming", "defer"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while not os.path.exists(self.qmp) and time.time() < deadline:
            time.sleep(0.05)
        check(os.path.exists(self.qmp), f"{role} QEMU started (QMP socket {self.qmp})")

    def ticks(self):
        try:
            with open(self.log, errors="replace") as f:
                found = re.findall(r"tick (\d+)", f.read())
            return int(found[-1]) if found else None
        except FileNotFoundError:
            return None

    def wait_ticks(self, n, seconds=120):
        deadline = time.time() + seconds
        while time.time() < deadline:
            t = self.ticks()
            if t is not None and t >= n:
                return t
            time.sleep(0.1)
        raise AssertionError(f"{self.log}: tick {n} not reached (at {self.ticks()})")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def migrate(src, dst, *extra, name=None, journal=None):
    journal = journal or os.path.join(os.path.dirname(src.qmp), "journal")
    args = [BINARY, "qemu", "-s", src.qmp, "-t", dst.qmp, "-u", f"tcp:127.0.0.1:{PORT}",
            "--json", "--journal-dir", journal, *extra]
    if name:
        args += ["--name", name]
    log("$ " + " ".join(args))
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    log(f"exit {p.returncode}; stderr: {p.stderr.strip()[:1000]}")
    rep = json.loads(p.stdout)
    import jsonschema
    with open(os.path.join(SOURCE_DIR, "schema", "qemu-report.schema.json")) as f:
        jsonschema.validate(rep, json.load(f))
    return p.returncode, rep


def vmmigrate(*args, timeout=300):
    p = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)
    log(f"$ vmmigrate {' '.join(args)}: exit {p.returncode}; stderr: {p.stderr.strip()[:2000]}")
    return p


def journal_records(journal):
    """Every record of every journal in DIR, oldest journal first, validated."""
    recs = []
    for name in sorted(os.listdir(journal)):
        with open(os.path.join(journal, name)) as f:
            for line in f:
                rec = json.loads(line)
                validate(rec, "journal")
                recs.append(rec)
    return recs


def qmp_uri(path):
    return "qemu+qmp://" + os.path.abspath(path)


def pair(tmp, **kw):
    src = Qemu(tmp, "src", **kw)
    dst = Qemu(tmp, "dst", incoming=True, **kw)
    src.wait_ticks(3)
    return src, dst


def test_commit():
    tmp = tempfile.mkdtemp(prefix="vmm-qemu-")
    name = unique("q")
    journal = os.path.join(tmp, "journal")
    events = os.path.join(tmp, "events.ndjson")
    src, dst = pair(tmp)
    try:
        rc, rep = migrate(src, dst, "--policy", POLICY, "--feature", "ready", "--feature",
                          "announce", "--events", events, name=name, journal=journal)
        check_eq(rc, 0, "exit code")
        recs = journal_records(journal)
        check_eq([r["record"] for r in recs],
                 ["started", "gate-reached", "commit-decided", "finished", "step-started",
                  "after-done"],
                 "journal records")
        check_eq(rep["journal"], os.path.join(journal, os.listdir(journal)[0]), "report: journal")
        st = recs[0]
        check_eq((st["vm"], st["source"], st["target"], st["gated"], st["backend"]),
                 (name, qmp_uri(src.qmp), qmp_uri(dst.qmp), True, "qemu"), "started")
        check_eq(st["owed_on_crash"], {"deinit": ["ready"], "after": ["ready"]}, "owed steps")
        check_eq([f["name"] for f in st["decision"]["features"]], ["ready", "announce"],
                 "features journaled")
        check_eq((recs[3]["result"], recs[3]["location"]), ("migrated", "target"), "finished")
        check(all(r["run"] == st["run"] and r["uuid"] == st["uuid"] for r in recs), "one run")
        with open(events) as f:
            evs = [json.loads(line) for line in f]
        check_in("journal", [e["event"] for e in evs], "a journal event")
        for e in evs:
            # run.finished of `vmmigrate qemu` has no "summary" (run's has): not
            # part of this change
            if e["event"] != "run.finished":
                validate(e, "event")
        p = vmmigrate("status", "--journal-dir", journal, "--json")
        check_eq(p.returncode, 0, "status exit code")
        runs = json.loads(p.stdout)["runs"]
        check_eq([r["id"] for r in runs], [st["run"]], "status: the run")
        v = runs[0]["vms"][name]
        check_eq((runs[0]["finished"], v["state"], v["location"], v["after"], v["source"]),
                 (True, "finished", "target", "done", qmp_uri(src.qmp)), "status: the VM")
        v = rep["vm"]
        check_eq((v["result"], v["location"]), ("migrated", "target"), "result")
        check_eq(v["gate"]["decision"], "commit", "gate decision")
        check(v["bytes_transferred"] > 32 << 20, f"RAM sent: {v['bytes_transferred']}")
        time.sleep(1)
        at_switch = src.ticks()
        check(dst.wait_ticks(at_switch + 5) > at_switch, "the counter goes on in the target")
        time.sleep(1)
        check_eq(src.ticks(), at_switch, "the source's counter stopped")
        with open(f"/tmp/vmm-qemu-test-{name}.steps") as f:
            check_eq(f.read().split(), ["prepare", "gate", "after"], "feature steps")
        os.unlink(f"/tmp/vmm-qemu-test-{name}.steps")
    finally:
        src.stop()
        dst.stop()


def test_rollback():
    tmp = tempfile.mkdtemp(prefix="vmm-qemu-")
    name = unique("q")
    src, dst = pair(tmp)
    try:
        rc, rep = migrate(src, dst, "--policy", POLICY, "--feature", "ready", "--feature",
                          "broken", name=name)
        check_eq(rc, 1, "exit code after a rollback")
        v = rep["vm"]
        check_eq((v["result"], v["location"]), ("rolled-back", "source"), "result")
        check_in("the switch port is not configured (test)", v["gate"]["reason"], "reason")
        before = src.ticks()
        check(src.wait_ticks(before + 5) > before, "the source goes on counting")
        check_eq(dst.proc.wait(timeout=10), 1, "the target QEMU exited with status 1")
        check_eq(dst.ticks(), None, "the target never ran the guest")
        with open(f"/tmp/vmm-qemu-test-{name}.steps") as f:
            check_eq(f.read().split(), ["prepare", "gate", "deinit"], "ready's steps")
        os.unlink(f"/tmp/vmm-qemu-test-{name}.steps")
        res = {f["name"]: f for f in v["feature_results"]}
        check_eq(res["ready"]["deinit"], "ok", "ready undone")
    finally:
        src.stop()
        dst.stop()


def kill_at(tmp, point):
    """A gated migration (no features) killed at fault point POINT; its
    journal dir and the journal's records."""
    journal = os.path.join(tmp, "journal")
    src, dst = pair(tmp)
    args = [BINARY, "qemu", "-s", src.qmp, "-t", dst.qmp, "-u", f"tcp:127.0.0.1:{PORT}",
            "--journal-dir", journal, "--name", unique("q")]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, VMM_FAULT=f"{point}:kill"))
    log(f"exit {p.returncode}; stderr: {p.stderr.strip()[:1000]}")
    check_eq(p.returncode, -signal.SIGKILL, "vmmigrate qemu was killed")
    check_in(f"fault point '{point}': kill", p.stderr, "at the fault point")
    return src, dst, journal, journal_records(journal)


def recover_twice(journal):
    p = vmmigrate("recover", "--journal-dir", journal, "--json")
    check_eq(p.returncode, 0, "recover exit code")
    out = json.loads(p.stdout)
    check_eq(len(out["recovered"]), 1, "one migration settled")
    again = vmmigrate("recover", "--journal-dir", journal)
    check_eq((again.returncode, again.stdout.strip()), (0, "recover: nothing to do"),
             "a second recover")
    return out["recovered"][0]


def test_killed_at_gate():
    tmp = tempfile.mkdtemp(prefix="vmm-qemu-")
    src, dst, journal, recs = kill_at(tmp, "gate-reached")
    try:
        check_eq([r["record"] for r in recs], ["started", "gate-reached"], "journal records")
        held = src.ticks()
        time.sleep(1)
        check_eq(src.ticks(), held, "the guest is held at the gate")
        p = vmmigrate("status", "--journal-dir", journal)
        check_in("OPEN", p.stdout, "status: the run is open")
        r = recover_twice(journal)
        check_eq((r["found"], r["ok"], r["last_record"]),
                 ({"target": "incoming", "source": "at-gate"}, True, "gate-reached"), "recovered")
        check(src.wait_ticks(held + 5) > held, "the guest goes on on the source")
        dst.proc.wait(timeout=20)
        check_eq(dst.ticks(), None, "the target never ran the guest")
        check_eq(journal_records(journal)[-1]["location"], "source", "recovered: location")
        st = json.loads(vmmigrate("status", "--journal-dir", journal, "--json").stdout)
        check_eq(st["runs"][0]["finished"], True, "status: settled")
    finally:
        src.stop()
        dst.stop()


def test_killed_after_commit_decided():
    tmp = tempfile.mkdtemp(prefix="vmm-qemu-")
    src, dst, journal, recs = kill_at(tmp, "commit-decided")
    try:
        check_eq([r["record"] for r in recs], ["started", "gate-reached", "commit-decided"],
                 "journal records")
        r = recover_twice(journal)
        check_eq((r["found"], r["ok"], r["last_record"]),
                 ({"target": "incoming", "source": "at-gate"}, True, "commit-decided"),
                 "recovered")
        check_in("migrate-continue", r["action"], "the journaled commit carried out")
        src.proc.wait(timeout=20)
        at_switch = src.ticks()
        check(dst.wait_ticks(at_switch + 5) > at_switch, "the guest goes on on the target")
        check_eq(journal_records(journal)[-1]["location"], "target", "recovered: location")
    finally:
        src.stop()
        dst.stop()


def test_target_killed():
    tmp = tempfile.mkdtemp(prefix="vmm-qemu-")
    src, dst = pair(tmp, mem=256, dirty=200)
    try:
        args = [BINARY, "qemu", "-s", src.qmp, "-t", dst.qmp, "-u", f"tcp:127.0.0.1:{PORT}",
                "--json", "--bandwidth", "8"]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        dst.proc.send_signal(signal.SIGKILL)
        out, err = p.communicate(timeout=60)
        log(f"exit {p.returncode}; stderr: {err.strip()}")
        rep = json.loads(out)
        check_eq(p.returncode, 1, "exit code")
        check_eq((rep["vm"]["result"], rep["vm"]["location"]), ("failed", "source"), "result")
        before = src.ticks()
        check(src.wait_ticks(before + 5) > before, "the source goes on counting")
    finally:
        src.stop()
        dst.stop()


if __name__ == "__main__":
    import sys
    tests = [test_commit, test_rollback, test_target_killed, test_killed_at_gate,
             test_killed_after_commit_decided]
    main([t for t in tests if len(sys.argv) < 2 or t.__name__ in sys.argv[1:]])
