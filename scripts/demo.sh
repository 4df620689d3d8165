#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/demo.sh — from a fresh Debian 12 machine (as root) to vmmigrate
# moving real guests: installs the dependencies, builds, brings up the
# project's lab (two libvirt hosts, a and b, on this machine), starts four
# TCG test guests on host a and drains host a onto host b with
# `vmmigrate drain` driven by the shipped policy policies/evacuate.lua.
# The lab stays up afterwards; `tests/lab/lab.sh down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
GUESTS=${VMM_DEMO_GUESTS:-4}

scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
export VMM_GUEST_KERNEL=$PWD/build/tests/guest/vmm-guest.elf
LAB=tests/lab/lab.sh

echo "== lab: two libvirt hosts on this machine"
$LAB up 2
A=$($LAB uri a)
B=$($LAB uri b)

for i in $(seq 1 "$GUESTS"); do
    vm=demo$i
    if ! $LAB where "$vm" | grep -q running; then
        $LAB define-guest a "$vm" --mem 64 --dirty 4 >/dev/null
    fi
done
# Whichever host the guests are on now (a re-run finds them on b), drain it.
src=$($LAB where demo1 | awk '/running/ {print $1; exit}')
[ "$src" = b ] && { tmp=$A; A=$B; B=$tmp; dst=a; } || dst=b
for i in $(seq 1 "$GUESTS"); do
    $LAB wait-tick "$src" "demo$i" 3 60 >/dev/null
done
for i in $(seq 1 "$GUESTS"); do
    echo "demo$i on $src: tick $($LAB ticks "$src" "demo$i")"
done

echo "== vmmigrate: drain host $src to host $dst (policy: policies/evacuate.lua)"
report=$(mktemp)
set +e
build/vmmigrate drain "$A" --target "$B" --policy policies/evacuate.lua --parallel 2 \
    --events /tmp/vmmigrate-demo-events.ndjson --status-file /tmp/vmmigrate-demo-status.json \
    --json >"$report"
rc=$?
set -e
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"result: {r['result']} (exit {r['exit_code']}) in {r['duration_ms']} ms")
for v in r["vms"]:
    mib = v["bytes"]["transferred"] / 2**20
    print(f"  {v['name']:8s} {v['result']:9s} on {v['location']:6s} "
          f"{v['total_ms']} ms, downtime {v['downtime_ms']} ms, {mib:.0f} MiB sent")
PY
sleep 1
for i in $(seq 1 "$GUESTS"); do
    echo "demo$i now: $($LAB where "demo$i" | tr '\n' ' ') tick $($LAB ticks "$dst" "demo$i") on $dst"
done
echo "== vmmigrate status (from the journal)"
build/vmmigrate status | tail -n 8
echo "events: /tmp/vmmigrate-demo-events.ndjson; status: /tmp/vmmigrate-demo-status.json;" \
    "report: $report"
echo "tear down: tests/lab/lab.sh down"
exit "$rc"
