#!/usr/bin/python3
"""A target host that accepts the TCP connection and never answers (a
listener here, standing in for a hung libvirtd or a half-dead network next
to a real lab source): plan and run give up after --connect-timeout with
exit 4 and one line naming the URI; SIGTERM while the run is stuck
connecting ends it at once with exit 5. Either way nothing is migrated and
the guest keeps running on its source."""
import os
import signal
import socket
import tempfile
import threading
import time

from labtest import Guest, Run, check, check_eq, check_in, log, main, uri

TMP = tempfile.mkdtemp(prefix="vmm-it-connect-")
TIMEOUT = 3
# How long past --connect-timeout a run may take to end: a loaded 2-core
# machine, not a second deadline.
MARGIN = 30


class Silent:
    """A TCP listener on 127.0.0.1 that accepts every connection, reads
    nothing, answers nothing and keeps it open until closed."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.uri = f"qemu+tcp://127.0.0.1:{self.port}/system"
        self.conns = []
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.conns.append(c)
            self.accepted.set()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def stop(r):
    """A run a failed check left running: killed, by its PID."""
    if r is not None and r.proc.poll() is None:
        log(f"killing vmmigrate (PID {r.proc.pid}), still running")
        r.proc.kill()
        r.proc.wait()


def error_lines(r):
    return [l for l in r.stderr.splitlines() if l.strip()]


def check_gave_up(command):
    g = Guest("a")
    before = g.ticks("a")
    silent = Silent()
    r = None
    try:
        start = time.monotonic()
        r = Run([command, "-s", uri("a"), "-t", silent.uri, "--vm", g.name, "--json",
                 "--connect-timeout", str(TIMEOUT)])
        r.wait(TIMEOUT + MARGIN)
        took = time.monotonic() - start
        check(silent.accepted.is_set(), "vmmigrate connected to the listener")
    finally:
        stop(r)
        silent.close()
    check_eq(r.rc, 4, "exit code")
    lines = error_lines(r)
    check_eq(lines, [f"vmmigrate: error: {command}: cannot connect to '{silent.uri}' within "
                     f"{TIMEOUT} s: no answer (see --connect-timeout)"], "the one error line")
    check(took >= TIMEOUT - 0.5, f"gave up after the timeout, not before ({took:.1f} s)")
    rep = r.report()
    check_eq(rep["result"], "unreachable", "report result")
    check_eq(rep["exit_code"], 4, "report exit code")
    check_eq(rep["options"]["connect_timeout_s"], TIMEOUT, "report options")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def test_plan_gives_up():
    check_gave_up("plan")


def test_run_gives_up():
    check_gave_up("run")


def test_sigterm_while_connecting():
    g = Guest("a")
    before = g.ticks("a")
    silent = Silent()
    ev = os.path.join(TMP, "sigterm.ndjson")
    r = None
    try:
        # No deadline of its own: only the signal can end it.
        r = Run(["run", "-s", uri("a"), "-t", silent.uri, "--vm", g.name, "--json", "--events",
                 ev, "--connect-timeout", "0"])
        check(silent.accepted.wait(60), "vmmigrate connected to the listener")
        # The source (a real host) has answered: the run waits for the
        # target only.
        r.wait_event(lambda e: e["event"] == "connected", timeout=60)
        check(r.proc.poll() is None, "the run is still connecting")
        signalled = time.monotonic()
        r.signal(signal.SIGTERM)
        r.wait(MARGIN)
        took = time.monotonic() - signalled
    finally:
        stop(r)
        silent.close()
    log(f"ended {took:.2f} s after SIGTERM")
    check_eq(r.rc, 5, "exit code")
    check_eq(error_lines(r), [f"vmmigrate: error: run: interrupted by SIGTERM while connecting "
                              f"to '{silent.uri}'; nothing migrated"], "the one error line")
    check(took < 10, f"ended at once ({took:.1f} s after the signal)")
    rep = r.report()
    check_eq(rep["result"], "interrupted", "report result")
    check_eq(rep["vms"], [], "nothing migrated")
    events = [e["event"] for e in r.events()]
    check_in("signal", events, "events")
    check_eq(events[-1], "run.finished", "the last event")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


if __name__ == "__main__":
    main([test_plan_gives_up, test_run_gives_up, test_sigterm_while_connecting])
