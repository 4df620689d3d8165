#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A target host that accepts the TCP connection and never answers (a
listener here, standing in for a hung libvirtd or a half-dead network next
to a real lab source): plan and run give up after --connect-timeout with
exit 4 and one line naming the URI; SIGTERM while the run is stuck
connecting ends it at once with exit 5. A target that stops answering once
connected (a proxy to a lab host that freezes at the inventory's first
call) is given up by libvirt's keepalive, the run then exits 4; SIGTERM
then ends the run with exit 5 once the call in flight failed. Either way
nothing is migrated and the guest keeps running on its source."""
import os
import signal
import socket
import struct
import tempfile
import threading
import time
import urllib.parse

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


# libvirt's RPC (remote_protocol.x): the remote program, and the first call
# of the inventory (virNodeGetInfo) after the connect and subscribe calls.
REMOTE_PROGRAM = 0x20008086
REMOTE_PROC_NODE_GET_INFO = 6
# libvirt's keepalive as vmmigrate sets it: 2 s, 3 missed.
KEEPALIVE_S = 2 * 4


class Freezer:
    """A TCP proxy on 127.0.0.1 to a lab host's libvirt socket that stops
    passing anything, both ways, at the client's first call of procedure
    `freeze_on`, keeping both connections open: a peer that stops answering
    mid-run."""

    def __init__(self, host_uri, freeze_on):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(host_uri).query)
        self.path = q["socket"][0]
        self.freeze_on = freeze_on
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.uri = f"qemu+tcp://127.0.0.1:{self.sock.getsockname()[1]}/system"
        self.conns = []
        self.frozen = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(self.path)
            self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, calls):
        buf = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            while calls and not self.frozen.is_set():
                buf += data
                data = b""
                if len(buf) < 28:
                    break
                length, prog, _, proc = struct.unpack(">IIII", buf[:16])
                if prog == REMOTE_PROGRAM and proc == self.freeze_on:
                    log(f"proxy frozen at procedure {proc}")
                    self.frozen.set()
                    break
                if len(buf) < length:
                    break
                dst.sendall(buf[:length])
                buf = buf[length:]
            if not calls and not self.frozen.is_set():
                dst.sendall(data)

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


def test_keepalive_ends_hung_inventory():
    g = Guest("a")
    before = g.ticks("a")
    frozen = Freezer(uri("b"), REMOTE_PROC_NODE_GET_INFO)
    r = None
    try:
        r = Run(["plan", "-s", uri("a"), "-t", frozen.uri, "--vm", g.name, "--json"])
        check(frozen.frozen.wait(60), "the inventory reached the proxy")
        froze = time.monotonic()
        r.wait(KEEPALIVE_S + MARGIN)
        took = time.monotonic() - froze
    finally:
        stop(r)
        frozen.close()
    log(f"ended {took:.1f} s after the peer froze")
    check_eq(r.rc, 4, "exit code")
    check_in(f"vmmigrate: error: plan: cannot read the inventory of '{frozen.uri}': ", r.stderr,
             "the error names the host and the call")
    check_in("keepalive", r.stderr, "libvirt's keepalive gave up")
    check_eq(r.report()["result"], "unreachable", "report result")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


def test_sigterm_while_inventory_hangs():
    g = Guest("a")
    before = g.ticks("a")
    frozen = Freezer(uri("b"), REMOTE_PROC_NODE_GET_INFO)
    r = None
    try:
        r = Run(["run", "-s", uri("a"), "-t", frozen.uri, "--vm", g.name, "--json"])
        check(frozen.frozen.wait(60), "the inventory reached the proxy")
        check(r.proc.poll() is None, "the run waits for the inventory")
        signalled = time.monotonic()
        r.signal(signal.SIGTERM)
        r.wait(KEEPALIVE_S + MARGIN)
        took = time.monotonic() - signalled
    finally:
        stop(r)
        frozen.close()
    log(f"ended {took:.1f} s after SIGTERM")
    check_eq(r.rc, 5, "exit code")
    lines = error_lines(r)
    check_eq(lines[0], "vmmigrate: error: run: interrupted by SIGTERM before any migration; "
             "nothing migrated", "the error line, at once")
    rep = r.report()
    check_eq(rep["result"], "interrupted", "report result")
    check_eq(rep["vms"], [], "nothing migrated")
    g.check_runs_only_on("a")
    g.check_survived_on("a", before)


if __name__ == "__main__":
    main([test_plan_gives_up, test_run_gives_up, test_sigterm_while_connecting,
          test_keepalive_ends_hung_inventory, test_sigterm_while_inventory_hangs])
