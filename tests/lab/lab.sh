#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/lab/lab.sh - the vmmigrate migration lab: several libvirt "hosts" on
# one machine, and tiny TCG test guests to migrate between them.
#
# Each lab host is one privileged libvirtd (under `tini -s`) in its own mount
# namespace, with private directories bind-mounted over /etc/libvirt,
# /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt.
# See tests/lab/README.md for the interface; `lab.sh help` for a summary.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # '&' literal in ${x//p/r}

PROG=lab.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
LAB_DIR=${VMM_LAB_DIR:-/var/tmp/vmmigrate-lab}
LAB_INDEX=${VMM_LAB_INDEX:-0}
LAB_MARKER=.vmmigrate-lab
HOST_NAMES=(a b c d e f g h i j k l m n o p)
MAX_LAB_INDEX=11
# host dir subdirectory -> mount point inside the host's namespace
MOUNT_SUBDIRS=(etc run lib log cache)
MOUNT_TARGETS=(/etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt)
START_TIMEOUT=${VMM_LAB_START_TIMEOUT:-30}
STOP_TIMEOUT=${VMM_LAB_STOP_TIMEOUT:-10}
VIRSH_TIMEOUT=${VMM_LAB_VIRSH_TIMEOUT:-30}

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
usage: lab.sh COMMAND [ARGS]

