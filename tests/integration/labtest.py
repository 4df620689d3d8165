# SPDX-License-Identifier: MIT
"""labtest.py — what the integration tests share: the lab (tests/lab/lab.sh),
guests, tick counters, running vmmigrate, schema validation, and asserts
that print both values.

Each test file is one program run by ctest in its own process with a
timeout; the lab itself is started by ctest's `lab` fixture (lab.sh up) and
stopped by its cleanup (lab.sh down, by PID). Run one test by hand with:

    VMM_BINARY=build/vmmigrate tests/lab/lab.sh up 2
    VMM_BINARY=build/vmmigrate /usr/bin/python3 tests/integration/test_migrate.py
"""
import json
import os
import re
import signal
import subprocess
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VMM_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
LAB_SH = os.path.join(SOURCE_DIR, "tests", "lab", "lab.sh")
BINARY = os.environ.get("VMM_BINARY", os.path.join(SOURCE_DIR, "build", "vmmigrate"))


class Failure(AssertionError):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    if not cond:
        raise Failure(f"check failed: {what}")


def check_eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"check failed: {what}: got {actual!r}, expected {expected!r}")


def check_in(needle, hay, what):
    if needle not in hay:
        raise Failure(f"check failed: {what}: {needle!r} not in {hay!r}")


