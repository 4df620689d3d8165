#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/lab/spice/spice.sh - run headless SPICE clients (spice-client.py)
# against lab guests defined with `lab.sh define-guest HOST VM --spice`.
# See tests/lab/spice/README.md.
set -euo pipefail

PROG=spice.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_SH=$SCRIPT_DIR/../lab.sh
CLIENT=$SCRIPT_DIR/spice-client.py
PYTHON=${VMM_SPICE_PYTHON:-/usr/bin/python3}
LAB_DIR=${VMM_LAB_DIR:-/var/tmp/vmmigrate-lab}
STATE_DIR=${VMM_SPICE_DIR:-$LAB_DIR/spice}

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

usage_die() {
    printf '%s: %s (see "%s help")\n' "$PROG" "$*" "$PROG" >&2
    exit 2
}

usage() {
    cat <<EOF
usage: spice.sh COMMAND [ARGS]

Clients are per VM; state in \${VMM_SPICE_DIR:-\$VMM_LAB_DIR/spice}/VM.{pid,status,log}.
  start HOST VM [--on-migrate follow|refuse|unreachable|freeze] [--no-migrate]
                [--no-audio] [--timeout SEC] [--keep-status]
                      connect a headless client to VM's SPICE display on HOST,
                      wait until all channels are open (default 20 s); prints
                      "VM pid=PID peer=ADDR:PORT channels=N connect_time=SEC".
                      --no-migrate = --on-migrate refuse (stay on the source)
  status VM           "VM alive|dead pid=PID peer=ADDR:PORT channels=OPEN/TOTAL
                      ready=yes|no migration=STATE migrations=N last=RESULT"
                      (exit 0 only if alive and ready)
  json VM             the last status line (JSON)
  wait VM HOST|ADDR:PORT [SEC]
                      wait (default 20 s) until the client is ready and all its
                      channels are connected to VM's display on HOST (or ADDR:PORT)
  port HOST VM        VM's SPICE port on HOST
  freeze VM / thaw VM SIGSTOP / SIGCONT the client
  stop VM             stop the client (TERM, KILL after 5 s); no client is not an error
  stop-all            stop every client of this lab
  status-path VM      the client's JSON-lines status file
EOF
}

check_vm() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$ ]] || die "bad VM name '$1'"
}

pid_file() { printf '%s/%s.pid\n' "$STATE_DIR" "$1"; }
status_file() { printf '%s/%s.status\n' "$STATE_DIR" "$1"; }
log_file() { printf '%s/%s.log\n' "$STATE_DIR" "$1"; }

# The recorded PID of VM's client if it still is that client, else nothing.
client_pid() { # VM
    local f p="" cmd
    f=$(pid_file "$1")
    if [[ -f $f ]]; then
        read -r p <"$f" 2>/dev/null || true
    fi
    [[ $p =~ ^[0-9]+$ ]] || return 0
    cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || return 0
    local st
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$p/status" 2>/dev/null) || return 0
    [[ $st != Z && $st != X ]] || return 0
    if [[ $cmd == *spice-client.py* && $cmd == *"$(status_file "$1")"* ]]; then
        printf '%s\n' "$p"
    fi
    return 0
}

