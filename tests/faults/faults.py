#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The fault matrix: each fault of issue 10 (vmmigrate, libvirtd, QEMU, the
journal's disk, a hung host, hostile input) against real drains on the lab,
N randomized iterations per case, the same invariants after every one.

    faults.py [--iterations N] [--seed S] [--cases a,b] [--json FILE] [--list]

Needs a lab of three hosts (a b c) up, as for the integration tests:

    VMM_LAB_DIR=... VMM_LAB_INDEX=... VMM_BINARY=build/vmmigrate tests/lab/lab.sh up 3
    VMM_LAB_DIR=... VMM_BINARY=build/vmmigrate tests/faults/faults.py --iterations 3

Every iteration gets its own guests (on a), journal, lock and log dirs, and a
random generator seeded from (seed, case, iteration): the seed is printed,
and `--seed S --cases C` replays a failure. Guests move with
tests/faults/faults.lua: network-critical, features mark and mark2 whose
steps log their start and end (time, PIDs) to a file.

Invariants (each a named check; an iteration passes when none fails):
  placement      every guest runs on exactly one host, the one expected
                 where the case says, and no other host has it (no paused
                 copy, no leftover incoming domain)
  not-paused     no host has the guest paused
  ticks          its serial tick counter continued: no reboot, no reset, it
                 goes on where it runs
  pause          the longest gap in a guest's tick counter (on whichever
                 host it runs; a guest left paused counts until the end of the
                 checks) stays within the case's bound (the gate budget + 5 s
                 unless the case says otherwise) = the "worst pause"
  journal        `vmmigrate status --json` agrees with the hosts: every run
                 settled, each guest's last record says where it runs
  steps          each feature's after step ran for a committed attempt and
                 its deinit for one rolled back, at least once, and exactly
                 once in an iteration without a crash of vmmigrate
  cancelled      no step command runs on after the gate was decided (its
                 `end` line is not later than the decision, its shell is gone)
  exit-code      the exit codes the case expects (each case documents them)
plus case-specific checks (named in the case).

A case whose fault point (VMM_FAULT) does not exist in the binary is
reported "n/a: fault point X missing" (the binary never announced it).
VMM_FAULTS_HUNG=HOST:PHASE (a|b : copy|gate) replays one variant of
hung-host-midrun instead of drawing it.
Exit status: 0 no violation, 1 a violation, 2 usage.
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import labtest  # noqa: E402
from labtest import BINARY, Guest, Run, lab, log, uri  # noqa: E402

POLICY = os.path.join(HERE, "faults.lua")
FEATURES = ["mark", "mark2"]
HOSTS = ["a", "b", "c"]
GATE_BUDGET_MS = 8000
SLACK_S = 5.0  # the bound: gate budget + 5 s


class NotApplicable(Exception):
    pass


def now_ms():
    return int(time.time() * 1000)


