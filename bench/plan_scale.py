#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark (not a test): `vmmigrate plan` over 10,000 VMs on 500 hosts.

Generates libvirt test-driver inventories (tests/inventory/gen_inventory.py):
400 source hosts with 25 VMs each and 100 empty target hosts, then times
`vmmigrate plan --policy policies/evacuate.lua` over all of them, several
times, and splits the wall time with the event stream's timestamps:
connecting (libvirt's test driver parses its XML files here), inventory,
and planning (policy decide() for every VM + placement + order).

    bench/plan_scale.py [--runs 5] [--sources 400] [--vms 25] [--targets 100]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("VMM_BINARY", os.path.join(ROOT, "build", "vmmigrate"))


def gen(outdir, hosts, vms, seed):
    out = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "inventory",
                                                           "gen_inventory.py"),
                          "--hosts", str(hosts), "--vms", str(vms), "--seed", str(seed),
                          outdir], capture_output=True, text=True, check=True).stdout
    return [l.strip() for l in out.splitlines() if l.startswith("test:///")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sources", type=int, default=400)
    ap.add_argument("--vms", type=int, default=25)
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--policy", default=os.path.join(ROOT, "policies", "evacuate.lua"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vmm-plan-bench-")
    src = gen(os.path.join(tmp, "src"), a.sources, a.vms, 1)
    dst = gen(os.path.join(tmp, "dst"), a.targets, 0, 2)
    args = [BINARY, "plan", "--policy", a.policy, "--json", "--events",
            os.path.join(tmp, "events.ndjson")]
    for u in src:
        args += ["-s", u]
    for u in dst:
        args += ["-t", u]
    walls, connects, inventories = [], [], []
    for i in range(a.runs):
        ev = os.path.join(tmp, "events.ndjson")
        if os.path.exists(ev):
            os.unlink(ev)
        t0 = time.monotonic()
        p = subprocess.run(args, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit(f"plan failed ({p.returncode}): {p.stderr[:500]}")
        rep = json.loads(p.stdout)
        evs = [json.loads(l) for l in open(ev)]
        t_start = evs[0]["ts_ms"]
        t_conn = max(e["ts_ms"] for e in evs if e["event"] == "connected")
        t_plan = next(e["ts_ms"] for e in evs if e["event"] == "plan")
        t_inv = t_plan - t_conn
        walls.append(wall)
        connects.append((t_conn - t_start) / 1000)
        inventories.append(t_inv / 1000)
        s = rep["plan"]["summary"]
        print(f"run {i + 1}: wall {wall:.2f} s; connect {connects[-1]:.2f} s, inventory+plan "
              f"{inventories[-1]:.2f} s; {s['vms']} VMs: {s['migrate']} migrate, {s['leave']} "
              f"leave, {s['refused']} refused, {s['error']} errors", flush=True)
    print(f"\nmedian over {a.runs} runs, {a.sources * a.vms} VMs on {a.sources + a.targets} hosts:")
    print(f"  wall time                      {statistics.median(walls):.2f} s")
    print(f"  connecting (test driver opens) {statistics.median(connects):.2f} s")
    print(f"  inventory + policy + placement {statistics.median(inventories):.2f} s")


if __name__ == "__main__":
    main()
