#!/usr/bin/env bash
# scripts/demo.sh — from a fresh Debian 12 machine (as root) to vmmigrate
# moving real guests: installs the dependencies, builds, brings up the
# project's lab (two libvirt hosts, a and b, on this machine), starts four
# TCG test guests on host a and drains them to host b with `vmmigrate run`.
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

vms=()
for i in $(seq 1 "$GUESTS"); do
    vm=demo$i
    vms+=(--vm "$vm")
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

echo "== vmmigrate: drain host $src to host $dst"
report=$(mktemp)
set +e
build/vmmigrate run --source "$A" --target "$B" "${vms[@]}" --parallel 2 \
    --events /tmp/vmmigrate-demo-events.ndjson --json >"$report"
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
echo "events: /tmp/vmmigrate-demo-events.ndjson; report: $report"
echo "tear down: tests/lab/lab.sh down"
exit "$rc"
