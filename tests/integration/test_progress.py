#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the operator watching a run sees: a guest that dirties memory
faster than a low --bandwidth sends it is found not converging (the event
migration.not-converging, once, with its numbers; a warning on stderr)
while a quiet guest beside it migrates and is not; on a pipe stderr gets
no meter; on a terminal the meter draws its rows (a queued VM says what it
waits for), its total line and, at the end, the summary with the exit
code explained."""
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import tempfile
import termios
import threading
import time

from labtest import (BINARY, Failure, Guest, Run, check, check_eq, check_in, log, main, unique,
                     uri, validate, vm_entry)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
# 64 MiB guest rewriting 48 MiB every tick at a 8 MiB/s cap: each pass
# resends the whole working set, which is dirty again by then.
STUCK = dict(mem=64, dirty=48)
SLOW = ["--bandwidth", "8"]


def journal(name):
    """A journal directory of the test's own: no earlier run's migration
    (another lab's) is settled into the exit code."""
    return ["--journal-dir", os.path.join(TMP, f"{name}-journal")]


def test_not_converging_event():
    stuck, quiet = Guest("a", **STUCK), Guest("a", dirty=0)
    before = stuck.ticks("a")
    ev, status = os.path.join(TMP, "stuck.ndjson"), os.path.join(TMP, "stuck-status.json")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", stuck.name, "--vm", quiet.name,
             "--parallel", "2", "--json", "--events", ev, "--status-file", status, *SLOW,
             *journal("stuck")])
    e = r.wait_event(lambda e: e["event"] == "migration.not-converging", timeout=240)
    check_eq(e["vm"], stuck.name, "the VM found not converging")
    d = e["details"]
    check(d["iteration"] >= 4, f"judged over three iterations after the bulk copy: {d}")
    check(d["mem_bps"] > 0 and d["data_remaining"] > 0, f"the numbers are there: {d}")
    check_eq(d["iterations"], 3, "the window")
    st = wait_status(status, lambda st: any(v["name"] == stuck.name and v["not_converging"]
                                            for v in st["vms"]))
    check_eq([v["name"] for v in st["vms"] if v["not_converging"]], [stuck.name],
             "the status file names the stuck one")
    r.wait_event(lambda e: e["vm"] == quiet.name and e["event"] == "result", timeout=240)
    r.signal(signal.SIGINT)
    r.wait(180)
    check_eq(r.rc, 5, "exit code after SIGINT")
    events = r.events()  # each validated against the schema
    said = [x for x in events if x["event"] == "migration.not-converging"]
    check_eq([x["vm"] for x in said], [stuck.name], "not-converging said once, for the stuck one")
    rep = r.report()
    check_eq(vm_entry(rep, quiet.name)["result"], "migrated", "the quiet guest")
    check_eq((vm_entry(rep, stuck.name)["result"], vm_entry(rep, stuck.name)["location"]),
             ("aborted", "source"), "the stuck guest")
    quiet.check_runs_only_on("b")
    stuck.check_runs_only_on("a")
    stuck.check_survived_on("a", before)
    check_in(f"vmmigrate: warning: {stuck.name}: not converging: ", r.stderr, "stderr")
    check("\033[" not in r.stderr_raw, "no meter on a pipe")


def wait_status(path, pred, timeout=60):
    """The status file (validated) once pred holds for it."""
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                st = json.load(f)  # rewritten atomically: always whole
            validate(st, "status")
            if pred(st):
                return st
        time.sleep(0.2)
    raise Failure(f"the status file never showed it: {json.dumps(st)[:1500]}")


class PtyRun:
    """vmmigrate with its stderr on a terminal (120 columns), stdout on a pipe."""

    def __init__(self, args):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
        log("$ " + " ".join([BINARY, *args]) + "  (stderr on a terminal)")
        self.proc = subprocess.Popen([BINARY, *args], stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        self.master = master
        self.out = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                return
            if not chunk:
                return
            with self.lock:
                self.out += chunk

    def text(self):
        with self.lock:
            return self.out.decode(errors="replace")

    def wait_text(self, needle, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise Failure(f"{needle!r} never on the terminal; it shows: {self.text()[-3000:]!r}")

    def wait(self, timeout=300):
        self.stdout, _ = self.proc.communicate(timeout=timeout)
        self.reader.join(30)
        os.close(self.master)
        self.rc = self.proc.returncode
        log(f"exit {self.rc}; terminal: {self.text()[-3000:]!r}")
        return self


def test_meter_on_a_terminal():
    """One quiet guest moves while the stuck one waits for the one slot;
    then the stuck one's row says it does not converge, and SIGINT ends the
    run: the last frame stays, the summary says what moved, what did not
    and why, and what exit 5 means."""
    # The plan starts the bigger first, then by name: the quiet one first.
    quiet = Guest("a", name=unique("vm-a"), dirty=0)
    stuck = Guest("a", name=unique("vm-b"), **STUCK)
    r = PtyRun(["run", "-s", uri("a"), "-t", uri("b"), "--vm", quiet.name, "--vm", stuck.name,
                "--parallel", "1", "--json", *SLOW, *journal("meter")])
    r.wait_text("waits for a slot (--parallel 1)")
    r.wait_text("1 running, 1 queued")
    r.wait_text("not converging", timeout=240)
    r.proc.send_signal(signal.SIGINT)
    r.wait()
    check_eq(r.rc, 5, "exit code after SIGINT")
    t = r.text()
    for col in ("VM ", "TARGET", "PHASE", "RATE", "REMAINING", "ETA", "ELAPSED", "DOWNTIME"):
        check_in(col, t, "the header")
    check_in("\033[1A\033[2K", t, "the meter is redrawn in place")
    summary = t[t.rindex("\nmoved ") + 1:]
    check_in("moved 1 of 2, 1 failed in ", summary, "the summary")
    check_in("longest downtime ", summary, "the summary")
    check_in(f"  moved: {quiet.name} -> ", summary, "the summary")
    check_in(f"  aborted: {stuck.name} -> ", summary, "the summary")
    check_in("runs on the source: interrupted (", summary, "the summary")
    check_in("exit 5 (interrupted): interrupted: in-flight migrations were aborted", summary,
             "the exit explained")
    check_in("2/2 done (1 failed), 0 running, 0 queued", t[:t.rindex("\nmoved ")],
             "the last frame stays")
    # The warning came as a log line above the meter, whole, on a line of its own.
    check_in(f"\r\x1b[2Kvmmigrate: warning: {stuck.name}: not converging: ", t,
             "the log line, the meter cleared first")
    quiet.check_runs_only_on("b")
    stuck.check_runs_only_on("a")


if __name__ == "__main__":
    main([test_not_converging_event, test_meter_on_a_terminal])
