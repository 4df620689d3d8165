#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kill -9 of vmmigrate at several points of a drain, then the same command
again, as an operator would after a crash. Each scenario drains its own
guests (64 MiB, on host a, onto b and c) with drain-crash.lua: network-
critical migrations whose features "mark" and "mark2" log every step they
run (STEP VM PID FEATURE) to a file. The run is SIGKILLed

  mid-copy       while libvirt copies memory (bandwidth-capped),
  in the gate    while a VM holds at the commit gate (mark's gate waits for a
                 marker file the test creates only after the kill),
  after commit   after the commit decision is journaled, between libvirt's
                 Finish and Confirm (fault point before-confirm),
  between VMs    once one VM is wholly done (result, after steps journaled),
                 with --parallel 1,

then re-run with the same command line (without the fault) to the end; once
more in the gate, with an operator's `vmmigrate recover --policy` before the
re-run.
Afterwards: every guest runs on exactly one lab host and is defined nowhere
else, paused nowhere, its tick counter continued; host a is empty; the
re-run exits 0; `vmmigrate status` agrees with where every guest runs; the
reports and events validate. Owed deinits: a migration the crash left open
whose guest ended back on its source has each feature's deinit run once, in
reverse order, by the re-run (event recovered.deinit) or by that recover, and
never again (a later `vmmigrate recover --policy` does nothing); one that
ended on the target owes no deinit, but its after steps if the kill came
before them: every committed migration has each after step exactly once. Failures of the owed-deinit checks are
reported apart ("owed deinits: ...") from the placement invariants."""
import json
import os
import signal
import sys
import tempfile
import time

from labtest import (NO_GUARDIAN, Guest, Run, check, check_eq, check_in, lab, log, main, uri,
                     validate, vmmigrate, with_faults)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies", "drain-crash.lua")
FEATURES = ["mark", "mark2"]
HOSTS = ["a", "b", "c"]
N = 5


class DeinitFailure(AssertionError):
    """A check of the owed deinits (journal's "started" features, deinit
    after a crash) failed: reported apart from the placement invariants."""


def check_deinit(cond, what):
    if not cond:
        raise DeinitFailure(f"owed deinits: check failed: {what}")


def read_events(path, torn_ok=False):
    """The NDJSON events of a run; a killed run may leave a torn last line."""
    evs = []
    if not os.path.exists(path):
        return evs
    with open(path) as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        if torn_ok and n == len(lines) and not line.endswith("\n"):
            log(f"{path}: torn last line ignored: {line!r}")
            break
        try:
            evs.append(json.loads(line))
        except ValueError as e:
            raise AssertionError(f"{path}:{n}: not JSON ({e}): {line!r}")
    return evs


def validate_events(evs, skip=()):
    for e in evs:
        if e["event"] not in skip:
            validate(e, "event")


def journal_records(journal):
    """Every journal record in DIR, file by file in name (= time) order."""
    recs = []
    if not os.path.isdir(journal):
        return recs
    for name in sorted(os.listdir(journal)):
        if name.endswith(".ndjson"):
            with open(os.path.join(journal, name)) as f:
                for line in f:
                    if line.endswith("\n"):
                        recs.append(json.loads(line))
    return recs


def host_of(u):
    for h in HOSTS:
        if uri(h) == u:
            return h
    raise AssertionError(f"not a lab host URI: {u}")


def state(host, name):
    return lab("virsh", host, "domstate", name, "--reason", check_rc=False)


class Scenario:
    """N guests on a, their own journal dir, mark log and events files."""

    def __init__(self, name, parallel=2, dirty=4, hold=False, extra=(), expect_open=True):
        self.name = name
        self.expect_open = expect_open
        self.pre_recover = None  # a `vmmigrate recover --policy` between kill and re-run
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        self.journal = os.path.join(self.dir, "journal")
        self.marks = os.path.join(self.dir, "marks.log")
        self.marker = os.path.join(self.dir, "go") if hold else None
        self.guests = [Guest("a", dirty=dirty) for _ in range(N)]
        tags = {"test": "crash", "log": self.marks}
        if hold:
            tags["hold"] = self.marker
        for g in self.guests:
            g.tag("a", **tags)
        self.before = {g.name: g.ticks("a") for g in self.guests}
        self.args = ["run", "--policy", POLICY, "-s", uri("a"), "-t", uri("b"), "-t", uri("c"),
                     "--parallel", str(parallel), "--journal-dir", self.journal, "--json",
                     *extra]
        self.first = self.second = None

    def start_first(self, env=None):
        """The run to be killed, with extra environment (fault injection),
        without its guardian: what the re-run settles is the point."""
        env = with_faults(env, NO_GUARDIAN)
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            self.first = Run(self.args + ["--events", os.path.join(self.dir, "first.ndjson")])
        finally:
            for k, v in saved.items():
                if v is None:
                    del os.environ[k]
                else:
                    os.environ[k] = v
        return self.first

    def kill_first(self):
        self.first.proc.send_signal(signal.SIGKILL)
        if self.marker:  # lets an orphaned hold loop end at once
            open(self.marker, "w").close()
        self.first.wait(60)
        check_eq(self.first.rc, -signal.SIGKILL, "the first run died of SIGKILL")
        for g in self.guests:
            log(f"after the kill: {g.name}: {g.where()}")

    def recover_first(self):
        """An operator's `vmmigrate recover --policy` before the re-run: it
        settles what the kill left open and runs the owed deinits itself."""
        self.pre_recover = vmmigrate("recover", "--journal-dir", self.journal, "--policy", POLICY,
                                     "--json")
        log(f"recover: {self.pre_recover.stdout.strip()}")

    def rerun(self):
        self.second = Run(self.args + ["--events", os.path.join(self.dir, "second.ndjson")])
        self.second.wait(900)
        return self.second

    def marks_lines(self):
        if not os.path.exists(self.marks):
            return []
        with open(self.marks) as f:
            return [tuple(line.split()) for line in f if line.strip()]

    # -- the checks --------------------------------------------------------

    def verify(self):
        names = {g.name for g in self.guests}
        pid1, pid2 = self.first.proc.pid, self.second.proc.pid
        ev1 = read_events(self.first.events_path, torn_ok=True)
        validate_events(ev1)
        ev2 = read_events(self.second.events_path)
        validate_events(ev2, skip=("recovered.deinit",))
        recs = journal_records(self.journal)
        run1 = [r for r in recs if r.get("run", "").endswith(f"-{pid1}")]
        check(run1, f"the killed run (PID {pid1}) left a journal")
        run1_id = run1[0]["run"]

        # What the killed run did: finished migrations, and those it left open.
        done1 = {e["vm"]: e["details"] for e in ev1 if e["event"] == "result"}
        for vm, d in done1.items():
            check_eq(d["result"], "migrated", f"the killed run's result for {vm}")
        started1 = {r["vm"]: r for r in run1 if r["record"] == "started"}
        finished1 = {r["vm"] for r in run1 if r["record"] == "finished"}
        open1 = set(started1) - finished1
        last1 = {}
        for r in run1:
            last1[r["vm"]] = r["record"]
        log(f"{self.name}: killed run {run1_id}: finished {sorted(finished1)}, left open "
            f"{ {vm: last1[vm] for vm in sorted(open1)} }")
        if self.expect_open:
            check(open1, "the kill left at least one migration open")
        check(set(started1) <= names and set(done1) <= names, "only our guests moved")

        # Who settled what the kill left open: the re-run (events
        # "recovered"), or a `recover --policy` before it.
        settler, pre_error = pid2, None
        recovered = [e["details"] for e in ev2 if e["event"] == "recovered"]
        rerun_recovered = recovered
        if self.pre_recover:
            try:
                check_eq(self.pre_recover.rc, 0, "exit code of recover --policy "
                         f"(stderr: {self.pre_recover.stderr.strip()})")
                recovered = json.loads(self.pre_recover.stdout)["recovered"]
                settler = self.pre_recover.proc.pid
            except (AssertionError, ValueError) as e:
                # Then the re-run settled it all: checked as such, and this
                # failure reported with the owed deinits.
                pre_error = f"owed deinits: recover --policy before the re-run: {e}"
                log(pre_error)
        for d in recovered:
            log(f"settled {d['vm']}: found {d['found']}: {d['action']}")
        on_target = {d["vm"] for d in recovered if d["found"]["target"] == "running"}
        on_source = open1 - on_target
        rep = self.second.report()
        moved2 = {v["name"]: v for v in rep["vms"] if v["name"] in names}
        final = {}
        for vm in set(done1) | on_target:
            final[vm] = host_of(started1[vm]["target"])
        for vm, v in moved2.items():
            final[vm] = host_of(v["target"])
        log(f"{self.name}: placement {final}")

        # Independent groups of checks: each one runs, the failures add up.
        failures, deinit_failures = [], []

        def section(fn):
            try:
                fn()
            except DeinitFailure as e:
                deinit_failures.append(f"{fn.__name__}: {e}")
                log(f"{self.name}: {fn.__name__}: {e}")
            except AssertionError as e:
                failures.append(f"{fn.__name__}: {e}")
                log(f"{self.name}: {fn.__name__}: {e}")

        def rerun_settled_and_drained():
            check_eq(self.second.rc, 0, "exit code of the re-run")
            check_eq(sorted(d["vm"] for d in recovered), sorted(open1),
                     "each open migration settled once")
            if recovered is not rerun_recovered:
                check_eq(rerun_recovered, [], "the re-run found nothing left to settle")
            for d in recovered:
                check(d["ok"], f"settled without an operator: {d}")
            check_eq(sorted(moved2), sorted(names - set(done1) - on_target),
                     "the re-run moved exactly the guests still on a")
            for vm, v in moved2.items():
                check_eq((v["result"], v["location"]), ("migrated", "target"),
                         f"the re-run's result for {vm}")

        def every_guest_once():
            for g in self.guests:
                check(final.get(g.name) in ("b", "c"), f"{g.name} ends on b or c: {final}")
                g.check_only_on(final[g.name])
                g.check_survived_on(final[g.name], self.before[g.name])
            check_eq(lab("virsh", "a", "list", "--all", "--name").strip(), "",
                     "host a is empty")

        def journal_is_reality():
            st = vmmigrate("status", "--journal-dir", self.journal, "--json")
            check_eq(st.rc, 0, "status exit code")
            runs = json.loads(st.stdout)["runs"]
            check(all(r["finished"] for r in runs),
                  f"every run settled in the journal: {[r for r in runs if not r['finished']]}")
            last = {}
            for r in runs:
                for vm, v in r["vms"].items():
                    last[vm] = (r["id"], v)
            for g in self.guests:
                run_id, v = last[g.name]
                check_eq((v["state"], v.get("location"), host_of(v["target"])),
                         ("recovered" if g.name in on_target else "finished", "target",
                          final.get(g.name)), f"status of {g.name} (run {run_id})")
            for vm in on_source:
                v = next(r for r in runs if r["id"] == run1_id)["vms"][vm]
                check_eq((v["state"], v.get("location")), ("recovered", "source"),
                         f"status of {vm} in the killed run")
            # A recover afterwards finds nothing (the re-run settled it all).
            again = vmmigrate("recover", "--journal-dir", self.journal, "--json")
            check_eq(again.rc, 0, f"recover exit code (stderr: {again.stderr.strip()})")
            check_eq(json.loads(again.stdout)["recovered"], [], "recover has nothing left to do")

        def feature_steps():
            self.verify_marks(pid1, pid2, set(done1), on_target, set(moved2) - on_source)

        def owed_deinits():
            if pre_error:
                raise DeinitFailure(pre_error)
            self.verify_deinits(pid1, settler, run1_id, on_source,
                                ev2 if settler == pid2 else None)

        for fn in (rerun_settled_and_drained, every_guest_once, journal_is_reality,
                   feature_steps, owed_deinits):
            section(fn)
        if failures:
            raise AssertionError("; ".join(failures + deinit_failures))
        if deinit_failures:
            raise DeinitFailure("; ".join(deinit_failures))

    def verify_marks(self, pid1, pid2, done1, on_target, fresh):
        """The feature steps other than deinit, from the mark log: one normal
        attempt per guest, plus the killed one."""
        lines = self.marks_lines()
        for ln in lines:
            check(len(ln) == 4 and ln[0] in ("prepare", "gate", "after", "deinit"),
                  f"a mark line: {ln}")
        p1, p2 = str(pid1), str(pid2)

        def steps(vm, feature, pid=None):
            return [ln[0] for ln in lines
                    if ln[1] == vm and ln[3] == feature and (pid is None or ln[2] == pid)]

        for g in self.guests:
            vm = g.name
            for f in FEATURES:
                log(f"marks {vm} {f}: " + " ".join(
                    f"{ln[0]}@{'run1' if ln[2] == p1 else 'rerun' if ln[2] == p2 else ln[2]}"
                    for ln in lines if ln[1] == vm and ln[3] == f))
        # Placement-level facts first: a normal attempt, once.
        for g in self.guests:
            vm = g.name
            for f in FEATURES:
                if vm in done1:
                    # The after step runs once the result is out: if the kill
                    # came first, the re-run does it (owed), so once in all.
                    check_eq(steps(vm, f), ["prepare", "gate", "after"],
                             f"{f} of {vm}, moved by the killed run")
                    if steps(vm, f, p1) != ["prepare", "gate", "after"]:
                        log(f"note: {f} of {vm}: the kill came before its after step; "
                            "the re-run did it")
                elif vm in fresh:
                    check_eq(steps(vm, f), ["prepare", "gate", "after"],
                             f"{f} of {vm}, moved by the re-run only")
                    check_eq(steps(vm, f, p2), ["prepare", "gate", "after"],
                             f"{f} of {vm} ran in the re-run")
                elif vm in on_target:
                    check_eq([s for s in steps(vm, f, p1) if s != "after"], ["prepare", "gate"],
                             f"{f} of {vm}: the killed run got to its gate")
                    # committed: the after step, owed if the kill came first,
                    # runs once in all; no second attempt
                    check_eq(steps(vm, f), ["prepare", "gate", "after"],
                             f"{f} of {vm}: its one attempt, after step included")
                else:  # on_source: a second, normal attempt by the re-run
                    check_eq([s for s in steps(vm, f, p2) if s != "deinit"],
                             ["prepare", "gate", "after"], f"{f} of {vm}: the re-run's attempt")
                    check(set(steps(vm, f, p1)) <= {"prepare", "gate"}
                          and len(steps(vm, f, p1)) <= 2,
                          f"{f} of {vm}: the killed run got no further than its gate: "
                          f"{steps(vm, f, p1)}")

    def verify_deinits(self, pid1, settler, run1_id, on_source, ev2):
        """Owed deinits: once, in reverse order, by whoever settled the killed
        run (the re-run, or recover before it: PID settler); never again. ev2:
        the re-run's events when it was the re-run, else None."""
        lines = self.marks_lines()
        p1, p2 = str(pid1), str(self.second.proc.pid)
        ps = str(settler)
        deinit_evs = [e for e in ev2 or [] if e["event"] == "recovered.deinit"]
        for g in self.guests:
            vm = g.name
            mine = [i for i, ln in enumerate(lines) if ln[1] == vm]
            dein = [i for i in mine if lines[i][0] == "deinit"]
            if vm not in on_source:
                check_deinit(dein == [], f"no deinit for {vm} (it never went back to a): "
                             f"{[lines[i] for i in dein]}")
                check_deinit(not [e for e in deinit_evs if e["vm"] == vm],
                             f"no recovered.deinit event for {vm}")
                continue
            check_deinit([lines[i][3] for i in dein] == list(reversed(FEATURES)),
                         f"{vm} back on a: each feature's deinit once, in reverse order: "
                         f"{[lines[i] for i in dein]} (recovered.deinit events: "
                         f"{[e['details'] for e in deinit_evs if e['vm'] == vm]})")
            check_deinit(all(lines[i][2] == ps for i in dein),
                         f"{vm}: {'the re-run' if ps == p2 else 'recover'} ran the owed deinits: "
                         f"{[lines[i] for i in dein]}")
            first2 = [i for i in mine if lines[i][2] == p2 and lines[i][0] == "prepare"]
            last1 = [i for i in mine if lines[i][2] == p1]
            check_deinit(dein and (not last1 or max(last1) < min(dein))
                         and first2 and max(dein) < min(first2),
                         f"{vm}: deinits after the killed attempt, before the new one")
            if ev2 is None:
                continue  # recover ran them: no event stream
            evs = [e for e in deinit_evs if e["vm"] == vm]
            check_deinit(len(evs) == 1, f"one recovered.deinit event for {vm}: {evs}")
            d = evs[0]["details"]
            check_deinit(d.get("run") == run1_id, f"recovered.deinit of run {run1_id}: {d}")
            feats = d.get("features")
            fnames = ([x.get("name") for x in feats] if isinstance(feats, list)
                      else sorted(feats) if isinstance(feats, dict) else None)
            check_deinit(sorted(fnames or []) == sorted(FEATURES),
                         f"recovered.deinit lists the features: {d}")
        try:
            validate_events(deinit_evs)
        except AssertionError as e:
            raise DeinitFailure(f"owed deinits: {e}")
        # Never twice: a later recover with the policy runs nothing.
        before = len(lines)
        again = vmmigrate("recover", "--journal-dir", self.journal, "--policy", POLICY, "--json")
        check_deinit(again.rc == 0, f"recover --policy exit code {again.rc} "
                     f"(stderr: {again.stderr.strip()})")
        check_deinit(json.loads(again.stdout)["recovered"] == [],
                     f"recover --policy has nothing left to do: {again.stdout.strip()}")
        check_deinit(len(self.marks_lines()) == before,
                     f"recover --policy ran no step: {self.marks_lines()[before:]}")


