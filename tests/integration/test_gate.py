#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The commit gate on the lab: a network-critical migration resumes on the
target only after every required feature is ready there; otherwise it rolls
back, the guest keeps running on the source, and every feature whose
prepare or gate ran is undone (deinit) exactly once, in reverse order."""
import os
import signal
import tempfile

from labtest import Guest, Run, check, check_eq, check_in, main, uri, vm_entry

TMP = tempfile.mkdtemp(prefix="vmm-it-")
POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies", "gate.lua")


def steps_logged(run, name):
    """["prepare first", "prepare second", ...] from the policy's log lines."""
    out = []
    for e in run.events():
        if e["event"] == "policy.log":
            words = e["details"]["message"].split()
            if len(words) == 3 and words[2] == name:
                out.append(f"{words[0]} {words[1]}")
    return out


def gated_run(test_tag, name):
    g = Guest("a")
    g.tag("a", test=test_tag, dir=TMP)
    before = g.ticks("a")
    ev = os.path.join(TMP, f"{name}.ndjson")
    r = Run(["run", "--policy", POLICY, "-s", uri("a"), "-t", uri("b"), "--json", "--events",
             ev]).wait(120)
    return g, before, r


def test_commit():
    g, before, r = gated_run("ok", "commit")
    check_eq(r.rc, 0, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq(v["result"], "migrated", "result")
    check_eq(v["location"], "target", "location")
    check(v["gated"], "went through the gate")
    check_eq(v["gate"]["decision"], "commit", "gate decision")
    check_eq([(f["name"], f["prepare"], f["gate"], f["after"], f["deinit"])
              for f in v["feature_results"]],
             [("first", "ok", "ok", "ok", None), ("second", "ok", "ok", "ok", None),
              ("announce", "ok", "ok", "ok", None)], "feature results")
    check_eq(steps_logged(r, g.name),
             ["prepare first", "prepare second", "gate first", "gate second", "after first",
              "after second"], "feature steps, in order")
    check_eq(side_effects(g), ["prepare", "gate", "after"], "side effects of vmm.exec")
    phases = [p["phase"] for p in v["phases"]]
    check(phases.index("gate") < phases.index("migrated"), f"gate before the end: {phases}")
    g.check_runs_only_on("b")
    g.check_survived_on("b", before)


def side_effects(g):
    """The steps feature "first" recorded with vmm.exec on the hosts."""
    path = os.path.join(TMP, g.name + ".steps")
    with open(path) as f:
        return f.read().split()


def check_rolled_back(g, before, r, reason_part):
    check_eq(r.rc, 1, "exit code after a rollback")
    v = vm_entry(r.report(), g.name)
    check_eq(v["result"], "rolled-back", "result")
    check_eq(v["location"], "source", "location")
    check_eq(v["gate"]["decision"], "rollback", "gate decision")
    check_in(reason_part, v["gate"]["reason"], "gate reason")
    check(v["error"] is not None, "an error is reported")
    g.check_only_on("a")
    g.check_survived_on("a", before)
    return v


def test_rollback_feature_fails():
    g, before, r = gated_run("gate-fail", "fail")
    v = check_rolled_back(g, before, r, "the target is not ready (test)")
    # Both ran prepare: both are undone, once, the last first; announce
    # (prepare is a no-op, but it ran) too.
    check_eq(steps_logged(r, g.name),
             ["prepare first", "prepare second", "gate first", "gate second", "deinit second",
              "deinit first"], "feature steps, in order")
    check_eq(side_effects(g), ["prepare", "gate", "deinit"], "side effects of vmm.exec")
    res = {f["name"]: f for f in v["feature_results"]}
    check_eq(res["second"]["gate"], "failed: the target is not ready (test)", "second's gate")
    check_eq(v["gate"]["reason"], "feature 'second' gate: the target is not ready (test)",
             "gate reason")
    check_eq([res[n]["deinit"] for n in ("first", "second", "announce")], ["ok"] * 3, "deinit")
    check_eq([res[n]["after"] for n in ("first", "second")], [None, None], "no after step")


def test_rollback_feature_hangs():
    g, before, r = gated_run("gate-hang", "hang")
    with open(POLICY) as f:
        loop_line = 1 + [l.strip() for l in f].index("while true do") + 1  # the loop body's end
    v = check_rolled_back(g, before, r, "gate.lua:")
    check_in("instruction budget", v["gate"]["reason"], "gate reason")
    line = int(v["gate"]["reason"].split("gate.lua:")[1].split(":")[0])
    check(line in (loop_line - 1, loop_line), f"the reason names the loop's line "
          f"({loop_line - 1} or {loop_line}): {v['gate']['reason']}")
    check_eq(steps_logged(r, g.name),
             ["prepare first", "prepare second", "gate first", "gate second", "deinit second",
              "deinit first"], "feature steps, in order")


def test_rollback_feature_times_out():
    g, before, r = gated_run("gate-slow", "slow")
    v = check_rolled_back(g, before, r, "timed out after 700 ms")
    check(700 <= v["gate"]["held_ms"] < 5000, f"held for the feature's timeout: {v['gate']}")
    check_eq(side_effects(g), ["prepare", "gate", "deinit"], "side effects of vmm.exec")


def test_probe_fails_nothing_moves():
    g, before, r = gated_run("probe-fail", "probe")
    check_eq(r.rc, 8, "exit code: nothing to migrate")
    rep = r.report()
    check_eq(rep["vms"], [], "no migration started")
    plan = {v["name"]: v for v in rep["plan"]["vms"]}
    check_eq(plan[g.name]["status"], "refused", "plan status")
    check_in("feature 'second' probe: no EVB peer on the target (test)", plan[g.name]["note"],
             "plan note")
    check_eq(steps_logged(r, g.name), [], "no feature step beyond the probe ran")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def test_urgent_features_after_switchover():
    g, before, r = gated_run("urgent-ok", "urgent-ok")
    check_eq(r.rc, 0, "exit code")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"], v["gated"]), ("migrated", "target", False), "result")
    events = r.events()
    result_at = next(i for i, e in enumerate(events) if e["event"] == "result")
    first_feature = next(i for i, e in enumerate(events)
                         if e["event"] == "feature" and e["details"]["step"] != "probe")
    check(result_at < first_feature, "features run after the guest runs on the target")
    check_eq(side_effects(g), ["prepare", "gate", "after"], "side effects of vmm.exec")
    g.check_runs_only_on("b")
    g.check_survived_on("b", before)


def test_urgent_feature_failure_is_reported():
    g, before, r = gated_run("urgent-fail", "urgent-fail")
    check_eq(r.rc, 1, "exit code: a required feature failed")
    v = vm_entry(r.report(), g.name)
    check_eq((v["result"], v["location"]), ("migrated", "target"), "the guest moved anyway")
    res = {f["name"]: f for f in v["feature_results"]}
    check_eq(res["second"]["gate"], "failed: the target is not ready (test)", "second's gate")
    check_in("a required feature did not come up", r.stderr, "stderr")
    g.check_runs_only_on("b")
    g.check_survived_on("b", before)


class Hook:
    """A local HTTP server (loopback) that answers every POST with `status`
    and records what it got."""

    def __init__(self, status):
        import http.server
        import threading
        hook = self
        self.got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                hook.got.append((self.path, self.headers.get("Content-Type"),
                                 self.rfile.read(n).decode()))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"not ready" if status >= 300 else b"ok")

            def log_message(self, *a):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ready"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def hooked_run(status, name):
    hook = Hook(status)
    try:
        g = Guest("a")
        g.tag("a", test="ok", hook=hook.url)
        before = g.ticks("a")
        r = Run(["run", "--policy", POLICY, "-s", uri("a"), "-t", uri("b"), "--json",
                 "--events", os.path.join(TMP, f"{name}.ndjson")]).wait(120)
    finally:
        hook.close()
    return g, before, r, hook.got


