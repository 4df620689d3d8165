#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/package/test-package.sh — the Debian package as a distribution and an
# operator would take it: dpkg-buildpackage builds vmmigrate_*.deb from the
# tracked tree, lintian finds no error or warning, dpkg installs it, and the
# installed /usr/bin/vmmigrate drains a two-host lab with its default policy
# (the packaged evacuate.lua): both guests end running on the target, their
# tick counters still going. Needs root; run by tests/run.sh after the suite.
# Usage: test-package.sh GUEST_KERNEL
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
kernel=${1:?usage: test-package.sh GUEST_KERNEL}
work=$(mktemp -d /var/tmp/vmmigrate-pkg.XXXXXX)
export VMM_LAB_DIR=$work/lab VMM_LAB_INDEX=${VMM_PKG_LAB_INDEX:-10} VMM_GUEST_KERNEL=$kernel
LAB=$ROOT/tests/lab/lab.sh
was_installed=$(dpkg-query -W -f='${Status}' vmmigrate 2>/dev/null || true)
cleanup() {
    "$LAB" down >/dev/null 2>&1 || true
    # Leave the machine as it was: a package this test installed goes again.
    if [[ $was_installed != *"install ok installed"* ]]; then
        dpkg --purge vmmigrate >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== dpkg-buildpackage"
mkdir "$work/src"
git ls-files -z | tar --null -cf - -T - | tar -xf - -C "$work/src"
(cd "$work/src" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) ||
    { tail -n 40 "$work/build.log"; fail "dpkg-buildpackage failed (log above)"; }
deb=$(ls "$work"/vmmigrate_*_*.deb)
echo "built $(basename "$deb")"

echo "== lintian"
lintian --fail-on error,warning --tag-display-limit 0 "$work"/vmmigrate_*.changes ||
    fail "lintian reports errors or warnings (above)"

echo "== dpkg -i"
dpkg -i "$deb" >/dev/null
for f in /usr/bin/vmmigrate /usr/share/vmmigrate/policies/evacuate.lua \
         /lib/systemd/system/vmmigrate-drain@.service /lib/systemd/system/vmmigrate-drain@.timer \
         /lib/systemd/system/vmmigrate-recover.service /usr/lib/tmpfiles.d/vmmigrate.conf \
         /usr/share/man/man1/vmmigrate.1.gz /usr/share/bash-completion/completions/vmmigrate \
         /usr/share/vmmigrate/prometheus/vmmigrate.rules.yml /usr/share/vmmigrate/grafana/vmmigrate.json; do
    [[ -e $f ]] || fail "the package does not install $f"
done
grep -qx /etc/vmmigrate/example.conf /var/lib/dpkg/info/vmmigrate.conffiles ||
    fail "/etc/vmmigrate/example.conf is not a conffile"
/usr/bin/vmmigrate --version

echo "== drain on the lab with the installed binary and its default policy"
"$LAB" up 2 >/dev/null
A=$("$LAB" uri a)
B=$("$LAB" uri b)
for vm in pkg1 pkg2; do
    "$LAB" define-guest a "$vm" --mem 64 --dirty 2 >/dev/null
done
for vm in pkg1 pkg2; do "$LAB" wait-tick a "$vm" 3 120 >/dev/null; done
# The installed unit's own ExecStart= and ExecStopPost= lines, expanded as
# systemd does (${VAR} one word, $VAR split on whitespace, %i the instance)
# with a host config for the lab in /etc/vmmigrate: what a timer would run.
inst=pkgtest-$$
conf=/etc/vmmigrate/$inst.conf
cat >"$conf" <<CONF
VMMIGRATE_SOURCE=$A
VMMIGRATE_OPTIONS="--target $B --journal-dir $work/journal --lock-dir $work/locks --json"
VMMIGRATE_RECOVER_OPTIONS="--journal-dir $work/journal"
CONF
trap 'rm -f "$conf" "/run/vmmigrate/$inst.status.json"; cleanup' EXIT
unit_cmd() {    # unit_cmd KEY: the command line of KEY= in the drain unit, one word a line
    python3 - /lib/systemd/system/vmmigrate-drain@.service "$conf" "$inst" "$1" <<'PY'
import re, shlex, sys
unit, conf, inst, key = sys.argv[1:]
env = {}
text = open(unit).read().replace("\\\n", " ")
for line in text.splitlines():
    if line.startswith("Environment="):
        k, _, v = line[len("Environment="):].partition("=")
        env[k] = v
for line in open(conf):
    line = line.strip()
    if line and not line.startswith("#"):
        k, _, v = line.partition("=")
        env[k] = " ".join(shlex.split(v))
cmd = [l for l in text.splitlines() if l.startswith(key + "=")][0][len(key) + 1:]
out = []
for w in cmd.replace("%i", inst).split():
    m = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", w)
    if m and m.group(1):
        out.append(env.get(m.group(1), ""))
    elif m:
        out.extend(env.get(m.group(2), "").split())
    else:
        out.append(w)
print("\n".join(out))
PY
}
mapfile -t start < <(unit_cmd ExecStart)
mapfile -t stoppost < <(unit_cmd ExecStopPost)
echo "ExecStart: ${start[*]}"
[[ ${start[0]} == /usr/bin/vmmigrate && " ${start[*]} " == *" --policy /usr/share/vmmigrate/policies/evacuate.lua "* ]] ||
    fail "ExecStart does not run the installed binary with the packaged policy: ${start[*]}"
mkdir -p /run/vmmigrate
rc=0
env -u VMM_DRAIN_POLICY "${start[@]}" >"$work/report.json" || rc=$?
[[ $rc -eq 0 ]] || { cat "$work/report.json"; fail "drain exited $rc, expected 0"; }
[[ -s /run/vmmigrate/$inst.status.json ]] || fail "no status file /run/vmmigrate/$inst.status.json"
echo "ExecStopPost: ${stoppost[*]}"
"${stoppost[@]}" || fail "ExecStopPost (recover) exited $? after a clean drain"
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
moved = sorted(v["name"] for v in r["vms"] if v["result"] == "migrated")
if moved != ["pkg1", "pkg2"]:
    sys.exit(f"FAIL: the report says {[(v['name'], v['result']) for v in r['vms']]}")
PY
for vm in pkg1 pkg2; do
    where=$("$LAB" where "$vm" | tr '\n' ' ')
    [[ $where == *"b running"* && $where != *"a running"* ]] ||
        fail "$vm: expected running on b only, lab says: $where"
    before=$("$LAB" ticks b "$vm")
    "$LAB" wait-tick b "$vm" $((before + 2)) 60 >/dev/null ||
        fail "$vm: its tick counter stopped at $before on b"
done
echo "ok: the installed package drained pkg1 and pkg2 from a to b"
