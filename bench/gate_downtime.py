#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark (not a test): what the commit gate costs. The same lab guest
migrates back and forth, alternating: ungated (urgent, peer-to-peer),
gated with no features (network-critical), gated with a policy feature that
is already satisfied (tests/integration/policies/gate.lua, test=ok), and
`virsh migrate --live --p2p`. Prints median total time and downtime of each,
and the gate's extra downtime (gated minus ungated; target <= 20 ms).

    bench/gate_downtime.py [--rounds 8] [--mem 64] [--dirty 4]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("VMM_LAB_DIR", "/var/tmp/vmmigrate-lab-bench")
os.environ.setdefault("VMM_LAB_INDEX", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import labtest  # noqa: E402
from labtest import Guest, lab, uri  # noqa: E402

POLICY = os.path.join(HERE, "..", "tests", "integration", "policies", "gate.lua")


def run(argv):
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({p.returncode}): {p.stderr.strip()}")
    return dt, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--mem", type=int, default=64)
    ap.add_argument("--dirty", type=int, default=4)
    a = ap.parse_args()
    lab("up", "2")
    modes = ["ungated", "gated", "gated+feature", "virsh"]
    wall = {m: [] for m in modes}
    down = {m: [] for m in modes}
    held = []
    try:
        g = Guest("a", mem=a.mem, dirty=a.dirty)
        lab("virsh", "a", "metadata", g.name, "--uri", "urn:vmmigrate:1", "--key", "vmm",
            "--set", "<tags><test>ok</test></tags>", "--live")
        where = "a"
        for src, dst in (("a", "b"), ("b", "a")):  # warm-up
            run(["virsh", "-c", uri(src), "migrate", "--live", "--p2p", g.name, uri(dst)])
        for i in range(a.rounds):
            order = modes[i % 4:] + modes[:i % 4]
            for mode in order:
                dst = "b" if where == "a" else "a"
                base = [labtest.BINARY, "run", "-s", uri(where), "-t", uri(dst), "--json",
                        "--no-progress", "--journal-dir", "/tmp/vmm-bench-journal"]
                if mode == "virsh":
                    dt, _ = run(["virsh", "-c", uri(where), "migrate", "--live", "--p2p",
                                 g.name, uri(dst)])
                    info = subprocess.run(["virsh", "-c", uri(dst), "domjobinfo", g.name,
                                           "--completed"], capture_output=True,
                                          text=True).stdout
                    dn = next((int(l.split()[2]) for l in info.splitlines()
                               if l.startswith("Total downtime:")), None)
                else:
                    if mode == "ungated":
                        args = base + ["--vm", g.name]
                    elif mode == "gated":
                        args = base + ["--vm", g.name, "--class", "network-critical"]
                    else:
                        args = base + ["--policy", POLICY]
                    dt, out = run(args)
                    v = json.loads(out)["vms"][0]
                    dn = v["downtime_ms"]
                    if v.get("gate"):
                        held.append(v["gate"]["held_ms"])
                wall[mode].append(dt * 1000)
                if dn is not None:
                    down[mode].append(dn)
                print(f"round {i + 1} {mode:14s} {where}->{dst} {dt * 1000:6.0f} ms, "
                      f"downtime {dn} ms", flush=True)
                where = dst
        g.check_survived_on(where, 0)
        med = {m: (statistics.median(wall[m]), statistics.median(down[m]) if down[m] else None)
               for m in modes}
        print("\nmedians:")
        for m in modes:
            print(f"  {m:14s} total {med[m][0]:6.0f} ms   downtime {med[m][1]} ms")
        print(f"gate extra downtime, no features:      "
              f"{med['gated'][1] - med['ungated'][1]:+.0f} ms (target <= 20)")
        print(f"gate extra downtime, feature ready:    "
              f"{med['gated+feature'][1] - med['ungated'][1]:+.0f} ms (target <= 20)")
        print(f"time held at the gate (median):        {statistics.median(held):.0f} ms")
        print(f"total time gated / virsh:              {med['gated'][0] / med['virsh'][0]:.2f}")
        print(f"total time ungated / virsh:            {med['ungated'][0] / med['virsh'][0]:.2f}")
    finally:
        Guest.destroy_all()
        lab("down")


if __name__ == "__main__":
    main()