def test_http_feature_commits():
    g, before, r, got = hooked_run(200, "http-ok")
    check_eq(r.rc, 0, "exit code")
    check_eq(got, [("/ready", "application/json", f'{{"vm": "{g.name}", "step": "gate"}}')],
             "what the hook received")
    v = vm_entry(r.report(), g.name)
    check_eq(v["result"], "migrated", "result")
    g.check_runs_only_on("b")
    g.check_survived_on("b", before)


def test_http_feature_refuses():
    g, before, r, got = hooked_run(503, "http-503")
    check_rolled_back(g, before, r, "the hook answered 503: not ready")
    check_eq(len(got), 1, "one request")


HOLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies", "hold.lua")


def test_gate_budget_runs_out():
    g = Guest("a")
    g.tag("a", test="hold", budget="1500")
    before = g.ticks("a")
    r = Run(["run", "--policy", HOLD, "-s", uri("a"), "-t", uri("b"), "--json", "--events",
             os.path.join(TMP, "budget.ndjson")]).wait(120)
    v = check_rolled_back(g, before, r, "the gate budget of")
    check(1500 <= v["gate"]["held_ms"] < 5000, f"held for the budget: {v['gate']}")
    check_eq([(f["name"], f["deinit"]) for f in v["feature_results"]], [("hold", "ok")],
             "the feature whose gate step ran is undone")


def test_sigint_at_the_gate_rolls_back():
    g = Guest("a")
    g.tag("a", test="hold")
    before = g.ticks("a")
    r = Run(["run", "--policy", HOLD, "-s", uri("a"), "-t", uri("b"), "--json", "--events",
             os.path.join(TMP, "sigint-gate.ndjson")])
    r.wait_event(lambda e: e["event"] == "phase" and e["details"]["phase"] == "gate", 60)
    r.signal(signal.SIGINT)
    r.wait(120)
    check_eq(r.rc, 5, "exit code after SIGINT")
    v = vm_entry(r.report(), g.name)
    check_eq(v["result"], "rolled-back", "result")
    check_eq(v["location"], "source", "location")
    check_eq(v["gate"]["reason"], "interrupted", "gate reason")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


if __name__ == "__main__":
    main([test_commit, test_rollback_feature_fails, test_rollback_feature_hangs,
          test_rollback_feature_times_out, test_probe_fails_nothing_moves,
          test_urgent_features_after_switchover, test_urgent_feature_failure_is_reported,
          test_http_feature_commits, test_http_feature_refuses,
          test_gate_budget_runs_out,
          test_sigint_at_the_gate_rolls_back])