def wait_for(pred, timeout, what, step=0.1):
    """Poll pred until it returns a true value; None on timeout."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() >= deadline:
            log(f"timed out ({timeout} s) waiting for {what}")
            return None
        time.sleep(step)


def lab_dir():
    d = os.environ.get("VMM_LAB_DIR")
    if d:
        return d
    for line in lab("env").splitlines():
        if line.startswith("export VMM_LAB_DIR="):
            return line.split("=", 1)[1].strip("'\"")
    raise SystemExit("faults.py: no lab (set VMM_LAB_DIR)")


def libvirtd_pid(host):
    return int(lab("pid", host))


def qemu_pid(host, vm):
    path = os.path.join(lab_dir(), host, "run", "qemu", f"{vm}.pid")
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return None


def host_of(u):
    for h in HOSTS:
        if uri(h) == u:
            return h
    return None


# -- the tick counter, sampled ----------------------------------------------

class TickWatch(threading.Thread):
    """Samples every guest's serial log on every host every ~50 ms: the
    combined counter (the highest complete tick seen anywhere), when it
    last went up, the longest gap, boots and resets."""

    def __init__(self, guests):
        super().__init__(daemon=True)
        self.files = {(g.name, h): os.path.join(lab_dir(), h, "log", "qemu",
                                                 f"{g.name}-serial.log")
                      for g in guests for h in HOSTS}
        self.offset = {k: 0 for k in self.files}
        self.partial = {k: b"" for k in self.files}
        self.best = {g.name: None for g in guests}
        self.last_up = {g.name: None for g in guests}
        self.gap = {g.name: 0.0 for g in guests}
        self.gap_at = {g.name: None for g in guests}
        self.boots = {g.name: [] for g in guests}
        self.resets = {g.name: [] for g in guests}
        self.stop_flag = False
        self.lock = threading.Lock()
        self.first = True
        self.poll()  # the logs as they are now (the boot lines) are the past
        self.first = False
        self.start()

    def poll(self):
        t = time.time()
        for k, path in self.files.items():
            try:
                with open(path, "rb") as f:
                    f.seek(self.offset[k])
                    data = f.read()
            except OSError:
                continue
            if not data:
                continue
            self.offset[k] += len(data)
            data = self.partial[k] + data
            lines = data.split(b"\n")
            self.partial[k] = lines.pop()
            vm, host = k
            with self.lock:
                for ln in lines:
                    s = ln.decode(errors="replace").strip()
                    if s.startswith("vmm-guest boot"):
                        if not self.first:
                            self.boots[vm].append(host)
                        continue
                    if not s.startswith("tick ") or not s[5:].isdigit():
                        continue
                    n = int(s[5:])
                    b = self.best[vm]
                    if b is not None and n < b - 1 and not self.first:
                        self.resets[vm].append(f"{host}: tick {n} after {b}")
                    if b is None or n > b:
                        if self.last_up[vm] is not None and not self.first:
                            g = t - self.last_up[vm]
                            if g > self.gap[vm]:
                                self.gap[vm], self.gap_at[vm] = g, self.last_up[vm]
                        self.best[vm] = n
                        self.last_up[vm] = t

    def run(self):
        while not self.stop_flag:
            self.poll()
            time.sleep(0.05)

    def finish(self):
        """Stop sampling; a guest whose counter stands counts its gap until
        now. Returns {vm: (worst gap s, gap start wall time)}."""
        self.stop_flag = True
        self.join(5)
        t = time.time()
        res = {}
        with self.lock:
            for vm in self.best:
                gap, at = self.gap[vm], self.gap_at[vm]
                if self.last_up[vm] is not None and t - self.last_up[vm] > gap:
                    gap, at = t - self.last_up[vm], self.last_up[vm]
                res[vm] = (gap, at)
        return res


# -- one iteration ----------------------------------------------------------

class Iteration:
    """The state of one run of a case: its guests, dirs, the processes it
    started, what the checks found."""

    def __init__(self, case, index, seed, root):
        self.case = case
        self.index = index
        self.seed = seed
        self.rng = random.Random(f"{seed}/{case.name}/{index}")
        self.dir = tempfile.mkdtemp(prefix=f"{case.name}-{index}-", dir=root)
        self.journal = os.path.join(self.dir, "journal")
        self.locks = os.path.join(self.dir, "locks")
        self.marks = os.path.join(self.dir, "marks.log")
        self.marker = os.path.join(self.dir, "go")
        self.guests = []
        self.expected = {}      # vm -> host, or a set of hosts it may end on
        self.lost_ok = set()    # guests a fault may have killed (their QEMU)
        self.runs = []          # every vmmigrate Run, in order
        self.crashed = False    # vmmigrate was SIGKILLed: steps at least once
        self.violations = []    # (check, message)
        self.notes = []
        self.pause_limit = (GATE_BUDGET_MS / 1000.0) + SLACK_S
        self.budget_ms = GATE_BUDGET_MS
        self.ticks = None
        self.pauses = {}
        self.stopped_pids = []  # SIGSTOPped by us: SIGCONT in cleanup
        self.mounts = []
        self.listeners = []
        self.timeline = []
        self.holds = {}         # vm -> its own gate marker (hold="each")

    # bookkeeping
    def note(self, msg):
        log(f"  {msg}")
        self.notes.append(msg)

    def mark_time(self, what):
        self.timeline.append((what, now_ms()))
        self.note(f"{what} at {now_ms()}")

    def violate(self, check, msg):
        log(f"  VIOLATION {check}: {msg}")
        self.violations.append((check, msg))

    def expect(self, check, cond, msg):
        if not cond:
            self.violate(check, msg)
        return cond

    # guests
    def make_guests(self, n, mem=32, dirty=4, hold=False, tags=None, deep=()):
        """n guests on a, created at once, tagged for faults.lua."""
        errs = []

        def one():
            try:
                self.guests.append(Guest("a", mem=mem, dirty=dirty))
            except Exception as e:  # reported below
                errs.append(e)

        ts = [threading.Thread(target=one) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errs:
            raise errs[0]
        base = {"test": "fault", "log": self.marks, "budget": str(self.budget_ms)}
        if hold:
            base["hold"] = self.marker
        base.update(tags or {})
        for g in self.guests:
            if hold == "each":  # a marker of its own: release_gate(vm)
                self.holds[g.name] = f"{self.marker}.{g.name}"
                base["hold"] = self.holds[g.name]
            g.tag("a", **base)
            self.expected[g.name] = {"b", "c"}
        self.before = {g.name: g.ticks("a") for g in self.guests}
        return self.guests

    def watch(self):
        self.ticks = TickWatch(self.guests)

    # vmmigrate
    def args(self, *extra, targets=("b", "c"), command="run"):
        a = [command, "--policy", POLICY, "-s", uri("a")]
        for t in targets:
            a += ["-t", t if "://" in t else uri(t)]
        return a + ["--journal-dir", self.journal, "--lock-dir", self.locks, "--json",
                    "--no-progress", *extra]

    def start(self, args, env=None):
        ev = os.path.join(self.dir, f"events-{len(self.runs)}.ndjson")
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            r = Run(list(args) + ["--events", ev])
        finally:
            for k, v in saved.items():
                if v is None:
                    del os.environ[k]
                else:
                    os.environ[k] = v
        self.runs.append(r)
        return r

    def finish_run(self, r, timeout=300):
        """Wait for a run; one that will not end is SIGKILLed (violation)."""
        try:
            r.wait(timeout)
        except subprocess.TimeoutExpired:
            self.violate("hang", f"vmmigrate PID {r.proc.pid} still runs after {timeout} s")
            self.sigcont(r.proc.pid)
            r.proc.kill()
            r.wait(60)
        return r

    def kill9(self, r):
        self.mark_time(f"SIGKILL vmmigrate {r.proc.pid}")
        r.proc.send_signal(signal.SIGKILL)
        self.crashed = True
        r.wait(60)

    def sigstop(self, pid, what):
        self.mark_time(f"SIGSTOP {what} {pid}")
        os.kill(pid, signal.SIGSTOP)
        self.stopped_pids.append(pid)

    def sigcont(self, pid, what=""):
        if pid in self.stopped_pids:
            self.stopped_pids.remove(pid)
        try:
            os.kill(pid, signal.SIGCONT)
            if what:
                self.mark_time(f"SIGCONT {what} {pid}")
        except ProcessLookupError:
            pass

    def release(self):
        for path in [self.marker, *self.holds.values()]:
            open(path, "a").close()

    def release_gate(self, vm):
        """Let one guest of make_guests(hold="each") pass its gate."""
        open(self.holds[vm], "a").close()

    def events(self, r):
        evs = []
        if r.events_path and os.path.exists(r.events_path):
            with open(r.events_path) as f:
                for line in f:
                    if line.endswith("\n"):
                        try:
                            evs.append(json.loads(line))
                        except ValueError:
                            pass
        return evs

    def wait_event(self, r, pred, timeout, what):
        def found():
            for e in self.events(r):
                if pred(e):
                    return e
            if r.proc.poll() is not None:
                return "exited"
            return None
        e = wait_for(found, timeout, what)
        if e == "exited" or e is None:
            for e2 in self.events(r):  # it may have come just before the exit
                if pred(e2):
                    return e2
            raise NotApplicable(f"the fault's moment never came ({what}): "
                                f"vmmigrate {'exited' if e else 'never got there'}")
        return e

    def at_gate(self, r, timeout=300):
        e = self.wait_event(r, lambda e: e["event"] == "phase"
                            and e["details"].get("phase") == "gate", timeout, "a VM at the gate")
        self.gate_vm, self.gate_ts = e["vm"], e["ts_ms"]
        self.note(f"{e['vm']} at the gate")
        return e

    def mid_copy(self, r, timeout=300):
        e = self.wait_event(r, lambda e: e["event"] == "progress"
                            and e["details"].get("data_processed", 0) > 0, timeout,
                            "a VM being copied")
        self.note(f"{e['vm']} being copied ({e['details']['data_processed']} bytes)")
        return e

    def run_until(self, phase, targets=("b",), env=None):
        """Start a run and return at a random moment of phase: "copy" (a VM
        being copied, bandwidth-capped) or "gate" (a VM held at the gate)."""
        if phase == "copy":
            r = self.start(self.args("--bandwidth", "4", targets=targets), env=env)
            self.mid_copy(r)
            random_delay(self, 0, 3, "into the copy")
        else:
            r = self.start(self.args(targets=targets), env=env)
            self.at_gate(r)
            random_delay(self, 0.2, 2, "into the gate")
        return r

    def fault_env(self, point, action):
        """VMM_FAULT for point; NotApplicable if the binary has no such point
        (its name is nowhere in it: it can never announce it)."""
        with open(BINARY, "rb") as f:
            if point.encode() + b"\0" not in f.read():
                raise NotApplicable(f"fault point {point} missing")
        self.fault_point = point
        return {"VMM_FAULT": f"{point}:{action}"}

    def check_fault_fired(self, r):
        point = getattr(self, "fault_point", None)
        if point and f"fault point '{point}'" not in (r.stderr or ""):
            raise NotApplicable(f"fault point {point} missing (never announced)")

    # -- the invariants ----------------------------------------------------

    def settle_hosts(self):
        """A killed or restarted daemon, a stopped process: bring the lab
        back so the hosts can be asked."""
        for pid in list(self.stopped_pids):
            self.sigcont(pid, "(cleanup)")
        lab("up", "3", timeout=300)

    def where(self, g):
        return g.where()

    def check_invariants(self):
        self.settle_hosts()
        # A guest may take a moment to leave "paused (migrating)" after a
        # libvirtd came back: wait for that, not for a fixed time.
        wait_for(lambda: all(not any(s.startswith("paused") for s in g.where().values())
                             for g in self.guests), 20, "no guest paused", 0.5)
        final = {}
        for g in self.guests:
            w = g.where()
            running = sorted(h for h, s in w.items() if s.startswith("running"))
            paused = sorted(h for h, s in w.items() if s.startswith("paused"))
            exp = self.expected.get(g.name)
            expset = exp if isinstance(exp, set) else {exp}
            if g.name in self.lost_ok and not running:
                self.note(f"{g.name}: lost with its QEMU (allowed here): {w}")
                self.expect("placement", sorted(w) == [] or not paused,
                            f"{g.name}: nothing left of a lost guest but {w}")
                final[g.name] = None
            elif self.expect("placement", len(running) == 1,
                             f"{g.name} runs on {running or 'no host'} (all: {w})"):
                final[g.name] = running[0]
                self.expect("placement", running[0] in expset,
                            f"{g.name} runs on {running[0]}, expected {sorted(expset)}")
                self.expect("placement", sorted(w) == running,
                            f"{g.name}: another host has it: {w}")
            self.expect("not-paused", not paused, f"{g.name} paused on {paused}: {w}")
            if g.name in final and final[g.name]:
                h = final[g.name]
                try:
                    after = g.wait_ticking(h, more=2, seconds=60)
                    ok = after is not None and after > (self.before[g.name] or 0)
                except Exception as e:
                    after, ok = str(e), False
                self.expect("ticks", ok, f"{g.name}: counter on {h} {self.before[g.name]}"
                            f" -> {after}")
        self.final = final
        pauses = self.ticks.finish() if self.ticks else {}
        for g in self.guests:
            if self.ticks:
                boots = self.ticks.boots[g.name]
                self.expect("ticks", not boots, f"{g.name} booted again on {boots}")
                self.expect("ticks", not self.ticks.resets[g.name],
                            f"{g.name}: counter reset: {self.ticks.resets[g.name]}")
        self.pauses = {vm: round(p, 2) for vm, (p, _) in pauses.items()}
        considered = {vm: p for vm, p in self.pauses.items()
                      if final.get(vm) is not None or vm not in self.lost_ok}
        if considered:
            worst = max(considered, key=considered.get)
            self.expect("pause", considered[worst] <= self.pause_limit,
                        f"{worst} paused {considered[worst]:.1f} s (bound "
                        f"{self.pause_limit:.1f} s)")
        self.check_journal(final)
        self.check_steps(final)
        self.check_cancelled()

    def status(self):
        p = subprocess.run([BINARY, "status", "--journal-dir", self.journal, "--json"],
                           capture_output=True, text=True, timeout=120)
        return p

    def check_journal(self, final):
        if not os.path.isdir(self.journal) or getattr(self, "skip_journal", False):
            return
        p = self.status()
        if not self.expect("journal", p.returncode == 0,
                           f"status exit {p.returncode}: {p.stderr.strip()[:300]}"):
            return
        try:
            runs = json.loads(p.stdout)["runs"]
        except (ValueError, KeyError) as e:
            self.violate("journal", f"status --json: {e}")
            return
        for r in runs:
            self.expect("journal", r.get("finished"), f"run {r.get('id')} not settled in the "
                        f"journal: {json.dumps(r)[:300]}")
        last = {}
        for r in runs:
            for vm, v in r.get("vms", {}).items():
                last[vm] = (r.get("id"), v)
        for g in self.guests:
            host = final.get(g.name)
            if host is None and g.name in self.lost_ok:
                continue  # its QEMU was killed: no journal can place it
            if g.name not in last:
                self.expect("journal", host in (None, "a"),
                            f"{g.name} runs on {host} but no journal knows it")
                continue
            rid, v = last[g.name]
            loc = v.get("location")
            jhost = host_of(v.get("target")) if loc == "target" else (
                "a" if loc == "source" else None)
            self.expect("journal", jhost == host,
                        f"status of {g.name} (run {rid}): {v.get('state')}/{loc} "
                        f"({jhost}), runs on {host}")

    def mark_lines(self):
        if not os.path.exists(self.marks):
            return []
        out = []
        with open(self.marks) as f:
            for line in f:
                p = line.split()
                if len(p) in (7, 8) and p[0] in ("start", "end"):
                    out.append({"what": p[0], "step": p[1], "vm": p[2], "pid": p[3],
                                "feature": p[4], "ms": int(p[5]), "sh": int(p[6]),
                                "redo": len(p) > 7 and p[7] == "redo"})
        return out

    def check_steps(self, final):
        lines = self.mark_lines()
        once = not self.crashed
        for g in self.guests:
            if getattr(self, "skip_steps", set()) and g.name in self.skip_steps:
                continue
            for f in FEATURES:
                starts = [ln for ln in lines
                          if ln["what"] == "start" and ln["vm"] == g.name and ln["feature"] == f]
                seq = [ln["step"] for ln in starts]
                # A step that runs again after a crash is told so (ctx.redo);
                # without a crash, none is.
                seen = set()
                for ln in starts:
                    if ln["step"] == "prepare":
                        seen = set()
                    again = ln["step"] in seen and ln["step"] in ("after", "deinit")
                    seen.add(ln["step"])
                    self.expect("steps", not (once and ln["redo"]) and (ln["redo"] or not again),
                                f"{f} {ln['step']} of {g.name} (PID {ln['pid']}): ctx.redo "
                                f"{'true' if ln['redo'] else 'false'}, "
                                f"{'a repeat' if again else 'first run'}, "
                                f"{'after a crash' if not once else 'no crash'}")
                attempts, cur = [], None
                for s in seq:
                    if s == "prepare" or cur is None:
                        cur = []
                        attempts.append(cur)
                    cur.append(s)
                if not attempts and final.get(g.name) not in (None, "a"):
                    self.violate("steps", f"{f} of {g.name}: it moved, but no step of it "
                                 "logged anything")
                for i, att in enumerate(attempts):
                    last = i == len(attempts) - 1
                    committed = "after" in att or (last and final.get(g.name) not in (None, "a"))
                    if final.get(g.name) is None and last:
                        continue  # lost guest: nothing to expect
                    if committed:
                        n, want = att.count("after"), "after"
                    else:
                        n, want = att.count("deinit"), "deinit"
                    ok = n == 1 if once else n >= 1
                    self.expect("steps", ok, f"{f} of {g.name}, attempt {i + 1} "
                                f"({'committed' if committed else 'rolled back'}): {want} ran "
                                f"{n} times ({'exactly' if once else 'at least'} once "
                                f"expected): {att}")
                    if committed:
                        self.expect("steps", "deinit" not in att,
                                    f"{f} of {g.name}: deinit of a committed attempt: {att}")

    def check_cancelled(self):
        lines = self.mark_lines()
        decided = {}
        for r in self.runs:
            for e in self.events(r):
                if e["event"] == "gate.decided":
                    decided[(e["vm"], str(r.proc.pid))] = e["ts_ms"]
        gates = [ln for ln in lines if ln["step"] == "gate" and ln["what"] == "start"]
        for st in gates:
            key = (st["vm"], st["pid"])
            if key not in decided:
                continue
            t = decided[key]
            ends = [ln for ln in lines if ln["what"] == "end" and ln["sh"] == st["sh"]]
            late = [e for e in ends if e["ms"] > t + 1500]
            self.expect("cancelled", not late,
                        f"{st['feature']} gate of {st['vm']} (run {st['pid']}) ended "
                        f"{(late[0]['ms'] - t) / 1000.0:.1f} s after the decision" if late
                        else "")
            if not ends and alive(st["sh"]):
                gone = wait_for(lambda: not alive(st["sh"]), 5, "the cancelled step's shell")
                self.expect("cancelled", gone, f"{st['feature']} gate of {st['vm']} (run "
                            f"{st['pid']}): its command (PID {st['sh']}) still runs after "
                            "the decision")

    def check_rc(self, r, allowed, what="exit-code"):
        self.expect(what, r.rc in allowed,
                    f"vmmigrate {r.args[1]} (PID {r.proc.pid}) exit {r.rc}, expected "
                    f"{' or '.join(map(str, sorted(allowed)))}: "
                    f"{(r.stderr or '').strip().splitlines()[-1:] }")

    def cleanup(self):
        self.release()
        for r in self.runs:
            if r.proc.poll() is None:
                self.sigcont(r.proc.pid)
                r.proc.kill()
                r.proc.wait(60)
        for pid in list(self.stopped_pids):
            self.sigcont(pid)
        for srv in self.listeners:
            srv.close()
        try:
            lab("up", "3", timeout=300)
        except Exception as e:
            log(f"cleanup: lab up: {e}")
        Guest.destroy_all()
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)

    def result(self):
        return {
            "case": self.case.name, "iteration": self.index, "seed": self.seed,
            "dir": self.dir, "guests": [g.name for g in self.guests],
            "pass": not self.violations, "violations": [
                {"check": c, "message": m} for c, m in self.violations],
            "pauses_s": self.pauses, "pause_limit_s": self.pause_limit,
            "worst_pause_s": max(self.pauses.values()) if self.pauses else None,
            "runs": [{"args": r.args[1:], "pid": r.proc.pid, "rc": r.rc,
                      "stderr_tail": (r.stderr or "").strip().splitlines()[-5:]}
                     for r in self.runs],
            "crashed": self.crashed, "notes": self.notes, "final": getattr(self, "final", {}),
        }


# -- helpers for cases --------------------------------------------------------

class HangListener:
    """A TCP listener on 127.0.0.1 that accepts and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closed = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                return

    def uri(self):
        return f"qemu+tcp://127.0.0.1:{self.port}/system"

    def close(self):
        self.closed = True
        for c in self.conns:
            c.close()
        self.sock.close()


