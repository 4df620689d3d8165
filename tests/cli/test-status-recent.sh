#!/bin/bash
# SPDX-License-Identifier: MIT
# status lists the recent runs: the 10 newest and every open one (an old
# crashed run is never hidden), and says how many older finished runs it left
# out; --all and --json list every run. Usage: test-status-recent.sh BUILD_DIR
set -euo pipefail
vmm=$1/vmmigrate
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# 14 runs r00..r13 of one VM each; r01 never finished (crashed).
for i in $(seq 0 13); do
    run=$(printf 'r%02d' "$i")
    ts=$((1764547200000 + i * 60000))
    rec='"run":"'$run'","vm":"vm1","uuid":"u1","source":"test:///a","target":"test:///b"'
    echo "{\"ts\":$ts,$rec,\"record\":\"started\"}" >"$dir/$run.ndjson"
    [[ $i == 1 ]] && continue
    echo "{\"ts\":$((ts + 1000)),$rec,\"record\":\"finished\",\"result\":\"migrated\",\"location\":\"target\"}" \
        >>"$dir/$run.ndjson"
done
out=$("$vmm" status --journal-dir "$dir")
runs=$(grep -c '^run ' <<<"$out" || true)
[[ $runs == 11 ]] || fail "status shows $runs runs, expected 11 (10 newest + the open r01):"$'\n'"$out"
grep -q '^run r01 .*OPEN' <<<"$out" || fail "the old open run r01 is not shown:"$'\n'"$out"
grep -q '^run r00 ' <<<"$out" && fail "the old finished run r00 is shown:"$'\n'"$out"
grep -qx 'status: 3 older closed runs not shown (--all lists every run)' <<<"$out" ||
    fail "no line naming the 3 runs left out:"$'\n'"$out"
runs=$("$vmm" status --all --journal-dir "$dir" | grep -c '^run ')
[[ $runs == 14 ]] || fail "status --all shows $runs runs, expected 14"
runs=$("$vmm" status --json --journal-dir "$dir" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))')
[[ $runs == 14 ]] || fail "status --json lists $runs runs, expected 14"
"$vmm" status r00 --journal-dir "$dir" | grep -q '^run r00 ' || fail "status r00 does not show r00"
echo "ok: status shows 10 recent runs and the open one; --all and --json every run"
