#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""`vmmigrate plan`'s human table, checked against the same plan's --json.

Over the test-driver hosts of tests/policy/fixtures with the shipped
evacuate.lua: a line naming the hosts, a header, one row per VM with its
order, class, memory, source and target, estimate, features and the policy's
reason (or why it stays), and the summing-up line last. The test driver
answers every connection with this machine's hostname, so the hosts share
one and the table names them by URI (vm_host_names; a host with a hostname
of its own is named by it: unit.test_plan.plan_print), as --wide does.
"""
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from policytest import BIG, SMALL, SOURCE, TestCase, main, shipped_policy, vmmigrate


def duration(ms):
    """vm_duration_fmt's format."""
    s = ms // 1000
    if ms < 10000:
        return f"{s}.{ms % 1000 // 100}s"
    if s < 60:
        return f"{s}s"
    return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


class PlanTable(TestCase):
    @classmethod
    def setUpClass(cls):
        policy = shipped_policy("evacuate")
        cls.args = ["plan", "--policy", policy, "--source", SOURCE, "--target", BIG, "--target",
                    SMALL]
        r = vmmigrate(*cls.args, "--json")
        if r.rc != 0:
            raise AssertionError(f"plan --json failed:\n{r}")
        cls.plan = r.json()["plan"]

    def table(self, *extra):
        r = vmmigrate(*self.args, *extra)
        self.eq(r.rc, 0, f"exit status of plan {' '.join(extra)}\n{r}")
        return r.stdout.splitlines()

    def rows(self, lines):
        """{VM: [cells]} from the table's rows, split at its header's columns."""
        header = lines[1]
        starts = [header.index(h) for h in ("ORDER", "VM", "CLASS", "MEMORY", "SOURCE", "TARGET",
                                            "EST", "FEATURES", "REASON / WHY IT STAYS")]
        out = {}
        for line in lines[2:-1]:
            cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
            out[cells[1]] = cells
        return out

    def test_hostname_shared(self):
        # What the table's expectations rest on: the three hosts answer with one hostname.
        names = {subprocess.run(["virsh", "-c", uri, "hostname"], capture_output=True, text=True,
                                check=True).stdout.strip() for uri in (SOURCE, BIG, SMALL)}
        self.eq(len(names), 1, f"hostnames of the test-driver hosts {names}")

    def check_table(self, lines):
        self.eq(lines[0], f"plan: {len(self.plan['vms'])} VMs on {SOURCE}, to {BIG}, {SMALL}",
                "the hosts line")
        self.eq(lines[1].split(), ["ORDER", "VM", "CLASS", "MEMORY", "SOURCE", "TARGET", "EST",
                                   "FEATURES", "REASON", "/", "WHY", "IT", "STAYS"], "the header")
        self.assertTrue(lines[-1].startswith(f"{self.plan['summary']['migrate']} to migrate, "),
                        lines[-1])
        rows = self.rows(lines)
        self.eq(sorted(rows), sorted(v["name"] for v in self.plan["vms"]), "the rows' VMs")
        for v in self.plan["vms"]:
            got = rows[v["name"]]
            if v["status"] == "migrate":
                feats = ",".join(f["name"] + ("" if f["required"] else "?")
                                 for f in v["features"]) or "-"
                want = [str(v["order"]), v["name"], v["class"],
                        f"{v['memory_bytes'] >> 20}M", v["source"], v["target"],
                        duration(v["estimate_ms"]), feats, v["reason"] or "-"]
            else:
                want = ["-", v["name"], v["status"], f"{v['memory_bytes'] >> 20}M", v["source"],
                        "(stays)", "-", "-", v["note"] or "the policy leaves it"]
            self.eq(got, want, f"the row of {v['name']}")

    def test_table(self):
        self.check_table(self.table())

    def test_wide(self):
        self.check_table(self.table("--wide"))

    def test_run_refuses_wide(self):
        r = vmmigrate("run", "--wide", "--source", SOURCE, "--target", BIG, "--vm", "plain")
        self.eq((r.rc, r.stderr), (2, "vmmigrate: error: run: --wide is an option of plan (run "
                                      "prints no table)\n"), f"run --wide\n{r}")


if __name__ == "__main__":
    main()
