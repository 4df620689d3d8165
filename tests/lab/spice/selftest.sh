#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2015 # "cond && pass || fail": pass never fails
# tests/lab/spice/selftest.sh - prove the headless SPICE client works against
# real libvirt migrations, and print measurements.
#
# Brings up its own lab (default dir /var/tmp/vmm-spicetest, VMM_LAB_INDEX 10;
# override with VMM_LAB_DIR / VMM_LAB_INDEX), runs the checks, always takes
# the lab down again. Needs root, a built vmm-guest.elf (see tests/lab/README.md),
# python3-gi and gir1.2-spiceclientglib-2.0. About 60 s.
#
#   tests/lab/spice/selftest.sh [ROUNDS]     # ROUNDS x 4 migrations (default 2)
#
# Exit status: 0 all checks passed, 1 a check failed, 77 cannot run here.
#
# Checks: the client opens all channels; it follows p2p and direct (client
# driven) libvirt migrations there and back, ending connected to the target's
# SPICE port with all channels; the target QEMU reports SPICE_INITIALIZED for
# every channel and the source SPICE_MIGRATE_COMPLETED; the guest's tick
# counter has no gap or reset across all migrations; a refusing client
# (--no-migrate) stays on the source and exits when the source goes away; a
# frozen client does not follow until thawed; a client that cannot reach the
# target during the copy follows by switch-host; with a sound card the client
# opens and moves 6 channels (playback and record too).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$SCRIPT_DIR/../lab.sh
SPICE=$SCRIPT_DIR/spice.sh
PY=/usr/bin/python3
export VMM_LAB_DIR=${VMM_LAB_DIR:-/var/tmp/vmm-spicetest}
export VMM_LAB_INDEX=${VMM_LAB_INDEX:-10}
VM=sp-st
ROUNDS=${1:-2}
FAILS=0
EV_PIDS=()
declare -A POS=([a]=0 [b]=0)
SEGMENTS=()
HERE=a