def lab(*args, check_rc=True, timeout=120):
    p = subprocess.run([LAB_SH, *args], capture_output=True, text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise Failure(f"lab.sh {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout.strip()


def uri(host):
    return lab("uri", host)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class Guest:
    """A lab test guest, destroyed on every host when the test ends."""

    all = []

    def __init__(self, host, name=None, mem=64, dirty=4, hz=10, qmp=False, persistent=False,
                 spice=False):
        self.name = name or unique("vm")
        self.qmp = qmp
        args = ["define-guest", host, self.name, "--mem", str(mem), "--dirty", str(dirty),
                "--hz", str(hz)]
        if qmp:
            args.append("--qmp")
        if persistent:
            args.append("--persistent")
        if spice:
            args.append("--spice")
        Guest.all.append(self)
        lab(*args)
        self.home = host
        # Booting fills all guest RAM under TCG: slow on a loaded machine.
        self.wait_ticking(host, seconds=120)

    def ticks(self, host):
        out = lab("ticks", host, self.name, check_rc=False)
        return int(out) if out.isdigit() else None

    def wait_tick(self, host, n, seconds=30):
        lab("wait-tick", host, self.name, str(n), str(seconds), timeout=seconds + 30)

    def wait_ticking(self, host, more=3, seconds=30):
        """Wait until the counter on host advances by `more`; returns it."""
        start = self.ticks(host) or 0
        self.wait_tick(host, start + more, seconds)
        return self.ticks(host)

    def where(self):
        """{host: "state (reason)"} for every lab host that has the domain."""
        out = lab("where", self.name, check_rc=False)
        res = {}
        for line in out.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                res[parts[0]] = parts[1]
        return res

    def check_runs_only_on(self, host):
        w = self.where()
        running = [h for h, s in w.items() if s.startswith("running")]
        check_eq(running, [host], f"hosts where {self.name} runs (all: {w})")

    def check_only_on(self, host):
        """Runs on host, and no other host has the domain at all (no copy
        left paused or defined on a target after a rollback)."""
        self.check_runs_only_on(host)
        w = self.where()
        check_eq(sorted(w), [host], f"hosts that have {self.name}: {w}")

    def check_survived_on(self, host, before):
        """The serial tick counter on host continues past `before`, with no
        reset: the guest runs there with its memory intact."""
        after = self.wait_ticking(host)
        check(after is not None and after > before,
              f"{self.name}: counter on {host} continues ({before} -> {after})")
        return after

    def tag(self, host, **tags):
        """Set the guest's vmmigrate tags on the running domain, as an
        operator would (virsh metadata, namespace urn:vmmigrate:1)."""
        xml = "<tags>" + "".join(f"<{k}>{v}</{k}>" for k, v in tags.items()) + "</tags>"
        lab("virsh", host, "metadata", self.name, "--uri", "urn:vmmigrate:1", "--key", "vmm",
            "--set", xml, "--live")

    def qmp_path(self, host):
        return lab("qmp-path", host, self.name)

    def destroy(self):
        for h in self.where():
            lab("destroy-guest", h, self.name, check_rc=False)

    @classmethod
    def destroy_all(cls):
        for g in cls.all:
            try:
                g.destroy()
            except Exception as e:  # keep cleaning up
                log(f"cleanup of {g.name}: {e}")
        cls.all = []


# stderr is a pipe here, so vmmigrate timestamps every line; checks compare
# the messages (Run.stderr), Run.stderr_raw keeps the times.
STAMP = re.compile(r"^vmmigrate: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", re.M)


# A run whose crash a test wants the next run or `vmmigrate recover` to
# settle (as after a power loss, when the run's guardian dies with it):
# VMM_FAULT for a run without its guardian (docs/testing.md).
NO_GUARDIAN = "guardian-start:fail"


def with_faults(env, *points):
    """env (a dict, or None) with points added to its VMM_FAULT."""
    env = dict(env or {})
    env["VMM_FAULT"] = ",".join([p for p in [env.get("VMM_FAULT")] if p] + list(points))
    return env


# Every test program keeps its journals to itself: a command that reads or
# writes journals and names no --journal-dir gets this program's own, never
# the shared default (/var/lib/vmmigrate/journal), where a run would settle
# what another test program, another build's pass or an earlier suite left
# there (a crashed run's owed deinit steps, say) and print about it.
JOURNAL_DIR = os.environ.get("VMM_IT_JOURNAL_DIR") or os.path.join(
    "/var/tmp", f"vmm-it-journal-{os.getpid()}-{uuid.uuid4().hex[:6]}")
JOURNAL_COMMANDS = ("run", "drain", "recover", "status", "qemu")


def with_journal(args):
    """args with --journal-dir JOURNAL_DIR after the command, unless given."""
    if args and args[0] in JOURNAL_COMMANDS and "--journal-dir" not in args:
        return [args[0], "--journal-dir", JOURNAL_DIR, *args[1:]]
    return list(args)


class Run:
    """A vmmigrate process."""

    def __init__(self, args, new_session=False):
        """new_session: run it in a session (and process group) of its own,
        as a service manager does, so that signal_group() reaches it and
        every process it started (libvirt's ssh children, say)."""
        args = with_journal(args)
        self.args = [BINARY, *args]
        self.events_path = args[args.index("--events") + 1] if "--events" in args else None
        log("$ " + " ".join(self.args))
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=new_session)
        self.rc = self.stdout = self.stderr = None

    def signal(self, sig=signal.SIGINT):
        self.proc.send_signal(sig)

    def signal_group(self, sig=None):
        """sig (SIGTERM) to the whole process group (needs new_session=True),
        as systemd's default KillMode=control-group stops a unit."""
        os.killpg(self.proc.pid, sig or signal.SIGTERM)

    def wait(self, timeout=300):
        self.stdout, self.stderr_raw = self.proc.communicate(timeout=timeout)
        self.stderr = STAMP.sub("vmmigrate: ", self.stderr_raw)
        self.rc = self.proc.returncode
        log(f"exit {self.rc}; stderr: {self.stderr.strip()[:2000]}")
        return self

    def report(self):
        try:
            rep = json.loads(self.stdout)
        except ValueError as e:
            raise Failure(f"stdout is not one JSON report ({e}): {self.stdout[:500]!r}")
        validate(rep, "report")
        return rep

    def events(self):
        evs = []
        with open(self.events_path) as f:
            for n, line in enumerate(f, 1):
                try:
                    ev = json.loads(line)
                except ValueError as e:
                    raise Failure(f"{self.events_path}:{n}: not JSON ({e}): {line!r}")
                validate(ev, "event")
                evs.append(ev)
        return evs

    def wait_event(self, pred, timeout=60):
        """Poll the event file until an event matches pred."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.events_path):
                with open(self.events_path) as f:
                    for line in f:
                        if line.endswith("\n"):
                            ev = json.loads(line)
                            if pred(ev):
                                return ev
            if self.proc.poll() is not None:
                raise Failure(f"vmmigrate exited ({self.proc.returncode}) before the event")
            time.sleep(0.1)
        raise Failure("timed out waiting for an event")


def vmmigrate(*args, timeout=300):
    return Run(list(args)).wait(timeout)


_schemas = {}


def validate(obj, name):
    import jsonschema
    if name not in _schemas:
        with open(os.path.join(SOURCE_DIR, "schema", f"{name}.schema.json")) as f:
            _schemas[name] = jsonschema.Draft7Validator(json.load(f))
    errors = sorted(_schemas[name].iter_errors(obj), key=lambda e: e.path)
    if errors:
        raise Failure(f"{name} does not match schema/{name}.schema.json: "
                      f"{errors[0].message} at {list(errors[0].path)} in {json.dumps(obj)[:800]}")


def vm_entry(report, name):
    for v in report["vms"]:
        if v["name"] == name:
            return v
    raise Failure(f"{name} not in report: {[v['name'] for v in report['vms']]}")


def main(tests):
    """Run test functions in order; cleanup guests; exit non-zero on failure."""
    failed = 0
    for t in tests:
        log(f"-- {t.__name__}")
        try:
            t()
            log(f"ok {t.__name__}")
        except Exception as e:
            failed += 1
            log(f"FAIL {t.__name__}: {e}")
            import traceback
            traceback.print_exc()
        finally:
            Guest.destroy_all()
    log(f"{len(tests) - failed} passed, {failed} failed")
    if failed:
        log(f"journals of this program kept in {JOURNAL_DIR}")
        raise SystemExit(1)
    if not os.environ.get("VMM_IT_JOURNAL_DIR"):
        import shutil
        shutil.rmtree(JOURNAL_DIR, ignore_errors=True)
