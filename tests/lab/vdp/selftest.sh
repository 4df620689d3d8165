#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/lab/vdp/selftest.sh - proves the VDP lab works against real lldpad
# peers and prints measurements. Uses its own lab dir and index, so it does
# not touch a lab you are using. Needs root and the lldpad package. ~20 s.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VDP=$SCRIPT_DIR/vdp.sh
export VMM_LAB_DIR=${VMM_VDP_SELFTEST_DIR:-/var/tmp/vmmigrate-vdpselftest}
export VMM_LAB_INDEX=${VMM_VDP_SELFTEST_INDEX:-10}
FAILS=0
t=0 t_up=0 t_up2=0 # set by timed
U1=5e1f0000-0000-4000-8000-000000000001
M1=52:54:00:5e:00:01

now_ms() { echo $(($(date +%s%N) / 1000000)); }
ok() { printf 'ok   %s\n' "$*"; }
bad() {
    printf 'FAIL %s\n' "$*"
    FAILS=$((FAILS + 1))
}
check() { # DESCRIPTION COMMAND...
    local d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
expect() { # DESCRIPTION WANT COMMAND... (compares stdout)
    local d=$1 want=$2 got
    shift 2
    got=$("$@" 2>&1) || true
    if [[ $got == "$want" ]]; then ok "$d: $got"; else bad "$d: want '$want', got '$got'"; fi
}
blist() { "$VDP" bridge-list | grep -F "$U1" || true; }
timed() { # VAR COMMAND... : runs COMMAND, stores its ms in VAR, passes its output
    local __v=$1 t0 rc=0
    shift
    t0=$(now_ms)
    "$@" || rc=$?
    printf -v "$__v" '%s' $(($(now_ms) - t0))
    return "$rc"
}

trap '"$VDP" down >/dev/null 2>&1 || true' EXIT
"$VDP" down

timed t_up "$VDP" up a b >/dev/null
ok "up a b (cold): ${t_up} ms"
timed t_up2 "$VDP" up a b >/dev/null
ok "up a b (already up): ${t_up2} ms"
check "status: all up" "$VDP" status >/dev/null

# Round trips.
a_ms=() d_ms=()
for _ in 1 2 3 4 5 6 7 8 9 10; do
    u=$(cat /proc/sys/kernel/random/uuid)
    timed t "$VDP" assoc a "$u" "$M1" 10 >/dev/null || bad "assoc $u"
    a_ms+=("$t")
    timed t "$VDP" deassoc a "$u" "$M1" 10 >/dev/null || bad "deassoc $u"
    d_ms+=("$t")
done
ok "assoc ms: ${a_ms[*]}"
ok "deassoc ms: ${d_ms[*]}"

# The VM migration sequence: a VSI on both ports at once.
expect "assoc on a" ok "$VDP" assoc a "$U1" "$M1" 10
expect "bridge-list" "port-a $U1 $M1 10 assoc" blist
expect "preassoc on b (copy)" ok "$VDP" preassoc b "$U1" "$M1" 10 mgr1 1193046 1 to
expect "bridge-list" "port-a $U1 $M1 10 assoc
port-b $U1 $M1 10 preassoc" blist
expect "assoc on b (commit gate)" ok "$VDP" assoc b "$U1" "$M1" 10 mgr1 1193046 1 to
expect "bridge-list" "port-a $U1 $M1 10 assoc
port-b $U1 $M1 10 assoc" blist
expect "deassoc on a (after commit)" ok "$VDP" deassoc a "$U1" "$M1" 10
expect "bridge-list" "port-b $U1 $M1 10 assoc" blist
expect "station a" "" "$VDP" query a
expect "station b" "$U1 $M1 10 assoc" "$VDP" query b
expect "preassoc of an associated VSI" "failed: Invalid parameters" "$VDP" preassoc b "$U1" "$M1" 10
expect "deassoc on b" ok "$VDP" deassoc b "$U1" "$M1" 10
expect "bridge-list empty" "" blist

# Switch unreachable.
"$VDP" assoc b "$U1" "$M1" 10 >/dev/null
timed t "$VDP" stop-bridge
ok "stop-bridge: $t ms"
expect "bridge-list after stop-bridge" "" blist
timed t expect "assoc, bridge stopped" timeout "$VDP" assoc a "$(cat /proc/sys/kernel/random/uuid)" "$M1" 10
ok "station give-up: $t ms"
timed t "$VDP" start-bridge
ok "start-bridge (until EVB is up): $t ms"
expect "assoc after start-bridge" ok "$VDP" assoc a "$(cat /proc/sys/kernel/random/uuid)" "$M1" 10

# Explicit refusal, from the test bridge.
"$VDP" stop-bridge
timed t "$VDP" start-bridge --peer
ok "start-bridge --peer: $t ms"
u=$(cat /proc/sys/kernel/random/uuid)
expect "peer accepts" ok "$VDP" assoc a "$u" "$M1" 10
"$VDP" policy "* preassoc reject:2" "* assoc ignore"
expect "peer rejects preassoc" "rejected: Insufficient resources at bridge" \
    "$VDP" preassoc b "$(cat /proc/sys/kernel/random/uuid)" "$M1" 10
expect "peer ignores assoc" timeout "$VDP" assoc b "$(cat /proc/sys/kernel/random/uuid)" "$M1" 10
"$VDP" policy --clear
"$VDP" stop-bridge
"$VDP" start-bridge

# Crash of a station lldpad, then up again.
kill -9 "$(cat "$VMM_LAB_DIR/vdp/st-a.pid")"
if "$VDP" status >/dev/null; then bad "status after kill -9"; else ok "status reports the dead station"; fi
timed t "$VDP" up a b >/dev/null
ok "up after kill -9 of station a: $t ms"
expect "assoc after restart" ok "$VDP" assoc a "$(cat /proc/sys/kernel/random/uuid)" "$M1" 10

# down after the state dir is gone (as after 'lab.sh down').
pids=$(cat "$VMM_LAB_DIR"/vdp/*.pid)
nss=$(ip netns list | cut -d' ' -f1 | grep "^vmm$VMM_LAB_INDEX-" || true)
rm -rf "$VMM_LAB_DIR"
timed t "$VDP" down 2>/dev/null
ok "down without state: $t ms"
left=""
for p in $pids; do
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$p/status" 2>/dev/null || true)
    [[ -z $st || $st == Z ]] || left+=" $p"
done
for n in $nss; do
    [[ ! -e /run/netns/$n ]] || left+=" $n"
done
if [[ -z $left ]]; then ok "nothing left"; else bad "left:$left"; fi
trap - EXIT

if ((FAILS > 0)); then
    echo "selftest: $FAILS check(s) failed"
    exit 1
fi
echo "selftest: all checks passed"