log() { printf '[spice-selftest] %s\n' "$*"; }
pass() { printf '[spice-selftest] PASS %s\n' "$*"; }
fail() {
    printf '[spice-selftest] FAIL %s\n' "$*" >&2
    FAILS=$((FAILS + 1))
}
die() {
    printf '[spice-selftest] FATAL %s\n' "$*" >&2
    exit 1
}
now() { printf '%s\n' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
other() { [[ $1 == a ]] && echo b || echo a; }

cleanup() {
    local rc=$?
    stop_events
    "$SPICE" stop-all || true
    "$LAB" down || rc=1
    exit "$rc"
}

# QEMU events of VM on both hosts, to EVDIR/{a,b}.ev, until stop_events.
start_events() {
    local h
    EV_PIDS=()
    for h in a b; do
        : >"$EVDIR/$h.ev"
        virsh -q -c "$("$LAB" uri "$h")" qemu-monitor-event --loop --timestamp \
            >"$EVDIR/$h.ev" 2>&1 &
        EV_PIDS+=($!)
    done
    sleep 0.3 # let both listeners register
}

stop_events() {
    ((${#EV_PIDS[@]} == 0)) && return 0
    sleep 0.3
    kill "${EV_PIDS[@]}" 2>/dev/null || true
    wait "${EV_PIDS[@]}" 2>/dev/null || true
    EV_PIDS=()
}

size_of() { stat -c %s "$("$LAB" serial-path "$1" "$VM")"; }

# Migrate VM from HERE to the other host (MODE p2p|direct); prints the wall
# time; records the serial log cut for the tick check.
migrate() { # MODE [VIRSH-MIGRATE-ARGS...]
    local to args=(--live) t0 t1 out
    to=$(other "$HERE")
    [[ $1 == p2p ]] && args+=(--p2p)
    args+=("${@:2}")
    T0=$(now)
    if ! out=$(virsh -q -c "$("$LAB" uri "$HERE")" migrate "${args[@]}" "$VM" "$("$LAB" uri "$to")" 2>&1); then
        fail "migrate $1 $HERE -> $to: $out"
        return 1
    fi
    t1=$(now)
    WALL=$(elapsed "$T0" "$t1")
    DOWN=$(virsh -c "$("$LAB" uri "$to")" domjobinfo --completed "$VM" 2>/dev/null |
        awk -F: '/^Total downtime:/ { print $2 + 0 }')
    DOWN=${DOWN:-?}
    local cut
    cut=$(size_of "$HERE")
    SEGMENTS+=("$HERE ${POS[$HERE]} $cut")
    POS[$HERE]=$cut
    FROM=$HERE
    HERE=$to
}

# What the client and the two QEMUs saw of the last migration (since T0).
# Prints "key=value ..." (see analyse.py below).
report() { # FROM TO
    "$PY" - "$("$SPICE" status-path "$VM")" "$T0" "$EVDIR/$1.ev" "$EVDIR/$2.ev" <<'EOF'
import json, sys, datetime
status, t0, src_ev, dst_ev = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = []
with open(status, encoding="utf-8") as f:
    for l in f:
        if l.endswith("\n"):
            d = json.loads(l)
            if d["ts"] >= t0:
                lines.append(d)
r = {}
def first(ev):
    return next((d for d in lines if d["event"] == ev), None)
st = first("migration-started")
r["started"] = "%.3f" % (st["ts"] - t0) if st else "-"
tgt = next((d for d in lines if d["mig_channels"] and
            all(v["state"] == "open" for v in d["mig_channels"].values()) and
            len(d["mig_channels"]) == max(1, d["nchannels"])), None)
r["target_open"] = "%.3f" % (tgt["ts"] - t0) if tgt else "-"
sw = first("migration-switched")
r["switched"] = "%.3f" % (sw["ts"] - t0) if sw else "-"
last = lines[-1] if lines else {}
lm = last.get("last_migration") or {}
r["mode"] = lm.get("path", "-")
r["announced"] = lm.get("announced", "-")
r["peer"] = last.get("peer")
r["ready"] = last.get("ready")
r["nopen"] = last.get("nopen")
r["result"] = lm.get("result")
r["exit_code"] = next((d.get("exit_code") for d in lines if d["event"] == "exit"), None)

def events(path):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for l in f:
            if ": event " not in l:
                continue
            stamp, rest = l.split(": event ", 1)
            t = datetime.datetime.strptime(stamp.strip()[:23], "%Y-%m-%d %H:%M:%S.%f")
            t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
            name = rest.split(" ", 1)[0]
            data = rest.split(": ", 1)[1].strip() if ": " in rest else ""
            out.append((t, name, data))
    return out
src, dst = events(src_ev), events(dst_ev)
def at(evs, name, data=None):
    return next((t for t, n, d in evs if n == name and (data is None or data in d)), None)
done = at(src, "MIGRATION", '"completed"')
smc = at(src, "SPICE_MIGRATE_COMPLETED")
r["src_completed"] = "%.3f" % (done - t0) if done else "-"
r["spice_migrate_completed"] = "%.3f" % (smc - t0) if smc else "-"
r["spice_wait"] = "%.3f" % (smc - done) if smc and done else "-"
resume = at(dst, "RESUME")
r["dst_resume"] = "%.3f" % (resume - t0) if resume else "-"
types = sorted({json.loads(d)["client"]["channel-type"] for t, n, d in dst if n == "SPICE_INITIALIZED"})
r["dst_initialized"] = ",".join(map(str, types)) or "-"
ids = sorted({json.loads(d)["client"]["connection-id"] for t, n, d in dst if n == "SPICE_INITIALIZED"})
r["dst_conn_ids"] = ",".join(map(str, ids)) or "-"
print(" ".join("%s=%s" % kv for kv in r.items()))
EOF
}

field() { # REPORT KEY
    local kv
    for kv in $1; do
        if [[ ${kv%%=*} == "$2" ]]; then
            printf '%s\n' "${kv#*=}"
            return 0
        fi
    done
}

spice_addr() { # HOST
    printf '127.0.0.1:%s\n' "$("$SPICE" port "$1" "$VM")"
}

# The guest runs on HOST and its counter moves there.
expect_guest_on() { # HOST
    local w a0
    w=$("$LAB" where "$VM" || true)
    if [[ $w == "$1 running"* && $(wc -l <<<"$w") == 1 ]]; then
        pass "guest runs on $1 only"
    else
        fail "guest expected on $1 only, where says: ${w//$'\n'/; }"
    fi
    a0=$("$LAB" ticks "$1" "$VM" || echo 0)
    if "$LAB" wait-tick "$1" "$VM" $((a0 + 5)) 10 >/dev/null; then
        pass "tick counter moves on $1 ($a0 -> $("$LAB" ticks "$1" "$VM"))"
    else
        fail "tick counter stuck on $1 at $a0"
    fi
}

query_spice_ids() { # HOST [VM] -> "IDS N": connection ids and number of connected channels
    "$LAB" virsh "$1" qemu-monitor-command "${2:-$VM}" '{"execute":"query-spice"}' |
        "$PY" -c 'import json,sys; d=json.load(sys.stdin)["return"]; print(",".join(sorted({str(c["connection-id"]) for c in d.get("channels", [])})) or "-", len(d.get("channels", [])))'
}

# A following client: one migration, checked and measured.
followed_migration() { # MODE [VIRSH-MIGRATE-ARGS...]
    local rep from to want ids
    start_events
    migrate "$@" || {
        stop_events
        return 0
    }
    from=$FROM to=$HERE
    want=$(spice_addr "$to")
    if "$SPICE" wait "$VM" "$want" 10 >/dev/null; then
        pass "client followed $1 migration $from -> $to ($want)"
    else
        fail "client did not follow $1 migration $from -> $to: $("$SPICE" status "$VM" || true)"
    fi
    stop_events
    rep=$(report "$from" "$to")
    [[ $(field "$rep" nopen) == 4 && $(field "$rep" ready) == True ]] &&
        pass "all 4 channels open on $to" || fail "channels on $to: $rep"
    [[ $(field "$rep" dst_initialized) == 1,2,3,4 ]] &&
        pass "target QEMU: SPICE_INITIALIZED for channel types 1,2,3,4" ||
        fail "target QEMU SPICE_INITIALIZED types: $(field "$rep" dst_initialized)"
    [[ $(field "$rep" spice_migrate_completed) != - ]] &&
        pass "source QEMU: SPICE_MIGRATE_COMPLETED" || fail "no SPICE_MIGRATE_COMPLETED on $from"
    ids=$(query_spice_ids "$to")
    [[ ${ids#* } == 4 ]] && pass "target query-spice: 4 channels (connection-id ${ids% *})" ||
        fail "target query-spice: $ids"
    log "migration $* $from -> $to with client: wall $WALL s, downtime $DOWN ms; $rep"
    DOWNS_CLIENT+=("$DOWN")
    REP=$rep
    WALLS_CLIENT+=("$WALL")
    SWITCHES+=("$(field "$rep" switched)")
    MODES+=("$(field "$rep" mode)")
    expect_guest_on "$to"
}

main() {
    if [[ $(id -u) != 0 ]]; then
        log "SKIP: needs root"
        exit 77
    fi
    local tool
    for tool in virsh libvirtd tini unshare qemu-system-x86_64; do
        command -v "$tool" >/dev/null || {
            log "SKIP: $tool not installed"
            exit 77
        }
    done
    if ! "$PY" -c 'import gi; gi.require_version("SpiceClientGLib", "2.0"); from gi.repository import SpiceClientGLib' 2>/dev/null; then
        log "SKIP: $PY cannot import SpiceClientGLib (apt install python3-gi gir1.2-spiceclientglib-2.0)"
        exit 77
    fi
    [[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "ROUNDS must be 1..99"
    [[ ! -e $VMM_LAB_DIR ]] || die "$VMM_LAB_DIR exists: take that lab down first (VMM_LAB_DIR=$VMM_LAB_DIR $LAB down)"
    trap cleanup EXIT
    "$LAB" up 2 >/dev/null
    EVDIR=$VMM_LAB_DIR/spice-selftest
    mkdir -p "$EVDIR"
    "$LAB" define-guest a "$VM" --spice >/dev/null
    "$LAB" wait-tick a "$VM" 5 30 >/dev/null

    # ---- connect ------------------------------------------------------------
    local i t0 t1 out ct=() sw=()
    for i in 1 2 3; do
        t0=$(now)
        out=$("$SPICE" start a "$VM") || die "spice.sh start failed"
        t1=$(now)
        ct+=("${out##*connect_time=}")
        sw+=("$(elapsed "$t0" "$t1")")
        [[ $i == 3 ]] || "$SPICE" stop "$VM"
    done
    log "client connect (session connect -> all channels open): ${ct[*]} s; spice.sh start wall: ${sw[*]} s"
    if "$SPICE" status "$VM" >/dev/null && [[ $("$SPICE" status "$VM") == *"peer=$(spice_addr a) channels=4/4 ready=yes"* ]]; then
        pass "client connected to a with 4/4 channels"
    else
        fail "client after start: $("$SPICE" status "$VM" || true)"
    fi
    out=$(query_spice_ids a)
    [[ ${out#* } == 4 ]] && pass "source query-spice: 4 channels (connection-id ${out% *})" ||
        fail "source query-spice: $out"

    # ---- migrations with a following client ----------------------------------
    WALLS_CLIENT=() SWITCHES=() MODES=() DOWNS_CLIENT=()
    local r
    for ((r = 0; r < ROUNDS; r++)); do
        for mode in p2p direct direct p2p; do
            followed_migration "$mode"
        done
    done
    "$SPICE" stop "$VM"

    # ---- the same without a client -----------------------------------------
    local walls_none=() downs_none=()
    for ((r = 0; r < ROUNDS; r++)); do
        for mode in p2p direct direct p2p; do
            migrate "$mode" && walls_none+=("$WALL") && downs_none+=("$DOWN")
        done
    done
    log "migration wall with a client:    ${WALLS_CLIENT[*]} s"
    log "migration wall without a client: ${walls_none[*]} s"
    log "downtime with a client:    ${DOWNS_CLIENT[*]} ms"
    log "downtime without a client: ${downs_none[*]} ms"
    log "virsh migrate start -> client on target with all channels: ${SWITCHES[*]} s"
    log "client switch modes: ${MODES[*]}"
    expect_guest_on "$HERE"

    # ---- a slower copy: the client connects to the target before it ends ------
    # Unthrottled, the copy (~0.1 s) often ends before the client has connected
    # to the busy target: the server then falls back to switch-host, and
    # spice-gtk 0.42 answers every later announcement with a connect error. A
    # fresh client and a bandwidth cap give the seamless path every time.
    local src_id
    "$SPICE" start "$HERE" "$VM" >/dev/null
    WALLS_CLIENT=() SWITCHES=() MODES=()
    for mode in p2p direct; do
        src_id=$(query_spice_ids "$HERE")
        followed_migration "$mode" --bandwidth 32
        [[ $(field "$REP" mode) == seamless && $(field "$REP" announced) == True ]] &&
            pass "seamless at 32 MiB/s ($mode)" || fail "not seamless at 32 MiB/s: $REP"
        [[ $(field "$REP" dst_conn_ids) == "${src_id% *}" ]] &&
            pass "target sees the source's connection-id ${src_id% *}" ||
            fail "connection-id ${src_id% *} on the source, $(field "$REP" dst_conn_ids) on the target"
    done
    log "32 MiB/s: wall ${WALLS_CLIENT[*]} s; virsh start -> client on target: ${SWITCHES[*]} s"
    "$SPICE" stop "$VM"

    # ---- a client that refuses to follow --------------------------------------
    local rep from src
    src=$(spice_addr "$HERE")
    "$SPICE" start "$HERE" "$VM" --no-migrate >/dev/null
    start_events
    migrate p2p
    from=$FROM
    for i in $(seq 50); do # it exits once the source has closed its sockets
        "$SPICE" status "$VM" 2>/dev/null | grep -q ' dead ' && break
        sleep 0.1
    done
    stop_events
    rep=$(report "$from" "$HERE")
    log "migration p2p $from -> $HERE, client refusing: wall $WALL s, downtime $DOWN ms; $rep"
    [[ $(field "$rep" result) == refused && $(field "$rep" exit_code) == 3 ]] &&
        pass "refusing client stayed on the source and exited 3 when it went away" ||
        fail "refusing client: $rep"
    [[ $(field "$rep" dst_initialized) == - ]] && pass "target QEMU saw no SPICE client" ||
        fail "target QEMU saw SPICE channels $(field "$rep" dst_initialized) from a refusing client"
    grep -q "\"peer\": \"$src\"" "$("$SPICE" status-path "$VM")" || fail "no status line with peer $src"
    expect_guest_on "$HERE"

    # ---- a frozen client ----------------------------------------------------
    "$SPICE" start "$HERE" "$VM" --on-migrate freeze >/dev/null
    src=$(spice_addr "$HERE")
    start_events
    migrate direct
    from=$FROM
    stop_events
    local pid stat
    pid=$(<"$VMM_LAB_DIR/spice/$VM.pid")
    stat=$(ps -o stat= -p "$pid" || true)
    [[ $stat == T* ]] && pass "client frozen (state $stat) during the migration" || fail "client state '$stat'"
    rep=$(report "$from" "$HERE")
    log "migration direct $from -> $HERE, client frozen: wall $WALL s, downtime $DOWN ms; $rep"
    [[ $(field "$rep" dst_initialized) == - ]] && pass "target QEMU saw no SPICE client while frozen" ||
        fail "target QEMU saw channels from a frozen client"
    t0=$(now)
    "$SPICE" thaw "$VM"
    if "$SPICE" wait "$VM" "$(spice_addr "$HERE")" 10 >/dev/null; then
        pass "thawed client reached the target after $(elapsed "$t0" "$(now)") s"
    else
        fail "thawed client: $("$SPICE" status "$VM" || true)"
    fi
    "$SPICE" stop "$VM"

    # ---- a client that cannot reach the target during the copy ----------------
    "$SPICE" start "$HERE" "$VM" --on-migrate unreachable >/dev/null
    start_events
    migrate p2p
    from=$FROM
    if "$SPICE" wait "$VM" "$(spice_addr "$HERE")" 10 >/dev/null; then
        pass "client with unreachable target still ended on $HERE"
    else
        fail "client with unreachable target: $("$SPICE" status "$VM" || true)"
    fi
    stop_events
    rep=$(report "$from" "$HERE")
    log "migration p2p $from -> $HERE, target unreachable during the copy: wall $WALL s, downtime $DOWN ms; $rep"
    [[ $(field "$rep" mode) == switch-host ]] && pass "it followed by switch-host" ||
        fail "expected switch-host: $rep"
    "$SPICE" stop "$VM"

    # ---- a guest with a sound card: playback and record channels too -----------
    local snd=$VM-snd xml
    xml=$EVDIR/$snd.xml
    sed -e "s|<name>$VM</name>|<name>$snd</name>|" -e "s|/$VM-serial.log|/$snd-serial.log|g" \
        -e "s|<memballoon|<sound model='ich6'/>\n    <memballoon|" "$("$LAB" xml-path a "$VM")" >"$xml"
    "$LAB" virsh "$HERE" create "$xml" >/dev/null
    out=$("$SPICE" start "$HERE" "$snd")
    [[ $out == *" channels=6 "* ]] && pass "sound guest: client opened 6 channels ($out)" ||
        fail "sound guest: $out"
    from=$HERE
    to=$(other "$HERE")
    virsh -q -c "$("$LAB" uri "$from")" migrate --live --p2p "$snd" "$("$LAB" uri "$to")" >/dev/null
    if out=$("$SPICE" wait "$snd" "$to" 10); then
        pass "sound guest: client followed to $to with all channels ($out)"
    else
        fail "sound guest: client did not follow: $("$SPICE" status "$snd" || true)"
    fi
    out=$(query_spice_ids "$to" "$snd")
    [[ ${out#* } == 6 ]] && pass "sound guest: target query-spice lists 6 channels" ||
        fail "sound guest: target query-spice: $out"
    "$SPICE" stop "$snd"
    "$LAB" destroy-guest "$to" "$snd"

    # ---- the guest's output across every migration -------------------------------
    local seg h a b range
    if range=$({
        for seg in "${SEGMENTS[@]}"; do
            read -r h a b <<<"$seg"
            tail -c +"$((a + 1))" "$("$LAB" serial-path "$h" "$VM")" | head -c "$((b - a))"
        done
        tail -c +"$((POS[$HERE] + 1))" "$("$LAB" serial-path "$HERE" "$VM")"
    } | tr -d '\0\r' | awk '
        /^tick [0-9]+$/ {
            n = $2 + 0
            if (seen && n != last + 1) { printf "tick %d follows tick %d\n", n, last > "/dev/stderr"; bad = 1 }
            if (!seen) first = n
            seen = 1; last = n
        }
        END { if (!seen) exit 1; printf "%d..%d", first, last; exit bad }'); then
        pass "tick counter continuous across ${#SEGMENTS[@]} migrations (ticks $range)"
    else
        fail "tick counter has a gap or reset"
    fi

    if ((FAILS == 0)); then
        log "all checks passed"
    else
        log "$FAILS check(s) failed"
        exit 1
    fi
}

main "$@"
