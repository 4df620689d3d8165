#!/bin/bash
# SPDX-License-Identifier: MIT
# cmake --install into a prefix other than the configured one: the installed
# binary finds its own evacuate.lua (next to it, ../share/vmmigrate/policies)
# as drain's default policy. Usage: test-install-prefix.sh BUILD_DIR
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/share/vmmigrate/policies/evacuate.lua"
# The units, tmpfiles.d and the example host config go under the prefix too.
for f in lib/systemd/system/vmmigrate-drain@.service lib/systemd/system/vmmigrate-drain@.timer \
         lib/systemd/system/vmmigrate-recover.service lib/tmpfiles.d/vmmigrate.conf \
         etc/vmmigrate/example.conf; do
    [[ -f $prefix/$f ]] || { echo "FAIL: cmake --install did not install $f" >&2; exit 1; }
done
# The same host as source and target is refused after the default policy is
# found; a missing default policy is refused before, with its path.
set +e
err=$(env -u VMM_DRAIN_POLICY "$prefix/bin/vmmigrate" drain test:///default \
    --target test:///default 2>&1 >/dev/null)
rc=$?
set -e
if [[ $err == *"default policy"* ]]; then
    echo "FAIL: the installed binary did not find its default policy: $err" >&2
    exit 1
fi
if [[ $rc -ne 2 || $err != *"given as both --source and --target"* ]]; then
    echo "FAIL: expected exit 2 and the source/target error, got $rc: $err" >&2
    exit 1
fi
echo "ok: $prefix/bin/vmmigrate found its default policy"