# SPICE port of VM on HOST, from libvirt's live XML.
spice_port() { # HOST VM
    local out port
    out=$("$LAB_SH" virsh "$1" domdisplay --type spice "$2" 2>&1) ||
        die "no SPICE display for '$2' on host '$1': ${out//$'\n'/ }"
    # spice://127.0.0.1:22032
    port=${out##*:}
    port=${port%%[!0-9]*}
    [[ -n $port ]] || die "cannot parse SPICE display of '$2' on '$1': '$out'"
    local addr=${out#spice://}
    addr=${addr%:*}
    printf '%s %s\n' "$addr" "$port"
}

# Last status line as selected fields. Prints nothing if there is none.
last_fields() { # VM
    local f
    f=$(status_file "$1")
    [[ -s $f ]] || return 0
    "$PYTHON" - "$f" <<'EOF'
import json, sys
last = None
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if line.endswith("\n"):
            try:
                last = json.loads(line)
            except ValueError:
                pass
if last:
    lm = last.get("last_migration") or {}
    print(last.get("peer") or "-", last.get("nopen", 0), last.get("nchannels", 0),
          "yes" if last.get("ready") else "no", last.get("migration") or "-",
          last.get("migrations", 0), lm.get("result", "-"),
          last.get("connect_time") if last.get("connect_time") is not None else "-",
          last.get("event", "-"), last.get("exit_code", "-"))
EOF
}

cmd_start() {
    (($# >= 2)) || usage_die "usage: start HOST VM [--on-migrate MODE | --no-migrate] [--no-audio] [--timeout SEC] [--keep-status]"
    local host=$1 vm=$2 timeout=20 copts=() keep=0
    shift 2
    while (($# > 0)); do
        case $1 in
        --no-migrate) copts+=(--on-migrate refuse) && shift ;;
        --on-migrate)
            (($# >= 2)) || usage_die "start: --on-migrate needs a value"
            case $2 in
            follow | refuse | unreachable | freeze) copts+=(--on-migrate "$2") ;;
            *) usage_die "start: --on-migrate must be follow, refuse, unreachable or freeze: '$2'" ;;
            esac
            shift 2
            ;;
        --keep-status) keep=1 && shift ;;
        --no-audio) copts+=(--no-audio) && shift ;;
        --timeout)
            (($# >= 2)) || usage_die "start: --timeout needs a value"
            [[ $2 =~ ^[0-9]+$ ]] || usage_die "start: --timeout must be seconds: '$2'"
            timeout=$2
            shift 2
            ;;
        *) usage_die "start: unknown option '$1'" ;;
        esac
    done
    check_vm "$vm"
    [[ -x $PYTHON ]] || die "$PYTHON not found"
    [[ -z $(client_pid "$vm") ]] || die "a client for '$vm' is already running (pid $(client_pid "$vm"))"
    local addr port disp
    disp=$(spice_port "$host" "$vm") || exit 1
    read -r addr port <<<"$disp"
    mkdir -p "$STATE_DIR"
    local sf pf lf
    sf=$(status_file "$vm")
    pf=$(pid_file "$vm")
    lf=$(log_file "$vm")
    ((keep)) || rm -f "$sf"
    rm -f "$pf"
    # Own session, no controlling tty, stdin closed; stderr (spice-gtk
    # warnings) to the log. fd 9 may be a lab lock: do not inherit it.
    setsid "$PYTHON" "$CLIENT" --status "$sf" --pidfile "$pf" \
        --connect-timeout "$timeout" "${copts[@]}" "$addr" "$port" \
        </dev/null >>"$lf" 2>&1 9>&- &
    local child=$! deadline=$((SECONDS + timeout + 1)) f
    while :; do
        if [[ -s $pf ]]; then
            read -r f <"$pf" || true
            [[ $f == "$child" ]] || die "start: unexpected PID '$f' in $pf"
        fi
        read -r -a f < <(last_fields "$vm") || f=()
        if ((${#f[@]} > 0)) && [[ ${f[3]} == yes ]]; then
            printf '%s pid=%s peer=%s channels=%s connect_time=%s\n' \
                "$vm" "$child" "${f[0]}" "${f[1]}" "${f[7]}"
            return 0
        fi
        if ! kill -0 "$child" 2>/dev/null; then
            wait "$child" 2>/dev/null || true
            printf '%s: start: client for %s exited; last log lines:\n' "$PROG" "$vm" >&2
            tail -n 5 "$lf" >&2 || true
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            kill -TERM "$child" 2>/dev/null || true
            die "start: client for '$vm' not ready after ${timeout}s (see $sf)"
        fi
        sleep 0.05
    done
}

cmd_status() {
    (($# == 1)) || usage_die "usage: status VM"
    check_vm "$1"
    local p f alive=dead
    p=$(client_pid "$1")
    [[ -n $p ]] && alive=alive
    read -r -a f < <(last_fields "$1") || f=()
    ((${#f[@]} > 0)) || die "no status for '$1' ($(status_file "$1"))"
    printf '%s %s pid=%s peer=%s channels=%s/%s ready=%s migration=%s migrations=%s last=%s\n' \
        "$1" "$alive" "${p:--}" "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]}" "${f[5]}" "${f[6]}"
    [[ $alive == alive && ${f[3]} == yes ]]
}

cmd_json() {
    (($# == 1)) || usage_die "usage: json VM"
    check_vm "$1"
    local f
    f=$(status_file "$1")
    [[ -s $f ]] || die "no status for '$1' ($f)"
    grep -a '}$' "$f" | tail -n 1
}

cmd_wait() {
    (($# == 2 || $# == 3)) || usage_die "usage: wait VM HOST|ADDR:PORT [SEC]"
    local vm=$1 want=$2 t=${3:-20} deadline f addr port
    check_vm "$vm"
    [[ $t =~ ^[0-9]+$ ]] || usage_die "wait: SEC must be a number: '$t'"
    deadline=$((SECONDS + t))
    local host=""
    if [[ $want != *:* ]]; then
        host=$want
        want=""
    fi
    while :; do
        # A HOST is looked up until the VM has a display there (it appears on
        # the target during the migration).
        if [[ -n $host && -z $want ]] && f=$(spice_port "$host" "$vm" 2>/dev/null); then
            read -r addr port <<<"$f"
            want=$addr:$port
        fi
        f=()
        [[ -z $want ]] || read -r -a f < <(last_fields "$vm") || f=()
        if ((${#f[@]} > 0)) && [[ ${f[0]} == "$want" && ${f[3]} == yes ]]; then
            printf '%s peer=%s channels=%s\n' "$vm" "${f[0]}" "${f[1]}"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            [[ -n $want ]] || die "wait: '$vm' has no SPICE display on host '$host' after ${t}s"
            die "wait: client of '$vm' not connected to $want after ${t}s (peer=${f[0]:--} ready=${f[3]:--})"
        fi
        sleep 0.05
    done
}

cmd_port() {
    (($# == 2)) || usage_die "usage: port HOST VM"
    check_vm "$2"
    local addr port disp
    disp=$(spice_port "$1" "$2") || exit 1
    read -r addr port <<<"$disp"
    printf '%s\n' "$port"
}

signal_client() { # SIG VM
    check_vm "$2"
    local p
    p=$(client_pid "$2")
    [[ -n $p ]] || die "no running client for '$2'"
    kill "-$1" "$p"
}

stop_client() { # VM
    local p i
    p=$(client_pid "$1")
    [[ -n $p ]] || {
        rm -f "$(pid_file "$1")"
        return 0
    }
    kill -CONT "$p" 2>/dev/null || true # a frozen client cannot handle TERM
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [[ -n $(client_pid "$1") ]] || break
        sleep 0.05
    done
    if [[ -n $(client_pid "$1") ]]; then
        printf '%s: client of %s (pid %s) ignored TERM, sending KILL\n' "$PROG" "$1" "$p" >&2
        kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$(pid_file "$1")"
}

cmd_stop() {
    (($# == 1)) || usage_die "usage: stop VM"
    check_vm "$1"
    stop_client "$1"
}

cmd_stop_all() {
    (($# == 0)) || usage_die "stop-all takes no arguments"
    local f vm
    for f in "$STATE_DIR"/*.pid; do
        [[ -e $f ]] || continue
        vm=${f##*/}
        stop_client "${vm%.pid}"
    done
}

main() {
    (($# >= 1)) || {
        usage >&2
        exit 2
    }
    local cmd=$1
    shift
    case $cmd in
    start) cmd_start "$@" ;;
    status) cmd_status "$@" ;;
    json) cmd_json "$@" ;;
    wait) cmd_wait "$@" ;;
    port) cmd_port "$@" ;;
    freeze) (($# == 1)) || usage_die "usage: freeze VM" && signal_client STOP "$1" ;;
    thaw) (($# == 1)) || usage_die "usage: thaw VM" && signal_client CONT "$1" ;;
    stop) cmd_stop "$@" ;;
    stop-all) cmd_stop_all "$@" ;;
    status-path)
        (($# == 1)) || usage_die "usage: status-path VM"
        check_vm "$1"
        status_file "$1"
        ;;
    help | -h | --help) usage ;;
    *) usage_die "unknown command '$cmd'" ;;
    esac
}

main "$@"
