#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Retries: a VM whose migration rolled back (its gate feature refuses the
first attempt) starts again -- on another target when the policy placed it
by default, on its own target when the policy named one -- and ends on
exactly one host with its counter continuing; the failed attempt's deinit
ran once, on the target it was tried on; the report keeps the attempt.
Without retries it stays on the source and the run says "some failed"."""
import os
import tempfile

from labtest import (Guest, Run, SOURCE_DIR, check, check_eq, lab, log, main, uri, vm_entry)

TMP = tempfile.mkdtemp(prefix="vmm-it-")
POLICY = os.path.join(SOURCE_DIR, "tests", "integration", "policies", "retry.lua")


def guest(**tags):
    g = Guest("a")
    d = tempfile.mkdtemp(dir=TMP)
    g.tag("a", test="retry", dir=d, **tags)
    return g, d


def run(*extra):
    ev = os.path.join(TMP, f"ev-{len(os.listdir(TMP))}.ndjson")
    r = Run(["run", "--policy", POLICY, "-s", uri("a"), "-t", uri("b"), "-t", uri("c"),
             "--json", "--events", ev, *extra])
    return r.wait(300)


def deinits(d):
    path = os.path.join(d, "log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def host_of(u):
    return {uri(h): h for h in ("a", "b", "c")}[u]


def test_retry_on_another_target():
    lab("up", "3")
    g, d = guest()
    before = g.ticks("a")
    r = run("--retries", "1")
    check_eq(r.rc, 0, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq(v["result"], "migrated", "result of the last attempt")
    check_eq(len(v.get("attempts", [])), 1, f"one earlier attempt: {v.get('attempts')}")
    first = v["attempts"][0]
    check_eq((first["attempt"], first["result"]), (1, "rolled-back"), "the first attempt")
    check(first["target"] != v["target"],
          f"the retry went to another target ({first['target']} then {v['target']})")
    g.check_only_on(host_of(v["target"]))
    g.check_survived_on(host_of(v["target"]), before)
    check_eq(deinits(d), [["deinit", g.name, first["target"]]],
             "the first attempt's deinit ran once, on its target")
    retries = [e for e in r.events() if e["event"] == "retry" and e["vm"] == g.name]
    check_eq([(e["details"]["attempt"], e["details"]["previous_target"]) for e in retries],
             [(2, first["target"])], "retry events")


def test_no_retry_by_default():
    g, d = guest()
    before = g.ticks("a")
    r = run()
    check_eq(r.rc, 1, "exit code: some failed")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("rolled-back", "source"), "result")
    check("attempts" not in v, f"no earlier attempts: {v.get('attempts')}")
    g.check_only_on("a")
    g.check_survived_on("a", before)
    check_eq(len(deinits(d)), 1, "deinit ran once")


def test_named_target_retries_there():
    g, d = guest(pin=uri("b"), retries="2")
    before = g.ticks("a")
    r = run()  # the decision's retries, no --retries
    check_eq(r.rc, 0, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["target"]), ("migrated", uri("b")), "result and target")
    check_eq([(a["attempt"], a["target"]) for a in v["attempts"]], [(1, uri("b"))],
             "earlier attempts")
    g.check_only_on("b")
    g.check_survived_on("b", before)
    log(f"deinits: {deinits(d)}")
    check_eq(deinits(d), [["deinit", g.name, uri("b")]], "one deinit")


def test_several_retries():
    """Two refused attempts, the third commits: more earlier attempts than
    VMs in the run."""
    g, d = guest(pin=uri("c"), retries="2", fails="2")
    before = g.ticks("a")
    r = run()
    check_eq(r.rc, 0, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["target"]), ("migrated", uri("c")), "result and target")
    check_eq([(a["attempt"], a["result"]) for a in v["attempts"]],
             [(1, "rolled-back"), (2, "rolled-back")], "earlier attempts")
    g.check_only_on("c")
    g.check_survived_on("c", before)
    check_eq(len(deinits(d)), 2, "one deinit per refused attempt")


if __name__ == "__main__":
    main([test_retry_on_another_target, test_no_retry_by_default, test_named_target_retries_there,
          test_several_retries])
