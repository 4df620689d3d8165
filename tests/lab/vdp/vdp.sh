#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/lab/vdp/vdp.sh - real IEEE 802.1Qbg VDP peers for the vmmigrate lab:
# one lldpad STATION per lab host, each in its own network namespace, and one
# lldpad BRIDGE (the adjacent switch) in another namespace, one veth pair per
# station. Real EVB22/ECP22/VDP22 frames cross the veths.
#
# See tests/lab/vdp/README.md for the interface; `vdp.sh help` for a summary.
set -euo pipefail

PROG=vdp.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_DIR=${VMM_LAB_DIR:-/var/tmp/vmmigrate-lab}
VDP_DIR=$LAB_DIR/vdp
LAB_MARKER=.vmmigrate-lab
HOST_NAMES=(a b c d e f g h i j k l m n o p)
MAX_LAB_INDEX=11
START_TIMEOUT=${VMM_VDP_START_TIMEOUT:-15}
STOP_TIMEOUT=${VMM_VDP_STOP_TIMEOUT:-5}
# EVB timers, written into every lldpad config (lldpad applies timer changes
# made at run time only after a restart). Station give-up on a dead bridge:
# 1.5 * ((1 + 2*RETRIES) * 10us * 2^RTE + 10us * 2^RWD) = 1.09 s.
ECP_RETRIES=3
ECP_RTE=10
VDP_RWD=16
VDP_RKA=20
# Defaults of the assoc/preassoc/deassoc wrappers.
DEF_MGRID=mgr1
DEF_TYPEID=1193046
DEF_TYPEIDVER=1
LAB_INDEX=
# VMM_VDP_DEBUG=1: lldpads log at debug level (-V 7) into <lab>/vdp/*.log.
LLDPAD_OPTS=(-p)
if [[ ${VMM_VDP_DEBUG:-0} == 1 ]]; then
    LLDPAD_OPTS+=(-V 7)
fi

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

usage_die() {
    printf '%s: %s (see "%s help")\n' "$PROG" "$*" "$PROG" >&2
    exit 2
}

warn() {
    printf '%s: %s\n' "$PROG" "$*" >&2
}

usage() {
    cat <<EOF
usage: vdp.sh COMMAND [ARGS]

State in \${VMM_LAB_DIR:-/var/tmp/vmmigrate-lab}/vdp, namespaces named after
\${VMM_LAB_INDEX:-0} (vmm<index>-st-<host>, vmm<index>-br).

  up HOST...             start a station per HOST (a..p) and the bridge; keeps
                         what runs, restarts what died; waits until both sides
                         see each other's EVB TLV and a probe VSI round trip
                         works; prints "HOST NETNS IFACE" per HOST
  down                   stop everything by recorded PID, delete the namespaces
  status                 "HOST up|down pid=PID netns=NS iface=IF" per station,
                         "bridge up|down pid=PID kind=lldpad|peer"; exit 1 if
                         anything is down
  exec HOST [--] ARGV... run ARGV in HOST's station namespace
  iface HOST             the station interface in HOST's namespace
  netns HOST             HOST's station namespace
  assoc|preassoc|preassoc-rr|deassoc HOST UUID MAC VLAN [MGRID TYPEID TYPEIDVER [HINTS]]
                         vdptool request on HOST's station, waiting for the
                         bridge; prints "ok", "rejected: ERROR", "timeout" or
                         "failed: MESSAGE"; exit 0 only for ok
                         (defaults: $DEF_MGRID $DEF_TYPEID $DEF_TYPEIDVER none)
  query HOST             the station's VSIs: "UUID MAC VLAN MODE" per filter
  bridge-list            what the bridge accepted: "PORT UUID MAC VLAN MODE"
  bridge-events          the raw VDP frame log of the bridge side
  stop-bridge            stop the bridge (lldpad or peer) by PID
  start-bridge [--peer]  start the bridge again (lldpad; --peer: the python
                         test bridge that follows the policy); waits as up
  policy [RULE...|--clear]
                         print / replace the test bridge's policy; a RULE is
                         "UUID|* MODE|* accept|reject[:ERR]|keep[:ERR]|ignore|drop"
EOF
}

