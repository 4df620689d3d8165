#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run ids across every output of real drains: two guests drained from a to
b, then back from b to a, then a drain of c (nothing on it: exit 8), all
appending to one events file. The file splits by run id into exactly the
three runs; every line carries one; each drain's id is its report's, its
status file's and its journal's (the file's name and every record's run),
its journal names the guests it moved, and each guest's events in that
drain carry its id. The guests end where the second drain put them."""
import json
import os
import tempfile

from labtest import Guest, Run, SOURCE_DIR, check, check_eq, lab, log, main, uri, validate

TMP = tempfile.mkdtemp(prefix="vmm-it-runid-")
POLICY = os.path.join(SOURCE_DIR, "policies", "evacuate.lua")
EVENTS = os.path.join(TMP, "events.ndjson")
JOURNAL = os.path.join(TMP, "journal")
LOCKS = os.path.join(TMP, "locks")


def drain(src, dst, tag):
    status = os.path.join(TMP, f"{tag}.status.json")
    r = Run(["drain", uri(src), "--target", uri(dst), "--policy", POLICY, "--events", EVENTS,
             "--status-file", status, "--journal-dir", JOURNAL, "--lock-dir", LOCKS, "--json"])
    r.wait(600)
    rep = r.report()
    with open(status) as f:
        st = json.load(f)
    validate(st, "status")
    return r, rep, st


def journal_records(path):
    with open(path) as f:
        recs = [json.loads(line) for line in f]
    for rec in recs:
        validate(rec, "journal")
    return recs


def test_run_ids_agree():
    lab("up", "3")
    guests = [Guest("a") for _ in range(2)]
    names = {g.name for g in guests}
    runs = []
    for src, dst, tag, code in [("a", "b", "out", 0), ("b", "a", "back", 0), ("c", "a", "none", 8)]:
        r, rep, st = drain(src, dst, tag)
        check_eq(r.rc, code, f"drain {src} -> {dst}: exit code")
        runs.append((tag, rep, st))
    for g in guests:
        g.check_only_on("a")

    # The events file: every line a run id, three runs in all.
    by_run = {}
    with open(EVENTS) as f:
        for n, line in enumerate(f, 1):
            ev = json.loads(line)
            validate(ev, "event")
            check(ev.get("run"), f"{EVENTS}:{n} carries a run id: {line!r}")
            by_run.setdefault(ev["run"], []).append(ev)
    log(f"runs in the events file: {sorted(by_run)}")
    check_eq(len(by_run), 3, f"the events file splits into the three drains: {sorted(by_run)}")

    for tag, rep, st in runs:
        run = rep["run"]
        evs = by_run.get(run, [])
        kinds = [e["event"] for e in evs]
        check(kinds and kinds[0] == "run.started" and kinds[-1] == "run.finished",
              f"drain {tag}: its lines (run {run}) are one whole run: {kinds[:5]}...{kinds[-3:]}")
        check(evs[0]["details"]["sources"] == [rep["source"]["uri"]],
              f"drain {tag}: run {run}'s lines are of its source")
        check_eq(st["run"]["id"], run, f"drain {tag}: the status file's run id")
        check(any(e["event"] == "connected" for e in evs),
              f"drain {tag}: the events before the journal opened carry the id too")
        path = os.path.join(JOURNAL, run + ".ndjson")
        if tag == "none":
            check_eq(rep["journal"], None, "the drain with nothing to move opened no journal")
            check(not os.path.exists(path), f"no journal {path} for the drain that moved nothing")
            continue
        check_eq(rep["journal"], path, f"drain {tag}: the report's journal is named after its id")
        jev = [e for e in evs if e["event"] == "journal"]
        check_eq([e["details"] for e in jev], [{"run": run, "path": path}],
                 f"drain {tag}: the journal event")
        recs = journal_records(path)
        check(recs, f"drain {tag}: its journal has records")
        check_eq({r["run"] for r in recs}, {run}, f"drain {tag}: every journal record's run")
        moved = {r["vm"] for r in recs if r["record"] == "finished"}
        # a drain moves whatever runs on its source: a guest an earlier test
        # left there moves too; ours must be among them
        check(names <= moved, f"drain {tag}: the guests its journal says it moved: {moved}, "
              f"ours {names}")
        for g in guests:
            res = [e for e in evs if e["event"] == "result" and e["vm"] == g.name]
            check_eq([e["details"]["result"] for e in res], ["migrated"],
                     f"drain {tag}: {g.name}'s result among run {run}'s lines")
        other = [e for rid, es in by_run.items() if rid != run for e in es
                 if e["event"] == "journal" and e["details"]["path"] == path]
        check_eq(other, [], f"drain {tag}: no other run's lines name its journal")
        # status RUN reads the same journal
        out = Run(["status", run, "--journal-dir", JOURNAL, "--json"]).wait(60)
        check_eq(out.rc, 0, f"status {run}")
        ids = [x.get("id") for x in json.loads(out.stdout).get("runs", [])]
        check_eq(ids, [run], f"status {run} shows that run")


if __name__ == "__main__":
    main([test_run_ids_agree])
