#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark (not a test): how `vmmigrate plan` grows with the fleet.

For each fleet size of the sweep (default 125, 250, 500, 1,000, 2,500
hosts), half the hosts are sources and half targets, every one of them
populated with --vms VMs (libvirt test-driver files written by
tests/inventory/gen_inventory.py; targets run VMs too). For each size it
prints the median over --runs runs of:

  live       `plan --policy P` over the test:/// hosts: wall time, connect
             (the test driver parses each file while opening it), inventory
             + plan (last `connected` event to the `plan` event), peak RSS;
  snapshot   the same plan from an inventory snapshot (`vmmigrate inventory
             --json` once, then `plan --inventory FILE`: no libvirt at all):
             wall time and peak RSS, and whether its plan is the live one;
  driver     libvirt's test driver alone opening the same files and listing
             every domain's XML (bench/testdriver_open.c, built here with
             cc): the share of the live figures that is not vmmigrate's;

and the growth factor per doubling of the fleet of inventory + plan and of
the snapshot wall (1.0 is flat, 2.0 linear, 4.0 quadratic). The issue's
targets: inventory + plan for 10,000 VMs <= 0.3 s and for 50,000 <= 1.5 s,
each doubling <= 2.2x, 50,000 VMs from a snapshot <= 1 s end to end, peak
RSS at 10,000 VMs <= 64 MiB and at 50,000 <= 256 MiB.

    bench/plan_scale.py [--hosts 125,250,500,1000,2500] [--vms 20] [--runs 3]
                        [--policy policies/evacuate.lua] [--no-driver]

VMM_BINARY names the binary (default build/vmmigrate). A binary without
the `inventory` command skips the snapshot columns (so the script also
measures an older build as the baseline).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("VMM_BINARY", os.path.join(ROOT, "build", "vmmigrate"))


def gen(outdir, hosts, vms, seed):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "inventory",
                                                       "gen_inventory.py"),
                          "--hosts", str(hosts), "--vms", str(vms), "--seed", str(seed),
                          outdir], capture_output=True, text=True, check=True).stdout
    return [l.strip() for l in out.splitlines() if l.startswith("test:///")]


def run_rss(args, stdout_path=None):
    """Runs args with wait4: (wall s, peak RSS MiB, rc, stdout text)."""
    out = open(stdout_path, "w") if stdout_path else subprocess.PIPE
    err = tempfile.TemporaryFile(mode="w+")
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=out, stderr=err, text=True)
    text = p.stdout.read() if p.stdout else ""
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if stdout_path:
        out.close()
    err.seek(0)
    return wall, ru.ru_maxrss / 1024, p.returncode, text, err.read()


def has_inventory(binary):
    p = subprocess.run([binary, "help", "inventory"], capture_output=True, text=True)
    return p.returncode == 0


def build_driver(tmp):
    exe = os.path.join(tmp, "testdriver_open")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libvirt"], capture_output=True,
                           text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(ROOT, "bench", "testdriver_open.c")] +
                   flags, check=True)
    return exe


def plan_of(report):
    """What a plan decided, without timings: VM -> (status, target, class)."""
    items = report["plan"]["items"] if "items" in report["plan"] else report["plan"]["vms"]
    return sorted((i.get("name"), i.get("status"), i.get("target"), i.get("class"))
                  for i in items)


def growth(rows, key):
    """Growth factor per doubling between neighbouring sizes, as text."""
    out = []
    for a, b in zip(rows, rows[1:]):
        if a.get(key) and b.get(key):
            out.append((b[key] / a[key]) ** (1 / math.log2(b["hosts"] / a["hosts"])))
    return " ".join(f"{g:.2f}x" for g in out) if out else "-"


