#!/bin/bash
# SPDX-License-Identifier: MIT
# status's human listing (a header line, short host names, --wide's full
# URIs, durations) and status --failed: only the VMs that failed, rolled
# back or need an operator, in the runs that have one, with the exit status
# its last line explains (0 none, 1 failed, 9 operator); --json keeps its
# schema and lists the same. Usage: test-status-failed.sh BUILD_DIR
set -euo pipefail
vmm=$1/vmmigrate
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
t0=1764547200000
SRC=qemu+ssh://root@hv12.example.org:2222/system
DST=qemu+tcp://hv13/system
# rec RUN VM TS RECORD [EXTRA JSON MEMBERS]: append one record to RUN's journal.
rec()
{
    local extra=${5:+,$5}
    echo "{\"ts\":$3,\"run\":\"$1\",\"vm\":\"$2\",\"uuid\":\"u-$2\",\"source\":\"$SRC\",\"target\":\"$DST\",\"record\":\"$4\"$extra}" \
        >>"$dir/$1.ndjson"
}
# r1: all went well (one VM took 62 s).
rec r1 ok1 $t0 started
rec r1 ok1 $((t0 + 62000)) finished '"result":"migrated","location":"target"'
# r2: one migrated, one rolled back after 2.5 s, one failed: failed (1).
rec r2 ok2 $((t0 + 100000)) started
rec r2 ok2 $((t0 + 110000)) finished '"result":"migrated","location":"target"'
rec r2 back $((t0 + 100000)) started
rec r2 back $((t0 + 102500)) finished '"result":"rolled-back","location":"source"'
rec r2 bad $((t0 + 100000)) started
rec r2 bad $((t0 + 101000)) finished '"result":"failed","location":"source"'
# r3: a guest whose host is unknown, and one whose deinit failed: operator.
rec r3 lost $((t0 + 200000)) started
rec r3 lost $((t0 + 201000)) finished '"result":"failed","location":"unknown"'
rec r3 undone $((t0 + 200000)) started
rec r3 undone $((t0 + 201000)) finished '"result":"rolled-back","location":"source"'
rec r3 undone $((t0 + 201500)) deinit-done '"ok":false,"features":["vdp"]'
rec r3 fine $((t0 + 200000)) started
rec r3 fine $((t0 + 201000)) finished '"result":"skipped","location":"source"'
# r4: crashed mid-migration, never recovered: open, operator.
rec r4 crashed $((t0 + 300000)) started

# The whole listing: a header, short names, durations, no exit explanation.
out=$("$vmm" status --journal-dir "$dir") || fail "status exits $?"
head -n1 <<<"$out" | grep -Eq '^  VM +STATE +RESULT +LOCATION +SOURCE +TARGET +TOOK +STEPS$' ||
    fail "no header line first:"$'\n'"$out"
grep -Eq '^  ok1 +finished +migrated +target +hv12\.example\.org +hv13 +1m02s +-$' <<<"$out" ||
    fail "ok1's line lacks its short host names or its duration:"$'\n'"$out"
grep -Eq '^run r1 .* finished  took 1m02s$' <<<"$out" || fail "r1's line lacks its duration:"$'\n'"$out"
grep -Eq '^  back .* 2\.5s' <<<"$out" || fail "back's duration is not 2.5s:"$'\n'"$out"
grep -Eq '^  undone .* deinit failed$' <<<"$out" || fail "undone's failed deinit is not shown:"$'\n'"$out"
grep -q "qemu+" <<<"$out" && fail "a full URI without --wide:"$'\n'"$out"
grep -q "exit status" <<<"$out" && fail "plain status explains an exit status:"$'\n'"$out"
wide=$("$vmm" status --wide --journal-dir "$dir")
awk -v s="$SRC" -v d="$DST" '$1 == "ok1" && $5 == s && $6 == d && $7 == "1m02s" {ok = 1}
    END {exit !ok}' <<<"$wide" ||
    fail "--wide does not show the full URIs:"$'\n'"$wide"

# --failed: operator (9), and only the VMs and runs in trouble.
set +e
out=$("$vmm" status --failed --journal-dir "$dir")
rc=$?
set -e
[[ $rc == 9 ]] || fail "status --failed exits $rc, expected 9:"$'\n'"$out"
head -n1 <<<"$out" | grep -Eq '^  VM +STATE +RESULT +LOCATION +SOURCE +TARGET +TOOK +WHY$' ||
    fail "no header line first:"$'\n'"$out"
shown=$(grep -E '^  [a-z]' <<<"$out" | grep -v '^  VM ' | awk '{print $1}' | sort | tr '\n' ' ')
[[ $shown == "back bad crashed lost undone " ]] || fail "status --failed shows [$shown]:"$'\n'"$out"
runs=$(grep '^run ' <<<"$out" | awk '{print $2}' | tr '\n' ' ')
[[ $runs == "r2 r3 r4 " ]] || fail "status --failed shows the runs [$runs]:"$'\n'"$out"
grep -Eq '^  lost .* location unknown$' <<<"$out" || fail "lost is not named unknown:"$'\n'"$out"
grep -Eq '^  crashed +started .* open$' <<<"$out" || fail "crashed is not named open:"$'\n'"$out"
tail -n1 <<<"$out" | grep -q '^status: exit status 9 (operator): 3 VMs an operator must look at' ||
    fail "the last line does not explain exit status 9:"$'\n'"$out"
# The same VMs in --json, same schema, same exit status.
set +e
json=$("$vmm" status --failed --json --journal-dir "$dir")
rc=$?
set -e
[[ $rc == 9 ]] || fail "status --failed --json exits $rc, expected 9"
got=$(python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["schema_version"] == 1, d
print(" ".join(sorted(v for r in d["runs"] for v in r["vms"])))' <<<"$json")
[[ $got == "back bad crashed lost undone" ]] || fail "status --failed --json lists [$got]"

# One run with failures only: failed (1).
set +e
out=$("$vmm" status r2 --failed --journal-dir "$dir")
rc=$?
set -e
[[ $rc == 1 ]] || fail "status r2 --failed exits $rc, expected 1:"$'\n'"$out"
tail -n1 <<<"$out" | grep -q '^status: exit status 1 (failed): 2 migrations failed' ||
    fail "the last line does not explain exit status 1:"$'\n'"$out"
# A run without any: 0, and says so.
out=$("$vmm" status r1 --failed --journal-dir "$dir") || fail "status r1 --failed exits $?"
grep -q '^run ' <<<"$out" && fail "status r1 --failed lists a run:"$'\n'"$out"
[[ $out == "status: exit status 0: no failed, rolled-back or unknown migrations in run 'r1'" ]] ||
    fail "status r1 --failed says:"$'\n'"$out"
# recover settled the crashed one on its source: cut short, still failed.
echo "{\"ts\":$((t0 + 400000)),\"run\":\"r5\",\"vm\":\"crashed\",\"uuid\":\"u-crashed\",\"of_run\":\"r4\",\"record\":\"recovered\",\"location\":\"source\"}" \
    >"$dir/r5.ndjson"
set +e
out=$("$vmm" status r4 --failed --journal-dir "$dir")
rc=$?
set -e
[[ $rc == 1 ]] || fail "status r4 --failed after recover exits $rc, expected 1:"$'\n'"$out"
grep -Eq '^  crashed +recovered .* cut short, recovered$' <<<"$out" ||
    fail "the recovered VM is not named:"$'\n'"$out"
echo "ok: status's header, host names, --wide, durations; --failed lists the failed and unknown with exit 0, 1, 9"