Lab (dir \${VMM_LAB_DIR:-/var/tmp/vmmigrate-lab}, index \${VMM_LAB_INDEX:-0}):
  up [N]                 start hosts a..(N-th letter) (default 2, max ${#HOST_NAMES[@]});
                         keeps running hosts, restarts dead ones; prints "NAME URI"
  down                   destroy all domains, stop all daemons and their QEMUs,
                         remove the lab dir
  status                 one line per host: NAME up|down pid=PID domains=N URI
  env                    print "export LAB_URI_A=..." lines for eval
  uri HOST               print the host's libvirt URI
  pid HOST               print the host's libvirtd PID
  virsh HOST ARGS...     run virsh against HOST

Guests (kernel: \$VMM_GUEST_KERNEL, else <build>/tests/guest/vmm-guest.elf):
  define-guest HOST VM [--mem MiB] [--dirty MiB] [--hz N] [--qmp] [--spice]
               [--persistent] [--kernel PATH]
                         create and start a TCG test guest (transient unless
                         --persistent; defaults: --mem 64 --dirty 4 --hz 10)
  destroy-guest HOST VM  destroy VM on HOST (and undefine it if persistent)
  ticks HOST VM          last "tick N" number in VM's serial log on HOST
  wait-tick HOST VM N [SECONDS]
                         wait until VM's serial log on HOST reaches tick N
  where VM               print "HOST STATE (REASON)" for each host that has VM
  serial-path HOST VM    real path of VM's serial log on HOST
  qmp-path HOST VM       real path of VM's extra QMP socket on HOST (--qmp)
  xml-path HOST VM       the domain XML define-guest used
EOF
}

# VALUE is a decimal integer in MIN..MAX.
in_range() {
    [[ $1 =~ ^[0-9]{1,9}$ ]] || return 1
    ((10#$1 >= $2 && 10#$1 <= $3))
}

# ---- lab layout ------------------------------------------------------------

check_lab_dir() {
    [[ $LAB_DIR == /* ]] || die "VMM_LAB_DIR must be an absolute path: '$LAB_DIR'"
    [[ $LAB_DIR != / && $LAB_DIR != */ && $LAB_DIR != *//* ]] ||
        die "VMM_LAB_DIR must be a normalized directory path: '$LAB_DIR'"
    case "/$LAB_DIR/" in
    */../* | */./*) die "VMM_LAB_DIR must not contain '.' or '..': '$LAB_DIR'" ;;
    esac
    local t
    for t in "${MOUNT_TARGETS[@]}"; do
        case "$LAB_DIR/" in
        "$t"/*) die "VMM_LAB_DIR must not be under $t (hidden inside lab hosts): '$LAB_DIR'" ;;
        esac
    done
    # QEMU/libvirt sockets live below the host dirs; keep room for sun_path.
    ((${#LAB_DIR} <= 48)) || die "VMM_LAB_DIR is too long for unix socket paths (max 48 chars): '$LAB_DIR'"
}

# The index of an existing lab is the one it was created with.
load_lab_index() {
    in_range "$LAB_INDEX" 0 "$MAX_LAB_INDEX" ||
        die "VMM_LAB_INDEX must be 0..$MAX_LAB_INDEX: '$LAB_INDEX'"
    LAB_INDEX=$((10#$LAB_INDEX))
    if [[ -f $LAB_DIR/$LAB_MARKER ]]; then
        local stored
        stored=$(sed -n 's/^index=//p' "$LAB_DIR/$LAB_MARKER")
        [[ $stored =~ ^[0-9]+$ ]] || die "corrupt lab marker '$LAB_DIR/$LAB_MARKER'"
        if [[ -n ${VMM_LAB_INDEX:-} && $stored != "$LAB_INDEX" && ${1:-} == strict ]]; then
            die "lab '$LAB_DIR' was created with VMM_LAB_INDEX=$stored, not $LAB_INDEX"
        fi
        LAB_INDEX=$stored
    fi
}

lab_exists() {
    [[ -f $LAB_DIR/$LAB_MARKER ]]
}

require_lab() {
    lab_exists || die "no lab at '$LAB_DIR' (run: lab.sh up)"
}

host_index() { # NAME -> 0-based index, or fail
    local i
    for i in "${!HOST_NAMES[@]}"; do
        if [[ ${HOST_NAMES[$i]} == "$1" ]]; then
            printf '%s\n' "$i"
            return 0
        fi
    done
    return 1
}

host_dir() { printf '%s/%s\n' "$LAB_DIR" "$1"; }
host_uri() { printf 'qemu+unix:///system?socket=%s/%s/run/libvirt-sock\n' "$LAB_DIR" "$1"; }
host_addr() { printf '127.0.0.%d\n' $((10 + LAB_INDEX * 20 + $1)); }
host_port_base() { printf '%d\n' $((20000 + LAB_INDEX * 1000 + $1 * 60)); }

# Hosts present in the lab dir, in name order.
lab_hosts() {
    local n
    for n in "${HOST_NAMES[@]}"; do
        [[ -d $LAB_DIR/$n ]] && printf '%s\n' "$n"
    done
    return 0
}

require_host() { # NAME: must be a host of the existing lab
    require_lab
    host_index "$1" >/dev/null || die "bad host name '$1' (expected a..${HOST_NAMES[-1]})"
    [[ -d $LAB_DIR/$1 ]] || die "no host '$1' in lab '$LAB_DIR'"
}

check_vm_name() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$ ]] ||
        die "bad VM name '$1' (letters, digits, '_', '.', '-'; max 40)"
}

# ---- processes -------------------------------------------------------------

# PID is alive and not a zombie.
pid_alive() {
    local st
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# PID runs in a mount namespace of host dir HD (its /run/libvirt is HD/run).
pid_in_host() {
    local a b
    a=$(stat -L -c '%d:%i' "/proc/$1/root/run/libvirt" 2>/dev/null) || return 1
    b=$(stat -L -c '%d:%i' "$2/run" 2>/dev/null) || return 1
    [[ $a == "$b" ]]
}

pid_exe_is() { # PID NAME-GLOB
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    # shellcheck disable=SC2053 # glob match intended
    [[ ${exe##*/} == $2 ]]
}

# A recorded PID that still is the lab process it was recorded as.
pid_is_ours() { # PID EXE-GLOB HOSTDIR
    pid_alive "$1" && pid_exe_is "$1" "$2" && pid_in_host "$1" "$3"
}

read_pid() { # FILE -> pid or nothing
    local p=""
    if [[ -f $1 ]]; then
        read -r p <"$1" 2>/dev/null || true
    fi
    [[ $p =~ ^[0-9]+$ ]] && printf '%s\n' "$p"
    return 0
}

# Wait until every PID is gone; prints the survivors.
wait_gone() { # TIMEOUT-SECONDS PID...
    local deadline=$((SECONDS + $1)) p left
    shift
    while :; do
        left=()
        for p in "$@"; do
            pid_alive "$p" && left+=("$p")
        done
        ((${#left[@]} == 0)) && return 0
        ((SECONDS >= deadline)) && break
        sleep 0.1
    done
    printf '%s\n' "${left[@]}"
}

# TERM, wait, then KILL. Only call with PIDs verified as ours.
stop_pids() { # TIMEOUT PID...
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

# ---- libvirt access -------------------------------------------------------

lvirsh() { # HOST ARGS...
    local uri
    uri=$(host_uri "$1")
    shift
    timeout "$VIRSH_TIMEOUT" virsh -q -c "$uri" "$@"
}

# The host's daemon answers on its socket.
host_responsive() {
    [[ -S $LAB_DIR/$1/run/libvirt-sock ]] || return 1
    timeout 5 virsh -q -c "$(host_uri "$1")" uri >/dev/null 2>&1
}

host_libvirtd_pid() { # NAME -> verified libvirtd PID or nothing
    local hd p
    hd=$(host_dir "$1")
    p=$(read_pid "$hd/libvirtd.pid")
    if [[ -n $p ]] && pid_is_ours "$p" libvirtd "$hd"; then
        printf '%s\n' "$p"
    fi
    return 0
}

host_up() { # NAME: daemon recorded, alive, ours and answering
    [[ -n $(host_libvirtd_pid "$1") ]] && host_responsive "$1"
}

# ---- host configuration -----------------------------------------------------

write_host_config() { # NAME INDEX
    local name=$1 i=$2 hd addr base uuid
    hd=$(host_dir "$name")
    addr=$(host_addr "$i")
    base=$(host_port_base "$i")
    mkdir -p "$hd/etc/qemu" "$hd/run" "$hd/lib/qemu" "$hd/log/qemu" "$hd/cache"
    if [[ ! -s $hd/host_uuid ]]; then
        cat /proc/sys/kernel/random/uuid >"$hd/host_uuid"
    fi
    uuid=$(<"$hd/host_uuid")

    cat >"$hd/etc/libvirtd.conf" <<EOF
# Generated by tests/lab/lab.sh: lab host '$name' (VMM_LAB_INDEX=$LAB_INDEX).
host_uuid = "$uuid"
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
EOF

    cat >"$hd/etc/qemu.conf" <<EOF
# Generated by tests/lab/lab.sh: lab host '$name' (VMM_LAB_INDEX=$LAB_INDEX).
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
vnc_listen = "127.0.0.1"
spice_listen = "127.0.0.1"
migration_address = "$addr"
migration_host = "$addr"
migration_port_min = $base
migration_port_max = $((base + 31))
remote_display_port_min = $((base + 32))
remote_display_port_max = $((base + 51))
remote_websocket_port_min = $((base + 52))
remote_websocket_port_max = $((base + 59))
EOF
    # No networks at all: in particular no autostarted 'default' (dnsmasq).
    rm -f "$hd/etc/qemu/networks/autostart/default.xml"
}

# The supervisor runs as tini's only child inside the host's namespace. tini
# (-s, a subreaper) reaps every QEMU the daemon starts, at once; but tini
# exits as soon as its child exits. So the child is this script, not
# libvirtd: it runs libvirtd, passes TERM/INT/HUP on to it, and when libvirtd
# is gone (stopped or crashed) it stays while tini still has other children,
# i.e. QEMUs that outlived their daemon. Without that, a crash of libvirtd
# hands its QEMUs to PID 1, and every later destroy or migration of such a
# guest waits until PID 1 reaps it (1.2 s measured in this container).
write_supervisor() { # HOSTDIR
    cat >"$1/supervisor.sh" <<'EOF'
# Generated by tests/lab/lab.sh: libvirtd under tini, see write_supervisor().
libvirtd --pid-file /run/libvirt/libvirtd.pid &
lv=$!
trap 'kill -TERM "$lv" 2>/dev/null' TERM INT HUP
rc=0
while kill -0 "$lv" 2>/dev/null; do
    wait "$lv"
    rc=$?
done
trap - TERM INT HUP
while :; do
    kids=""
    read -r kids <"/proc/$PPID/task/$PPID/children" || :
    if [ -z "$kids" ] || [ "$kids" = "$$" ]; then
        break
    fi
    sleep 0.5
done
exit "$rc"
EOF
}

# Start the daemon of host NAME in the background; returns at once.
spawn_host() { # NAME
    local hd t
    hd=$(host_dir "$1")
    for t in "${MOUNT_TARGETS[@]}"; do
        mkdir -p "$t"
    done
    # Leftovers of a dead daemon; it would otherwise look up at once.
    rm -f "$hd/run/libvirt-sock" "$hd/run/libvirt-sock-ro" "$hd/run/libvirt-admin-sock" \
        "$hd/run/libvirtd.pid" "$hd/tini.pid" "$hd/libvirtd.pid"
    write_supervisor "$hd"
    printf '=== %s start host %s\n' "$(date '+%F %T')" "$1" >>"$hd/daemon.log"
    local mounts=() i
    for i in "${!MOUNT_SUBDIRS[@]}"; do
        mounts+=("${MOUNT_SUBDIRS[$i]}" "${MOUNT_TARGETS[$i]}")
    done
    # The inner shell records its PID (it becomes tini), bind-mounts the
    # host's directories in the new namespace and execs tini -> supervisor
    # -> libvirtd. fd 9 is the lab lock: the daemon must not inherit it.
    # shellcheck disable=SC2016 # expanded by the inner shell
    setsid env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
        unshare -m --propagation private -- /bin/sh -c '
            set -e
            hd=$1
            shift
            echo $$ >"$hd/tini.pid"
            while [ $# -gt 0 ]; do
                mount --bind "$hd/$1" "$2"
                shift 2
            done
            exec tini -s -- /bin/sh "$hd/supervisor.sh"
        ' lab-host "$hd" "${mounts[@]}" </dev/null >>"$hd/daemon.log" 2>&1 9>&- &
    return 0
}

# Wait for the socket of a freshly spawned host and record libvirtd's PID.
wait_host() { # NAME
    local name=$1 hd deadline tini lv
    hd=$(host_dir "$name")
    deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        tini=$(read_pid "$hd/tini.pid")
        lv=$(read_pid "$hd/run/libvirtd.pid")
        if [[ -n $lv ]] && pid_is_ours "$lv" libvirtd "$hd" && host_responsive "$name"; then
            printf '%s\n' "$lv" >"$hd/libvirtd.pid"
            return 0
        fi
        if [[ -n $tini ]] && ! pid_alive "$tini"; then
            warn "libvirtd of host '$name' exited during start-up; last lines of $hd/daemon.log:"
            tail -n 5 "$hd/daemon.log" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            warn "host '$name' not up after ${START_TIMEOUT}s; see $hd/daemon.log"
            return 1
        fi
        sleep 0.05
    done
}

# Recorded libvirtd PIDs of host NAME that are still ours.
host_libvirtd_pids() { # NAME
    local hd p q
    hd=$(host_dir "$1")
    p=$(read_pid "$hd/libvirtd.pid")
    q=$(read_pid "$hd/run/libvirtd.pid")
    if [[ -n $p ]] && pid_is_ours "$p" libvirtd "$hd"; then
        printf '%s\n' "$p"
    fi
    if [[ -n $q && $q != "$p" ]] && pid_is_ours "$q" libvirtd "$hd"; then
        printf '%s\n' "$q"
    fi
    return 0
}

# Recorded tini PIDs of host NAME (the current one and those of crashed
# daemons still reaping their QEMUs) that are still ours.
host_tini_pids() { # NAME
    local hd p
    hd=$(host_dir "$1")
    for p in $(read_pid "$hd/tini.pid") $(cat "$hd/old-tini.pids" 2>/dev/null || true); do
        if [[ $p =~ ^[0-9]+$ ]] && pid_is_ours "$p" tini "$hd"; then
            printf '%s\n' "$p"
        fi
    done
    return 0
}

# Before a restart of host NAME: stop a hung libvirtd; keep the tini of a
# dead one (it still reaps that daemon's QEMUs, which the new daemon adopts)
# and remember its PID for 'down'.
retire_host_daemon() { # NAME
    local hd p pids=()
    hd=$(host_dir "$1")
    for p in $(host_libvirtd_pids "$1"); do
        pids+=("$p")
    done
    if ((${#pids[@]} > 0)); then
        warn "host '$1': libvirtd ${pids[*]} does not answer, stopping it"
        stop_pids "$STOP_TIMEOUT" "${pids[@]}"
    fi
    host_tini_pids "$1" >"$hd/old-tini.pids.new"
    mv -f "$hd/old-tini.pids.new" "$hd/old-tini.pids"
    rm -f "$hd/tini.pid" "$hd/libvirtd.pid"
}

# Kill the QEMUs whose PID files are in the run dirs of hosts NAME...
kill_host_qemus() { # NAME...
    local name hd f p pids=()
    for name in "$@"; do
        hd=$(host_dir "$name")
        for f in "$hd"/run/qemu/*.pid; do
            [[ -f $f ]] || continue
            p=$(read_pid "$f")
            if [[ -n $p ]] && pid_is_ours "$p" 'qemu-system-*' "$hd"; then
                pids+=("$p")
            fi
        done
    done
    if ((${#pids[@]} > 0)); then
        warn "stopping leftover QEMU PIDs ${pids[*]}"
        stop_pids 5 "${pids[@]}"
    fi
}

# Last resort after the daemons and QEMUs are gone: any process still in a
# mount namespace of this lab's hosts was started by this lab.
sweep_lab_namespaces() {
    local n hd key line p
    local -A keys=()
    for n in $(lab_hosts); do
        hd=$(host_dir "$n")
        key=$(stat -L -c '%d:%i' "$hd/run" 2>/dev/null) || continue
        keys[$key]=$n
    done
    ((${#keys[@]} > 0)) || return 0
    local pids=()
    while read -r key line; do
        p=${line#/proc/}
        p=${p%%/*}
        [[ -n ${keys[$key]:-} && $p != "$$" && $p != "$BASHPID" ]] && pid_alive "$p" && pids+=("$p")
    done < <(stat -L -c '%d:%i %n' /proc/[0-9]*/root/run/libvirt 2>/dev/null || true)
    if ((${#pids[@]} > 0)); then
        warn "stopping leftover lab processes ${pids[*]}"
        stop_pids 5 "${pids[@]}"
    fi
}

# libvirt probes QEMU's capabilities (~0.55 s) the first time a host needs
# them, i.e. inside the first guest start or the first incoming migration,
# which made those 0.5 s slower than all later ones. Probe once at 'up'
# instead, and seed the other new hosts' caches from the first (libvirt
# re-validates a cache file and re-probes if it does not match).
warm_hosts() { # NAME...
    (($# > 0)) || return 0
    local first=$1 name f caps jobs=()
    lvirsh "$first" domcapabilities --virttype qemu >/dev/null 2>&1 ||
        warn "host '$first': could not probe QEMU capabilities"
    caps=$(host_dir "$first")/cache/qemu/capabilities
    shift
    for name in "$@"; do
        mkdir -p "$(host_dir "$name")/cache/qemu/capabilities"
        for f in "$caps"/*.xml; do
            [[ -f $f ]] || continue
            [[ -e $(host_dir "$name")/cache/qemu/capabilities/${f##*/} ]] ||
                cp "$f" "$(host_dir "$name")/cache/qemu/capabilities/"
        done
        lvirsh "$name" domcapabilities --virttype qemu >/dev/null 2>&1 &
        jobs+=($!)
    done
    # Only these jobs: a bare 'wait' would wait for the daemons spawned above.
    ((${#jobs[@]} == 0)) || wait "${jobs[@]}" || true
}

# ---- commands: lab ------------------------------------------------------------

cmd_up() {
    local count=${1:-2}
    in_range "$count" 1 "${#HOST_NAMES[@]}" ||
        usage_die "up: host count must be 1..${#HOST_NAMES[@]}: '$count'"
    check_lab_dir
    load_lab_index strict
    mkdir -p "$LAB_DIR"
    exec 9>"$LAB_DIR.lock"
    flock -w 120 9 || die "up: lab '$LAB_DIR' is locked by another lab.sh"
    if ! lab_exists; then
        if [[ -n $(ls -A "$LAB_DIR") ]]; then
            die "up: '$LAB_DIR' exists, is not empty and is not a lab dir"
        fi
        printf 'index=%s\n' "$LAB_INDEX" >"$LAB_DIR/$LAB_MARKER"
    fi

    local i name started=()
    for ((i = 0; i < count; i++)); do
        name=${HOST_NAMES[$i]}
        if [[ -d $LAB_DIR/$name ]] && host_up "$name"; then
            continue
        fi
        if [[ -d $LAB_DIR/$name ]]; then
            # Dead, half-started or hung. Its QEMUs keep running and the new
            # daemon reconnects to them (their state is in the host dir).
            retire_host_daemon "$name"
        fi
        write_host_config "$name" "$i"
        spawn_host "$name"
        started+=("$name")
    done
    local failed=0
    for name in "${started[@]}"; do
        wait_host "$name" || failed=1
    done
    ((failed == 0)) || die "up: some hosts failed to start (lab left as is; 'lab.sh down' cleans up)"
    warm_hosts "${started[@]}"
    for ((i = 0; i < count; i++)); do
        name=${HOST_NAMES[$i]}
        printf '%s %s\n' "$name" "$(host_uri "$name")"
    done
}

cmd_down() {
    (($# == 0)) || usage_die "down takes no arguments"
    check_lab_dir
    if [[ ! -e $LAB_DIR ]]; then
        return 0
    fi
    # An 'up' that died before writing the marker leaves an empty dir.
    if [[ -d $LAB_DIR && -z $(ls -A "$LAB_DIR") ]]; then
        rmdir -- "$LAB_DIR"
        return 0
    fi
    [[ -f $LAB_DIR/$LAB_MARKER ]] || die "down: '$LAB_DIR' is not a lab dir (no $LAB_MARKER); not touching it"
    load_lab_index
    exec 9>"$LAB_DIR.lock"
    flock -w 120 9 || die "down: lab '$LAB_DIR' is locked by another lab.sh"

    # First through the daemons that still answer: destroy every running
    # domain (in parallel; each takes ~0.2 s of libvirt polling).
    local name dom jobs=()
    for name in $(lab_hosts); do
        if host_up "$name"; then
            while read -r dom; do
                [[ -n $dom ]] || continue
                {
                    lvirsh "$name" destroy "$dom" >/dev/null 2>&1 ||
                        warn "down: could not destroy '$dom' on host '$name'"
                } &
                jobs+=($!)
            done < <(lvirsh "$name" list --name 2>/dev/null || true)
        fi
    done
    ((${#jobs[@]} == 0)) || wait "${jobs[@]}" || true
    # Then by recorded PIDs only: daemons, QEMUs they left, their tinis.
    local hosts pids=() p
    mapfile -t hosts < <(lab_hosts)
    for name in "${hosts[@]}"; do
        for p in $(host_libvirtd_pids "$name"); do
            pids+=("$p")
        done
    done
    stop_pids "$STOP_TIMEOUT" "${pids[@]}"
    kill_host_qemus "${hosts[@]}"
    # A tini whose libvirtd and QEMUs are gone exits by itself (its
    # supervisor polls every 0.5 s); give it that chance before TERM.
    pids=()
    for name in "${hosts[@]}"; do
        for p in $(host_tini_pids "$name"); do
            pids+=("$p")
        done
    done
    if ((${#pids[@]} > 0)); then
        mapfile -t pids < <(wait_gone 2 "${pids[@]}")
        stop_pids "$STOP_TIMEOUT" "${pids[@]}"
    fi
    sweep_lab_namespaces
    rm -rf --one-file-system -- "$LAB_DIR"
    [[ ! -e $LAB_DIR ]] || die "down: could not remove '$LAB_DIR'"
    rm -f -- "$LAB_DIR.lock"
}

cmd_status() {
    (($# == 0)) || usage_die "status takes no arguments"
    check_lab_dir
    require_lab
    load_lab_index
    local name pid n rc=0 any=0
    for name in $(lab_hosts); do
        any=1
        pid=$(host_libvirtd_pid "$name")
        if [[ -n $pid ]] && host_responsive "$name"; then
            n=$(lvirsh "$name" list --name 2>/dev/null | grep -c . || true)
            printf '%s up pid=%s domains=%s %s\n' "$name" "$pid" "$n" "$(host_uri "$name")"
        else
            printf '%s down pid=%s domains=- %s\n' "$name" "${pid:--}" "$(host_uri "$name")"
            rc=1
        fi
    done
    ((any)) || die "lab '$LAB_DIR' has no hosts"
    return "$rc"
}

cmd_env() {
    (($# == 0)) || usage_die "env takes no arguments"
    check_lab_dir
    require_lab
    load_lab_index
    local name up hosts=() i
    for name in $(lab_hosts); do
        hosts+=("$name")
    done
    printf 'export VMM_LAB_DIR=%q\n' "$LAB_DIR"
    printf 'export VMM_LAB_INDEX=%q\n' "$LAB_INDEX"
    printf 'export LAB_HOSTS=%q\n' "${hosts[*]}"
    for name in "${hosts[@]}"; do
        up=${name^^}
        i=$(host_index "$name")
        printf 'export LAB_URI_%s=%q\n' "$up" "$(host_uri "$name")"
        printf 'export LAB_DIR_%s=%q\n' "$up" "$(host_dir "$name")"
        printf 'export LAB_ADDR_%s=%q\n' "$up" "$(host_addr "$i")"
    done
}

cmd_uri() {
    (($# == 1)) || usage_die "usage: uri HOST"
    check_lab_dir
    require_host "$1"
    host_uri "$1"
}

cmd_pid() {
    (($# == 1)) || usage_die "usage: pid HOST"
    check_lab_dir
    require_host "$1"
    local p
    p=$(host_libvirtd_pid "$1")
    [[ -n $p ]] || die "host '$1' has no running libvirtd"
    printf '%s\n' "$p"
}

cmd_virsh() {
    (($# >= 1)) || usage_die "usage: virsh HOST ARGS..."
    check_lab_dir
    require_host "$1"
    local uri
    uri=$(host_uri "$1")
    shift
    exec virsh -c "$uri" "$@"
}

# ---- commands: guests -------------------------------------------------------

xml_escape() {
    local s=$1
    s=${s//&/&amp;}
    s=${s//</&lt;}
    s=${s//>/&gt;}
    s=${s//\'/&apos;}
    s=${s//\"/&quot;}
    printf '%s' "$s"
}

find_kernel() {
    local k
    if [[ -n ${VMM_GUEST_KERNEL:-} ]]; then
        [[ -f $VMM_GUEST_KERNEL ]] || die "VMM_GUEST_KERNEL '$VMM_GUEST_KERNEL' does not exist"
        printf '%s\n' "$VMM_GUEST_KERNEL"
        return 0
    fi
    for k in ${VMM_BUILD_DIR:+"$VMM_BUILD_DIR/tests/guest/vmm-guest.elf"} \
        "$REPO_DIR/build/tests/guest/vmm-guest.elf" "$REPO_DIR"/build*/tests/guest/vmm-guest.elf; do
        if [[ -f $k ]]; then
            printf '%s\n' "$k"
            return 0
        fi
    done
    die "vmm-guest.elf not found: build it (cmake --build build --target guest) or set VMM_GUEST_KERNEL"
}

serial_path() { printf '%s/log/qemu/%s-serial.log\n' "$(host_dir "$1")" "$2"; }
qmp_path() { printf '%s/lib/qemu/%s.qmp\n' "$(host_dir "$1")" "$2"; }
xml_path() { printf '%s/guests/%s.xml\n' "$(host_dir "$1")" "$2"; }

cmd_define_guest() {
    (($# >= 2)) || usage_die "usage: define-guest HOST VM [--mem MiB] [--dirty MiB] [--hz N] [--qmp] [--spice] [--persistent] [--kernel PATH]"
    local host=$1 vm=$2 mem=64 dirty=4 hz=10 qmp=0 spice=0 persistent=0 kernel=""
    shift 2
    while (($# > 0)); do
        case $1 in
        --mem | --dirty | --hz | --kernel)
            (($# >= 2)) || usage_die "define-guest: $1 needs a value"
            case $1 in
            --mem) mem=$2 ;;
            --dirty) dirty=$2 ;;
            --hz) hz=$2 ;;
            --kernel) kernel=$2 ;;
            esac
            shift 2
            ;;
        --qmp) qmp=1 && shift ;;
        --spice) spice=1 && shift ;;
        --persistent) persistent=1 && shift ;;
        *) usage_die "define-guest: unknown option '$1'" ;;
        esac
    done
    in_range "$mem" 8 3072 || die "define-guest: --mem must be 8..3072 MiB: '$mem'"
    in_range "$dirty" 0 "$mem" || die "define-guest: --dirty must be 0..mem MiB: '$dirty'"
    in_range "$hz" 1 1000 || die "define-guest: --hz must be 1..1000: '$hz'"
    check_lab_dir
    require_host "$host"
    load_lab_index
    check_vm_name "$vm"
    host_up "$host" || die "define-guest: host '$host' is not up (run: lab.sh up)"
    if lvirsh "$host" dominfo "$vm" >/dev/null 2>&1; then
        die "define-guest: domain '$vm' already exists on host '$host'"
    fi

    # Use a private copy of the kernel: a rebuild while guests run (or
    # migrate: the target QEMU reads -kernel too) must not change it.
    local src sum
    if [[ -n $kernel ]]; then
        [[ -f $kernel ]] || die "define-guest: kernel '$kernel' does not exist"
        src=$(realpath "$kernel")
    else
        src=$(find_kernel)
    fi
    sum=$(cksum <"$src" | cut -d' ' -f1)
    kernel=$LAB_DIR/kernels/vmm-guest-$sum.elf
    if [[ ! -f $kernel ]]; then
        mkdir -p "$LAB_DIR/kernels"
        cp "$src" "$kernel.tmp.$$"
        mv -f "$kernel.tmp.$$" "$kernel"
    fi

    local template=$SCRIPT_DIR/domain.xml.in xml extra="" qemu_cl=""
    [[ -f $template ]] || die "define-guest: template '$template' is missing"
    xml=$(<"$template")
    if ((spice)); then
        extra="    <graphics type='spice' autoport='yes'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video>
      <model type='qxl' ram='16384' vram='8192' vgamem='8192' heads='1' primary='yes'/>
    </video>"
    fi
    if ((qmp)); then
        qemu_cl="  <qemu:commandline>
    <qemu:arg value='-qmp'/>
    <qemu:arg value='unix:/var/lib/libvirt/qemu/$(xml_escape "$vm").qmp,server=on,wait=off'/>
  </qemu:commandline>"
    fi
    local serial_in=/var/log/libvirt/qemu/$vm-serial.log
    xml=${xml//@NAME@/"$(xml_escape "$vm")"}
    xml=${xml//@MEMORY_KIB@/"$((mem * 1024))"}
    xml=${xml//@KERNEL@/"$(xml_escape "$kernel")"}
    xml=${xml//@CMDLINE@/"dirty=$dirty hz=$hz"}
    xml=${xml//@SERIAL_LOG@/"$(xml_escape "$serial_in")"}
    xml=${xml//@DEVICES_EXTRA@/"$extra"}
    xml=${xml//@QEMU_COMMANDLINE@/"$qemu_cl"}

    local xf serial
    xf=$(xml_path "$host" "$vm")
    serial=$(serial_path "$host" "$vm")
    mkdir -p "${xf%/*}"
    printf '%s\n' "$xml" >"$xf"
    # A fresh counter: drop a log left by an earlier guest of that name.
    rm -f "$serial"
    local out
    if ((persistent)); then
        out=$(lvirsh "$host" define "$xf" 2>&1) || die "define-guest: virsh define failed: $out"
        out=$(lvirsh "$host" start "$vm" 2>&1) || die "define-guest: virsh start failed: $out"
    else
        out=$(lvirsh "$host" create "$xf" 2>&1) || die "define-guest: virsh create failed: $out"
    fi
    printf '%s %s serial=%s' "$host" "$vm" "$serial"
    ((qmp)) && printf ' qmp=%s' "$(qmp_path "$host" "$vm")"
    printf '\n'
}

cmd_destroy_guest() {
    (($# == 2)) || usage_die "usage: destroy-guest HOST VM"
    check_lab_dir
    require_host "$1"
    check_vm_name "$2"
    local out info
    info=$(lvirsh "$1" dominfo "$2" 2>&1) || die "destroy-guest: no domain '$2' on host '$1': $info"
    if lvirsh "$1" domstate "$2" 2>/dev/null | grep -qv '^shut off'; then
        out=$(lvirsh "$1" destroy "$2" 2>&1) || die "destroy-guest: $out"
    fi
    if grep -q '^Persistent: *yes' <<<"$info"; then
        out=$(lvirsh "$1" undefine "$2" 2>&1) || die "destroy-guest: $out"
    fi
    return 0
}

last_tick() { # FILE -> last complete "tick N" line's N, or fail
    local f=$1 data
    [[ -f $f ]] || return 1
    data=$(tail -c 8192 "$f" | tr -d '\0\r'; printf x)
    data=${data%x}
    # Ignore an unterminated last line: the guest may be mid-write.
    [[ $data == *$'\n' ]] || data=${data%$'\n'*}
    local n
    n=$(printf '%s' "$data" | grep -a -E '^tick [0-9]+$' | tail -n 1 | cut -d' ' -f2)
    [[ -n $n ]] || return 1
    printf '%s\n' "$n"
}

cmd_ticks() {
    (($# == 2)) || usage_die "usage: ticks HOST VM"
    check_lab_dir
    require_host "$1"
    check_vm_name "$2"
    last_tick "$(serial_path "$1" "$2")"
}

cmd_wait_tick() {
    (($# == 3 || $# == 4)) || usage_die "usage: wait-tick HOST VM N [SECONDS]"
    local want=$3 t=${4:-30} f n deadline
    [[ $want =~ ^[0-9]+$ ]] || usage_die "wait-tick: N must be a number: '$want'"
    [[ $t =~ ^[0-9]+$ ]] || usage_die "wait-tick: SECONDS must be a number: '$t'"
    check_lab_dir
    require_host "$1"
    check_vm_name "$2"
    f=$(serial_path "$1" "$2")
    deadline=$((SECONDS + t))
    while :; do
        n=$(last_tick "$f" || true)
        if [[ -n $n ]] && ((n >= want)); then
            printf '%s\n' "$n"
            return 0
        fi
        ((SECONDS < deadline)) || die "wait-tick: '$2' on host '$1' at tick ${n:-none} after ${t}s, wanted $want"
        sleep 0.1
    done
}

cmd_where() {
    (($# == 1)) || usage_die "usage: where VM"
    check_lab_dir
    require_lab
    check_vm_name "$1"
    local name st found=1
    for name in $(lab_hosts); do
        st=$(lvirsh "$name" domstate --reason "$1" 2>/dev/null) || continue
        printf '%s %s\n' "$name" "$st"
        found=0
    done
    return "$found"
}

cmd_path() { # KIND HOST VM
    local kind=$1
    shift
    (($# == 2)) || usage_die "usage: $kind-path HOST VM"
    check_lab_dir
    require_host "$1"
    check_vm_name "$2"
    case $kind in
    serial) serial_path "$1" "$2" ;;
    qmp) qmp_path "$1" "$2" ;;
    xml) xml_path "$1" "$2" ;;
    esac
}

main() {
    (($# >= 1)) || {
        usage >&2
        exit 2
    }
    [[ $(id -u) == 0 ]] || die "the lab needs root (privileged libvirtd, mount namespaces)"
    local cmd=$1
    shift
    case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    uri) cmd_uri "$@" ;;
    pid) cmd_pid "$@" ;;
    virsh) cmd_virsh "$@" ;;
    define-guest) cmd_define_guest "$@" ;;
    destroy-guest) cmd_destroy_guest "$@" ;;
    ticks) cmd_ticks "$@" ;;
    wait-tick) cmd_wait_tick "$@" ;;
    where) cmd_where "$@" ;;
    serial-path) cmd_path serial "$@" ;;
    qmp-path) cmd_path qmp "$@" ;;
    xml-path) cmd_path xml "$@" ;;
    help | -h | --help) usage ;;
    *) usage_die "unknown command '$cmd'" ;;
    esac
}

main "$@"