def measure(a, n, tmp, driver, snap_ok):
    half = n // 2
    src = gen(os.path.join(tmp, f"s{n}"), half, a.vms, 1)
    dst = gen(os.path.join(tmp, f"d{n}"), n - half, a.vms, 2)
    hostargs = [x for u in src for x in ("-s", u)] + [x for u in dst for x in ("-t", u)]
    ev = os.path.join(tmp, "events.ndjson")
    jdir = os.path.join(tmp, "journal")
    live = [a.binary, "plan", "--policy", a.policy, "--json", "--journal-dir", jdir,
            "--events", ev] + hostargs
    row = {"hosts": n, "vms": n * a.vms}
    walls, conns, invs, rsss = [], [], [], []
    report = None
    for _ in range(a.runs):
        if os.path.exists(ev):
            os.unlink(ev)
        wall, rss, rc, out, err = run_rss(live)
        if rc not in (0, 2):
            sys.exit(f"plan over {n} hosts failed ({rc}): {err[:500]}")
        report = json.loads(out)
        evs = [json.loads(l) for l in open(ev)]
        t0 = evs[0]["ts_ms"]
        t_conn = max(e["ts_ms"] for e in evs if e["event"] == "connected")
        t_plan = next(e["ts_ms"] for e in evs if e["event"] == "plan")
        walls.append(wall)
        conns.append((t_conn - t0) / 1000)
        invs.append((t_plan - t_conn) / 1000)
        rsss.append(rss)
    row.update(wall=statistics.median(walls), connect=statistics.median(conns),
               invplan=statistics.median(invs), rss=max(rsss))
    if snap_ok:
        snap = os.path.join(tmp, f"snap{n}.json")
        _, _, rc, _, err = run_rss([a.binary, "inventory", "--json"] + hostargs, snap)
        if rc != 0:
            sys.exit(f"inventory over {n} hosts failed ({rc}): {err[:500]}")
        sw, sr, same = [], [], True
        for _ in range(a.runs):
            wall, rss, rc, out, err = run_rss([a.binary, "plan", "--inventory", snap, "--policy",
                                               a.policy, "--json", "--journal-dir", jdir])
            if rc not in (0, 2):
                sys.exit(f"plan --inventory over {n} hosts failed ({rc}): {err[:500]}")
            same = same and plan_of(json.loads(out)) == plan_of(report)
            sw.append(wall)
            sr.append(rss)
        row.update(snap_wall=statistics.median(sw), snap_rss=max(sr), snap_same=same,
                   snap_mib=os.path.getsize(snap) / 2**20)
    if driver:
        p = subprocess.run([driver] + src + dst, capture_output=True, text=True)
        if p.returncode == 0:
            f = dict(kv.split("=") for kv in p.stdout.split())
            row.update(drv_open=float(f["open_s"]), drv_list=float(f["list_s"]),
                       drv_rss=int(f["maxrss_kib"]) / 1024)
    s = report["plan"]["summary"]
    row["summary"] = f"{s['migrate']} migrate, {s['leave']} leave, {s['refused']} refused"
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", default="125,250,500,1000,2500")
    ap.add_argument("--vms", type=int, default=20, help="VMs on every host")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--policy", default=os.path.join(ROOT, "policies", "evacuate.lua"))
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--no-driver", action="store_true", help="skip libvirt's test driver alone")
    a = ap.parse_args()
    sizes = [int(x) for x in a.hosts.split(",")]
    tmp = tempfile.mkdtemp(prefix="vmm-plan-scale-")
    try:
        driver = None if a.no_driver else build_driver(tmp)
        snap_ok = has_inventory(a.binary)
        print(f"binary {a.binary}; policy {a.policy}; {a.vms} VMs a host, half the hosts "
              f"sources, half targets; median of {a.runs} runs"
              f"{'' if snap_ok else '; no inventory command: no snapshot columns'}\n")
        print(f"{'hosts':>6} {'VMs':>7} | {'connect':>8} {'inv+plan':>8} {'wall':>7} {'RSS':>8} |"
              f" {'snap wall':>9} {'snap RSS':>8} {'same':>4} | {'drv open':>8} {'drv list':>8}"
              f" {'drv RSS':>8}")
        rows = []
        for n in sizes:
            r = measure(a, n, tmp, driver, snap_ok)
            rows.append(r)

            def f(k, unit="s", w=7):
                return f"{r[k]:{w}.2f} {unit}" if k in r else f"{'-':>{w + len(unit) + 1}}"

            print(f"{n:>6} {r['vms']:>7} | {f('connect', 's', 6)} {f('invplan', 's', 6)} "
                  f"{f('wall', 's', 5)} {f('rss', 'MiB', 4)} | {f('snap_wall', 's', 7)} "
                  f"{f('snap_rss', 'MiB', 4)} {('yes' if r.get('snap_same') else 'NO') if 'snap_same' in r else '-':>4} | "
                  f"{f('drv_open', 's', 6)} {f('drv_list', 's', 6)} {f('drv_rss', 'MiB', 4)}"
                  f"   ({r['summary']})", flush=True)
        print(f"\ngrowth per doubling, inventory + plan: {growth(rows, 'invplan')}")
        print(f"growth per doubling, live wall:        {growth(rows, 'wall')}")
        if snap_ok:
            print(f"growth per doubling, snapshot wall:    {growth(rows, 'snap_wall')}")
        if driver:
            print("vmmigrate's own share of the live wall (wall - driver open - driver list): " +
                  " ".join(f"{r['hosts']}: {r['wall'] - r.get('drv_open', 0) - r.get('drv_list', 0):.2f} s"
                           for r in rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