def small_tmpfs(it, size):
    d = os.path.join(it.dir, "jfs")
    os.makedirs(d)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes=1000", "tmpfs", d],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise NotApplicable(f"cannot mount a tmpfs: {p.stderr.strip()}")
    it.mounts.append(d)
    return d


def fill(path):
    """Fill the filesystem of path: files that grow until ENOSPC, in big
    writes and then byte by byte for the last blocks a small write could
    still find."""
    for chunk in (1 << 16, 1):
        try:
            with open(os.path.join(path, f"fill-{time.time_ns()}"), "wb") as f:
                while True:
                    f.write(b"\0" * chunk)
                    f.flush()
        except OSError:
            pass


def random_delay(it, lo, hi, what):
    d = it.rng.uniform(lo, hi)
    it.note(f"{what}: {d:.2f} s")
    time.sleep(d)  # the randomized moment of the fault, not a wait for a condition
    return d


def rerun(it, rc=(0,)):
    """The first run's command again (its own events file), as an operator
    would after the fault."""
    it.release()
    args = it.runs[0].args[1:]
    i = args.index("--events")
    r = it.finish_run(it.start(args[:i] + args[i + 2:]))
    it.check_rc(r, set(rc))
    return r


# -- the cases ----------------------------------------------------------------
# Each case documents what it does and the exit codes it expects. Expected
# results follow issue 10 ("expected" column); today's build may well violate
# them: that is the measurement.

