#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Live migration on the lab: A->B (peer-to-peer) and back (client-driven)
with the guest's tick counter continuing; two VMs concurrently; events from
an extra QMP monitor. Checks what an operator would: where the guest runs,
whether its counter continued, what the JSON report and events say, the exit
code."""
import os
import tempfile

from labtest import (Guest, Run, check, check_eq, check_in, main, uri, vm_entry)

TMP = tempfile.mkdtemp(prefix="vmm-it-")


def test_there_and_back():
    g = Guest("a")
    before = g.ticks("a")
    ev = os.path.join(TMP, "there.ndjson")
    r = Run(["run", "--source", uri("a"), "--target", uri("b"), "--vm", g.name, "--json",
             "--events", ev]).wait()
    check_eq(r.rc, 0, "exit code of a->b")
    rep = r.report()
    check_eq(rep["result"], "ok", "run result")
    v = vm_entry(rep, g.name)
    check_eq(v["result"], "migrated", "VM result")
    check_eq(v["location"], "target", "VM location")
    check(v["bytes"]["transferred"] > 32 * 1024 * 1024,
          f"bytes transferred {v['bytes']['transferred']} > 32 MiB (RAM is filled)")
    check(v["downtime_ms"] is not None, "downtime reported")
    check(v["total_ms"] > 0, "total time reported")
    check_eq([p["phase"] for p in v["phases"]][:2], ["starting", "migrating"], "first phases")
    check_eq(v["phases"][-1]["phase"], "migrated", "last phase")
    g.check_runs_only_on("b")
    after_b = g.check_survived_on("b", before)

    events = r.events()
    names = [e["event"] for e in events]
    check_eq(names[0], "run.started", "first event")
    check_eq(names[-1], "run.finished", "last event")
    check_in("libvirt.job-completed", names, "events")
    res = [e for e in events if e["event"] == "result"]
    check_eq(len(res), 1, "result events")
    check_eq(res[0]["details"]["location"], "target", "result event location")

    # ... and back, client-driven this time.
    r = Run(["run", "--source", uri("b"), "--target", uri("a"), "--vm", g.name, "--direct",
             "--json"]).wait()
    check_eq(r.rc, 0, "exit code of b->a")
    v = vm_entry(r.report(), g.name)
    check_eq(v["result"], "migrated", "VM result b->a")
    check_eq(r.report()["options"]["mode"], "direct", "mode in report")
    g.check_runs_only_on("a")
    g.check_survived_on("a", after_b)


def test_two_concurrently():
    g1, g2 = Guest("a"), Guest("a")
    t1, t2 = g1.ticks("a"), g2.ticks("a")
    ev = os.path.join(TMP, "two.ndjson")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g1.name, "--vm", g2.name,
             "--parallel", "2", "--json", "--events", ev]).wait()
    check_eq(r.rc, 0, "exit code")
    rep = r.report()
    check_eq(rep["summary"]["migrated"], 2, "migrated count")
    # Both were migrating at the same time: each started before either ended.
    events = r.events()
    starts = [i for i, e in enumerate(events)
              if e["event"] == "phase" and e["details"]["phase"] == "migrating"]
    ends = [i for i, e in enumerate(events) if e["event"] == "result"]
    check_eq(len(starts), 2, "migrating phases")
    check(max(starts) < min(ends), f"both started (events {starts}) before one ended ({ends})")
    for g, t in ((g1, t1), (g2, t2)):
        g.check_runs_only_on("b")
        g.check_survived_on("b", t)


def test_qmp_monitor_events():
    g = Guest("a", qmp=True)
    before = g.ticks("a")
    ev = os.path.join(TMP, "qmp.ndjson")
    r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--qmp-socket",
             f"{g.name}={g.qmp_path('a')}", "--events", ev]).wait()
    check_eq(r.rc, 0, "exit code")
    names = [e["event"] for e in r.events() if e["vm"] == g.name]
    check_in("qmp.connected", names, "events")
    check_in("qmp.MIGRATION", names, "events from the extra QMP monitor")
    statuses = [e["details"]["data"].get("status") for e in r.events()
                if e["event"] == "qmp.MIGRATION"]
    check_in("completed", statuses, "QMP MIGRATION statuses")
    g.check_runs_only_on("b")
    g.check_survived_on("b", before)


if __name__ == "__main__":
    main([test_there_and_back, test_two_concurrently, test_qmp_monitor_events])
