#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""run-cli-test.py — run one declarative CLI test (tests/cli/NAME.test).

    VMM_BINARY=build/vmmigrate tests/cli/run-cli-test.py tests/cli/NAME.test

A test file (curl's tests/data, much smaller) is a list of `key: value`
lines; blank lines and lines starting with '#' are ignored:

    args: run --source test:///default        the argv after `vmmigrate`,
                                              split like a POSIX shell does
    exit: 2                                   the expected exit status
    stderr: vmmigrate: error: ...             the exact standard error: this
                                              line and a newline; `stderr:`
                                              with nothing after it: empty
    stderr: <<END                             several exact lines, up to a
    ...                                       line `END` (any word works)
    END
    stderr-contains: TEXT                     stderr contains TEXT (repeatable)
    stderr-lines: 1                           stderr has exactly 1 line
    stdout: ...                               the exact standard output, as
                                              for stderr
    stdout-contains: TEXT                     stdout contains TEXT (repeatable)
    env: NAME=VALUE                           set in the environment
    journal-stream: yes                       stderr is "the journal": the
                                              runner sets JOURNAL_STREAM to
                                              its DEV:INO, as systemd does

Without any stderr key, stderr must be empty: every message is part of the
interface. stdout is checked only when a stdout key says so.

Standard error is a file, not a terminal, so vmmigrate starts every line with
"vmmigrate: " and an RFC 3339 timestamp (2024-05-01T12:00:00.000Z). The runner
fails a line without one and removes it before the checks above, so that a
test states the message only. With journal-stream: yes, lines are
"<PRIORITY>message" and are checked as they are.

The binary runs in an empty temporary directory that is also its HOME, with
LC_ALL=C, stdin from /dev/null and no LIBVIRT_* variables, so that neither the
user's libvirt configuration nor the locale changes a message. Exits 0 when
every check holds; otherwise prints each failed check with both values.
"""

import difflib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile

KEYS = {
    "args",
    "exit",
    "stderr",
    "stderr-contains",
    "stderr-lines",
    "stdout",
    "stdout-contains",
    "env",
    "journal-stream",
}
REPEATABLE = {"stderr-contains", "stdout-contains", "env"}


class TestFileError(Exception):
    pass


# How long a command may take; a hung one is killed after its threads'
# stacks are printed (gdb if installed, else the kernel's wait channels).
LIMIT_S = int(os.environ.get("VMM_CLI_TEST_LIMIT", "30"))


def end_session(sid):
    """SIGKILL what is left of the session vmmigrate led (its process group)."""
    try:
        os.killpg(sid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def hung_stacks(pid):
    """What each thread of a hung process waits in, and its children, as text."""
    out = []
    if os.access("/usr/bin/gdb", os.X_OK):
        try:
            g = subprocess.run(["/usr/bin/gdb", "-p", str(pid), "-batch", "-nx",
                                "-ex", "thread apply all bt 25"], capture_output=True,
                               text=True, timeout=60)
            block = []  # one thread's stack; the thread pool's idle workers are left out
            for ln in g.stdout.splitlines() + ["Thread (end)"]:
                if ln.startswith("Thread"):
                    if block and not any("uv_cond_wait" in b for b in block):
                        out += block
                    block = [ln]
                elif ln.startswith("#"):
                    block.append(ln)
        except (OSError, subprocess.TimeoutExpired) as e:
            out.append(f"(gdb: {e})")
    try:
        children = []
        for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                out.append(f"thread {tid} waits in {f.read().strip() or '-'}")
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children += f.read().split()
        for child in children:
            with open(f"/proc/{child}/cmdline", "rb") as c:
                cmd = c.read().replace(b"\0", b" ").decode("utf-8", "replace")
            out.append(f"child {child}: {cmd}")
    except OSError as e:
        out.append(f"(/proc/{pid}: {e})")
    return "".join(f"  {ln}\n" for ln in out)


def parse(path):
    """The test file as {key: value} ({key: [values]} for repeatable keys)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    spec = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        i += 1
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or key not in KEYS:
            raise TestFileError(f"{path}:{lineno}: expected one of {sorted(KEYS)}: {line!r}")
        value = value[1:] if value.startswith(" ") else value
        if value.startswith("<<"):
            end = value[2:].strip()
            if not end:
                raise TestFileError(f"{path}:{lineno}: '<<' needs an end word")
            block = []
            while i < len(lines) and lines[i] != end:
                block.append(lines[i])
                i += 1
            if i == len(lines):
                raise TestFileError(f"{path}:{lineno}: no line {end!r} ends the block")
            i += 1
            value = "".join(b + "\n" for b in block)
        elif key in ("stderr", "stdout"):
            value = value + "\n" if value else ""
        if key in REPEATABLE:
            spec.setdefault(key, []).append(value)
        elif key in spec:
            raise TestFileError(f"{path}:{lineno}: '{key}' given twice")
        else:
            spec[key] = value
    for key in ("args", "exit"):
        if key not in spec:
            raise TestFileError(f"{path}: '{key}:' is required")
    return spec


STAMPED = re.compile(r"^vmmigrate: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def unstamp(err, failures):
    """err without the timestamp of each line; a line without one fails."""
    lines = []
    for line in err.splitlines(keepends=True):
        if STAMPED.match(line):
            line = "vmmigrate: " + line[STAMPED.match(line).end() :]
        else:
            failures.append(f"stderr line without 'vmmigrate: TIMESTAMP ': {line!r}")
        lines.append(line)
    return "".join(lines)


def show(text):
    return "".join("    | " + line + "\n" for line in text.splitlines()) or "    (empty)\n"


def check_exact(name, expected, actual, failures):
    if expected == actual:
        return
    diff = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        f"expected {name}",
        f"actual {name}",
    )
    text = "".join(d if d.endswith("\n") else d + "\n\\ no newline at end\n" for d in diff)
    failures.append(f"{name} differs:\n{text}")


def run(path):
    spec = parse(path)
    binary = os.environ.get("VMM_BINARY")
    if not binary:
        raise TestFileError("VMM_BINARY is not set (the path of the vmmigrate binary)")
    try:
        args = shlex.split(spec["args"])
        expected_exit = int(spec["exit"])
    except ValueError as e:
        raise TestFileError(f"{path}: {e}") from e

    with tempfile.TemporaryDirectory(prefix="vmm-cli-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIBVIRT")}
        env.update(
            HOME=home,
            XDG_CONFIG_HOME=os.path.join(home, ".config"),
            XDG_CACHE_HOME=os.path.join(home, ".cache"),
            XDG_RUNTIME_DIR=home,
            LC_ALL="C",
            LANG="C",
        )
        env.pop("LANGUAGE", None)
        env.pop("JOURNAL_STREAM", None)
        for assignment in spec.get("env", []):
            name, sep, value = assignment.partition("=")
            if not sep:
                raise TestFileError(f"{path}: env: expected NAME=VALUE, got {assignment!r}")
            env[name] = value
        journal = spec.get("journal-stream", "no")
        if journal not in ("yes", "no"):
            raise TestFileError(f"{path}: journal-stream: expected yes or no, got {journal!r}")
        with tempfile.TemporaryFile(dir=home) as errfile, \
                tempfile.TemporaryFile(dir=home) as outfile:
            if journal == "yes":
                st = os.fstat(errfile.fileno())
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            # Files, not pipes, and a session of its own: the test waits for
            # vmmigrate's exit, not for every copy of its descriptors to close
            # (a child libvirt forked for qemu+ext:// that never got to exec
            # holds them: under ASan, malloc after fork can deadlock), and
            # whatever it left behind is ended with its session.
            proc = subprocess.Popen(
                [binary] + args,
                stdin=subprocess.DEVNULL,
                stdout=outfile,
                stderr=errfile,
                cwd=home,
                env=env,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=LIMIT_S)
                end_session(proc.pid)
            except subprocess.TimeoutExpired:
                where = hung_stacks(proc.pid)  # before the kill: where it hangs
                end_session(proc.pid)
                proc.wait()
                errfile.seek(0)
                err = errfile.read().decode("utf-8", "replace")
                return [f"vmmigrate {spec['args']}: no exit within {LIMIT_S} s; its stderr:\n"
                        f"{err}{where}"]
            errfile.seek(0)
            err = errfile.read().decode("utf-8", "replace")
            outfile.seek(0)
            out = outfile.read().decode("utf-8", "replace")

    failures = []
    if journal == "no":
        err = unstamp(err, failures)
    if proc.returncode != expected_exit:
        failures.append(f"exit status: expected {expected_exit}, got {proc.returncode}")
    if "stderr" in spec:
        check_exact("stderr", spec["stderr"], err, failures)
    elif "stderr-contains" not in spec and "stderr-lines" not in spec and err:
        failures.append("stderr: expected nothing, got:\n" + show(err))
    for text in spec.get("stderr-contains", []):
        if text not in err:
            failures.append(f"stderr does not contain {text!r}; it is:\n" + show(err))
    if "stderr-lines" in spec and len(err.splitlines()) != int(spec["stderr-lines"]):
        failures.append(
            f"stderr: expected {spec['stderr-lines']} line(s), got {len(err.splitlines())}:\n"
            + show(err)
        )
    if "stdout" in spec:
        check_exact("stdout", spec["stdout"], out, failures)
    for text in spec.get("stdout-contains", []):
        if text not in out:
            failures.append(f"stdout does not contain {text!r}; it is:\n" + show(out))
    return failures


def main():
    if len(sys.argv) != 2:
        print("usage: run-cli-test.py FILE.test", file=sys.stderr)
        return 2
    path = sys.argv[1]
    try:
        spec_args = parse(path)["args"]
        failures = run(path)
    except (OSError, TestFileError) as e:
        print(f"run-cli-test: {e}", file=sys.stderr)
        return 2
    name = os.path.basename(path)
    if failures:
        print(f"FAIL {name}: vmmigrate {spec_args}", file=sys.stderr)
        for f in failures:
            print("  " + f.rstrip("\n").replace("\n", "\n  "), file=sys.stderr)
        return 1
    print(f"ok {name}: vmmigrate {spec_args}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
