#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/install-deps.sh — install what vmmigrate needs to build, test and run
# its lab, from Debian 12's packages. Idempotent; needs root.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config git
    libvirt-dev libuv1-dev libjansson-dev libcurl4-openssl-dev liblua5.4-dev libxml2-dev
    # the lab: real libvirtd hosts and QEMU (TCG) guests
    qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu
    libvirt-daemon-system libvirt-clients tini iproute2 util-linux procps
    # tests: JSON Schema validation, sanitizers, fuzzing, linters
    python3 python3-jsonschema python3-yaml clang libclang-rt-14-dev mandoc shellcheck valgrind gdb
    # the zsh completion is loaded and driven by a real zsh (cli.zsh-completion)
    zsh
    # the lab's 802.1Qbg switch and stations (tests/lab/vdp), its SPICE client
    lldpad gir1.2-spiceclientglib-2.0 python3-gi
    # metrics: promtool checks them, a real node_exporter serves them (it.metrics)
    prometheus prometheus-node-exporter
    # packaging: the .deb is built and checked in CI (debian/)
    debhelper dpkg-dev fakeroot lintian
    # qemu+ssh:// in the lab: a real sshd on loopback, nc on the "remote" side
    openssh-server openssh-client netcat-openbsd
)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: must run as root (apt-get)" >&2
    exit 1
fi
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps.sh: all ${#PACKAGES[@]} packages present"
    exit 0
fi
echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps.sh: done"
