#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A host drain within concurrency budgets, watched as a dashboard would: 12 guests on host a, drained by
evacuate.lua onto b and c with --parallel 4 --max-out 2 --max-in 1. The
event stream shows at no moment more than 2 migrations leaving a or more
than 1 arriving at b or at c; every guest ends on exactly one host with its
counter continuing; a is empty at the end."""
import json
import os
import re
import tempfile
import time

from labtest import (Guest, Run, SOURCE_DIR, check, check_eq, check_in, lab, log, main, uri,
                     validate)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
N = 12


def test_drain_within_budgets():
    lab("up", "3")
    guests = [Guest("a") for _ in range(N)]
    before = {g.name: g.ticks("a") for g in guests}
    ev = os.path.join(TMP, "drain.ndjson")
    status_file = os.path.join(TMP, "status.json")
    metrics_file = os.path.join(TMP, "vmmigrate.prom")
    r = Run(["run", "--policy", os.path.join(SOURCE_DIR, "policies", "evacuate.lua"),
             "-s", uri("a"), "-t", uri("b"), "-t", uri("c"), "--parallel", "4",
             "--max-out", "2", "--max-in", "1", "--json", "--events", ev,
             "--status-file", status_file, "--metrics-file", metrics_file])
    # Read both files as often as possible while the run goes on: each read
    # must parse (atomic rewrites), whatever the moment.
    reads, seen_states, peak_flight = 0, set(), 0
    metric = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$')
    flight = re.compile(r'^vmmigrate_in_flight\{source="%s"\} ([0-9]+)$' % re.escape(uri("a")))
    while r.proc.poll() is None:
        if os.path.exists(status_file):
            with open(status_file) as f:
                st = json.load(f)
            validate(st, "status")
            seen_states.update(v["state"] for v in st["vms"])
            reads += 1
        if os.path.exists(metrics_file):
            with open(metrics_file) as f:
                for line in f:
                    if not line.startswith("#"):
                        check(metric.match(line.rstrip("\n")), f"a Prometheus line: {line!r}")
                    m = flight.match(line)
                    if m:  # in flight = what --parallel limits
                        check(int(m.group(1)) <= 4, f"in flight within --parallel 4: {line!r}")
                        peak_flight = max(peak_flight, int(m.group(1)))
        time.sleep(0.05)
    r.wait(600)
    log(f"{reads} status reads, states seen: {sorted(seen_states)}")
    check(reads > 5, f"read the status file during the run ({reads} times)")
    check("migrating" in seen_states, f"saw migrations in flight: {seen_states}")
    with open(status_file) as f:
        st = json.load(f)
    check_eq((st["run"]["state"], st["run"]["exit_code"], st["summary"]["migrated"]),
             ("finished", 0, N), "the final status")
    with open(metrics_file) as f:
        prom = f.read()
    src = f'source="{uri("a")}"'
    check_in(f'vmmigrate_migrations{{{src},state="migrated"}} {N}', prom, "metrics")
    check_in(f"vmmigrate_run_running{{{src}}} 0", prom, "metrics")
    check_in(f"vmmigrate_in_flight{{{src}}} 0", prom, "metrics")
    check(peak_flight > 0, f"the metrics saw migrations in flight (peak {peak_flight})")
    check_eq(r.rc, 0, "exit code")
    rep = r.report()
    names = {g.name for g in guests}
    ours = [v for v in rep["vms"] if v["name"] in names]
    check_eq(len(ours), N, "every guest was migrated")
    # Replay the events: who is in flight, out of which host, into which. A
    # migration holds its slots from "starting" until the guest runs on the
    # target (phase "on-target": the source's clean-up is not counted) or,
    # if it never gets there, its result.
    target_of = {v["name"]: v["target"] for v in ours}
    out_a, into = 0, {uri("b"): 0, uri("c"): 0}
    peak_out, peak_in = 0, {uri("b"): 0, uri("c"): 0}
    holding, on_target_seen = set(), 0
    for e in r.events():
        if e["vm"] not in names:
            continue
        t = target_of[e["vm"]]
        phase = e["details"].get("phase") if e["event"] == "phase" else None
        if phase == "starting":
            out_a += 1
            into[t] += 1
            holding.add(e["vm"])
        elif (phase == "on-target" or e["event"] == "result") and e["vm"] in holding:
            on_target_seen += phase == "on-target"
            holding.discard(e["vm"])
            out_a -= 1
            into[t] -= 1
        peak_out = max(peak_out, out_a)
        peak_in[t] = max(peak_in[t], into[t])
    log(f"peaks: out of a {peak_out}, into {peak_in}; {on_target_seen} freed their slots "
        "on-target")
    # libvirt's "resumed" event on the target normally comes well before the
    # migration call returns (the source QEMU's exit is waited for); under
    # odd timing it may come after the result, which then frees the slots.
    check(on_target_seen > 0, f"slots were freed on-target ({on_target_seen} of {N})")
    check(peak_out <= 2, f"at most 2 out of a at once (peak {peak_out})")
    check(all(p <= 1 for p in peak_in.values()), f"at most 1 into b or c at once ({peak_in})")
    check_eq(peak_out, 2, "the budget out of a was used")
    counts = {uri("b"): 0, uri("c"): 0}
    for v in ours:
        counts[v["target"]] += 1
    check(min(counts.values()) > 0, f"both targets used: {counts}")
    for g in guests:
        host = "b" if target_of[g.name] == uri("b") else "c"
        g.check_only_on(host)
        g.check_survived_on(host, before[g.name])
    check_eq(lab("virsh", "a", "list", "--name").strip(), "", "host a is empty")


if __name__ == "__main__":
    main([test_drain_within_budgets])
