#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run.sh — the whole test suite, as CI runs it (.ci/run calls exactly
# this). Needs root (apt, the lab's libvirt daemons). Steps:
#   1. install what is missing (scripts/install-deps.sh)
#   2. static checks: shellcheck, mandoc lint
#   3. the QMP parser's libFuzzer harness for a short while
#   4. the full ctest suite (unit, CLI, docs drift, integration on the lab)
#      under ASan+UBSan, then 5. the same on a normal -Werror build
#   6. the Debian package: dpkg-buildpackage, lintian, dpkg -i, and a drain
#      on the lab with the installed binary (tests/package/test-package.sh)
# Environment: VMM_FUZZ_SECONDS (default 60), VMM_SKIP_ASAN=1, VMM_JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${VMM_JOBS:-$(nproc)}
FUZZ_SECONDS=${VMM_FUZZ_SECONDS:-60}

step() { printf '\n==== %s\n' "$*"; }

# ctest over build dir $1; when it fails, the fault matrix's table (if it
# ran) is printed last, so the tail of a long log names the failing case.
suite() {
    local dir=$1 rc=0
    rm -f "$dir/faults-short.json"
    ctest --test-dir "$dir" --output-on-failure || rc=$?
    if [ "$rc" != 0 ] && [ -f "$dir/faults-short.json" ]; then
        step "fault matrix (faults.short) of $dir, as it ended"
        python3 tests/faults/faults.py --table-from "$dir/faults-short.json" || true
    fi
    return "$rc"
}

step "dependencies"
scripts/install-deps.sh

step "static checks"
shellcheck scripts/*.sh tests/*.sh tests/lab/*.sh tests/package/*.sh .ci/run
for f in man/*.[0-9]; do mandoc -T lint -W warning "$f"; done

step "fuzz: QMP parser (${FUZZ_SECONDS}s)"
CC=clang cmake -S . -B build-fuzz -DVMM_FUZZ=ON -DVMM_BUILD_GUEST=OFF \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j "$JOBS" --target fuzz_qmp
corpus=$(mktemp -d)
cp fuzz/corpus/qmp/* "$corpus"/
build-fuzz/fuzz/fuzz_qmp -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
    "$corpus" 2>&1 | tail -n 12
rm -rf "$corpus"

if [ "${VMM_SKIP_ASAN:-0}" != 1 ]; then
    step "ASan+UBSan build, whole suite"
    cmake -S . -B build-asan -DVMM_SANITIZE=ON -DVMM_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
        -DVMM_LAB_SUFFIX=-asan >/dev/null
    cmake --build build-asan -j "$JOBS"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
    LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        suite build-asan
fi

step "release build (-Werror), whole suite"
cmake -S . -B build-ci -DVMM_WERROR=ON >/dev/null
cmake --build build-ci -j "$JOBS"
rc=0
suite build-ci || rc=$?

step "Debian package: build, lintian, install, drain on the lab with it"
tests/package/test-package.sh "$ROOT/build-ci/tests/guest/vmm-guest.elf" || rc=$?
exit "$rc"
