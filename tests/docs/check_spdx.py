#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every source file of the project says its license in its first lines:
`/* SPDX-License-Identifier: MIT */` in C, `# SPDX-License-Identifier: MIT`
in Python, shell and CMake (after a #! line). Lua policies and test
fixtures are exempt (policies are copied by users, fixtures' line numbers
are part of what tests expect); LICENSE has the text. One line per file
without it, exit 1 if there is any."""
import os
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
DIRS = ["src", "tests", "fuzz", "scripts", "cmake", "bench", ".ci"]
KINDS = (".c", ".h", ".py", ".sh", ".cmake")
NAMES = {"CMakeLists.txt", "run"}  # .ci/run


def wanted(path):
    name = os.path.basename(path)
    return name.endswith(KINDS) or name in NAMES


def main():
    missing = []
    files = [os.path.join(ROOT, "CMakeLists.txt")]
    for d in DIRS:
        for dirpath, dirnames, names in os.walk(os.path.join(ROOT, d)):
            dirnames[:] = [n for n in dirnames if n not in ("__pycache__", "corpus")]
            files += [os.path.join(dirpath, n) for n in names]
    for path in sorted(f for f in files if wanted(f)):
        with open(path, errors="replace") as f:
            head = [f.readline() for _ in range(2)]
        if not any("SPDX-License-Identifier: MIT" in line for line in head):
            missing.append(f"{os.path.relpath(path, ROOT)}: no SPDX-License-Identifier line "
                           "in its first two lines")
    for m in missing:
        print(m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