def case_kill_mid_copy(it):
    """kill -9 of vmmigrate while libvirt copies a VM (bandwidth-capped, at
    a random moment of the copy), then the same command: re-run exits 0,
    every guest once on b or c."""
    it.make_guests(2, dirty=0)
    it.watch()
    r = it.start(it.args("--parallel", "1", "--bandwidth", "4"))
    it.mid_copy(r)
    random_delay(it, 0, 3, "into the copy")
    it.kill9(r)
    rerun(it)


def case_kill_at_gate(it):
    """kill -9 of vmmigrate while a VM holds at the gate (random moment
    within the budget); the operator re-runs only after budget + 8 s, so the
    bound (budget + 5 s) must hold without him. Re-run exits 0."""
    it.make_guests(2, hold=True)
    it.watch()
    r = it.start(it.args("--parallel", "1"))
    it.at_gate(r)
    random_delay(it, 0.2, it.budget_ms / 1000.0 - 1, "into the gate")
    it.kill9(r)
    it.release()
    time.sleep(it.budget_ms / 1000.0 + 8)  # the operator comes late (scenario)
    rerun(it)


def case_kill_after_commit(it):
    """kill -9 at the fault point before-confirm (commit decided, Finish
    done, Confirm not sent); re-run exits 0 and removes the stale source
    copy."""
    _kill_at_point(it, "before-confirm", "kill")


def _kill_at_point(it, point, action):
    """Two guests, --parallel 1, VMM_FAULT=point:action (a kill), then the
    same command: exit 0, both once on b or c."""
    env = it.fault_env(point, action)
    it.make_guests(2)
    it.watch()
    r = it.finish_run(it.start(it.args("--parallel", "1"), env=env))
    it.check_fault_fired(r)
    it.crashed = True
    it.expect("exit-code", r.rc == -signal.SIGKILL, f"the fault killed the run: exit {r.rc}")
    rerun(it)


def case_kill_between_vms(it):
    """--parallel 1, kill -9 at a random moment within 2 s after the first
    VM's result (its after steps and their record may or may not have
    happened); the next VMs wait at their gates, so the run is still there
    to kill however fast the machine; re-run exits 0; after steps at least
    once."""
    it.make_guests(3, hold="each")
    it.watch()
    r = it.start(it.args("--parallel", "1"))
    it.release_gate(it.at_gate(r)["vm"])
    it.wait_event(r, lambda e: e["event"] == "result", 300, "the first result")
    random_delay(it, 0, 2, "after the first result")
    it.kill9(r)
    rerun(it)


def guardian_ended(it, r):
    """The run's guardian (run/guardian.h) ended the run: SIGKILL, and its
    one line naming why on stderr. Steps then run at least once."""
    it.crashed = True
    it.expect("guardian", r.rc == -signal.SIGKILL and "guardian of run" in (r.stderr or ""),
              f"the guardian did not end the stopped run: exit {r.rc}, stderr "
              f"{(r.stderr or '').strip().splitlines()[-2:]}")


