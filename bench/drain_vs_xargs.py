#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark (not a test): drain 20 x 64 MiB guests from one lab host to the
other with `vmmigrate run --parallel 4` and with
`xargs -P4 virsh migrate --live --p2p` over the same VMs, alternating
directions and tools; prints the median wall-time ratio vmmigrate/xargs
(target <= 0.9) and the peak RSS of vmmigrate while it runs 50 migrations at
once. A warm-up round trip of both tools comes first and is not counted.

    bench/drain_vs_xargs.py [--guests 20] [--rounds 3] [--rss-guests 50]
"""
import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

os.environ.setdefault("VMM_LAB_DIR", "/var/tmp/vmmigrate-lab-bench")
os.environ.setdefault("VMM_LAB_INDEX", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import labtest  # noqa: E402
from labtest import Guest, lab, uri  # noqa: E402


def vmmigrate(src, dst, names, parallel, extra=()):
    args = [labtest.BINARY, "run", "-s", uri(src), "-t", uri(dst), "--parallel", str(parallel),
            "--max-out", str(parallel), "--max-in", str(parallel), "--no-progress",
            "--journal-dir", "/tmp/vmm-bench-journal", *extra]
    for n in names:
        args += ["--vm", n]
    return args


def timed(args, stdin=None, watch_rss=False):
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else None,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        while p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.05)

    th = threading.Thread(target=sample) if watch_rss else None
    if th:
        th.start()
    _, err = p.communicate(stdin)
    if th:
        th.join()
    if p.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({p.returncode}): {err.strip()[:500]}")
    return time.monotonic() - t0, peak[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guests", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--rss-guests", type=int, default=50)
    a = ap.parse_args()
    lab("up", "2")
    try:
        guests = [Guest("a", mem=64, dirty=4) for _ in range(a.guests)]
        names = [g.name for g in guests]
        # Warm-up round trip, not counted: each freshly started libvirtd pays
        # once for probing on its first migration / CPU comparison.
        timed(vmmigrate("a", "b", names, 4))
        timed(["xargs", "-P4", "-I{}", "virsh", "-c", uri("b"), "migrate", "--live", "--p2p",
               "{}", uri("a")], stdin="\n".join(names) + "\n")
        where = "a"
        t = {"vmmigrate": [], "xargs": []}
        for r in range(a.rounds):
            for tool in (("vmmigrate", "xargs") if r % 2 == 0 else ("xargs", "vmmigrate")):
                dst = "b" if where == "a" else "a"
                if tool == "vmmigrate":
                    dt, _ = timed(vmmigrate(where, dst, names, 4))
                else:
                    dt, _ = timed(["xargs", "-P4", "-I{}", "virsh", "-c", uri(where), "migrate",
                                   "--live", "--p2p", "{}", uri(dst)],
                                  stdin="\n".join(names) + "\n")
                t[tool].append(dt)
                print(f"round {r + 1} {tool:9s} {where}->{dst}: {dt:6.2f} s", flush=True)
                where = dst
        for g in guests:
            g.check_survived_on(where, 0)
        mv, mx = statistics.median(t["vmmigrate"]), statistics.median(t["xargs"])
        print(f"\n{a.guests} x 64 MiB at parallel 4: median vmmigrate {mv:.2f} s, "
              f"xargs -P4 virsh {mx:.2f} s, ratio {mv / mx:.2f} (target <= 0.9)")
        extra = [Guest(where, mem=64, dirty=0)
                 for _ in range(max(0, a.rss_guests - a.guests))]
        all_names = names + [g.name for g in extra]
        dst = "b" if where == "a" else "a"
        dt, rss = timed(vmmigrate(where, dst, all_names, len(all_names)), watch_rss=True)
        print(f"{len(all_names)} migrations at once: {dt:.2f} s, vmmigrate peak RSS "
              f"{rss / 1024:.1f} MiB")
    finally:
        Guest.destroy_all()
        lab("down")


if __name__ == "__main__":
    main()
