#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/lab/selftest.sh - prove the lab works: real libvirtd hosts, real TCG
# guests, real migrations. Brings up its own lab (default dir
# /var/tmp/vmmigrate-selftest, VMM_LAB_INDEX 11 so it does not collide with a
# default lab), runs the checks, prints measurements, and always takes the lab
# down again.
#
#   tests/lab/selftest.sh            # needs root and a built vmm-guest.elf
#
# Exit status: 0 all checks passed, 1 a check failed, 77 cannot run here
# (not root, libvirt/QEMU/tini missing). About 40 s.
#
# Checks: bring-up; tick counter; live p2p and direct migration there and back
# with the counter continuing on the target (no gap, no reset) and stopping on
# the source; extra QMP socket follows the guest; a non-converging migration
# aborted with domjobabort leaves the guest running on the source; recovery of
# a host after kill -9 of its libvirtd; down leaves no lab process behind.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB="$SCRIPT_DIR/lab.sh"
export VMM_LAB_DIR=${VMM_LAB_DIR:-/var/tmp/vmmigrate-selftest}
export VMM_LAB_INDEX=${VMM_LAB_INDEX:-11}
VM=st-small
BIG=st-big
FAILS=0
LAB_PIDS=()

log() { printf '[selftest] %s\n' "$*"; }
pass() { printf '[selftest] PASS %s\n' "$*"; }
fail() {
    printf '[selftest] FAIL %s\n' "$*" >&2
    FAILS=$((FAILS + 1))
}
die() {
    printf '[selftest] FATAL %s\n' "$*" >&2
    exit 1
}
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        pass "$what"
    else
        fail "$what"
    fi
}
not() { ! "$@"; }
now() { printf '%s\n' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

cleanup() {
    local rc=$?
    "$LAB" down || rc=1
    exit "$rc"
}

# Serial log bytes [FROM, TO) of VM on HOST (TO empty = end of file).
segment() { # HOST VM FROM [TO]
    local f
    f=$("$LAB" serial-path "$1" "$2")
    if [[ -n ${4:-} ]]; then
        tail -c +"$(($3 + 1))" "$f" | head -c "$(($4 - $3))"
    else
        tail -c +"$(($3 + 1))" "$f"
    fi
}

size_of() { stat -c %s "$("$LAB" serial-path "$1" "$2")"; }

# stdin: the guest's serial output in order; prints "first last" of the tick
# lines, fails on any gap or reset.
check_ticks() {
    tr -d '\0\r' | awk '
        /^tick [0-9]+$/ {
            n = $2 + 0
            if (seen && n != last + 1) {
                printf "tick %d follows tick %d\n", n, last > "/dev/stderr"
                bad = 1
            }
            if (!seen) first = n
            seen = 1
            last = n
        }
        END {
            if (!seen) { print "no ticks" > "/dev/stderr"; exit 1 }
            printf "%d %d\n", first, last
            exit bad
        }'
}

# Migrate VM FROM -> TO; MODE p2p|direct; prints "wall total_ms downtime_ms".
migrate() { # FROM TO VM MODE
    local from=$1 to=$2 vm=$3 mode=$4 t0 t1 args=(--live) info total down
    [[ $mode == p2p ]] && args+=(--p2p)
    t0=$(now)
    virsh -q -c "$("$LAB" uri "$from")" migrate "${args[@]}" "$vm" "$("$LAB" uri "$to")" >/dev/null
    t1=$(now)
    info=$(virsh -c "$("$LAB" uri "$to")" domjobinfo --completed "$vm")
    total=$(awk -F: '/^Time elapsed:/ { print $2 + 0 }' <<<"$info")
    down=$(awk -F: '/^Total downtime:/ { print $2 + 0 }' <<<"$info")
    printf '%s %s %s\n' "$(elapsed "$t0" "$t1")" "${total:-?}" "${down:-?}"
}

expect_where() { # VM HOST STATE-PREFIX
    local w
    w=$("$LAB" where "$1" || true)
    if [[ $(wc -l <<<"$w") == 1 && $w == "$2 $3"* ]]; then
        pass "$1 is only on host $2 ($w)"
    else
        fail "$1 expected only on host $2 ($3), where says: ${w:-nothing}"
    fi
}

# The counter keeps going on HOST and does not move on OTHER.
expect_ticking() { # HOST OTHER VM
    local a0 b0 a1 b1
    a0=$("$LAB" ticks "$1" "$3" || echo 0)
    b0=$("$LAB" ticks "$2" "$3" || echo none)
    "$LAB" wait-tick "$1" "$3" $((a0 + 10)) 20 >/dev/null || true
    a1=$("$LAB" ticks "$1" "$3" || echo 0)
    b1=$("$LAB" ticks "$2" "$3" || echo none)
    if ((a1 >= a0 + 10)) && [[ $b0 == "$b1" ]]; then
        pass "$3 ticks on $1 ($a0 -> $a1), stopped on $2 (${b1})"
    else
        fail "$3 on $1: $a0 -> $a1; on $2: $b0 -> $b1"
    fi
}

qemu_cpu_percent() { # HOST VM SECONDS
    local p a b
    p=$(<"$VMM_LAB_DIR/$1/run/qemu/$2.pid")
    a=$(awk '{ print $14 + $15 }' "/proc/$p/stat")
    sleep "$3"
    b=$(awk '{ print $14 + $15 }' "/proc/$p/stat")
    awk -v a="$a" -v b="$b" -v hz="$(getconf CLK_TCK)" -v s="$3" \
        'BEGIN { printf "%.2f", (b - a) / hz / s * 100 }'
}

main() {
    # Exit 77 (ctest: skipped) where a lab cannot run at all.
    if [[ $(id -u) != 0 ]]; then
        log "SKIP: needs root"
        exit 77
    fi
    local tool
    for tool in virsh libvirtd tini unshare qemu-system-x86_64; do
        if ! command -v "$tool" >/dev/null; then
            log "SKIP: $tool not installed"
            exit 77
        fi
    done
    [[ ! -e $VMM_LAB_DIR ]] || die "$VMM_LAB_DIR exists: take that lab down first (VMM_LAB_DIR=$VMM_LAB_DIR $LAB down)"
    trap cleanup EXIT

    local t0 t1 r
    t0=$(now)
    "$LAB" up 2 >/dev/null
    t1=$(now)
    log "bring-up of 2 hosts: $(elapsed "$t0" "$t1") s"
    check "both hosts up" "$LAB" status
    check "second up keeps the lab" "$LAB" up 2

    t0=$(now)
    "$LAB" define-guest a "$VM" --mem 64 --dirty 4 --qmp >/dev/null
    "$LAB" wait-tick a "$VM" 1 30 >/dev/null
    t1=$(now)
    log "define-guest to first tick: $(elapsed "$t0" "$t1") s"
    check "boot line" grep -aq '^vmm-guest boot mem=[0-9]* dirty=4 hz=10$' "$("$LAB" serial-path a "$VM")"
    "$LAB" wait-tick a "$VM" 20 30 >/dev/null
    log "idle 64 MiB guest (dirty=4, 10 Hz) host CPU: $(qemu_cpu_percent a "$VM" 10) %"
    check "QMP socket on a" test -S "$("$LAB" qmp-path a "$VM")"

    # a -> b (p2p), b -> a (direct), a -> b (direct), b -> a (p2p)
    local cuts=() from to mode i wall total down hosts=(a b a b a) modes=(p2p direct direct p2p)
    for i in 0 1 2 3; do
        from=${hosts[$i]} to=${hosts[$((i + 1))]} mode=${modes[$i]}
        r=$(migrate "$from" "$to" "$VM" "$mode") || {
            fail "migrate $mode $from -> $to"
            continue
        }
        read -r wall total down <<<"$r"
        log "migration $mode $from -> $to: wall ${wall} s, job ${total} ms, downtime ${down} ms"
        cuts+=("$(size_of "$from" "$VM")")
        expect_where "$VM" "$to" running
        expect_ticking "$to" "$from" "$VM"
        if [[ -S $("$LAB" qmp-path "$to" "$VM") && ! -e $("$LAB" qmp-path "$from" "$VM") ]]; then
            pass "QMP socket moved to $to"
        else
            fail "QMP socket did not move to $to"
        fi
    done
    # The guest's whole output, in order, across both hosts' logs (append='on').
    local range
    if range=$({
        segment a "$VM" 0 "${cuts[0]}"
        segment b "$VM" 0 "${cuts[1]}"
        segment a "$VM" "${cuts[0]}" "${cuts[2]}"
        segment b "$VM" "${cuts[1]}" "${cuts[3]}"
        segment a "$VM" "${cuts[2]}"
    } | check_ticks); then
        pass "tick counter continuous across 4 migrations (ticks $range)"
    else
        fail "tick counter has a gap or reset"
    fi

    # Non-converging migration, aborted.
    "$LAB" define-guest a "$BIG" --mem 256 --dirty 200 >/dev/null
    "$LAB" wait-tick a "$BIG" 5 60 >/dev/null
    log "busy 256 MiB guest (dirty=200) host CPU: $(qemu_cpu_percent a "$BIG" 5) %"
    virsh -q -c "$("$LAB" uri a)" migrate --live --p2p --bandwidth 8 "$BIG" "$("$LAB" uri b)" \
        >"$VMM_LAB_DIR/big-migrate.out" 2>&1 &
    local mig=$!
    sleep 5
    local job
    job=$(virsh -c "$("$LAB" uri a)" domjobinfo "$BIG" 2>&1 || true)
    if grep -q '^Job type: *Unbounded' <<<"$job"; then
        pass "non-converging migration still running after 5 s"
    else
        fail "non-converging migration not running after 5 s"
    fi
    t0=$(now)
    virsh -q -c "$("$LAB" uri a)" domjobabort "$BIG"
    if wait "$mig"; then
        fail "aborted migration reported success"
    else
        t1=$(now)
        log "domjobabort -> migrate returned: $(elapsed "$t0" "$t1") s ($(tr -d '\n' <"$VMM_LAB_DIR/big-migrate.out"))"
    fi
    expect_where "$BIG" a "running"
    expect_ticking a b "$BIG"
    "$LAB" destroy-guest a "$BIG"

    # kill -9 of a's libvirtd: up restarts it and it reconnects to the guest.
    local p
    p=$("$LAB" pid a)
    kill -9 "$p"
    check "status sees host a down" not "$LAB" status
    t0=$(now)
    "$LAB" up 2 >/dev/null
    t1=$(now)
    log "up after kill -9 of a's libvirtd: $(elapsed "$t0" "$t1") s"
    expect_where "$VM" a running
    expect_ticking a b "$VM"
    if r=$(migrate a b "$VM" p2p); then
        pass "migration after daemon restart (wall s, job ms, downtime ms: $r)"
    else
        fail "migration after daemon restart"
    fi
    expect_ticking b a "$VM"

    # down: every process of the lab gone.
    local n
    for n in a b; do
        for p in "$VMM_LAB_DIR/$n"/tini.pid "$VMM_LAB_DIR/$n"/libvirtd.pid "$VMM_LAB_DIR/$n"/run/qemu/*.pid; do
            [[ ${p##*/} == driver.pid ]] && continue
            [[ -f $p ]] && LAB_PIDS+=("$(<"$p")")
        done
        if [[ -f $VMM_LAB_DIR/$n/old-tini.pids ]]; then
            mapfile -t -O "${#LAB_PIDS[@]}" LAB_PIDS <"$VMM_LAB_DIR/$n/old-tini.pids"
        fi
    done
    t0=$(now)
    "$LAB" down
    t1=$(now)
    log "down: $(elapsed "$t0" "$t1") s"
    local left=()
    for p in "${LAB_PIDS[@]}"; do
        if [[ -d /proc/$p ]] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
            left+=("$p")
        fi
    done
    check "down left no lab process (checked ${#LAB_PIDS[@]} PIDs: ${LAB_PIDS[*]})" test "${#left[@]}" = 0
    check "lab dir removed" not test -e "$VMM_LAB_DIR"

    trap - EXIT
    if ((FAILS)); then
        log "$FAILS check(s) FAILED"
        exit 1
    fi
    log "all checks passed"
}

main "$@"
