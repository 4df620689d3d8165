#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The built-in spice feature with a real headless SPICE client
(tests/lab/spice): at the commit gate every channel the client held on the
source must be initialised on the target. A client that follows: commit, it
ends connected to the target. A client that refuses to follow: the gate
rolls back, the guest and its client stay on the source."""
import os
import subprocess
import tempfile

from labtest import Guest, Run, SOURCE_DIR, check, check_eq, check_in, main, uri, vm_entry

TMP = tempfile.mkdtemp(prefix="vmm-it-")
SPICE = os.path.join(SOURCE_DIR, "tests", "lab", "spice", "spice.sh")
POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies", "spice.lua")


def spice(*args, check_rc=True):
    p = subprocess.run([SPICE, *args], capture_output=True, text=True, timeout=120)
    if check_rc and p.returncode != 0:
        raise AssertionError(f"spice.sh {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout.strip()


def spice_guest(*client_opts):
    g = Guest("a", spice=True)
    g.tag("a", test="spice")
    spice("start", "a", g.name, *client_opts)
    return g


def status(g):
    """{key: value} of spice.sh status (peer=..., channels=4/4, ...)."""
    out = spice("status", g.name, check_rc=False)
    words = out.split()  # "VM alive|dead peer=ADDR:PORT channels=4/4 ready=yes ..."
    check(len(words) >= 2 and words[0] == g.name, f"spice.sh status: {out!r}")
    return {"state": words[1], **dict(w.split("=", 1) for w in words[2:] if "=" in w)}


def port(host, name):
    return spice("port", host, name)


def run(name):
    return Run(["run", "--policy", POLICY, "-s", uri("a"), "-t", uri("b"), "--json",
                "--events", os.path.join(TMP, f"{name}.ndjson")]).wait(180)


def test_client_follows():
    g = spice_guest()
    try:
        before = g.ticks("a")
        check_eq(status(g)["channels"], "4/4", "client connected with all channels")
        r = run("follow")
        check_eq(r.rc, 0, "exit code")
        v = vm_entry(r.report(), g.name)
        check_eq((v["result"], v["location"]), ("migrated", "target"), "result")
        fr = v["feature_results"][0]
        check_eq((fr["probe"], fr["gate"]), ("ok", "ok"), "spice steps")
        spice("wait", g.name, "b", "20")
        st = status(g)
        check_eq(st["state"], "alive", "the client lives")
        check(st["peer"].endswith(":" + port("b", g.name)), f"connected to b: {st}")
        check_eq(st["channels"], "4/4", "all channels on the target")
        g.check_runs_only_on("b")
        g.check_survived_on("b", before)
    finally:
        spice("stop", g.name, check_rc=False)


def test_client_stays_behind_rolls_back():
    g = spice_guest("--no-migrate")
    try:
        before = g.ticks("a")
        a_port = port("a", g.name)
        r = run("refuse")
        check_eq(r.rc, 1, "exit code")
        v = vm_entry(r.report(), g.name)
        check_eq((v["result"], v["location"]), ("rolled-back", "source"), "result")
        check_in("SPICE channels reached the target", v["gate"]["reason"], "gate reason")
        g.check_runs_only_on("a")
        g.check_survived_on("a", before)
        st = status(g)
        check(st["peer"].endswith(":" + a_port), f"the client is still on a: {st}")
    finally:
        spice("stop", g.name, check_rc=False)


if __name__ == "__main__":
    main([test_client_follows, test_client_stays_behind_rolls_back])
