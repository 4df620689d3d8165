#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run settings from the policy (settings(run)): one migration at a time
(parallel = 1, checked from the event stream), and on_abort = "finish": a
SIGTERM while the first migration runs lets it finish on the target, starts
nothing more (the second guest stays home), and the run exits 5."""
import os
import signal
import tempfile

from labtest import (Guest, Run, SOURCE_DIR, check, check_eq, lab, log, main, uri, vm_entry)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
POLICY = os.path.join(SOURCE_DIR, "tests", "integration", "policies", "settings.lua")


def test_finish_on_sigterm_one_at_a_time():
    lab("up", "2")
    guests = [Guest("a", dirty=0) for _ in range(2)]
    for g in guests:
        g.tag("a", test="settings")
    before = {g.name: g.ticks("a") for g in guests}
    ev = os.path.join(TMP, "settings.ndjson")
    r = Run(["run", "--policy", POLICY, "-s", uri("a"), "-t", uri("b"), "--json", "--events", ev,
             "--journal-dir", os.path.join(TMP, "journal")])
    first = r.wait_event(lambda e: e["event"] == "phase" and e["details"]["phase"] == "migrating",
                         120)["vm"]
    log(f"{first} migrates: SIGTERM")
    r.signal(signal.SIGTERM)
    r.wait(300)
    check_eq(r.rc, 5, "exit code: interrupted")
    rep = r.report()
    check_eq(rep["policy"]["settings"], {"parallel": 1, "on_abort": "finish"}, "settings")
    check_eq((rep["options"]["parallel"], rep["options"]["on_abort"]), (1, "finish"),
             "options in force")
    second = [g.name for g in guests if g.name != first][0]
    check_eq((vm_entry(rep, first)["result"], vm_entry(rep, second)["result"]),
             ("migrated", "skipped"), "the running one finished, the other never started")
    sig = [e for e in r.events() if e["event"] == "signal"]
    check_eq([e["details"] for e in sig], [{"signal": "SIGTERM", "running": "finish"}],
             "signal event")
    starts = [e["vm"] for e in r.events()
              if e["event"] == "phase" and e["details"]["phase"] == "starting"]
    check_eq(starts, [first], "one migration started")
    for g in guests:
        host = "b" if g.name == first else "a"
        g.check_only_on(host)
        g.check_survived_on(host, before[g.name])


def test_second_signal_aborts():
    g = Guest("a", dirty=0)
    g.tag("a", test="settings")
    before = g.ticks("a")
    ev = os.path.join(TMP, "settings2.ndjson")
    r = Run(["run", "--policy", POLICY, "-s", uri("a"), "-t", uri("b"), "--json", "--events", ev,
             "--journal-dir", os.path.join(TMP, "journal")])
    r.wait_event(lambda e: e["event"] == "phase" and e["details"]["phase"] == "migrating", 120)
    r.signal(signal.SIGTERM)
    r.wait_event(lambda e: e["event"] == "signal", 30)
    r.signal(signal.SIGTERM)
    r.wait(300)
    check_eq(r.rc, 5, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("aborted", "source"), "aborted by the second signal")
    check([e["details"]["running"] for e in r.events() if e["event"] == "signal"]
          == ["finish", "abort"], "first finish, then abort")
    g.check_only_on("a")
    g.check_survived_on("a", before)


if __name__ == "__main__":
    main([test_finish_on_sigterm_one_at_a_time, test_second_signal_aborts])