def case_stop_at_gate(it):
    """SIGSTOP of vmmigrate at the gate (random moment) for longer than the
    gate budget (random, up to 40 s: beyond the target's keepalive), then
    SIGCONT. Expected: the guardian ends the stopped run (SIGKILL, its line
    on stderr) and settles it: rolled back, guest on a, paused no longer
    than budget + 5 s."""
    it.make_guests(1, hold=True)
    it.expected = {g.name: "a" for g in it.guests}
    it.watch()
    r = it.start(it.args())
    it.at_gate(r)
    random_delay(it, 0.2, 2, "into the gate")
    it.sigstop(r.proc.pid, "vmmigrate")
    random_delay(it, it.budget_ms / 1000.0 + 4, 40, "stopped for")
    it.sigcont(r.proc.pid, "vmmigrate")
    it.finish_run(r)
    guardian_ended(it, r)


def case_stop_mid_copy(it):
    """SIGSTOP of vmmigrate while a VM is copied, random 5..20 s, SIGCONT.
    The copy may end (and pause the guest) while vmmigrate is stopped, so
    the guardian ends a run that stopped answering with a gated migration
    open (SIGKILL, its line on stderr) and settles it: each guest once, on
    a, b or c; nothing paused."""
    it.make_guests(2, dirty=0)
    it.expected = {g.name: {"a", "b", "c"} for g in it.guests}
    it.watch()
    it.release()
    r = it.start(it.args("--parallel", "1", "--bandwidth", "4"))
    it.mid_copy(r)
    random_delay(it, 0, 2, "into the copy")
    it.sigstop(r.proc.pid, "vmmigrate")
    random_delay(it, 5, 20, "stopped for")
    it.sigcont(r.proc.pid, "vmmigrate")
    it.finish_run(r)
    guardian_ended(it, r)


def case_stop_after_commit(it):
    """The fault point before-confirm stops vmmigrate (SIGSTOP) after the
    commit was decided; SIGCONT after random 5..20 s. Expected: the guardian
    ends the stopped run and settles it: the guest on the target only, no
    source copy."""
    r = _stop_at_point(it, "before-confirm", "stop", {"b"})
    guardian_ended(it, r)


def _stop_at_point(it, point, action, ends_on):
    """One guest, VMM_FAULT=point:action (a SIGSTOP), SIGCONT after random
    5..20 s; the guest must end on one of ends_on."""
    env = it.fault_env(point, action)
    it.make_guests(1)
    it.expected = {g.name: set(ends_on) for g in it.guests}
    it.watch()
    r = it.start(it.args(targets=("b",)), env=env)
    if not wait_for(lambda: proc_state(r.proc.pid) == "T" or r.proc.poll() is not None, 300,
                    f"the fault point {point} to stop vmmigrate"):
        raise NotApplicable(f"fault point {point} missing (never stopped)")
    if r.proc.poll() is None:
        it.stopped_pids.append(r.proc.pid)
        random_delay(it, 5, 20, "stopped for")
        it.sigcont(r.proc.pid, "vmmigrate")
    it.finish_run(r)
    it.check_fault_fired(r)
    return r


def _libvirtd_kill_at_gate(it, host, release):
    r = it.run_until("gate")
    pid = libvirtd_pid(host)
    it.mark_time(f"kill -9 libvirtd of {host} ({pid})")
    os.kill(pid, signal.SIGKILL)
    it.kill_ms = now_ms()
    if release:
        it.release()
    return r


def case_src_libvirtd_kill_at_gate(it):
    """kill -9 of the source's libvirtd at the gate, the gate step then
    succeeds (commit), libvirtd restarted after random 1..6 s. Expected: no
    clean success while a source copy may be left (exit 0 only if none is
    left; else 1 or 9, the migration open), and once the source is back the
    same command (exit 0 or 8) leaves the guest on b only."""
    it.make_guests(1, hold=True)
    it.expected = {g.name: "b" for g in it.guests}
    it.watch()
    r = _libvirtd_kill_at_gate(it, "a", release=True)
    random_delay(it, 1, 6, "source down for")
    lab("up", "3", timeout=300)
    it.mark_time("source libvirtd restarted")
    it.finish_run(r)
    g = it.guests[0]
    w = g.where()
    it.note(f"after the run: {w}")
    if r.rc == 0:
        it.expect("exit-code", "a" not in w, f"exit 0 'migrated' but the source has {w['a']!r}"
                  if "a" in w else "")
    else:
        it.check_rc(r, {0, 1, 9})
    rerun(it, rc=(0, 8))


def case_tgt_libvirtd_kill_at_gate(it):
    """kill -9 of the target's libvirtd at the gate (the gate step would
    hold for the whole budget). Expected: the gate is decided at once
    (rollback), exit 1, guest on a; its pause no longer than until the kill
    + 5 s."""
    it.budget_ms = 20000
    it.make_guests(1, hold=True)
    it.expected = {g.name: "a" for g in it.guests}
    it.watch()
    r = _libvirtd_kill_at_gate(it, "b", release=False)
    it.finish_run(r)
    it.pause_limit = (it.kill_ms - it.gate_ts) / 1000.0 + SLACK_S
    it.check_rc(r, {1})


def _libvirtd_kill_mid_copy(it, host):
    it.make_guests(1, dirty=0)
    it.expected = {g.name: "a" for g in it.guests}
    it.watch()
    r = it.run_until("copy")
    pid = libvirtd_pid(host)
    it.mark_time(f"kill -9 libvirtd of {host} ({pid})")
    os.kill(pid, signal.SIGKILL)
    random_delay(it, 1, 5, f"{host} down for")
    lab("up", "3", timeout=300)
    it.mark_time(f"libvirtd of {host} restarted")
    it.finish_run(r)
    # libvirt may have finished the copy by itself before the daemon died
    # (peer-to-peer is not used at the gate: the client drives it).
    it.expected = {g.name: {"a", "b"} for g in it.guests}
    it.check_rc(r, {0, 1, 9})
    if r.rc == 9:  # left open: the next run (the host is back) settles it
        rerun(it, rc=(0, 8))


def case_src_libvirtd_kill_mid_copy(it):
    """kill -9 of the source's libvirtd mid-copy, restarted after random
    1..5 s. Expected: exit 1 (guest on a) or 0 (on b), 9 only with the
    migration left open; the guest once, not paused."""
    _libvirtd_kill_mid_copy(it, "a")


def case_tgt_libvirtd_kill_mid_copy(it):
    """kill -9 of the target's libvirtd mid-copy, restarted after random
    1..5 s. Expected as for the source."""
    _libvirtd_kill_mid_copy(it, "b")


def _qemu_kill(it, host, at):
    it.make_guests(1, dirty=0, hold=(at == "gate"))
    g = it.guests[0]
    it.watch()
    r = it.run_until(at)
    pid = qemu_pid(host, g.name)
    if not pid:
        raise NotApplicable(f"no QEMU PID file for {g.name} on {host}")
    it.mark_time(f"kill -9 QEMU of {g.name} on {host} ({pid})")
    os.kill(pid, signal.SIGKILL)
    it.kill_ms = now_ms()
    it.finish_run(r)
    if host == "a":
        it.lost_ok.add(g.name)
        it.expected[g.name] = {"b"}
        it.check_rc(r, {0, 1, 9})
        return r
    it.expected[g.name] = "a"
    if at == "gate":
        it.pause_limit = (it.kill_ms - it.gate_ts) / 1000.0 + SLACK_S
    it.check_rc(r, {1})
    return r


