#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test-run-id.py — the events of several runs appended to one NDJSON file
split by run id, and each run's id is its report's, its status file's and its
journal's. No lab: the runs end early on their own (test:///default, a VM
already on the target: exit 3; QMP sockets that do not exist: exit 1), which
is where an event stream has no journal to take an id from.

    test-run-id.py BUILD_DIR SOURCE_DIR

A run, a plan and a plain QEMU run are started at once, appending to one
events file (their lines may interleave), then a run again, then recover.
Every line must carry a run id of the journal's form, the lines must split
into exactly the four runs, each run's lines must be its own (run.started
first, run.finished last), and each id must be the one its report, status
file and journal give. Lines and documents are checked against schema/.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

try:
    import jsonschema
except ImportError:
    sys.exit("test-run-id.py needs the jsonschema module (apt-get install python3-jsonschema)")

BUILD, SOURCE = sys.argv[1], sys.argv[2]
VMM = os.path.join(BUILD, "vmmigrate")
RUN_ID = re.compile(r"^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-(\d+)$")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def schema(name):
    with open(os.path.join(SOURCE, "schema", name + ".schema.json")) as f:
        return jsonschema.Draft7Validator(json.load(f))


def check_schema(name, doc, what):
    errors = sorted(schema(name).iter_errors(doc), key=str)
    if errors:
        fail(f"{what} does not match schema/{name}.schema.json: {errors[0].message}")


def start(args, out):
    return subprocess.Popen([VMM] + args, stdout=out, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=dict(os.environ, LC_ALL="C"))


def finish(proc, want_exit, what):
    _, err = proc.communicate(timeout=60)
    if proc.returncode != want_exit:
        fail(f"{what} exited {proc.returncode}, expected {want_exit}; stderr:\n{err}")


def main():
    tmp = tempfile.mkdtemp(prefix="vmm-run-id-")
    events = os.path.join(tmp, "events.ndjson")
    journals = os.path.join(tmp, "journal")
    locks = os.path.join(tmp, "locks")
    common = ["--events", events, "--journal-dir", journals]
    libvirt = ["-s", "test:///default", "-t", "test:///default?b", "--vm", "test"]
    runs = {}  # what -> (report path, status path or None, pid)

    def report_file(what):
        return open(os.path.join(tmp, what + ".json"), "w")

    procs = []
    for what, args, code in [
        ("run1", ["run"] + libvirt + ["--status-file", os.path.join(tmp, "run1.status"),
                                     "--lock-dir", locks], 3),
        ("plan", ["plan"] + libvirt, 3),
        ("qemu", ["qemu", "-s", os.path.join(tmp, "no-src"), "-t", os.path.join(tmp, "no-dst"),
                  "-u", "tcp:127.0.0.1:1"], 1),
    ]:
        with report_file(what) as out:
            p = start(args + common + ["--json"], out)
        procs.append((p, code, what))
        runs[what] = p.pid
    for p, code, what in procs:
        finish(p, code, what)
    # one more run after the others: appended to what is there
    with report_file("run2") as out:
        p = start(["run"] + libvirt + common + ["--json", "--lock-dir", locks, "--status-file",
                                               os.path.join(tmp, "run2.status")], out)
    runs["run2"] = p.pid
    finish(p, 3, "run2")

    # every line carries a run id, of the journal's form
    by_run = {}
    with open(events) as f:
        for n, line in enumerate(f, 1):
            ev = json.loads(line)
            check_schema("event", ev, f"events line {n}")
            run = ev.get("run")
            m = RUN_ID.match(run or "")
            if not m:
                fail(f"events line {n} has no run id of the form TIME-PID: {run!r}")
                continue
            by_run.setdefault(run, []).append(ev)
    if len(by_run) != 4:
        fail(f"the events split into {len(by_run)} runs, expected 4: {sorted(by_run)}")

    for what, pid in runs.items():
        with open(os.path.join(tmp, what + ".json")) as f:
            rep = json.load(f)
        check_schema("qemu-report" if what == "qemu" else "report", rep, f"the {what} report")
        run = rep.get("run")
        m = RUN_ID.match(run or "")
        if not m:
            fail(f"the {what} report has no run id: {run!r}")
            continue
        if int(m.group(1)) != pid:
            fail(f"the {what} report's run {run} does not end in its PID {pid}")
        evs = by_run.get(run, [])
        names = [e["event"] for e in evs]
        if not evs or names[0] != "run.started" or names[-1] != "run.finished" or \
                names.count("run.started") != 1 or names.count("run.finished") != 1:
            fail(f"the lines of {what} (run {run}) are not one whole run: {names}")
        started = [e for e in evs if e["event"] == "run.started"]
        command = "qemu" if what == "qemu" else "plan" if what == "plan" else "run"
        if started and started[0]["details"].get("command") != command:
            fail(f"run {run}'s lines are of command {started[0]['details'].get('command')}, "
                 f"not {what}'s")
        status = os.path.join(tmp, what + ".status")
        if os.path.exists(status):
            with open(status) as f:
                st = json.load(f)
            check_schema("status", st, f"the {what} status file")
            if st["run"]["id"] != run:
                fail(f"the {what} status file says run {st['run']['id']}, its report {run}")
        elif what.startswith("run"):
            fail(f"no status file for {what}")
        if what == "qemu":
            # its journal (opened before it connects) is named after the id
            want = os.path.join(journals, run + ".ndjson")
            if rep.get("journal") != want or not os.path.exists(want):
                fail(f"the qemu report's journal is {rep.get('journal')!r}, expected {want}")
            ev_journal = [e for e in evs if e["event"] == "journal"]
            if not ev_journal or ev_journal[0]["details"].get("run") != run:
                fail(f"the qemu run's journal event does not name run {run}: {ev_journal}")
            with open(want) as f:
                for n, line in enumerate(f, 1):
                    if json.loads(line).get("run") != run:
                        fail(f"{want}:{n} is not of run {run}")
        elif rep.get("journal") is not None:
            fail(f"the {what} report names a journal, {rep['journal']}: it migrated nothing")

    # recover says its run, which is none of the others; it journaled nothing here
    out = subprocess.run([VMM, "recover", "--json", "--journal-dir", journals],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        fail(f"recover exited {out.returncode}: {out.stderr}")
    else:
        rec = json.loads(out.stdout)
        if not RUN_ID.match(rec.get("run") or "") or rec["run"] in by_run:
            fail(f"recover's run {rec.get('run')!r} is not an id of its own")
        if rec.get("journal") is not None:
            fail(f"recover names a journal though it settled nothing: {rec['journal']}")

    if failures:
        print(f"events file {events} kept for a look", file=sys.stderr)
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp], check=False)
    print(f"ok: {sum(len(v) for v in by_run.values())} lines of 4 runs split by run id; "
          "reports, status files and the journal agree")


main()