in_range() {
    [[ $1 =~ ^[0-9]{1,9}$ ]] || return 1
    ((10#$1 >= $2 && 10#$1 <= $3))
}

# ---- layout -------------------------------------------------------------------

check_lab_dir() {
    [[ $LAB_DIR == /* ]] || die "VMM_LAB_DIR must be an absolute path: '$LAB_DIR'"
    [[ $LAB_DIR != / && $LAB_DIR != */ && $LAB_DIR != *//* ]] ||
        die "VMM_LAB_DIR must be a normalized directory path: '$LAB_DIR'"
    case "/$LAB_DIR/" in
    */../* | */./*) die "VMM_LAB_DIR must not contain '.' or '..': '$LAB_DIR'" ;;
    esac
    # It is written into an interface alias (max 255 bytes), see ns_tag.
    ((${#LAB_DIR} <= 200)) || die "VMM_LAB_DIR is too long (max 200 chars): '$LAB_DIR'"
}

# The index: the one the VDP lab was created with, else the one of the
# libvirt lab in the same dir, else VMM_LAB_INDEX (default 0).
load_index() { # [strict]
    local want=${VMM_LAB_INDEX:-0} stored=""
    in_range "$want" 0 "$MAX_LAB_INDEX" || die "VMM_LAB_INDEX must be 0..$MAX_LAB_INDEX: '$want'"
    want=$((10#$want))
    if [[ -f $VDP_DIR/index ]]; then
        stored=$(<"$VDP_DIR/index")
    elif [[ -f $LAB_DIR/$LAB_MARKER ]]; then
        stored=$(sed -n 's/^index=//p' "$LAB_DIR/$LAB_MARKER")
    fi
    if [[ -n $stored ]]; then
        [[ $stored =~ ^[0-9]+$ ]] || die "corrupt lab index in '$LAB_DIR'"
        if [[ ${1:-} == strict && -n ${VMM_LAB_INDEX:-} && $stored != "$want" ]]; then
            die "lab '$LAB_DIR' uses VMM_LAB_INDEX=$stored, not $want"
        fi
        LAB_INDEX=$stored
    else
        LAB_INDEX=$want
    fi
}

check_host() {
    local n
    for n in "${HOST_NAMES[@]}"; do
        [[ $n == "$1" ]] && return 0
    done
    die "bad host name '$1' (expected a..${HOST_NAMES[-1]})"
}

st_ns() { printf 'vmm%s-st-%s\n' "$LAB_INDEX" "$1"; }
br_ns() { printf 'vmm%s-br\n' "$LAB_INDEX"; }
st_if() { printf 'evb-%s\n' "$1"; }
br_if() { printf 'port-%s\n' "$1"; }

vdp_exists() { [[ -f $VDP_DIR/index ]]; }

require_vdp() {
    vdp_exists || die "no VDP lab at '$VDP_DIR' (run: vdp.sh up HOST...)"
}

# Hosts whose station namespace this lab created, in name order.
vdp_hosts() {
    local n
    for n in "${HOST_NAMES[@]}"; do
        ns_owned "$(st_ns "$n")" && printf '%s\n' "$n"
    done
    return 0
}

require_host() {
    check_host "$1"
    require_vdp
    load_index
    if ! ns_owned "$(st_ns "$1")"; then
        die "no station '$1' in the VDP lab (run: vdp.sh up $1)"
    fi
}

lock_vdp() {
    mkdir -p "$VDP_DIR"
    exec 9>"$VDP_DIR/lock"
    flock -w 60 9 || die "VDP lab '$VDP_DIR' is locked by another vdp.sh"
}

# ---- namespaces -----------------------------------------------------------------

# Every namespace of this lab carries the lab dir in the alias of its
# loopback device: 'down' removes only namespaces that say they are ours,
# even when the state dir is gone ('lab.sh down' removes the whole lab dir).
ns_tag() { printf 'vmmigrate-vdp %s\n' "$LAB_DIR"; }
ns_exists() { [[ -e /run/netns/$1 ]]; }
ns_owned() {
    local out
    ns_exists "$1" || return 1
    out=$(ip -n "$1" -o link show dev lo 2>/dev/null) || return 1
    [[ $out == *"alias $(ns_tag)" ]]
}

ns_inode() { stat -L -c '%i' "/run/netns/$1" 2>/dev/null; }

ns_create() { # NAME: create and record, or adopt our own
    if ns_exists "$1"; then
        ns_owned "$1" && return 0
        die "network namespace '$1' exists but is not this lab's (another lab with VMM_LAB_INDEX=$LAB_INDEX?)"
    fi
    ip netns add "$1" || die "could not create network namespace '$1'"
    if ! ip -n "$1" link set dev lo alias "$(ns_tag)" || ! ip -n "$1" link set lo up; then
        die "could not set up network namespace '$1'"
    fi
}

# ---- processes --------------------------------------------------------------------

pid_alive() {
    local st
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# PID is alive, runs EXE-GLOB and lives in network namespace NS.
pid_is_ours() { # PID EXE-GLOB NS
    local exe ino
    pid_alive "$1" || return 1
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    # shellcheck disable=SC2053 # glob match intended
    [[ ${exe##*/} == $2 ]] || return 1
    ino=$(ns_inode "$3") || return 1
    [[ $(readlink "/proc/$1/ns/net" 2>/dev/null) == "net:[$ino]" ]]
}

read_pid() { # FILE
    local p=""
    if [[ -f $1 ]]; then
        read -r p <"$1" 2>/dev/null || true
    fi
    [[ $p =~ ^[0-9]+$ ]] && printf '%s\n' "$p"
    return 0
}

# Recorded PID in FILE if it still is EXE-GLOB in NS.
live_pid() { # FILE EXE-GLOB NS
    local p
    p=$(read_pid "$1")
    if [[ -n $p ]] && pid_is_ours "$p" "$2" "$3"; then
        printf '%s\n' "$p"
    fi
    return 0
}

wait_gone() { # TIMEOUT PID... -> prints survivors
    local deadline=$((SECONDS + $1)) p left
    shift
    while :; do
        left=()
        for p in "$@"; do
            pid_alive "$p" && left+=("$p")
        done
        ((${#left[@]} == 0)) && return 0
        ((SECONDS >= deadline)) && break
        sleep 0.05
    done
    printf '%s\n' "${left[@]}"
}

stop_pids() { # TIMEOUT PID... (verified as ours)
    local t=$1 p survivors
    shift
    (($# > 0)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    survivors=$(wait_gone "$t" "$@")
    if [[ -n $survivors ]]; then
        for p in $survivors; do
            warn "PID $p did not exit after ${t}s, sending SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
        done
        # shellcheck disable=SC2086 # a list of PIDs
        survivors=$(wait_gone 5 $survivors)
        [[ -z $survivors ]] || warn "PIDs still alive after SIGKILL: $survivors"
    fi
    return 0
}

python_bin() {
    if [[ -x /usr/bin/python3 ]]; then
        printf '/usr/bin/python3\n'
    else
        command -v python3 || die "python3 not found"
    fi
}

# Start ARGV in namespace NS in the background, in its own session, with a
# private tmpfs on /dev/shm (lldpad keeps its PID in POSIX shm
# /dev/shm/lldpad.state, which is not per network namespace). The PID
# (the same process after exec) goes to PIDFILE. fd 9 is our lock.
spawn_in_ns() { # NS PIDFILE LOG ARGV...
    local ns=$1 pidfile=$2 log=$3
    shift 3
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # expanded by the inner shell
    setsid env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
        ip netns exec "$ns" /bin/sh -c '
            echo $$ >"$1"
            shift
            mount -t tmpfs -o size=1m tmpfs /dev/shm || exit 1
            exec "$@"
        ' vdp-spawn "$pidfile" "$@" </dev/null >>"$log" 2>&1 9>&- &
    local deadline=$((SECONDS + 5))
    while [[ -z $(read_pid "$pidfile") ]]; do
        ((SECONDS < deadline)) || die "could not start $1 in namespace '$ns' (see $log)"
        sleep 0.01
    done
}

# ---- lldpad -----------------------------------------------------------------------

write_conf() { # FILE ROLE IFNAME...
    local f=$1 role=$2 rrcap=false
    shift 2
    [[ $role == bridge ]] && rrcap=true
    {
        printf '# Generated by tests/lab/vdp/vdp.sh (VMM_LAB_INDEX=%s); rewritten at every start.\n' "$LAB_INDEX"
        printf 'nearest_customer_bridge : {\n'
        local i
        for i in "$@"; do
            cat <<EOF
  $i : {
    adminStatus = 3;
    tlvid0080c20d : {
      enableTx = true;
      evbmode = "$role";
      evbrrreq = true;
      evbrrcap = $rrcap;
      evbgpid = false;
      ecpretries = $ECP_RETRIES;
      ecprte = $ECP_RTE;
      vdprwd = $VDP_RWD;
      vdprka = $VDP_RKA;
    };
  };
EOF
        done
        printf '};\n'
    } >"$f"
}

br_pid() { # -> PID of the running bridge (lldpad or peer) or nothing
    local p
    p=$(live_pid "$VDP_DIR/br.pid" lldpad "$(br_ns)")
    [[ -n $p ]] || p=$(live_pid "$VDP_DIR/br.pid" 'python3*' "$(br_ns)")
    [[ -n $p ]] && printf '%s\n' "$p"
    return 0
}

br_kind() {
    local p
    p=$(br_pid)
    [[ -n $p ]] || return 0
    if [[ $(readlink "/proc/$p/exe") == */lldpad ]]; then echo lldpad; else echo peer; fi
}

mon_pid() { live_pid "$VDP_DIR/mon.pid" 'python3*' "$(br_ns)"; }
st_pid() { live_pid "$VDP_DIR/st-$1.pid" lldpad "$(st_ns "$1")"; }

start_monitor() {
    [[ -n $(mon_pid) ]] && return 0
    local py n0 n deadline
    py=$(python_bin)
    n0=$(grep -c ' monitor-start$' "$VDP_DIR/events" 2>/dev/null || true)
    spawn_in_ns "$(br_ns)" "$VDP_DIR/mon.pid" "$VDP_DIR/mon.log" \
        "$py" "$SCRIPT_DIR/vdppeer.py" monitor "$VDP_DIR/events"
    # It is listening once it wrote its start marker.
    deadline=$((SECONDS + 5))
    while :; do
        n=$(grep -c ' monitor-start$' "$VDP_DIR/events" 2>/dev/null || true)
        ((${n:-0} > ${n0:-0})) && return 0
        ((SECONDS < deadline)) || die "the bridge monitor did not start (see $VDP_DIR/mon.log)"
        sleep 0.02
    done
}

# Ask the monitor to mark the bridge's state as gone, and wait for the mark.
mark_reset() {
    local p n0 n deadline=$((SECONDS + 5))
    p=$(mon_pid)
    [[ -n $p ]] || return 0
    n0=$(grep -c ' reset$' "$VDP_DIR/events" 2>/dev/null || true)
    kill -USR1 "$p" 2>/dev/null || return 0
    while :; do
        n=$(grep -c ' reset$' "$VDP_DIR/events" 2>/dev/null || true)
        ((${n:-0} > ${n0:-0})) && return 0
        ((SECONDS < deadline)) || {
            warn "the bridge monitor did not confirm the reset"
            return 0
        }
        sleep 0.01
    done
}

# The bridge config names the ports of all possible hosts: a port created
# later (up c) is picked up by the running lldpad with its settings.
start_bridge() { # lldpad|peer
    [[ -n $(br_pid) ]] && return 0
    mark_reset
    local ports=() n
    for n in "${HOST_NAMES[@]}"; do
        ports+=("$(br_if "$n")")
    done
    printf '=== %s start bridge (%s)\n' "$(date '+%F %T')" "$1" >>"$VDP_DIR/br.log"
    if [[ $1 == peer ]]; then
        local py present=()
        py=$(python_bin)
        for n in $(vdp_hosts); do
            present+=("$(br_if "$n")")
        done
        ((${#present[@]} > 0)) || die "start-bridge --peer: no stations"
        touch "$VDP_DIR/policy"
        spawn_in_ns "$(br_ns)" "$VDP_DIR/br.pid" "$VDP_DIR/br.log" \
            "$py" "$SCRIPT_DIR/vdppeer.py" bridge "$VDP_DIR/policy" "${present[@]}"
    else
        write_conf "$VDP_DIR/br.conf" bridge "${ports[@]}"
        spawn_in_ns "$(br_ns)" "$VDP_DIR/br.pid" "$VDP_DIR/br.log" \
            lldpad "${LLDPAD_OPTS[@]}" -f "$VDP_DIR/br.conf"
    fi
}

start_station() { # HOST
    [[ -n $(st_pid "$1") ]] && return 0
    write_conf "$VDP_DIR/st-$1.conf" station "$(st_if "$1")"
    printf '=== %s start station %s\n' "$(date '+%F %T')" "$1" >>"$VDP_DIR/st-$1.log"
    spawn_in_ns "$(st_ns "$1")" "$VDP_DIR/st-$1.pid" "$VDP_DIR/st-$1.log" \
        lldpad "${LLDPAD_OPTS[@]}" -f "$VDP_DIR/st-$1.conf"
}

# The probe VSI that up/start-bridge send through each station (bridge-list
# leaves it out; the test bridge always accepts it).
PROBE_UUID=fffffffe-0000-4000-8000-0000000f00be
PROBE_ARGS=(-c mgrid2=vdplabprobe -c typeid=0 -c typeidver=0 -c "uuid=$PROBE_UUID"
    -c hints=none -c filter=4094-02:00:00:00:00:01)

st_vdptool() { # HOST ARGS...
    local h=$1
    shift
    ip netns exec "$(st_ns "$h")" vdptool -i "$(st_if "$h")" "$@" 2>&1
}

# VDP works between HOST's station and its bridge port. Seeing each other's
# EVB TLV is not enough (measured):
# - the station starts ECP/VDP only once the bridge confirmed reflective
#   relay, ~1 s later; before that a request fails with "VDP protocol not
#   supported on interface". Probe: a deassoc of an unknown VSI fails
#   locally, without a frame, with "Invalid parameters" once VDP is on;
# - a bridge port's VDP runs with all timers 0 until the next LLDP frame
#   after it started: its keep-alive timer (30 us instead of 15.8 s) then
#   deassociates every VSI right after accepting it;
# - ECP drops a frame whose sequence number equals the last one received:
#   a restarted lldpad starts again at 1, so the first reply of a new bridge
#   can be lost.
# So: wait until a real round trip with a probe VSI works and sticks.
evb_ready() { # HOST
    local out
    # Each side shows the other's EVB TLV (the test bridge has no LLDP agent).
    out=$(ip netns exec "$(st_ns "$1")" lldptool -t -n -i "$(st_if "$1")" -g ncb -V evb 2>&1) || true
    [[ $out == *mode:bridge* ]] || return 1
    if [[ $(br_kind) == lldpad ]]; then
        out=$(ip netns exec "$(br_ns)" lldptool -t -n -i "$(br_if "$1")" -g ncb -V evb 2>&1) || true
        [[ $out == *mode:station* ]] || return 1
        out=$(ip netns exec "$(br_ns)" vdptool -i "$(br_if "$1")" -t -V assoc 2>&1) || true
        [[ $out == *"not applicable"* ]] || return 1 # VDP not started on the port
    fi
    out=$(st_vdptool "$1" -T -V deassoc -c mode=deassoc "${PROBE_ARGS[@]}") || true
    [[ $out == *"Invalid parameters"* ]] || return 1
    out=$(st_vdptool "$1" -T -W -V assoc -c mode=assoc "${PROBE_ARGS[@]}") || true
    [[ $(parse_vdptool assoc 0 "$out") == ok ]] || return 1
    sleep 0.05
    out=$(st_vdptool "$1" -t -V assoc) || true
    [[ $out == *"$PROBE_UUID"* ]] || return 1 # deassociated right away
    out=$(st_vdptool "$1" -T -W -V deassoc -c mode=deassoc "${PROBE_ARGS[@]}") || true
    [[ $(parse_vdptool deassoc 0 "$out") == ok ]]
}

wait_evb() { # HOST...
    local deadline=$((SECONDS + START_TIMEOUT)) h left=("$@") now
    while :; do
        now=("${left[@]}")
        left=()
        for h in "${now[@]}"; do
            evb_ready "$h" || left+=("$h")
        done
        ((${#left[@]} == 0)) && return 0
        if ((SECONDS >= deadline)); then
            die "VDP not up after ${START_TIMEOUT}s for station(s) ${left[*]} (see $VDP_DIR/*.log)"
        fi
        [[ -n $(br_pid) ]] || die "the bridge exited during start-up (see $VDP_DIR/br.log)"
        for h in "${left[@]}"; do
            [[ -n $(st_pid "$h") ]] || die "the lldpad of station '$h' exited during start-up (see $VDP_DIR/st-$h.log)"
        done
        sleep 0.1
    done
}

# ---- commands -----------------------------------------------------------------------

cmd_up() {
    (($# >= 1)) || usage_die "usage: up HOST..."
    local h hosts=()
    for h in "$@"; do
        check_host "$h"
        [[ " ${hosts[*]} " == *" $h "* ]] || hosts+=("$h")
    done
    check_lab_dir
    local t
    for t in lldpad lldptool vdptool ip; do
        command -v "$t" >/dev/null || die "'$t' not found (apt-get install lldpad iproute2)"
    done
    load_index strict
    local ns
    for ns in "$(br_ns)" $(for h in "${hosts[@]}"; do st_ns "$h"; done); do
        if ns_exists "$ns" && ! ns_owned "$ns"; then
            die "network namespace '$ns' exists but is not this lab's (another lab with VMM_LAB_INDEX=$LAB_INDEX?)"
        fi
    done
    lock_vdp
    [[ -f $VDP_DIR/index ]] || printf '%s\n' "$LAB_INDEX" >"$VDP_DIR/index"
    if [[ $(br_kind) == peer ]]; then
        for h in "${hosts[@]}"; do
            ns_owned "$(st_ns "$h")" ||
                die "up: the test bridge serves only the ports it started with (stop-bridge, up $h, start-bridge --peer)"
        done
    fi

    local br
    br=$(br_ns)
    ns_create "$br"
    for h in "${hosts[@]}"; do
        local st sif bif
        st=$(st_ns "$h")
        sif=$(st_if "$h")
        bif=$(br_if "$h")
        ns_create "$st"
        if ! ip -n "$st" link show "$sif" >/dev/null 2>&1 ||
            ! ip -n "$br" link show "$bif" >/dev/null 2>&1; then
            # Half of a pair (or none): start over for this host.
            ip -n "$st" link del "$sif" 2>/dev/null || true
            ip -n "$br" link del "$bif" 2>/dev/null || true
            ip link add "$sif" netns "$st" type veth peer name "$bif" netns "$br" ||
                die "could not create the veth pair $sif/$bif"
        fi
        ip -n "$st" link set "$sif" up
        ip -n "$br" link set "$bif" up
    done
    start_monitor
    [[ -n $(br_pid) ]] || start_bridge lldpad
    for h in "${hosts[@]}"; do
        start_station "$h"
    done
    wait_evb "${hosts[@]}"
    for h in "${hosts[@]}"; do
        printf '%s %s %s\n' "$h" "$(st_ns "$h")" "$(st_if "$h")"
    done
}

cmd_down() {
    (($# == 0)) || usage_die "down takes no arguments"
    check_lab_dir
    load_index
    if [[ -d $VDP_DIR ]]; then
        lock_vdp
    fi
    # By recorded PID first (checked: program and namespace).
    local pids=() p h f
    p=$(mon_pid) && [[ -n $p ]] && pids+=("$p")
    p=$(br_pid) && [[ -n $p ]] && pids+=("$p")
    for f in "$VDP_DIR"/st-*.pid; do
        [[ -f $f ]] || continue
        h=${f##*/st-}
        h=${h%.pid}
        p=$(st_pid "$h") && [[ -n $p ]] && pids+=("$p")
    done
    stop_pids "$STOP_TIMEOUT" "${pids[@]}"
    # Then every namespace tagged with this lab dir (whatever its index; also
    # after a crash or a 'lab.sh down' that removed the state dir). A process
    # still inside one was started by this lab (or is a 'vdp.sh exec'); a
    # namespace only goes away with its last process.
    local nss=() ns
    for ns in $(ip netns list 2>/dev/null | cut -d' ' -f1); do
        ns_owned "$ns" && nss+=("$ns")
    done
    pids=()
    for ns in "${nss[@]}"; do
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do
            [[ $p != "$$" && $p != "$BASHPID" ]] && pid_alive "$p" && pids+=("$p")
        done
    done
    if ((${#pids[@]} > 0)); then
        warn "stopping leftover processes in the lab's namespaces: ${pids[*]}"
        stop_pids "$STOP_TIMEOUT" "${pids[@]}"
    fi
    local failed=0
    for ns in "${nss[@]}"; do
        ip netns del "$ns" 2>/dev/null || {
            warn "could not delete network namespace '$ns'"
            failed=1
        }
    done
    rm -rf --one-file-system -- "$VDP_DIR"
    rmdir -- "$LAB_DIR" 2>/dev/null || true # only if nothing else is in it
    ((failed == 0)) || die "down: some namespaces are left"
}

cmd_status() {
    (($# == 0)) || usage_die "status takes no arguments"
    check_lab_dir
    require_vdp
    load_index
    local h p rc=0
    for h in $(vdp_hosts); do
        p=$(st_pid "$h")
        if [[ -n $p ]] && ns_exists "$(st_ns "$h")"; then
            printf '%s up pid=%s netns=%s iface=%s\n' "$h" "$p" "$(st_ns "$h")" "$(st_if "$h")"
        else
            printf '%s down pid=- netns=%s iface=%s\n' "$h" "$(st_ns "$h")" "$(st_if "$h")"
            rc=1
        fi
    done
    p=$(br_pid)
    if [[ -n $p ]]; then
        printf 'bridge up pid=%s kind=%s netns=%s\n' "$p" "$(br_kind)" "$(br_ns)"
    else
        printf 'bridge down pid=- kind=- netns=%s\n' "$(br_ns)"
        rc=1
    fi
    return "$rc"
}

cmd_exec() {
    (($# >= 2)) || usage_die "usage: exec HOST [--] ARGV..."
    local h=$1
    shift
    [[ $1 == -- ]] && shift
    (($# >= 1)) || usage_die "usage: exec HOST [--] ARGV..."
    check_lab_dir
    require_host "$h"
    exec ip netns exec "$(st_ns "$h")" "$@"
}

cmd_iface() {
    (($# == 1)) || usage_die "usage: iface HOST"
    check_lab_dir
    require_host "$1"
    st_if "$1"
}

cmd_netns() {
    (($# == 1)) || usage_die "usage: netns HOST"
    check_lab_dir
    require_host "$1"
    st_ns "$1"
}

# vdptool exits 0 whatever the bridge answered: the outcome is in its
# output. Prints ok / rejected: ERR / timeout / failed: MSG.
cmd_request() { # MODE HOST UUID MAC VLAN [MGRID TYPEID TYPEIDVER [HINTS]]
    local mode=$1
    shift
    (($# == 4 || $# == 7 || $# == 8)) ||
        usage_die "usage: $mode HOST UUID MAC VLAN [MGRID TYPEID TYPEIDVER [HINTS]]"
    local h=$1 uuid=$2 mac=$3 vlan=$4 mgrid=${5:-$DEF_MGRID} typeid=${6:-$DEF_TYPEID}
    local typeidver=${7:-$DEF_TYPEIDVER} hints=${8:-none}
    [[ $uuid =~ ^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$ ]] ||
        usage_die "$mode: bad UUID '$uuid'"
    [[ $mac =~ ^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$ ]] || usage_die "$mode: bad MAC '$mac'"
    in_range "$vlan" 0 4095 || usage_die "$mode: VLAN must be 0..4095: '$vlan'"
    in_range "$typeid" 0 16777215 || usage_die "$mode: TYPEID must be 0..16777215: '$typeid'"
    in_range "$typeidver" 0 255 || usage_die "$mode: TYPEIDVER must be 0..255: '$typeidver'"
    [[ $hints == none || $hints == to || $hints == from ]] || usage_die "$mode: HINTS must be none, to or from"
    check_lab_dir
    require_host "$h"
    local out rc=0
    out=$(ip netns exec "$(st_ns "$h")" vdptool -i "$(st_if "$h")" -T -W -V "$mode" \
        -c "mode=$mode" -c "mgrid2=$mgrid" -c "typeid=$typeid" -c "typeidver=$typeidver" \
        -c "uuid=$uuid" -c "hints=$hints" -c "filter=$vlan-$mac" 2>&1) || rc=$?
    parse_vdptool "$mode" "$rc" "$out"
}

parse_vdptool() { # MODE RC OUTPUT
    local mode=$1 rc=$2 out=$3 got="" line err=""
    while IFS= read -r line; do
        line=${line#"${line%%[![:space:]]*}"}
        case $line in
        "mode = "*) got=${line#mode = } ;;
        "Error returned by Bridge"*)
            err=${line#Error returned by Bridge}
            err=${err#*:}
            err="rejected: ${err# }"
            ;;
        "Internal Error : Ack not received"*) err=timeout ;;
        FAILED:*)
            err=${line#FAILED:}
            err="failed: ${err# }"
            ;;
        esac
    done <<<"$out"
    if [[ -z $err && $rc != 0 ]]; then
        err="failed: vdptool exit status $rc${out:+: $(head -n 1 <<<"$out")}"
    fi
    if [[ -z $err ]]; then
        if [[ -z $got ]]; then
            err=timeout # -W waits 5 s; nothing at all means no answer
        elif [[ $got != "$mode" ]]; then
            err="rejected: bridge answered $got"
        fi
    fi
    if [[ -n $err ]]; then
        printf '%s\n' "$err"
        return 1
    fi
    echo ok
}

cmd_query() {
    (($# == 1)) || usage_die "usage: query HOST"
    check_lab_dir
    require_host "$1"
    # A query lists only the VSIs in the mode it names.
    local out="" o m
    for m in preassoc preassoc-rr assoc; do
        o=$(ip netns exec "$(st_ns "$1")" vdptool -i "$(st_if "$1")" -t -V "$m" 2>&1) ||
            die "query: $o"
        out+=$o$'\n'
    done
    # "VSI n:" blocks of "key = value" lines.
    awk '
        function flush() {
            if (uuid == "") return
            n = split(filters, f, " ")
            for (i = 1; i <= n; i++) {
                vlan = f[i]; mac = "-"
                if (index(f[i], "-") > 0) { vlan = substr(f[i], 1, index(f[i], "-") - 1); mac = substr(f[i], index(f[i], "-") + 1) }
                print uuid, mac, vlan, mode
            }
            uuid = ""; filters = ""; mode = ""
        }
        /^VSI / { flush(); next }
        { gsub(/^[ \t]+/, "") }
        /^mode = / { mode = substr($0, 8) }
        /^uuid = / { uuid = substr($0, 8) }
        /^filter = / { filters = filters " " substr($0, 10) }
        END { flush() }
    ' <<<"$out"
}

cmd_bridge_list() {
    (($# == 0)) || usage_die "bridge-list takes no arguments"
    check_lab_dir
    require_vdp
    "$(python_bin)" "$SCRIPT_DIR/vdppeer.py" fold "$VDP_DIR/events"
}

cmd_bridge_events() {
    (($# == 0)) || usage_die "bridge-events takes no arguments"
    check_lab_dir
    require_vdp
    cat "$VDP_DIR/events"
}

cmd_stop_bridge() {
    (($# == 0)) || usage_die "stop-bridge takes no arguments"
    check_lab_dir
    require_vdp
    load_index
    lock_vdp
    local p
    p=$(br_pid)
    if [[ -n $p ]]; then
        stop_pids "$STOP_TIMEOUT" "$p"
    fi
    mark_reset
}

cmd_start_bridge() {
    local kind=lldpad
    case ${1:-} in
    "") ;;
    --peer) kind=peer ;;
    *) usage_die "usage: start-bridge [--peer]" ;;
    esac
    (($# <= 1)) || usage_die "usage: start-bridge [--peer]"
    check_lab_dir
    require_vdp
    load_index
    lock_vdp
    local cur
    cur=$(br_kind)
    [[ -z $cur || $cur == "$kind" ]] || die "start-bridge: a $cur bridge runs (stop-bridge first)"
    start_monitor
    start_bridge "$kind"
    local hosts
    mapfile -t hosts < <(vdp_hosts)
    ((${#hosts[@]} == 0)) || wait_evb "${hosts[@]}"
}

cmd_policy() {
    check_lab_dir
    require_vdp
    if (($# == 0)); then
        cat "$VDP_DIR/policy" 2>/dev/null || true
        return 0
    fi
    local r w tmp
    if [[ $1 == --clear ]]; then
        (($# == 1)) || usage_die "usage: policy --clear"
        : >"$VDP_DIR/policy"
        return 0
    fi
    for r in "$@"; do
        read -r -a w <<<"$r"
        ((${#w[@]} == 3)) || usage_die "policy: a rule is 'UUID|* MODE|* ACTION': '$r'"
        [[ ${w[1]} =~ ^(\*|preassoc|preassoc-rr|assoc|deassoc)$ ]] || usage_die "policy: bad mode '${w[1]}'"
        [[ ${w[2]} =~ ^(accept|reject(:[0-9]+)?|keep(:[0-9]+)?|ignore|drop)$ ]] || usage_die "policy: bad action '${w[2]}'"
    done
    tmp=$VDP_DIR/policy.tmp.$$
    printf '%s\n' "$@" >"$tmp"
    mv -f "$tmp" "$VDP_DIR/policy"
}

main() {
    (($# >= 1)) || {
        usage >&2
        exit 2
    }
    local cmd=$1
    shift
    case $cmd in
    help | -h | --help)
        usage
        return 0
        ;;
    esac
    [[ $(id -u) == 0 ]] || die "the VDP lab needs root (network namespaces)"
    case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    exec) cmd_exec "$@" ;;
    iface) cmd_iface "$@" ;;
    netns) cmd_netns "$@" ;;
    assoc | preassoc | preassoc-rr | deassoc) cmd_request "$cmd" "$@" ;;
    query) cmd_query "$@" ;;
    bridge-list) cmd_bridge_list "$@" ;;
    bridge-events) cmd_bridge_events "$@" ;;
    stop-bridge) cmd_stop_bridge "$@" ;;
    start-bridge) cmd_start_bridge "$@" ;;
    policy) cmd_policy "$@" ;;
    *) usage_die "unknown command '$cmd'" ;;
    esac
}

main "$@"