def case_src_qemu_kill_mid_copy(it):
    """The source QEMU killed mid-copy: the guest is gone (that is the
    fault), nothing of it may be left paused or half-migrated anywhere, the
    journal says so. Exit 1 (or 9)."""
    _qemu_kill(it, "a", "copy")


def case_tgt_qemu_kill_mid_copy(it):
    """The target QEMU killed mid-copy: rolled back, guest on a, exit 1."""
    _qemu_kill(it, "b", "copy")


def case_src_qemu_kill_at_gate(it):
    """The source QEMU killed at the gate: the target holds the whole state;
    the guest may run on b (committed) or be gone, never paused anywhere."""
    _qemu_kill(it, "a", "gate")


def case_tgt_qemu_kill_at_gate(it):
    """The target QEMU killed at the gate: decided at once (rollback), exit
    1, guest on a, pause no longer than until the kill + 5 s."""
    _qemu_kill(it, "b", "gate")


def case_journal_full_before(it):
    """The journal dir on a full filesystem (a small tmpfs, filled before
    the run). Expected: the run cannot write its first record and starts
    nothing: a non-zero exit other than 1 (its own code), every guest on a."""
    it.make_guests(1)
    it.expected = {g.name: "a" for g in it.guests}
    it.journal = os.path.join(small_tmpfs(it, "64k"), "journal")
    os.makedirs(it.journal)
    fill(os.path.dirname(it.journal))
    it.skip_journal = True
    it.watch()
    it.release()
    r = it.finish_run(it.start(it.args()))
    it.expect("exit-code", r.rc not in (0, 1), f"exit {r.rc}: a run that cannot write its first "
              "record must fail with its own code")


def case_journal_full_during(it):
    """The journal's filesystem fills at a random moment after the first
    VM's result (of three, --parallel 1). Expected: no migration starts
    after the journal failed; a non-zero exit; every guest once, not
    paused; no guest off a that the journal does not know. The next VMs
    wait at their gates until the filesystem is full, so the run cannot
    have ended before it, however fast the machine."""
    it.make_guests(3, hold="each")
    it.expected = {g.name: {"a", "b", "c"} for g in it.guests}
    it.journal = os.path.join(small_tmpfs(it, "1m"), "journal")
    os.makedirs(it.journal)
    it.watch()
    r = it.start(it.args("--parallel", "1"))
    it.release_gate(it.at_gate(r)["vm"])
    it.wait_event(r, lambda e: e["event"] == "result", 300, "the first result")
    random_delay(it, 0, 2, "after the first result")
    fill(os.path.dirname(it.journal))
    full_ms = now_ms()
    it.mark_time("journal filesystem full")
    it.release()
    it.finish_run(r)
    late = [e["vm"] for e in it.events(r) if e["event"] == "phase"
            and e["details"].get("phase") in ("starting", "migrating") and e["ts_ms"] > full_ms + 500]
    it.expect("no-start-after-journal-failure", not late,
              f"migrations started after the journal filled: {sorted(set(late))}")
    it.expect("exit-code", r.rc != 0, "exit 0 although the journal failed mid-run")


def _kill_at_gate_then(it, edit):
    """kill -9 at the gate with no guardian (as when the management host
    loses power: the guardian dies with the run), then edit the journal."""
    it.make_guests(1, hold=True)
    it.watch()
    r = it.run_until("gate", env=it.fault_env("guardian-start", "fail"))
    it.kill9(r)
    it.release()
    files = sorted(os.listdir(it.journal))
    path = os.path.join(it.journal, [f for f in files if f.endswith(f"-{r.proc.pid}.ndjson")][0])
    edit(path)
    st = it.status()
    it.note(f"status after the edit: exit {st.returncode}: {st.stderr.strip()[:300]}")
    return r, path, st


