#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Two drains' metrics in one node_exporter textfile directory, as on a
management host that drains several hypervisors: host a and host b drained
at the same time onto c, each run writing its own --metrics-file into the
directory a real node_exporter (Debian's prometheus-node-exporter) serves.
The scrape has no textfile error, every vmmigrate series carries its source
host, and each run's exit code is its own (a later run of b that finds
nothing to move: exit 8, while a's stays 0). promtool checks each file."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

from labtest import Guest, Run, SOURCE_DIR, check, check_eq, lab, log, main, uri

TMP = tempfile.mkdtemp(prefix="vmm-it-metrics-")
TEXTFILES = os.path.join(TMP, "textfiles")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PROMTOOL = "/usr/bin/promtool"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def wait_scrape(port, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            return scrape(port)
        except OSError as e:
            if time.time() >= deadline:
                raise AssertionError(f"node_exporter does not answer on {port}: {e}")
            time.sleep(0.2)


def drain(host, *, journal, locks):
    return Run(["run", "--policy", os.path.join(SOURCE_DIR, "policies", "evacuate.lua"),
                "-s", uri(host), "-t", uri("c"), "--journal-dir", journal, "--lock-dir", locks,
                "--json", "--no-progress", "--metrics-file",
                os.path.join(TEXTFILES, f"vmmigrate-{host}.prom")])


def value(text, name, source):
    """The sample of series name{source=...} in a scrape, or None."""
    pat = re.compile(r'^%s\{(.*)\} (\S+)$' % re.escape(name), re.M)
    for labels, v in pat.findall(text):
        if f'source="{source}"' in labels:
            return float(v)
    return None


def promtool(path):
    p = subprocess.run([PROMTOOL, "check", "metrics"], stdin=open(path), capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
          f"promtool check metrics {os.path.basename(path)}: rc {p.returncode} "
          f"{(p.stdout + p.stderr).strip()}")


def test_two_drains_one_node_exporter():
    for tool in (NODE_EXPORTER, PROMTOOL):
        check(os.access(tool, os.X_OK), f"{tool} installed (scripts/install-deps.sh)")
    lab("up", "3")
    os.makedirs(TEXTFILES)
    journal, locks = os.path.join(TMP, "journal"), os.path.join(TMP, "locks")
    ga, gb = Guest("a"), Guest("b")
    port = free_port()
    ne = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                           "--collector.disable-defaults", "--collector.textfile",
                           f"--collector.textfile.directory={TEXTFILES}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_scrape(port)
        ra, rb = drain("a", journal=journal, locks=locks), drain("b", journal=journal, locks=locks)
        ra.wait(600)
        rb.wait(600)
        check_eq((ra.rc, rb.rc), (0, 0), "both drains' exit codes")
        ga.check_only_on("c")
        gb.check_only_on("c")
        rb2 = drain("b", journal=journal, locks=locks).wait(300)  # nothing left on b
        check_eq(rb2.rc, 8, "exit code of the second drain of b (nothing to migrate)")
        for host in ("a", "b"):
            promtool(os.path.join(TEXTFILES, f"vmmigrate-{host}.prom"))
        text = scrape(port)
        err = re.search(r"^node_textfile_scrape_error (\S+)$", text, re.M)
        check_eq(err and err.group(1), "0", "node_exporter's textfile scrape error")
        ours = [ln for ln in text.splitlines() if ln.startswith("vmmigrate_")]
        check(ours, "node_exporter serves vmmigrate's series")
        bare = [ln for ln in ours if 'source="' not in ln]
        check(not bare, f"every series carries its source host: {bare[:3]}")
        check_eq(value(text, "vmmigrate_run_exit_code", uri("a")), 0.0, "a's exit code as served")
        check_eq(value(text, "vmmigrate_run_exit_code", uri("b")), 8.0, "b's exit code as served")
        migrated = [float(v) for labels, v in
                    re.findall(r"^vmmigrate_migrations\{(.*)\} (\S+)$", text, re.M)
                    if f'source="{uri("a")}"' in labels and 'state="migrated"' in labels]
        check_eq(migrated, [1.0], "a's migrated count as served")
        sent = value(text, "vmmigrate_transferred_bytes_total", uri("a"))
        check(sent and sent > 0, f"a's bytes as served: {sent}")
    finally:
        ne.terminate()
        try:
            err = ne.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            ne.kill()
            err = ne.communicate()[1]
        errors = [ln for ln in err.splitlines() if "level=error" in ln]
        log(f"node_exporter: {len(errors)} error line(s) {errors[:2]}")
        shutil.rmtree(TMP, ignore_errors=True)
    check(not errors, f"node_exporter logged errors: {errors[:2]}")


if __name__ == "__main__":
    main([test_two_drains_one_node_exporter])
