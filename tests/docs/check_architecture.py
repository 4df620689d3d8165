#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""docs/ARCHITECTURE.md is the map of src/: every folder of src/ that holds
code has a row in its table of rooms, every row names a folder that exists,
and every `#include "DIR/FILE.h"` in src/ stays inside its own folder or goes
to a folder the row's "may include" column names. One line per violation,
exit 1 if there is any."""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
DOC = os.path.join(ROOT, "docs", "ARCHITECTURE.md")
SRC = os.path.join(ROOT, "src")
ROW = re.compile(r"^\|\s*`src/([^`]*)`\s*\|.*\|\s*([^|]*?)\s*\|\s*$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    """A source file's folder relative to src/ ('' for src/ itself)."""
    return os.path.relpath(os.path.dirname(path), SRC).replace(os.sep, "/").strip(".")


def main():
    problems = []
    rooms = {}
    with open(DOC) as f:
        for n, line in enumerate(f, 1):
            m = ROW.match(line)
            if m:
                name = m.group(1).rstrip("/")
                allowed = {a.strip() for a in m.group(2).split(",")} - {"—", "-", ""}
                rooms[name] = (allowed, n)
    code = set()
    for dirpath, _, files in os.walk(SRC):
        if any(f.endswith((".c", ".h")) for f in files):
            code.add(folder_of(os.path.join(dirpath, "x")))
    for d in sorted(code - set(rooms)):
        problems.append(f"{DOC}: src/{d}/ holds code but has no row in the table of rooms")
    for d in sorted(set(rooms) - code):
        problems.append(f"{DOC}:{rooms[d][1]}: src/{d}/ has a row but holds no code")
    for d, (allowed, n) in rooms.items():
        for a in sorted(allowed - set(rooms)):
            problems.append(f"{DOC}:{n}: src/{d}/ may include '{a}', which is not a room")
    for dirpath, _, files in os.walk(SRC):
        for fn in sorted(files):
            if not fn.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, fn)
            here = folder_of(path)
            if here not in rooms:
                continue
            with open(path, errors="replace") as f:
                text = f.read()
            for m in INCLUDE.finditer(text):
                inc = m.group(1)
                line = text.count("\n", 0, m.start()) + 1
                there = os.path.dirname(inc)
                rel = os.path.relpath(path, ROOT)
                if not there:
                    if here and not os.path.exists(os.path.join(dirpath, inc)):
                        problems.append(f"{rel}:{line}: #include \"{inc}\": give the path "
                                        "relative to src/")
                    continue
                if there == here:
                    continue
                if there not in rooms:
                    problems.append(f"{rel}:{line}: #include \"{inc}\": src/{there}/ is not a "
                                    "room of docs/ARCHITECTURE.md")
                elif there not in rooms[here][0]:
                    problems.append(f"{rel}:{line}: #include \"{inc}\": src/{here or '.'}/ may "
                                    f"not include from src/{there}/ (docs/ARCHITECTURE.md)")
    for p in problems:
        print(p)
    if problems:
        print(f"check_architecture: {len(problems)} problem(s)")
        return 1
    print(f"check_architecture: {len(rooms)} rooms, includes as the map says")
    return 0


if __name__ == "__main__":
    sys.exit(main())
