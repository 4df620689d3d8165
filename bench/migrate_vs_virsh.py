#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark (not a test): migrate the same lab guest back and forth with
`virsh migrate --live --p2p` and with `vmmigrate run`, alternating, and print
the median wall-time ratio vmmigrate/virsh and the downtimes of both.

    bench/migrate_vs_virsh.py [--rounds 10] [--mem 64] [--dirty 4]

Brings up its own lab (VMM_LAB_DIR/VMM_LAB_INDEX default to a bench-only
lab) and tears it down at the end. Target: ratio <= 1.05."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("VMM_LAB_DIR", "/var/tmp/vmmigrate-lab-bench")
os.environ.setdefault("VMM_LAB_INDEX", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import labtest  # noqa: E402
from labtest import Guest, lab, uri  # noqa: E402


def timed(argv):
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return dt, p.stdout


def virsh_downtime(host, name):
    out = subprocess.run(["virsh", "-c", uri(host), "domjobinfo", name, "--completed"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("Total downtime:"):
            return int(line.split()[2])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--mem", type=int, default=64)
    ap.add_argument("--dirty", type=int, default=4)
    a = ap.parse_args()
    lab("up", "2")
    try:
        g = Guest("a", mem=a.mem, dirty=a.dirty)
        # One unmeasured round trip first: the daemons' first migration is slow.
        for src, dst in (("a", "b"), ("b", "a")):
            timed(["virsh", "-c", uri(src), "migrate", "--live", "--p2p", g.name, uri(dst)])
        where = "a"
        times = {"virsh": [], "vmmigrate": []}
        downs = {"virsh": [], "vmmigrate": []}
        for i in range(a.rounds):
            for tool in (("virsh", "vmmigrate") if i % 2 == 0 else ("vmmigrate", "virsh")):
                dst = "b" if where == "a" else "a"
                if tool == "virsh":
                    dt, _ = timed(["virsh", "-c", uri(where), "migrate", "--live", "--p2p",
                                   g.name, uri(dst)])
                    dn = virsh_downtime(dst, g.name)
                else:
                    dt, out = timed([labtest.BINARY, "run", "-s", uri(where), "-t", uri(dst),
                                     "--vm", g.name, "--json", "--no-progress"])
                    dn = json.loads(out)["vms"][0]["downtime_ms"]
                times[tool].append(dt)
                if dn is not None:
                    downs[tool].append(dn)
                print(f"round {i + 1:2d} {tool:9s} {where}->{dst} {dt * 1000:7.0f} ms "
                      f"downtime {dn} ms", flush=True)
                where = dst
        g.check_survived_on(where, 0)
        mv, mm = statistics.median(times["virsh"]), statistics.median(times["vmmigrate"])
        print(f"\nmedian wall time: virsh {mv * 1000:.0f} ms, vmmigrate {mm * 1000:.0f} ms")
        print(f"ratio vmmigrate/virsh (median): {mm / mv:.3f}   (target <= 1.05)")
        for tool in downs:
            if downs[tool]:
                print(f"downtime {tool}: median {statistics.median(downs[tool]):.0f} ms, "
                      f"min {min(downs[tool])}, max {max(downs[tool])}")
    finally:
        Guest.destroy_all()
        lab("down")


if __name__ == "__main__":
    main()
