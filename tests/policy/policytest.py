# SPDX-License-Identifier: MIT
"""Shared helpers of the policy unit tests (tests/policy/test_*.py).

No lab: the hosts are libvirt test-driver node files (tests/policy/fixtures),
copied with the policies into a private 0700 directory, since the sandbox
refuses policy files (and directories) that are writable by group or others
or owned by someone else than root or the user running vmmigrate, and a
checkout's modes vary. "@FIXTURES@" in a fixture stands for that directory
(a <target> tag names a target host by its URI).

Environment: VMM_BINARY (the built vmmigrate), VMM_SOURCE_DIR (the source
tree); VMM_KEEP_TMP=1 keeps the private directory for a look afterwards.
Standard library plus jsonschema (Debian: python3-jsonschema).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True

try:
    import jsonschema
except ImportError:  # a missing dependency is a failure, not a skip
    sys.exit("tests/policy needs the jsonschema module (apt-get install python3-jsonschema)")

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VMM_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BINARY = os.environ.get("VMM_BINARY")
if not BINARY or not os.access(BINARY, os.X_OK):
    sys.exit(f"VMM_BINARY must name the built vmmigrate (got {BINARY!r})")

MiB = 1024 * 1024
GiB = 1024 * MiB

# The directory every test of this process works in (fixtures and policies).
WORK = tempfile.mkdtemp(prefix="vmm-policy-")
os.chmod(WORK, 0o700)


def _cleanup():
    if os.environ.get("VMM_KEEP_TMP"):
        print(f"kept {WORK}", file=sys.stderr)
    else:
        shutil.rmtree(WORK, ignore_errors=True)


def install(src, name=None, mode=0o644, subst=True):
    """Copy SRC into WORK (as NAME), with @FIXTURES@ replaced by WORK; return the path."""
    dst = os.path.join(WORK, name or os.path.basename(src))
    with open(src, encoding="utf-8") as f:
        text = f.read()
    if subst:
        text = text.replace("@FIXTURES@", WORK)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(dst, mode)
    return dst


for _f in sorted(os.listdir(os.path.join(HERE, "fixtures"))):
    if _f.endswith(".xml"):
        install(os.path.join(HERE, "fixtures", _f))


def uri(fixture):
    """The test-driver URI of a host fixture (e.g. "source")."""
    return "test://" + os.path.join(WORK, fixture + ".xml")


SOURCE = uri("source")
BIG = uri("target-big")
SMALL = uri("target-small")
ROOMY = uri("target-roomy")


def shipped_policy(name):
    """A private copy of policies/NAME.lua (the file as shipped)."""
    return install(os.path.join(SOURCE_DIR, "policies", name + ".lua"), subst=False)


def own_policy(name):
    """A private copy of tests/policy/policies/NAME.lua."""
    return install(os.path.join(HERE, "policies", name + ".lua"), subst=False)


def marker_line(path, marker):
    """The line number (1-based) of the line holding the comment `-- @MARKER`."""
    with open(path, encoding="utf-8") as f:
        hits = [i for i, line in enumerate(f, 1) if line.rstrip().endswith("-- @" + marker)]
    if len(hits) != 1:
        raise AssertionError(f"{path}: marker @{marker} found {len(hits)} times, want once")
    return hits[0]


# stderr is a pipe here, so vmmigrate timestamps every line; checks compare
# the messages (Result.stderr), Result.stderr_raw keeps the times.
STAMP = re.compile(r"^vmmigrate: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", re.M)


class Result:
    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr_raw = proc.stderr
        self.stderr = STAMP.sub("vmmigrate: ", proc.stderr)

    def json(self):
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError(f"stdout of {self.argv} is not JSON ({e}):\n{self.stdout}\n"
                                 f"stderr:\n{self.stderr}") from None

    def __str__(self):
        return (f"$ {' '.join(self.argv)}\nexit {self.rc}\n--- stdout\n{self.stdout}"
                f"--- stderr\n{self.stderr}")


def vmmigrate(*args, timeout=60):
    argv = [BINARY, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, LC_ALL="C"))
    return Result(argv, proc)


def plan(policy, targets=(BIG, SMALL), source=SOURCE, extra=()):
    args = ["plan", "--policy", policy, "--source", source]
    for t in targets:
        args += ["--target", t]
    return vmmigrate(*args, "--json", *extra)


def _schema(name):
    with open(os.path.join(SOURCE_DIR, "schema", name), encoding="utf-8") as f:
        return json.load(f)


REPORT_SCHEMA = _schema("report.schema.json")
EVENT_SCHEMA = _schema("event.schema.json")


def validate(doc, schema, what):
    cls = jsonschema.validators.validator_for(schema)
    errors = sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        lines = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:10]]
        raise AssertionError(f"{what} does not match its schema:\n  " + "\n  ".join(lines))


def report_of(r, rc):
    """The --json report of run R, checked: exit status RC, schema-valid."""
    if r.rc != rc:
        raise AssertionError(f"exit status: got {r.rc}, want {rc}\n{r}")
    rep = r.json()
    validate(rep, REPORT_SCHEMA, "the --json report")
    if rep["exit_code"] != rc:
        raise AssertionError(f"report exit_code: got {rep['exit_code']}, want {rc}")
    return rep


def events_of(path):
    """The NDJSON events in PATH, each checked against schema/event.schema.json."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            ev = json.loads(line)
            validate(ev, EVENT_SCHEMA, f"event {n} of {path}")
            out.append(ev)
    return out


def by_name(rep):
    vms = rep["plan"]["vms"]
    names = [v["name"] for v in vms]
    if len(set(names)) != len(names):
        raise AssertionError(f"a VM appears twice in the plan: {names}")
    return {v["name"]: v for v in vms}


def check_eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}:\n  got:  {got!r}\n  want: {want!r}")


class TestCase(unittest.TestCase):
    maxDiff = None

    def eq(self, got, want, what):
        check_eq(got, want, what)


def main():
    try:
        unittest.main(verbosity=2)
    finally:
        _cleanup()
