#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The shipped policies (policies/*.lua), inputs -> decisions, with no lab.

`vmmigrate plan --policy P --source S --target BIG --target SMALL --json` over
the test-driver hosts of tests/policy/fixtures (see source.xml's comment for
what each VM is): every VM's decision is compared with the tables below,
written out by hand from the policies' documented rules and vmmigrate's
placement (the target with the most free memory left after the VM, in start
order: priority, then size, then name; a tie goes to the first --target).
BIG has 12 GiB free, SMALL 6 GiB (8 GiB less a running 2 GiB VM; its shut-off
4 GiB VM does not count). The convergence ladders of the policies that have
one are driven with fake progress samples through wrapper policies
(tests/policy/policies/shipped-ladder-*.lua).
"""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from policytest import (BIG, GiB, MiB, SMALL, SOURCE, SOURCE_DIR, TestCase, by_name, check_eq,
                        install, main, own_policy, plan, report_of, shipped_policy, vmmigrate)

# ---- the fixture's VMs: (uuid suffix, memory) ----------------------------
VMS = {
    "plain": (0x1, 1 * GiB),
    "gold-nc": (0x2, 4 * GiB),
    "silver-vdp": (0x3, 2 * GiB),
    "bronze-spice": (0x4, 1 * GiB),
    "local-disk": (0x5, 2 * GiB),
    "pinned": (0x6, 1 * GiB),
    "mover": (0x7, 2 * GiB),
    "mover-auto": (0x8, 1 * GiB),
    "mover-full": (0x9, 5 * GiB),
    "move-no": (0xA, 512 * MiB),
    "paused": (0xB, 1 * GiB),
    "shutoff": (0xC, 1 * GiB),
    "huge": (0xD, 32 * GiB),
}
TARGETS = {"big": BIG, "small": SMALL}

# ---- params as the report shows them (command-line defaults + policy) ----
DEFAULT_PARAMS = {
    "mode": "p2p", "bandwidth_mibs": 0, "max_downtime_ms": 0, "auto_converge": False,
    "postcopy": False, "parallel_connections": 0, "compression": None, "persistent": False,
    "undefine_source": False, "timeout_s": 0, "timeout_action": "abort",
}
EVAC_NC = dict(DEFAULT_PARAMS, max_downtime_ms=300, auto_converge=False, postcopy=False,
               timeout_s=600, timeout_action="abort")
EVAC_URGENT = dict(DEFAULT_PARAMS, max_downtime_ms=500, auto_converge=True, postcopy=True,
                   timeout_s=600, timeout_action="abort")
MAINT = dict(DEFAULT_PARAMS, bandwidth_mibs=200, max_downtime_ms=300, timeout_s=900,
             timeout_action="abort")

VDP = {"name": "vdp", "required": True, "timeout_ms": 5000, "args": {}}
SPICE = {"name": "spice", "required": False, "timeout_ms": 3000, "args": {}}


def mig(order, target, cls, prio, est, reason, params, features=(), placed_by="vmmigrate"):
    return {"status": "migrate", "order": order, "target": target, "placed_by": placed_by,
            "class": cls, "priority": prio, "estimate_ms": est, "reason": reason,
            "params": params, "features": list(features), "note": None}


def leave():
    return {"status": "leave", "note": None}


def refused(note):
    return {"status": "refused", "note": note}


NC, URG = "network-critical", "urgent"
EV, EVNC = "evacuate", "evacuate (network-critical)"

# evacuate.lua: every running VM; network-critical (tag or VDP) first with
# priority 1000000 + MiB, else MiB; VDP required, spice optional.
# Placement in start order (BIG 12 GiB, SMALL 6 GiB free); the built-in vdp
# exists, so silver-vdp migrates (network-critical, tie with mover on
# priority and size: by name):
#   gold-nc 4 -> BIG (8 vs 2), mover 2 -> BIG (6 vs 4), silver-vdp 2 -> BIG
#   (4 vs 4, tie: first target), huge 32: nowhere, mover-full 5 -> SMALL (BIG
#   has 4), local-disk 2 -> BIG (2; SMALL has 1), bronze-spice 1 -> BIG (1 vs
#   0), mover-auto 1 -> BIG (0 vs 0, tie), pinned 1 -> SMALL (0), plain 1 and
#   move-no 0.5: nowhere.
# Estimates at the assumed 1000 MiB/s: MiB + 1 ms.
EVACUATE = {
    "gold-nc": mig(1, "big", NC, 1004096, 4097, EVNC, EVAC_NC),
    "mover": mig(2, "big", NC, 1002048, 2049, EVNC, EVAC_NC),
    "silver-vdp": mig(3, "big", NC, 1002048, 2049, EVNC, EVAC_NC, [VDP, SPICE]),
    "mover-full": mig(4, "small", URG, 5120, 5121, EV, EVAC_URGENT),
    "local-disk": mig(5, "big", URG, 2048, 2049, EV, EVAC_URGENT),
    "bronze-spice": mig(6, "big", URG, 1024, 1025, EV, EVAC_URGENT, [SPICE]),
    "mover-auto": mig(7, "big", URG, 1024, 1025, EV, EVAC_URGENT),
    "pinned": mig(8, "small", URG, 1024, 1025, EV, EVAC_URGENT),
    "plain": refused("no target has 1024 MiB free for 'plain'"),
    "move-no": refused("no target has 512 MiB free for 'move-no'"),
    "huge": refused("no target has 32768 MiB free for 'huge'"),
    "paused": leave(),
    "shutoff": leave(),
}
# slots of 2 in parallel, each next VM on the slot free first: [4097, 2049]
# -> silver 2049 on the 2nd (4098) -> mover-full 5121 on the 1st (9218) ->
# local-disk 2049 on the 2nd (6147) -> 1025 on the 2nd (7172) -> 1025 on the
# 2nd (8197) -> 1025 on the 2nd (9222)
EVACUATE_SUMMARY = {"vms": 13, "migrate": 8, "leave": 2, "error": 0, "refused": 3,
                    "memory_bytes": 18 * GiB, "estimate_ms": 9222, "parallel": 2,
                    "assumed_mibs": 1000}

# maintenance-window.lua: running VMs, not pinned, without local writable
# disks; priority by tier (gold 300, silver 200, bronze or none 100, other 0);
# network-critical only with VDP (the network-critical tag is not read);
# 200 MiB/s, 300 ms, 900 s. Placement: gold-nc 4 -> BIG (8 vs 2), huge:
# nowhere, silver-vdp 2 -> BIG (6 vs 4), mover-full 5 -> BIG (1 vs 1, tie),
# mover 2 -> SMALL, bronze-spice 1, plain 1, move-no 0.5, mover-auto 1 ->
# SMALL. Estimates at 200 MiB/s: 5 * MiB + 1 ms.
MW = "maintenance window, tier "
MAINTENANCE = {
    "gold-nc": mig(1, "big", URG, 300, 20481, MW + "gold", MAINT),
    "silver-vdp": mig(2, "big", NC, 200, 10241, MW + "silver", MAINT),
    "mover-full": mig(3, "big", URG, 100, 25601, MW + "bronze", MAINT),
    "mover": mig(4, "small", URG, 100, 10241, MW + "bronze", MAINT),
    "bronze-spice": mig(5, "small", URG, 100, 5121, MW + "bronze", MAINT),
    "plain": mig(6, "small", URG, 100, 5121, MW + "bronze", MAINT),
    "move-no": mig(7, "small", URG, 100, 2561, MW + "bronze", MAINT),
    "mover-auto": mig(8, "small", URG, 0, 5121, MW + "platinum", MAINT),
    "huge": refused("no target has 32768 MiB free for 'huge'"),
    "local-disk": leave(),
    "pinned": leave(),
    "paused": leave(),
    "shutoff": leave(),
}
# [20481, 10241] -> 25601 on 2nd (35842) -> 10241 on 1st (30722) -> 5121 on
# 1st (35843) -> 5121 on 2nd (40963) -> 2561 on 1st (38404) -> 5121 on 1st
MAINTENANCE_SUMMARY = {"vms": 13, "migrate": 8, "leave": 4, "error": 0, "refused": 1,
                       "memory_bytes": 16 * GiB + 512 * MiB, "estimate_ms": 43525,
                       "parallel": 2, "assumed_mibs": 1000}

# tagged-only.lua: running VMs tagged move=yes; target from the target tag,
# class network-critical if tagged so, priority from the priority tag.
# mover (5) -> SMALL as named; mover-full (1) named SMALL too, which has
# 6 - 2 = 4 GiB left for its 5; mover-auto (-3) placed -> BIG (11 vs 3).
TAGGED = "tagged move=yes"
TAGGED_ONLY = {
    "mover": mig(1, "small", NC, 5, 2049, TAGGED, DEFAULT_PARAMS, placed_by="policy"),
    "mover-auto": mig(2, "big", URG, -3, 1025, TAGGED, DEFAULT_PARAMS),
    "mover-full": refused(f"target '{SMALL}' has 4096 MiB free (after planned migrations), "
                          "'mover-full' needs 5120 MiB"),
    **{n: leave() for n in ("plain", "gold-nc", "silver-vdp", "bronze-spice", "local-disk",
                            "pinned", "move-no", "paused", "shutoff", "huge")},
}
TAGGED_ONLY_SUMMARY = {"vms": 13, "migrate": 2, "leave": 10, "error": 0, "refused": 1,
                       "memory_bytes": 3 * GiB, "estimate_ms": 2049, "parallel": 2,
                       "assumed_mibs": 1000}

# What settings(run) returns, validated, in the report.
SETTINGS = {
    "maintenance-window": {"max_out": 1, "retries": 1, "deadline_s": 14400,
                           "on_abort": "finish"},
}

SHIPPED = {
    "evacuate": (EVACUATE, EVACUATE_SUMMARY, ["decide", "on_progress"]),
    "maintenance-window": (MAINTENANCE, MAINTENANCE_SUMMARY,
                           ["decide", "on_progress", "settings"]),
    "tagged-only": (TAGGED_ONLY, TAGGED_ONLY_SUMMARY, ["decide"]),
}

MIGRATE_KEYS = {"name", "uuid", "source", "status", "memory_bytes", "note", "target",
                "placed_by", "order", "estimate_ms", "class", "priority", "features",
                "reason", "params"}
OTHER_KEYS = {"name", "uuid", "source", "status", "memory_bytes", "note"}


def check_plan(rep, expected, summary, what):
    got = by_name(rep)
    check_eq(sorted(got), sorted(VMS), f"{what}: the VMs in the plan")
    for name, want in expected.items():
        v = got[name]
        w = f"{what}: {name}"
        suffix, mem = VMS[name]
        check_eq(v["uuid"], "b0000000-0000-4000-8000-%012x" % suffix, f"{w}: uuid")
        check_eq(v["source"], SOURCE, f"{w}: source")
        check_eq(v["memory_bytes"], mem, f"{w}: memory_bytes")
        check_eq((v["status"], v["note"]), (want["status"], want["note"]), f"{w}: status, note")
        check_eq(set(v), MIGRATE_KEYS if want["status"] == "migrate" else OTHER_KEYS,
                 f"{w}: the keys of its entry")
        for key, value in want.items():
            if key == "target":
                value = TARGETS[value]
            check_eq(v[key], value, f"{w}: {key}")
    # start order: 1..n over the migrating VMs, in the plan's order
    orders = [v["order"] for v in rep["plan"]["vms"] if v["status"] == "migrate"]
    check_eq(orders, list(range(1, len(orders) + 1)), f"{what}: orders, in plan order")
    check_eq(rep["plan"]["summary"], summary, f"{what}: plan summary")
    check_eq(rep["plan"]["sources"], [SOURCE], f"{what}: plan sources")
    check_eq(rep["plan"]["targets"], [BIG, SMALL], f"{what}: plan targets")
    check_eq(rep["vms"], [], f"{what}: migrated VMs (a plan migrates nothing)")


def line_of(path, text):
    """The number of the one line of PATH that contains TEXT."""
    with open(path, encoding="utf-8") as f:
        hits = [n for n, line in enumerate(f, 1) if text in line]
    check_eq(len(hits), 1, f"lines of {path} with {text!r}")
    return hits[0]


class ShippedPolicies(TestCase):
    def run_shipped(self, name):
        expected, summary, hooks = SHIPPED[name]
        path = shipped_policy(name)
        r = plan(path)
        rep = report_of(r, 0)
        self.eq(rep["command"], "plan", "command")
        self.eq(rep["result"], "ok", "result")
        self.eq(rep["policy"], {"path": path, "hooks": hooks, "settings": SETTINGS.get(name)},
                "report's policy member")
        if name in SETTINGS:
            # settings(run) applied where the command line gave nothing
            opts = rep["options"]
            self.eq({k: opts[k] for k in ("max_out", "retries", "deadline_s", "on_abort")},
                    {**SETTINGS[name], "max_out": 1}, "options in force")
        check_plan(rep, expected, summary, name)
        return r

    def test_evacuate(self):
        self.run_shipped("evacuate")

    def test_maintenance_window(self):
        r = self.run_shipped("maintenance-window")
        # its log lines: warn at the default level, info (pinned) only with -v
        path = shipped_policy("maintenance-window")
        warn, info = line_of(path, 'vmm.log.warn("%s has local disks'), \
            line_of(path, 'vmm.log.info("%s is pinned"')
        self.eq(r.stderr, f"vmmigrate: warning: policy {path}:{warn}: local-disk has local "
                          "disks: left alone\n", "stderr")
        rv = plan(path, extra=["-v"])
        self.eq(rv.rc, 0, "exit status with -v")
        # info lines carry a time stamp: "vmmigrate: 2026-...Z policy ..."
        logs = [re.sub(r"^vmmigrate: [0-9T:.-]+Z ", "vmmigrate: ", l)
                for l in rv.stderr.splitlines() if " policy /" in l]
        self.eq(logs, [f"vmmigrate: warning: policy {path}:{warn}: local-disk has local disks: "
                       "left alone",
                       f"vmmigrate: policy {path}:{info}: pinned is pinned"],
                "the policy's log lines with -v")

    def test_tagged_only(self):
        r = self.run_shipped("tagged-only")
        self.eq(r.stderr, "", "stderr")

    def test_command_line_params_merge(self):
        """What a policy sets wins; what it leaves out comes from the command line."""
        extra = ["--bandwidth", "50", "--max-downtime", "99", "--parallel", "1",
                 "--timeout", "30", "--persistent"]
        for name, cases in {
            "evacuate": {
                "gold-nc": dict(EVAC_NC, bandwidth_mibs=50, persistent=True),
                "pinned": dict(EVAC_URGENT, bandwidth_mibs=50, persistent=True),
            },
            "maintenance-window": {
                "gold-nc": dict(MAINT, persistent=True),
            },
            "tagged-only": {
                "mover": dict(DEFAULT_PARAMS, bandwidth_mibs=50, max_downtime_ms=99,
                              timeout_s=30, persistent=True),
            },
        }.items():
            rep = report_of(plan(shipped_policy(name), extra=extra), 0)
            got = by_name(rep)
            for vm, params in cases.items():
                self.eq(got[vm]["params"], params, f"{name}: {vm}: params")
            self.eq(rep["plan"]["summary"]["parallel"], 1, f"{name}: parallel")
        # the estimate follows the bandwidth in force: evacuate's gold-nc at the
        # command line's 50 MiB/s, 4096 MiB -> 81920 ms + 1
        self.eq(by_name(report_of(plan(shipped_policy("evacuate"), extra=extra), 0))
                ["gold-nc"]["estimate_ms"], 81921, "evacuate: gold-nc estimate at 50 MiB/s")

    def test_policy_check_lists_hooks(self):
        for name, (_, _, hooks) in SHIPPED.items():
            path = shipped_policy(name)
            r = vmmigrate("policy", "check", path)
            self.eq((r.rc, r.stdout, r.stderr),
                    (0, f"{path}: ok; hooks: {' '.join(hooks)}\n", ""), f"policy check {name}")
            # options go anywhere (GNU permutation), also after the file
            for args in (["--json", "check", path], ["check", path, "--json"]):
                r = vmmigrate("policy", *args)
                self.eq((r.rc, r.json()),
                        (0, {"policy": path, "ok": True, "hooks": hooks, "error": None}),
                        f"policy {' '.join(args)} ({name})")


class ShippedLadders(TestCase):
    """on_progress of the shipped policies, driven by fake samples."""

    # vmm.ladder takes the furthest step reached, each at most once, in
    # order ("-" is continue, see ladderprobe.lua).
    # evacuate.lua: iteration 4 -> 1000 ms, iteration 8 -> 2000 ms, 3 min ->
    # post-copy, 8 min -> abort. Steady: each step in its turn, at its exact
    # threshold (iteration 3 and 179999 / 479999 ms are not enough). Stalled
    # (iteration 2 at 4 min): post-copy at once, the downtime steps never,
    # then the abort at 8 min, before its timeout_s (600) would end it.
    # The ladder answers the same for every VM: also post-copy for the
    # network-critical ones (params.postcopy = false); vmmigrate ignores that
    # step for them with an info line (src/run/job.c apply_action), which only a
    # real migration shows.
    EVACUATE = ("-,-,set_downtime:1000,-,set_downtime:2000,-,postcopy(ladder step 3),-,"
                "abort(did not converge in 8 minutes),-;"
                "-,postcopy(ladder step 3),-,abort(did not converge in 8 minutes)")
    # maintenance-window.lua: iteration 10 -> 1000 ms, 15 min -> abort; a
    # stalled migration is aborted at 15 min without the downtime step.
    MAINTENANCE = ("-,set_downtime:1000,-,abort(maintenance window exceeded),-;"
                   "-,abort(maintenance window exceeded)")

    def ladder_plan(self, wrapper, module, shipped):
        install(os.path.join(SOURCE_DIR, "policies", shipped + ".lua"), module + ".lua",
                subst=False)
        own_policy("ladderprobe")
        return report_of(plan(own_policy(wrapper)), 0)

    def check_ladder(self, wrapper, module, shipped, want):
        rep = self.ladder_plan(wrapper, module, shipped)
        moving = [v for v in rep["plan"]["vms"] if v["status"] == "migrate"]
        # the wrapper changes reasons only: the same VMs move as with the
        # shipped file alone (test_evacuate etc. check which)
        alone = report_of(plan(shipped_policy(shipped)), 0)
        self.eq(sorted(v["name"] for v in moving),
                sorted(v["name"] for v in alone["plan"]["vms"] if v["status"] == "migrate"),
                f"VMs migrating with {wrapper} and with {shipped} alone")
        self.assertIn("gold-nc", [v["name"] for v in moving], "gold-nc migrates")
        for v in moving:
            self.eq(v["reason"], want, f"{v['name']}: ladder actions")
        return moving

    def test_evacuate_ladder(self):
        moving = self.check_ladder("shipped-ladder-evacuate", "evacuate", "evacuate",
                                   self.EVACUATE)
        # the same answers with and without post-copy allowed
        self.eq(sorted({v["params"]["postcopy"] for v in moving}), [False, True],
                "params.postcopy among the VMs whose ladder was probed")

    def test_maintenance_ladder(self):
        self.check_ladder("shipped-ladder-maintenance", "maintenance_window",
                          "maintenance-window", self.MAINTENANCE)


if __name__ == "__main__":
    main()
