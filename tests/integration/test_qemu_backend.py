#!/usr/bin/python3
"""The QMP backend: two plain QEMU processes (no libvirt), the same commit
gate. Commit: the tick counter continues in the target's serial log and
stops in the source's. Rollback (a required feature fails at the gate): the
source resumes and goes on counting, the target QEMU exits with status 1,
and the feature that did initialise is undone. The target QEMU killed
mid-migration: the guest keeps running on the source."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from labtest import (BINARY, SOURCE_DIR, check, check_eq, check_in, log, main, unique)

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


def migrate(src, dst, *extra, name=None):
    args = [BINARY, "qemu", "-s", src.qmp, "-t", dst.qmp, "-u", f"tcp:127.0.0.1:{PORT}",
            "--json", *extra]
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


def pair(tmp, **kw):
    src = Qemu(tmp, "src", **kw)
    dst = Qemu(tmp, "dst", incoming=True, **kw)
    src.wait_ticks(3)
    return src, dst


def test_commit():
    tmp = tempfile.mkdtemp(prefix="vmm-qemu-")
    name = unique("q")
    src, dst = pair(tmp)
    try:
        rc, rep = migrate(src, dst, "--policy", POLICY, "--feature", "ready", "--feature",
                          "announce", name=name)
        check_eq(rc, 0, "exit code")
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
    main([test_commit, test_rollback, test_target_killed])