def case_journal_torn_first(it):
    """kill -9 at the gate, then the killed run's first journal record torn
    (the file cut inside it, or the line halved in place: random). Expected:
    status and the re-run name the unreadable journal; the re-run (exit 0)
    settles the paused guest — from the journal's other records, or when
    nothing else is left of it from the hosts (paused by a migration no job
    runs) — and drains it; the guest on b. The torn record may have named
    feature steps owed: that attempt's deinit is not checked."""
    it.expected = {}

    def tear(path):
        with open(path) as f:
            lines = f.readlines()
        cut = max(1, len(lines[0]) // 2)
        if it.rng.random() < 0.5:
            it.note(f"journal cut at byte {cut} of its first record")
            data = lines[0][:cut]
        else:
            it.note(f"first record halved in place ({cut} bytes kept)")
            data = lines[0][:cut] + "\n" + "".join(lines[1:])
        with open(path, "w") as f:
            f.write(data)

    r, path, st = _kill_at_gate_then(it, tear)
    it.expected = {g.name: "b" for g in it.guests}
    it.skip_steps = {g.name for g in it.guests}
    name = os.path.basename(path)
    it.expect("journal-named", name in st.stderr + st.stdout,
              f"status does not name the torn journal {name}: {st.stderr.strip()[:200]}")
    r2 = rerun(it)
    if any("cut at byte" in n for n in it.notes):
        it.expect("evidence", "no journal says so" in (r2.stderr or ""),
                  "the re-run did not settle the paused guest from the hosts")
    it.expect("journal-named", name in (r2.stderr or ""),
              f"the re-run does not name the torn journal {name}")


def case_journal_garbage(it):
    """kill -9 at the gate, then garbage and a record of another run (same
    VM, 'finished' on c) appended to the killed run's journal. Expected:
    status ignores both with a warning and shows this run's own state; the
    re-run (exit 0) settles and drains; the guest on b."""
    foreign = {}

    def spoil(path):
        with open(path) as f:
            first = json.loads(f.readline())
        rec = dict(first, run=f"{first['run'].rsplit('-', 1)[0]}-1", record="finished",
                   result="migrated", location="target", target=uri("c"))
        foreign.update(rec)
        lines = ["this is not json {\n", json.dumps(rec, sort_keys=True) + "\n"]
        it.rng.shuffle(lines)
        with open(path, "a") as f:
            f.writelines(lines)

    r, path, st = _kill_at_gate_then(it, spoil)
    it.expected = {g.name: "b" for g in it.guests}
    try:
        runs = json.loads(st.stdout)["runs"]
        shown = [x["id"] for x in runs]
        it.expect("journal-foreign-ignored", foreign["run"] not in shown,
                  f"status shows the foreign run {foreign['run']}: {shown}")
        own = next((x for x in runs if x["id"].endswith(f"-{r.proc.pid}")), None)
        v = (own or {}).get("vms", {}).get(it.guests[0].name)
        it.expect("journal-foreign-ignored", v is not None,
                  f"status lost the killed run's own records: {shown}")
        if v:  # the killed run got to its gate: nothing of "finished/migrated"
            it.expect("journal-foreign-ignored", v.get("state") != "finished"
                      and v.get("result") is None and v.get("location") != "target",
                      f"status of the killed run {own['id']} carries the foreign record: "
                      f"{ {k: v.get(k) for k in ('state', 'result', 'location')} }")
    except (ValueError, KeyError) as e:
        it.violate("journal-foreign-ignored", f"status --json unreadable: {e}")
    rerun(it)


def _hang_connect(it, command, target_uri, stop_host=None):
    it.make_guests(1)
    it.expected = {g.name: "a" for g in it.guests}
    it.watch()
    it.release()
    r = it.start(it.args(targets=(target_uri,), command=command))
    random_delay(it, 2, 5, "before SIGTERM")
    if r.proc.poll() is not None:
        it.note(f"{command} ended by itself before SIGTERM: exit {r.proc.returncode}")
        it.finish_run(r)
        it.check_rc(r, {4})
        return
    it.mark_time(f"SIGTERM vmmigrate {r.proc.pid}")
    r.proc.send_signal(signal.SIGTERM)
    try:
        r.wait(15)
    except subprocess.TimeoutExpired:
        it.violate("sigterm-ends-connect", f"{command} still runs 15 s after SIGTERM")
        r.proc.kill()
        r.wait(60)
        return
    it.check_rc(r, {5})


def case_hang_tcp_run(it):
    """run with a target URI whose TCP port accepts and never answers;
    SIGTERM after random 2..5 s. Expected: exit 5 within 15 s of SIGTERM
    (or 4 by a connect deadline before it); the guest stays on a."""
    srv = HangListener()
    it.listeners.append(srv)
    _hang_connect(it, "run", srv.uri())


def case_hang_tcp_plan(it):
    """plan against the same silent target. Expected as for run."""
    srv = HangListener()
    it.listeners.append(srv)
    _hang_connect(it, "plan", srv.uri())


def case_hung_host_connect(it):
    """The target's libvirtd SIGSTOPped before the run (a hung host at
    connect); SIGTERM after random 2..5 s; SIGCONT afterwards. Expected:
    exit 5 within 15 s of SIGTERM (or 4 by a connect deadline); guest on a."""
    it.sigstop(libvirtd_pid("b"), "libvirtd of b")
    _hang_connect(it, "run", uri("b"))


HUNG_HOSTS, HUNG_PHASES = ("a", "b"), ("copy", "gate")


def hung_forced():
    """VMM_FAULTS_HUNG=HOST:PHASE as (host, phase), None when unset; raises
    ValueError naming the value when it is not one of the variants."""
    forced = os.environ.get("VMM_FAULTS_HUNG")
    if not forced:
        return None
    host, _, phase = forced.partition(":")
    if host not in HUNG_HOSTS or phase not in HUNG_PHASES:
        raise ValueError(f"VMM_FAULTS_HUNG={forced!r}: want HOST:PHASE, HOST one of "
                         f"{'|'.join(HUNG_HOSTS)}, PHASE one of {'|'.join(HUNG_PHASES)}")
    return host, phase


def case_hung_host_midrun(it):
    """A host's libvirtd (source or target, random) SIGSTOPped while a VM is
    at the gate or being copied (random), SIGCONT only after the run ended
    or 90 s. Expected: the run ends by itself (exit 1, or 9 when it cannot
    tell where the guest is), the guest once and never paused longer than
    budget + 5 s; a source hung in the copy: longer by as long as it hung
    (once its QEMU reached libvirt's pre-switchover, only that libvirtd
    may continue or cancel the migration: docs/operations.md)."""
    host, phase = it.rng.choice(HUNG_HOSTS), it.rng.choice(HUNG_PHASES)
    # VMM_FAULTS_HUNG replays one variant (after the draws, so the rest of
    # the iteration's randomness is the same); main() checked it
    host, phase = hung_forced() or (host, phase)
    it.note(f"hung host {host} in the {phase}")
    it.make_guests(1, dirty=0, hold=(phase == "gate"))
    it.expected = {g.name: {"a", "b"} for g in it.guests}
    it.watch()
    r = it.run_until(phase)
    pid = libvirtd_pid(host)
    it.sigstop(pid, f"libvirtd of {host}")
    stopped = now_ms()
    ended = wait_for(lambda: r.proc.poll() is not None, 90, "the run to end by itself", 0.5)
    it.expect("hang", ended, "the run did not end within 90 s of the host hanging")
    it.sigcont(pid, f"libvirtd of {host}")
    if (host, phase) == ("a", "copy"):
        it.pause_limit += (now_ms() - stopped) / 1000.0
    it.finish_run(r)
    it.check_rc(r, {0, 1, 9})
    if r.rc == 9:  # left open: the next run (the host answers again) settles it
        rerun(it, rc=(0, 8))


def case_deep_metadata(it):
    """A guest with <metadata> nested 40 deep next to two normal ones, all
    tagged to move. Expected: the deep one stays on a and is reported, the
    others move; not exit 4 (the host is fine)."""
    it.make_guests(3)
    deep = it.guests[0]
    xml = "".join("<n%d>" % i for i in range(40)) + "x" + "".join(
        "</n%d>" % i for i in reversed(range(40)))
    lab("virsh", "a", "metadata", deep.name, "--uri", "urn:vmmigrate-faults:deep", "--key",
        "deep", "--set", xml, "--live")
    it.expected[deep.name] = {"a"}
    it.skip_steps = {deep.name}
    it.watch()
    it.release()
    r = it.finish_run(it.start(it.args()))
    it.expect("exit-code", r.rc in (0, 1, 3), f"exit {r.rc} (4 = the whole host refused)")
    it.expect("bad-input-reported", deep.name in (r.stderr or "") + (r.stdout or ""),
              f"{deep.name} is not named in the output")


def case_host_exec_inject(it):
    """--host-exec URI=PREFIX for a and b with an ssh-like prefix (a local
    script that runs its arguments through `sh -c "$*"`, as ssh does) and a
    tag with `;` passed to every step. Expected: the arguments reach the
    host as argv (each step logs the tag exactly), the injected command
    never runs, the guest moves (exit 0)."""
    os.makedirs(os.path.join(it.dir, "bin"))
    fake = os.path.join(it.dir, "bin", "ssh")  # vmmigrate quotes for a program named ssh
    with open(fake, "w") as f:
        f.write('#!/bin/sh\n# like ssh HOST COMMAND...: the remote shell gets "$*"\n'
                'shift\nexec /bin/sh -c "$*"\n')
    os.chmod(fake, 0o755)
    canary = os.path.join(it.dir, "INJECTED")
    arg = f"a;b;touch {canary}"
    it.make_guests(1, tags={"arg": arg})
    it.expected = {g.name: "b" for g in it.guests}
    it.watch()
    it.release()
    r = it.finish_run(it.start(it.args("--host-exec", f"{uri('a')}={fake} host-a",
                                       "--host-exec", f"{uri('b')}={fake} host-b",
                                       targets=("b",))))
    it.check_rc(r, {0})
    it.expect("argv", not os.path.exists(canary), f"the tag's `;touch` ran: {canary} exists")
    got = []
    if os.path.exists(it.marks + ".arg"):
        with open(it.marks + ".arg") as f:
            got = f.read().splitlines()
    it.expect("argv", got and all(x == arg for x in got),
              f"the steps got {got[:3]!r}, expected {arg!r}")


def case_random_kill_drain5(it):
    """A gated drain of 5 guests (--parallel 2) kill -9ed at a random moment
    within its first 25 s, then the same command. Expected: re-run exit 0
    (8 if the first run had moved them all), every guest once on b or c."""
    it.make_guests(5)
    it.watch()
    it.release()
    r = it.start(it.args("--parallel", "2"))
    random_delay(it, 0.5, 25, "into the drain")
    if r.proc.poll() is None:
        it.kill9(r)
    else:
        it.finish_run(r)
        it.note(f"the drain ended before the kill: exit {r.rc}")
    rerun(it, rc=(0, 8))


# Named fault points the matrix kills and stops vmmigrate at, beyond the
# cases above (before-confirm is theirs; --points replaces the list): each
# point is a case
# point-kill-NAME (kill at its first firing, then the same command: exit 0,
# every guest once on b or c) and point-stop-NAME (SIGSTOP there, SIGCONT
# after 5..20 s: exit 0 or 1 — or the guardian ends the stopped run when a
# gated migration is open there — the guest once on a or b, never paused
# longer than budget + 5 s). A point the binary does not have is "n/a".
DEFAULT_POINTS = ["at-gate", "after-step", "before-record"]


def point_cases(points):
    out = []
    for p in points:
        def kill(it, p=p):
            _kill_at_point(it, p, "kill@1")

        def stop(it, p=p):
            r = _stop_at_point(it, p, "stop@1", {"a", "b"})
            if r.rc == -signal.SIGKILL:  # stopped with a gated migration open
                guardian_ended(it, r)
            else:
                it.check_rc(r, {0, 1})
        out.append(Case(kill, f"point-kill-{p}", f"kill -9 at the fault point {p} (its first "
                        "firing), then the same command: exit 0, every guest once on b or c."))
        out.append(Case(stop, f"point-stop-{p}", f"SIGSTOP at the fault point {p}, SIGCONT "
                        "after random 5..20 s: exit 0 or 1, the guest once, not paused."))
    return out


class Case:
    def __init__(self, fn, name=None, doc=None):
        self.fn = fn
        self.name = name or fn.__name__[len("case_"):].replace("_", "-")
        self.doc = doc or " ".join(fn.__doc__.split())


# The cases that pass today run in ctest's short pass (tests/faults/tests.cmake).
CASES = [Case(f) for f in (
    case_kill_mid_copy, case_kill_at_gate, case_kill_after_commit, case_kill_between_vms,
    case_stop_at_gate, case_stop_mid_copy, case_stop_after_commit,
    case_src_libvirtd_kill_at_gate, case_tgt_libvirtd_kill_at_gate,
    case_src_libvirtd_kill_mid_copy, case_tgt_libvirtd_kill_mid_copy,
    case_src_qemu_kill_mid_copy, case_tgt_qemu_kill_mid_copy,
    case_src_qemu_kill_at_gate, case_tgt_qemu_kill_at_gate,
    case_journal_full_before, case_journal_full_during,
    case_journal_torn_first, case_journal_garbage,
    case_hang_tcp_run, case_hang_tcp_plan, case_hung_host_connect, case_hung_host_midrun,
    case_deep_metadata, case_host_exec_inject, case_random_kill_drain5)]


def run_iteration(case, i, seed, root):
    it = Iteration(case, i, seed, root)
    log(f"== {case.name} #{i} (seed {seed})")
    try:
        case.fn(it)
        it.check_invariants()
    except NotApplicable as e:
        it.na = str(e)
        log(f"  n/a: {e}")
    except Exception as e:  # a harness failure counts as a violation, named
        import traceback
        traceback.print_exc()
        it.violate("harness", f"{type(e).__name__}: {e}")
    finally:
        try:
            it.cleanup()
        except Exception as e:
            log(f"cleanup failed: {e}")
    res = it.result()
    res["na"] = getattr(it, "na", None)
    if res["na"]:
        res["pass"] = None
    log(f"== {case.name} #{i}: " + ("n/a" if res["na"] else "pass" if res["pass"] else
                                    f"FAIL {it.violations[0][0]}"))
    return res


def table(results, cases):
    rows = [("case", "runs", "passes", "worst pause", "first violation")]
    for c in cases:
        rs = [r for r in results if r["case"] == c.name]
        if not rs:
            continue
        na = [r for r in rs if r["na"]]
        if len(na) == len(rs):
            rows.append((c.name, "0", "-", "-", f"n/a: {na[0]['na']}"))
            continue
        done = [r for r in rs if not r["na"]]
        passes = sum(1 for r in done if r["pass"])
        pauses = [r["worst_pause_s"] for r in done if r["worst_pause_s"] is not None]
        first = next((r for r in done if not r["pass"]), None)
        fv = (f"#{first['iteration']} {first['violations'][0]['check']}: "
              f"{first['violations'][0]['message']}" if first else "")
        rows.append((c.name, str(len(done)), str(passes),
                     f"{max(pauses):.1f} s" if pauses else "-", fv[:150]))
    w = [max(len(r[k]) for r in rows) for k in range(4)]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(r[k].ljust(w[k]) for k in range(4)) + "  " + r[4])
        if n == 0:
            out.append("  ".join("-" * w[k] for k in range(4)) + "  " + "-" * 15)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--cases", default="", help="comma list of case names (default: all)")
    ap.add_argument("--json", default=None, help="write every iteration's details to FILE")
    ap.add_argument("--points", default=",".join(DEFAULT_POINTS),
                    help="fault points for the point-kill-/point-stop- cases (comma list)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--table-from", default=None, metavar="FILE,...",
                    help="print the table of earlier --json files (merged) and exit")
    a = ap.parse_args()
    all_cases = CASES + point_cases([p for p in a.points.split(",") if p])
    if a.table_from:
        results = []
        for path in a.table_from.split(","):
            with open(path) as f:
                results += json.load(f)["iterations"]
        print(table(results, all_cases))
        return 1 if any(r["pass"] is False for r in results) else 0
    if a.list:
        for c in all_cases:
            print(f"{c.name}: {c.doc}")
        return 0
    cases = all_cases
    if a.cases:
        want = [x.strip() for x in a.cases.split(",") if x.strip()]
        unknown = [x for x in want if x not in {c.name for c in all_cases}]
        if unknown:
            print(f"faults.py: unknown case(s): {', '.join(unknown)} (see --list)",
                  file=sys.stderr)
            return 2
        cases = [c for c in all_cases if c.name in want]
    try:
        hung_forced()
    except ValueError as e:
        print(f"faults.py: {e}", file=sys.stderr)
        return 2
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 30)
    log(f"fault matrix: seed {seed}, {a.iterations} iteration(s) of {len(cases)} case(s); "
        f"replay: --seed {seed} --cases CASE")
    root = tempfile.mkdtemp(prefix="vmm-faults-")

    def interrupted(sig, frame):  # the iteration's cleanup runs, then we stop
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, interrupted)
    lab("up", "3", timeout=300)
    results = []
    for c in cases:
        for i in range(1, a.iterations + 1):
            results.append(run_iteration(c, i, seed, root))
            if a.json:
                with open(a.json, "w") as f:
                    json.dump({"seed": seed, "iterations": results}, f, indent=1)
    print(table(results, cases), flush=True)
    log(f"seed {seed}; details in {a.json or root}")
    return 1 if any(r["pass"] is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
