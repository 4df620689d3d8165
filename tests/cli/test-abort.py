#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""`vmmigrate abort` picks the runs it is asked to stop, from real run locks
(src/run/lock.h) held by real processes: three "runs" (one of two source
hosts) each hold their locks with flock and write who they are, as a run
does; abort SOURCE (by URI, hostname, short name or the URI's host),
abort --run ID and abort --all send SIGTERM to exactly those; plain abort
names the runs and stops none (exit 2); nothing matching: exit 8."""
import json
import os
import signal
import subprocess
import sys
import tempfile

BINARY = os.environ["VMM_BINARY"]
LOCKS = tempfile.mkdtemp(prefix="vmm-cli-abort-")
# A run: holds its locks and says who it is, as a run does. It blocks
# SIGTERM, so a SIGTERM abort sends stays pending, to be read in
# /proc/PID/status the moment abort has exited: no waiting on anyone.
HOLDER = r"""
import fcntl, json, os, signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
fds = []
for path, note in json.loads(sys.argv[1]):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(dict(note, pid=os.getpid())) + "\n").encode(), 0)
    fds.append(fd)
print("ready", flush=True)
while True:
    time.sleep(60)
"""
RUNS = {
    # name: [(lock file, what the run says)]
    "r1": [("uuid-1.lock", {"source": "qemu+ssh://root@hv13.example:22/system",
                            "hostname": "hv13.example", "run": "2026-12-03T10-00-00.000Z-1"})],
    "r2": [("uuid-2.lock", {"source": "qemu+ssh://hv14/system", "hostname": "hv14",
                            "run": "2026-12-03T10-00-00.000Z-2"}),
           ("uuid-3.lock", {"source": "qemu+ssh://hv15/system", "hostname": "hv15",
                            "run": "2026-12-03T10-00-00.000Z-2"})],
    "r3": [("uuid-4.lock", {"source": "qemu:///system", "hostname": "mgmt", "run": ""})],
}
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    failures += not cond


def start_runs():
    procs = {}
    for name, locks in RUNS.items():
        arg = json.dumps([(os.path.join(LOCKS, f), note) for f, note in locks])
        p = subprocess.Popen([sys.executable, "-c", HOLDER, arg], stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout.readline().strip() == "ready"
        procs[name] = p
    return procs


def stop_runs(procs):
    for p in procs.values():
        p.kill()
        p.wait(30)


def abort(*args):
    return subprocess.run([BINARY, "abort", "--lock-dir", LOCKS, *args], capture_output=True,
                          text=True, timeout=30)


def terminated(procs):
    """The runs with a SIGTERM pending (ShdPnd: signals sent to the process)."""
    got = set()
    for name, p in procs.items():
        with open(f"/proc/{p.pid}/status") as f:
            pend = next(int(ln.split()[1], 16) for ln in f if ln.startswith("ShdPnd:"))
        if pend & (1 << (signal.SIGTERM - 1)):
            got.add(name)
    return got


def case(args, rc, stopped, what):
    procs = start_runs()
    try:
        r = abort(*args)
        got = terminated(procs)
        check(r.returncode == rc and got == stopped,
              f"abort {' '.join(args)}: {what} (exit {r.returncode}, stopped {sorted(got)}; "
              f"stdout {r.stdout.strip()!r} stderr {r.stderr.strip()!r})")
        return r
    finally:
        stop_runs(procs)


case(["qemu+ssh://root@hv13.example:22/system"], 0, {"r1"}, "the URI as the run was given it")
case(["hv13.example"], 0, {"r1"}, "the libvirt hostname")
case(["hv13"], 0, {"r1"}, "the hostname's first label")
case(["hv15"], 0, {"r2"}, "the host of the run's second source's URI")
case(["--run", "2026-12-03T10-00-00.000Z-2"], 0, {"r2"}, "a run by its id")
case(["--all"], 0, {"r1", "r2", "r3"}, "every run")
case(["hv99"], 8, set(), "a source no run drains")
case(["--run", "nope"], 8, set(), "a run id that is not going on")
r = case([], 2, set(), "no target: names the runs, stops none")
check(r.stderr.count("PID") == 3 and "2026-12-03T10-00-00.000Z-2" in r.stderr,
      f"plain abort names each run once: {r.stderr!r}")
case(["hv13", "--all"], 2, set(), "SOURCE and --all together")
empty = tempfile.mkdtemp(prefix="vmm-cli-abort-empty-")
r = subprocess.run([BINARY, "abort", "--lock-dir", empty], capture_output=True, text=True,
                   timeout=30)
check(r.returncode == 8 and "no run is going on" in r.stdout,
      f"plain abort with no run going on: exit {r.returncode}")
os.rmdir(empty)
for f in os.listdir(LOCKS):
    os.unlink(os.path.join(LOCKS, f))
os.rmdir(LOCKS)
print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