def wait_journal(journal, pred, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for r in journal_records(journal):
            if pred(r):
                return r
        if proc.poll() is not None:
            raise AssertionError(f"vmmigrate exited ({proc.returncode}) before the record")
        time.sleep(0.1)
    raise AssertionError("timed out waiting for a journal record")


def test_kill_mid_copy():
    """Killed while libvirt copies a VM (bandwidth-capped, a clean working
    set so it converges): the gated (client-driven) migration ends on the
    source, or, had libvirt finished it by itself, on the target."""
    lab("up", "3")
    s = Scenario("mid-copy", dirty=0, extra=("--bandwidth", "16"))
    r = s.start_first()
    ev = r.wait_event(lambda e: e["event"] == "progress" and e["details"]["data_processed"] > 0,
                      120)
    log(f"in flight: {ev['vm']} {ev['details']['data_processed']} bytes copied")
    s.kill_first()
    s.rerun()
    s.verify()


def test_kill_in_the_gate():
    """Killed while a VM holds at the commit gate (its first attempt only):
    the re-run resumes it on a, runs its deinits once, migrates it again."""
    lab("up", "3")
    s = Scenario("gate", hold=True)
    r = s.start_first()
    ev = r.wait_event(lambda e: e["event"] == "phase" and e["details"]["phase"] == "gate", 180)
    log(f"at the gate: {ev['vm']}")
    time.sleep(0.5)
    check_in("paused", state("a", ev["vm"]), "the source waits paused at the gate")
    s.kill_first()
    s.rerun()
    s.verify()


def test_kill_in_the_gate_recover_first():
    """The same, but an operator runs `vmmigrate recover --policy` before
    the re-run: recover runs the owed deinits, the re-run none again."""
    lab("up", "3")
    s = Scenario("gate-recover", hold=True)
    r = s.start_first()
    ev = r.wait_event(lambda e: e["event"] == "phase" and e["details"]["phase"] == "gate", 180)
    log(f"at the gate: {ev['vm']}")
    time.sleep(0.5)
    s.kill_first()
    s.recover_first()
    s.rerun()
    s.verify()


def test_kill_after_commit_decided():
    """Killed between libvirt's Finish and Confirm, the commit journaled:
    the guest runs on the target; the re-run removes the stale paused copy
    on a, owes no deinit, and drains the rest."""
    lab("up", "3")
    s = Scenario("after-commit")
    r = s.start_first(env={"VMM_FAULT": "before-confirm:sleep=20000"})
    rec = wait_journal(s.journal, lambda x: x["record"] == "commit-decided", r.proc, 180)
    vm, target = rec["vm"], host_of(rec["target"])
    log(f"commit decided: {vm} -> {target}")
    for _ in range(150):  # Finish takes a moment; then the fault holds Confirm back
        if state(target, vm).startswith("running"):
            break
        time.sleep(0.1)
    log(f"before the kill: a={state('a', vm)!r} {target}={state(target, vm)!r}")
    check(state(target, vm).startswith("running"), f"{vm} runs on {target} before Confirm")
    s.kill_first()
    s.rerun()
    s.verify()


def test_kill_between_vms():
    """--parallel 1, killed once one VM is wholly done: its result out and
    its after steps journaled (after-done); the next may have started by
    then. Waiting for the record, not only the result, keeps the kill off
    the boundary between the after steps and their record, where when it
    lands would depend on the machine's speed."""
    lab("up", "3")
    s = Scenario("between", parallel=1, expect_open=False)
    r = s.start_first()
    ev = r.wait_event(lambda e: e["event"] == "result", 180)
    wait_journal(s.journal, lambda x: x["record"] == "after-done" and x["vm"] == ev["vm"],
                 r.proc, 180)
    s.kill_first()
    log(f"killed after the result and after-done of {ev['vm']}")
    s.rerun()
    s.verify()


if __name__ == "__main__":
    # Arguments pick scenarios by part of their name (e.g. "gate").
    tests = [test_kill_mid_copy, test_kill_in_the_gate, test_kill_in_the_gate_recover_first,
             test_kill_after_commit_decided, test_kill_between_vms]
    main([t for t in tests if not sys.argv[1:] or any(a in t.__name__ for a in sys.argv[1:])])
