#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shipped systemd units: systemd-analyze verify accepts them, their
exposure (systemd-analyze security) is at most 4.5 ("OK"), and the drain's
service takes the fleet from its EnvironmentFile, stops with KillMode=mixed
and names its state, runtime directory and man page.

Usage: check_systemd.py UNIT_DIR BINDIR BINARY
UNIT_DIR holds the configured units (BUILD/systemd); BINDIR is the configured
bindir they name; BINARY the built vmmigrate, put in its place for verify
(which checks that ExecStart= names an executable)."""
import os
import shutil
import subprocess
import sys
import tempfile

MAX_EXPOSURE = 45          # systemd-analyze's --threshold: tenths (4.5)
UNITS = ["vmmigrate-drain@.service", "vmmigrate-drain@.timer", "vmmigrate-recover.service"]
# What vmmigrate-drain@.service must say (the key and a part of its value).
DRAIN_MUST = [
    ("EnvironmentFile", "/vmmigrate/%i.conf"),
    ("ExecStart", "${VMMIGRATE_SOURCE}"),
    ("ExecStart", "$VMMIGRATE_OPTIONS"),
    ("ExecStart", "--policy ${VMMIGRATE_POLICY}"),
    ("ExecStopPost", "vmmigrate recover"),
    ("KillMode", "mixed"),
    ("StateDirectory", "vmmigrate"),
    ("RuntimeDirectory", "vmmigrate"),
    ("Documentation", "man:vmmigrate(1)"),
    ("SuccessExitStatus", "8"),
]
# Nothing of a fleet is written into the units.
FORBIDDEN = ["hv-spare", "hv12", "alerts.example", "--target"]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def settings(text):
    """key -> [values], continuation lines joined."""
    out, key = {}, None
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def main():
    if len(sys.argv) != 4:
        fail("usage: check_systemd.py UNIT_DIR BINDIR BINARY")
    unit_dir, bindir, binary = sys.argv[1:]
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        fail("systemd-analyze not found (Debian's systemd package)")
    with tempfile.TemporaryDirectory() as tmp:
        for u in UNITS:
            path = os.path.join(unit_dir, u)
            try:
                text = open(path, encoding="utf-8").read()
            except OSError as e:
                fail(f"{path}: {e.strerror}")
            for word in FORBIDDEN:
                if any(word in l for l in text.splitlines() if not l.lstrip().startswith("#")):
                    fail(f"{u}: names '{word}' outside a comment; the fleet belongs in the EnvironmentFile")
            if u == "vmmigrate-drain@.service":
                s = settings(text)
                for key, part in DRAIN_MUST:
                    if not any(part in v for v in s.get(key, [])):
                        fail(f"{u}: {key}= does not name '{part}'")
            # A template is checked as an instance, as systemd would load it.
            name = u.replace("@.", "@hv1.")
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text.replace(os.path.join(bindir, "vmmigrate"), os.path.abspath(binary)))
        names = [os.path.join(tmp, u.replace("@.", "@hv1.")) for u in UNITS]
        r = subprocess.run([analyze, "verify", "--man=no"] + names,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or r.stderr.strip():
            fail("systemd-analyze verify: " + (r.stderr.strip() or f"exit {r.returncode}").replace("\n", "; "))
        for n in names:
            if not n.endswith(".service"):
                continue
            r = subprocess.run([analyze, "security", "--offline=yes", f"--threshold={MAX_EXPOSURE}", n],
                               capture_output=True, text=True, timeout=60)
            last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
            if r.returncode != 0:
                fail(f"{os.path.basename(n)}: exposure above {MAX_EXPOSURE / 10}: {last}")
            print(f"ok: {os.path.basename(n)}: {last.replace('→ ', '')}")
    print(f"ok: {len(UNITS)} units verified")


if __name__ == "__main__":
    main()
