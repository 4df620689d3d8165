#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Policies on the lab: only tagged VMs move; a convergence ladder raises the
downtime and then aborts a guest that cannot converge (it stays on the
source); a policy that fails mid-run fails closed (exit 6) while the VMs it
did not fail for still move. Tags are set the way an operator would, with
`virsh metadata` on the running domain."""
import os
import tempfile

from labtest import (Guest, Run, SOURCE_DIR, check, check_eq, check_in, main, uri,
                     vm_entry)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
HERE = os.path.dirname(os.path.abspath(__file__))


def policy(name):
    return os.path.join(HERE, "policies", name)


def test_tagged_only():
    moving, staying, other = Guest("a"), Guest("a"), Guest("a")
    moving.tag("a", move="yes")
    staying.tag("a", move="no")
    before = {g.name: g.ticks("a") for g in (moving, staying, other)}
    ev = os.path.join(TMP, "tagged.ndjson")
    r = Run(["run", "--policy", os.path.join(SOURCE_DIR, "policies", "tagged-only.lua"),
             "-s", uri("a"), "-t", uri("b"), "--json", "--events", ev]).wait()
    check_eq(r.rc, 0, "exit code")
    rep = r.report()
    check_eq([v["name"] for v in rep["vms"]], [moving.name], "migrated VMs")
    check_eq(rep["policy"]["hooks"], ["decide"], "hooks found")
    plan = {v["name"]: v for v in rep["plan"]["vms"]}
    check_eq(plan[moving.name]["status"], "migrate", "plan for the tagged VM")
    check_eq(plan[moving.name]["reason"], "tagged move=yes", "reason")
    check_eq(plan[staying.name]["status"], "leave", "plan for move=no")
    check_eq(plan[other.name]["status"], "leave", "plan for the untagged VM")
    moving.check_runs_only_on("b")
    moving.check_survived_on("b", before[moving.name])
    for g in (staying, other):
        g.check_runs_only_on("a")
        g.check_survived_on("a", before[g.name])


def test_ladder_raises_downtime_then_aborts():
    g = Guest("a", mem=256, dirty=200)
    g.tag("a", test="ladder")
    before = g.ticks("a")
    ev = os.path.join(TMP, "ladder.ndjson")
    r = Run(["run", "--policy", policy("ladder-abort.lua"), "-s", uri("a"), "-t", uri("b"),
             "--json", "--events", ev]).wait(180)
    check_eq(r.rc, 1, "exit code (the migration was given up)")
    v = vm_entry(r.report(), g.name)
    check_eq(v["result"], "aborted", "result")
    check_eq(v["location"], "source", "location")
    check_eq(v["abort_reason"], "policy", "abort reason")
    actions = [e["details"]["action"] for e in r.events() if e["event"] == "policy.action"]
    check_eq(actions, ["set_downtime", "abort"], "policy actions, in order")
    applied = [e for e in r.events() if e["event"] == "action"
               and e["details"]["action"] == "set_downtime"]
    check(applied and applied[0]["details"]["ok"], f"set_downtime applied by libvirt: {applied}")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def test_policy_errors_fail_closed():
    bad_decide, bad_progress, ok = Guest("a"), Guest("a", mem=256, dirty=200), Guest("a")
    bad_decide.tag("a", test="decide-error")
    bad_progress.tag("a", test="progress-error")
    ok.tag("a", test="ok")
    before = {g.name: g.ticks("a") for g in (bad_decide, bad_progress, ok)}
    ev = os.path.join(TMP, "errors.ndjson")
    r = Run(["run", "--policy", policy("errors.lua"), "-s", uri("a"), "-t", uri("b"), "--json",
             "--events", ev]).wait(180)
    check_eq(r.rc, 6, "exit code (policy error)")
    rep = r.report()
    check_eq(rep["result"], "policy", "run result")
    plan = {v["name"]: v for v in rep["plan"]["vms"]}
    check_eq(plan[bad_decide.name]["status"], "error", "plan status of the decide() failure")
    check_in("errors.lua:", plan[bad_decide.name]["note"], "the note names the file")
    check_in("deliberate decide failure", plan[bad_decide.name]["note"], "the note")
    check_in("errors.lua:", r.stderr, "stderr names the file")
    vp = vm_entry(rep, bad_progress.name)
    check_eq(vp["result"], "aborted", "on_progress() failure aborts (fail closed)")
    check_eq(vp["abort_reason"], "policy error", "abort reason")
    check_eq(vm_entry(rep, ok.name)["result"], "migrated", "the healthy VM still moves")
    errs = [e for e in r.events() if e["event"] == "policy.error"]
    check(errs and "deliberate on_progress failure" in errs[0]["details"]["error"],
          f"policy.error event: {errs}")
    for g in (bad_decide, bad_progress):
        g.check_runs_only_on("a")
        g.check_survived_on("a", before[g.name])
    ok.check_runs_only_on("b")
    ok.check_survived_on("b", before[ok.name])


if __name__ == "__main__":
    main([test_tagged_only, test_ladder_raises_downtime_then_aborts,
          test_policy_errors_fail_closed])
