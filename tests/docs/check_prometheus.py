#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""contrib/ holds alerting rules and a Grafana dashboard for the Prometheus
textfile that src/report/status.c writes. This checks that promtool accepts
the rules (`promtool check rules`) and that their fixtures pass (`promtool
test rules`), and that every PromQL expression of the rules and of the
dashboard (panel targets and template variables) names only metrics that
status.c writes, so renaming a metric there fails here. One line naming the
culprit, exit 1 (also without promtool)."""
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
STATUS = os.path.join(ROOT, "src", "report", "status.c")
RULES = os.path.join(ROOT, "contrib", "prometheus", "vmmigrate.rules.yml")
FIXTURES = os.path.join(ROOT, "contrib", "prometheus", "vmmigrate.rules.test.yml")
DASHBOARD = os.path.join(ROOT, "contrib", "grafana", "vmmigrate.json")
METRIC = re.compile(r"\bvmmigrate_[a-z_]+")


def fail(msg):
    print(f"check_prometheus: {msg}")
    sys.exit(1)


def promtool(tool, *args):
    r = subprocess.run([tool, *args], capture_output=True, text=True)
    if r.returncode != 0:
        out = " ".join((r.stdout + r.stderr).split())
        fail(f"promtool {' '.join(args[:2])} {os.path.relpath(args[-1], ROOT)} failed: {out[:600]}")


def check_expr(where, expr, known):
    named = set(METRIC.findall(expr))
    if not named:
        fail(f"{where}: expression names no vmmigrate_ metric: {expr!r}")
    for m in sorted(named - known):
        fail(f"{where}: '{m}' is not a metric src/report/status.c writes")


def panels_of(panels):
    for p in panels:
        yield p
        yield from panels_of(p.get("panels", []))


def main():
    with open(STATUS) as f:
        known = set(METRIC.findall(f.read()))
    if len(known) < 5:
        fail(f"{STATUS}: found only {sorted(known)}: did the metrics move?")

    tool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(tool, os.X_OK):
        fail("promtool not found (Debian's prometheus package; scripts/install-deps.sh installs it)")
    promtool(tool, "check", "rules", RULES)
    promtool(tool, "test", "rules", FIXTURES)

    rel = os.path.relpath(RULES, ROOT)
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    nrules = 0
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            name = r.get("alert") or r.get("record")
            check_expr(f"{rel}: {name}", r["expr"], known)
            if "alert" in r:
                if "severity" not in r.get("labels", {}):
                    fail(f"{rel}: {name} has no severity label")
                ann = r.get("annotations", {})
                for a in ("summary", "description"):
                    if "$labels.source" not in ann.get(a, ""):
                        fail(f"{rel}: {name}: annotation {a} does not name the source host")
            nrules += 1

    rel = os.path.relpath(DASHBOARD, ROOT)
    with open(DASHBOARD) as f:
        dash = json.load(f)
    ntargets = 0
    for p in panels_of(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        if not targets:
            fail(f"{rel}: panel '{p.get('title')}' has no target")
        for t in targets:
            check_expr(f"{rel}: panel '{p.get('title')}' target {t.get('refId')}",
                       t.get("expr", ""), known)
            ntargets += 1
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q or ""
            check_expr(f"{rel}: variable '{v.get('name')}'", q, known)

    print(f"check_prometheus: {nrules} rules and {ntargets} dashboard targets name only the "
          f"{len(known)} metrics of status.c; promtool check and test rules pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
