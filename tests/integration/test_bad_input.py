#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Bad input gets a one-line error naming the culprit and a documented exit
code, and changes nothing: the guests keep running where they were."""
from labtest import Guest, lab, check, check_eq, check_in, main, uri, vmmigrate


def one_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(len(lines) >= 1, "an error on stderr")
    return lines


def test_unknown_vm():
    g = Guest("a")
    before = g.ticks("a")
    r = vmmigrate("run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--vm", "no-such-vm",
                  "--json")
    check_eq(r.rc, 3, "exit code")
    lines = one_line(r)
    check_eq(len(lines), 1, f"one error line: {lines}")
    check_in("'no-such-vm' not found", lines[0], "error names the VM")
    rep = r.report()
    check_eq(rep["result"], "preflight", "report result")
    check_eq(rep["vms"], [], "nothing migrated")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def test_vm_not_running():
    g = Guest("a", persistent=True)
    lab("virsh", "a", "destroy", g.name)  # defined, shut off
    lab_state = g.where()
    check(lab_state.get("a", "").startswith("shut off"), f"{g.name} is shut off: {lab_state}")
    r = vmmigrate("run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name)
    check_eq(r.rc, 3, "exit code")
    check_in(f"'{g.name}' is not running", r.stderr, "error names the VM")
    check_eq(g.where(), lab_state, "domain state unchanged")


def test_same_host():
    g = Guest("a")
    before = g.ticks("a")
    # Another spelling of host a's URI: only the host UUID can tell.
    other = uri("a").replace("?", "?no_tty=1&", 1)
    r = vmmigrate("run", "-s", uri("a"), "-t", other, "--vm", g.name)
    check_eq(r.rc, 3, "exit code")
    check_in("are the same host", r.stderr, "error")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def test_unreachable():
    g = Guest("a")
    before = g.ticks("a")
    r = vmmigrate("run", "-s", uri("a"), "-t", "qemu+unix:///system?socket=/nonexistent/sock",
                  "--vm", g.name, "--json")
    check_eq(r.rc, 4, "exit code")
    check_in("cannot connect to 'qemu+unix:///system?socket=/nonexistent/sock'", r.stderr,
             "error names the URI")
    check_eq(r.report()["result"], "unreachable", "report result")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def test_bad_option_value():
    g = Guest("a")
    r = vmmigrate("run", "-s", uri("a"), "-t", uri("b"), "--vm", g.name, "--bandwidth", "fast")
    check_eq(r.rc, 2, "exit code")
    check_eq(r.stderr.strip(),
             "vmmigrate: error: run: --bandwidth: 'fast' is not an integer from 1 to 1000000",
             "error")
    g.check_runs_only_on("a")


if __name__ == "__main__":
    main([test_unknown_vm, test_vm_not_running, test_same_host, test_unreachable,
          test_bad_option_value])
