#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Webhooks: a healthy hook server receives run.started, vm.failed and
run.finished with the right payloads and the bearer token; a failing one
(503) is retried with backoff; a hanging one delays no migration. A token
file readable by others is refused before anything happens."""
import http.server
import json
import os
import tempfile
import threading
import time

from labtest import Guest, Run, check, check_eq, check_in, main, uri, vm_entry, vmmigrate

TMP = tempfile.mkdtemp(prefix="vmm-it-")
STUCK = dict(mem=256, dirty=200)


class Hook:
    def __init__(self, status=200, hang=False):
        hook = self
        self.got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                hook.got.append((time.time(), self.headers.get("Authorization"), body))
                if hang:
                    time.sleep(30)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self):
        return [b["event"] for _, _, b in self.got]

    def close(self):
        self.server.shutdown()


def test_webhooks():
    token = os.path.join(TMP, "token")
    with open(token, "w") as f:
        f.write("s3cret-token\n")
    os.chmod(token, 0o600)
    ok, failing, hanging = Hook(200), Hook(503), Hook(200, hang=True)
    try:
        # good converges even at 8 MiB/s (it dirties nothing), stuck never does
        good, stuck = Guest("a", dirty=0), Guest("a", **STUCK)
        before = good.ticks("a")
        t0 = time.time()
        r = Run(["run", "-s", uri("a"), "-t", uri("b"), "--vm", good.name, "--vm", stuck.name,
                 "--json", "--timeout", "20", "--bandwidth", "8", "--notify", ok.url,
                 "--notify", failing.url, "--notify", hanging.url, "--notify-token-file",
                 token]).wait(180)
        wall = time.time() - t0
        check_eq(r.rc, 1, "exit code (one VM failed)")
        v = vm_entry(r.report(), good.name)
        check_eq(v["result"], "migrated", "the good VM moved")
        check(v["total_ms"] < 20000, f"webhooks did not slow the migration: {v['total_ms']} ms")
        check(wall < 60, f"the run ended soon after its migrations ({wall:.1f} s)")
        check_eq(ok.events(), ["run.started", "vm.failed", "run.finished"], "healthy hook")
        check_eq({a for _, a, _ in ok.got}, {"Bearer s3cret-token"}, "the token was sent")
        check_eq({b["run"] for _, _, b in ok.got}, {r.report()["run"]},
                 "every post carries the run's id, the report's")
        failed = ok.got[1][2]["details"]
        check_eq((failed["vm"], failed["location"]), (stuck.name, "source"), "vm.failed details")
        fin = ok.got[2][2]["details"]
        check_eq((fin["exit_code"], fin["summary"]["migrated"], fin["summary"]["aborted"]),
                 (1, 1, 1), "run.finished details")
        starts = [t for t, _, b in failing.got if b["event"] == "run.started"]
        check(len(starts) >= 3, f"the failing hook was retried ({len(starts)} attempts)")
        check(starts[1] - starts[0] >= 0.9, "with backoff")
        check_in("webhook", r.stderr, "give-ups are logged")
        check("s3cret" not in r.stderr, "the token is never logged")
        good.check_runs_only_on("b")
        good.check_survived_on("b", before)
        stuck.check_runs_only_on("a")
    finally:
        for h in (ok, failing, hanging):
            h.close()


def test_token_file_readable_by_others_is_refused():
    token = os.path.join(TMP, "open-token")
    with open(token, "w") as f:
        f.write("x\n")
    os.chmod(token, 0o644)
    g = Guest("a")
    r = vmmigrate("run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--notify",
                  "http://127.0.0.1:9/hook", "--notify-token-file", token)
    check_eq(r.rc, 2, "exit code")
    check_in("chmod 600", r.stderr, "the error says how to fix it")
    g.check_runs_only_on("a")


def test_webhooks_from_the_policy():
    """settings(run) may name webhooks: posted to as well as --notify's."""
    ok, other = Hook(200), Hook(200)
    try:
        policy = os.path.join(TMP, "notify.lua")
        with open(policy, "w") as f:
            f.write("local vmm = require('vmm')\n"
                    f"function settings(run) return {{ notify = {{ '{ok.url}' }} }} end\n"
                    "function decide(vm, run)\n"
                    "    if vmm.tag(vm, 'test') ~= 'notify' then return nil end\n"
                    "    return {}\n"
                    "end\n")
        os.chmod(policy, 0o644)
        g = Guest("a")
        g.tag("a", test="notify")
        r = vmmigrate("run", "--policy", policy, "-s", uri("a"), "-t", uri("b"), "--json",
                      "--notify", other.url)
        check_eq(r.rc, 0, "exit code")
        check_eq(r.report()["policy"]["settings"], {"notify": [ok.url]}, "settings")
        for h, what in ((ok, "the policy's hook"), (other, "--notify's hook")):
            check_eq(h.events(), ["run.started", "run.finished"], what)
        g.check_runs_only_on("b")
    finally:
        ok.close()
        other.close()


if __name__ == "__main__":
    main([test_webhooks, test_token_file_readable_by_others_is_refused,
          test_webhooks_from_the_policy])
