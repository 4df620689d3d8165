#!/usr/bin/python3
"""A host drain within concurrency budgets: 12 guests on host a, drained by
evacuate.lua onto b and c with --parallel 4 --max-out 2 --max-in 1. The
event stream shows at no moment more than 2 migrations leaving a or more
than 1 arriving at b or at c; every guest ends on exactly one host with its
counter continuing; a is empty at the end."""
import os
import tempfile

from labtest import Guest, Run, SOURCE_DIR, check, check_eq, lab, log, main, uri

TMP = tempfile.mkdtemp(prefix="vmm-it-")
N = 12


def test_drain_within_budgets():
    lab("up", "3")
    guests = [Guest("a") for _ in range(N)]
    before = {g.name: g.ticks("a") for g in guests}
    ev = os.path.join(TMP, "drain.ndjson")
    r = Run(["run", "--policy", os.path.join(SOURCE_DIR, "policies", "evacuate.lua"),
             "-s", uri("a"), "-t", uri("b"), "-t", uri("c"), "--parallel", "4",
             "--max-out", "2", "--max-in", "1", "--json", "--events", ev]).wait(600)
    check_eq(r.rc, 0, "exit code")
    rep = r.report()
    names = {g.name for g in guests}
    ours = [v for v in rep["vms"] if v["name"] in names]
    check_eq(len(ours), N, "every guest was migrated")
    # Replay the events: who is in flight, out of which host, into which.
    target_of = {v["name"]: v["target"] for v in ours}
    out_a, into = 0, {uri("b"): 0, uri("c"): 0}
    peak_out, peak_in = 0, {uri("b"): 0, uri("c"): 0}
    for e in r.events():
        if e["vm"] not in names:
            continue
        t = target_of[e["vm"]]
        if e["event"] == "phase" and e["details"]["phase"] == "starting":
            out_a += 1
            into[t] += 1
        elif e["event"] == "result":
            out_a -= 1
            into[t] -= 1
        peak_out = max(peak_out, out_a)
        peak_in[t] = max(peak_in[t], into[t])
    log(f"peaks: out of a {peak_out}, into {peak_in}")
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
