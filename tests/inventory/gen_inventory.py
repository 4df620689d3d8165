#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gen_inventory.py — write libvirt test-driver hosts for inventory tests.

Usage: gen_inventory.py [--hosts N] [--vms M] [--seed S] OUTDIR

Writes OUTDIR/hostNNN.xml (one <node> per host, M <domain type='test'>
each), OUTDIR/uris.txt, and prints one test:///OUTDIR/hostNNN.xml URI a
line. The same seed gives byte-identical files. Python 3 standard library
only.

The VMs vary: memory 512 MiB .. 32 GiB in mixed units (GiB/MiB/KiB/bytes),
some ballooned below their maximum; 1..16 vCPUs, some with fewer online;
mostly running, some paused or shut off, a few transient; vmm tags
(role/tier/zone/network-critical) on most, a foreign metadata namespace on
some; 1..3 interfaces among network, bridge + openvswitch virtualport,
direct + 802.1Qbg virtualport and direct + 802.1Qbh; spice, vnc or no
graphics; a local qcow2 disk plus sometimes an rbd disk, a shareable block
disk or a cdrom. Each host has room for its running VMs.
"""

import argparse
import os
import random
import sys
import uuid
from xml.sax.saxutils import quoteattr

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
ROLES = ["web", "db", "cache", "batch", "lb", "queue"]
TIERS = ["gold", "silver", "bronze"]
ZONES = ["a", "b", "c"]
STATES = [(1, 80), (3, 5), (5, 15)]  # running, paused, shutoff (test:runstate)


def weighted(rng, choices):
    total = sum(w for _, w in choices)
    x = rng.randrange(total)
    for value, w in choices:
        if x < w:
            return value
        x -= w
    raise AssertionError("unreachable")


def mem_xml(tag, kib, rng):
    """<tag unit=...> in a unit chosen at random, exact."""
    units = [("KiB", 1)]
    if kib % 1024 == 0:
        units.append(("MiB", 1024))
    if kib % (1024 * 1024) == 0:
        units.append(("GiB", 1024 * 1024))
    units.append(("bytes", 1.0 / 1024))
    unit, div = rng.choice(units)
    value = int(kib / div) if div >= 1 else kib * 1024
    return "<%s unit='%s'>%d</%s>" % (tag, unit, value, tag)


def mac(rng):
    return "52:54:00:%02x:%02x:%02x" % (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def uid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def interface(rng, h, j, k):
    kind = weighted(rng, [("network", 40), ("ovs", 25), ("qbg", 25), ("qbh", 10)])
    lines = []
    if kind == "network":
        lines.append("<interface type='network'>")
        lines.append("  <mac address='%s'/>" % mac(rng))
        lines.append("  <source network='default'/>")
    elif kind == "ovs":
        lines.append("<interface type='bridge'>")
        lines.append("  <mac address='%s'/>" % mac(rng))
        lines.append("  <source bridge='br-int'/>")
        lines.append("  <virtualport type='openvswitch'>")
        lines.append("    <parameters interfaceid='%s'/>" % uid(rng))
        lines.append("  </virtualport>")
    elif kind == "qbg":
        lines.append("<interface type='direct'>")
        lines.append("  <mac address='%s'/>" % mac(rng))
        lines.append("  <source dev='eth%d' mode='vepa'/>" % rng.randrange(2))
        lines.append("  <virtualport type='802.1Qbg'>")
        lines.append("    <parameters managerid='%d' typeid='%d' typeidversion='%d' instanceid='%s'/>"
                     % (rng.randrange(1, 64), rng.randrange(1, 1 << 24), rng.randrange(1, 4),
                        uid(rng)))
        lines.append("  </virtualport>")
    else:
        lines.append("<interface type='direct'>")
        lines.append("  <mac address='%s'/>" % mac(rng))
        lines.append("  <source dev='eth1' mode='private'/>")
        lines.append("  <virtualport type='802.1Qbh'>")
        lines.append("    <parameters profileid='profile-%s'/>" % rng.choice(TIERS))
        lines.append("  </virtualport>")
    lines.append("  <model type='%s'/>" % rng.choice(["virtio", "virtio", "e1000e"]))
    lines.append("</interface>")
    return lines


def domain(rng, h, j):
    name = "h%03d-vm%02d" % (h, j)
    kib = rng.choice([512, 1024, 2048, 2048, 4096, 4096, 8192, 16384, 32768]) * 1024
    cur = kib if rng.random() < 0.7 else kib // 2
    vcpus = rng.choice([1, 2, 2, 4, 4, 8, 16])
    state = weighted(rng, STATES)
    transient = state == 1 and rng.random() < 0.05
    out = ["<domain type='test' xmlns:test='%s'>" % TEST_NS,
           "  <name>%s</name>" % name,
           "  <uuid>%s</uuid>" % uid(rng)]
    meta = []
    if rng.random() < 0.9:
        meta.append("    <vmm:tags xmlns:vmm='urn:vmmigrate:1'>")
        meta.append("      <role>%s</role>" % rng.choice(ROLES))
        meta.append("      <tier>%s</tier>" % rng.choice(TIERS))
        meta.append("      <zone>%s</zone>" % rng.choice(ZONES))
        if rng.random() < 0.2:
            meta.append("      <network-critical/>")
        meta.append("    </vmm:tags>")
    if rng.random() < 0.3:
        meta.append("    <app:info xmlns:app='http://example.com/app/1' owner=%s>"
                    % quoteattr(rng.choice(["ops", "dba", "web team"])))
        meta.append("      <ticket>CHG-%d</ticket>" % rng.randrange(100000))
        meta.append("    </app:info>")
    if meta:
        out += ["  <metadata>"] + meta + ["  </metadata>"]
    out.append("  " + mem_xml("memory", kib, rng))
    if cur != kib:
        out.append("  " + mem_xml("currentMemory", cur, rng))
    if vcpus > 1 and rng.random() < 0.2:
        out.append("  <vcpu current='%d'>%d</vcpu>" % (vcpus // 2, vcpus))
    else:
        out.append("  <vcpu>%d</vcpu>" % vcpus)
    out.append("  <os><type arch='x86_64'>hvm</type></os>")
    dev = ["<disk type='file' device='disk'>",
           "  <driver name='qemu' type='qcow2' cache='none'/>",
           "  <source file='/var/lib/libvirt/images/%s.qcow2'/>" % name,
           "  <target dev='vda' bus='virtio'/>",
           "</disk>"]
    if rng.random() < 0.3:
        dev += ["<disk type='network' device='disk'>",
                "  <driver name='qemu' type='raw'/>",
                "  <source protocol='rbd' name='volumes/%s-data'>" % name,
                "    <host name='mon1.example.com' port='6789'/>",
                "  </source>",
                "  <target dev='vdb' bus='virtio'/>",
                "</disk>"]
    if rng.random() < 0.1:
        dev += ["<disk type='block' device='disk'>",
                "  <driver name='qemu' type='raw' cache='none'/>",
                "  <source dev='/dev/mapper/quorum%d'/>" % (h % 7),
                "  <target dev='vdc' bus='virtio'/>",
                "  <shareable/>",
                "</disk>"]
    if rng.random() < 0.1:
        dev += ["<disk type='file' device='cdrom'>",
                "  <source file='/srv/iso/tools.iso'/>",
                "  <target dev='sda' bus='sata'/>",
                "  <readonly/>",
                "</disk>"]
    for k in range(weighted(rng, [(1, 60), (2, 30), (3, 10)])):
        dev += interface(rng, h, j, k)
    g = weighted(rng, [("spice", 40), ("vnc", 40), (None, 20)])
    if g == "spice":
        port = 5900 + 2 * j
        tls = " tlsPort='%d'" % (port + 1) if rng.random() < 0.5 else ""
        dev.append("<graphics type='spice' port='%d'%s autoport='no' listen='0.0.0.0'/>"
                   % (port, tls))
    elif g == "vnc":
        dev.append("<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>")
    out.append("  <devices>")
    out += ["    " + line for line in dev]
    out.append("  </devices>")
    out.append("  <test:runstate>%d</test:runstate>" % state)
    if transient:
        out.append("  <test:transient/>")
    out.append("</domain>")
    return out, (cur if state != 5 else 0)


def host(rng, h, vms):
    doms, used = [], 0
    for j in range(vms):
        lines, kib = domain(rng, h, j)
        doms += ["  " + line for line in lines]
        used += kib
    # Room for the running VMs plus 25..200 %, in whole GiB.
    gib = max(64, (used * rng.choice([5, 8, 12]) // 4) // (1024 * 1024) + 1)
    cores = rng.choice([8, 12, 16, 32])
    out = ["<?xml version='1.0'?>",
           "<node>",
           "  <cpu>",
           "    <mhz>%d</mhz>" % rng.choice([2100, 2400, 3000]),
           "    <model>x86_64</model>",
           "    <nodes>2</nodes>",
           "    <sockets>2</sockets>",
           "    <cores>%d</cores>" % cores,
           "    <threads>2</threads>",
           "  </cpu>",
           "  <memory>%d</memory>" % (gib * 1024 * 1024)]
    return "\n".join(out + doms + ["</node>", ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--vms", type=int, default=20, help="domains per host")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("outdir")
    a = ap.parse_args()
    if a.hosts < 1 or a.vms < 0:
        ap.error("--hosts must be >= 1 and --vms >= 0")
    outdir = os.path.abspath(a.outdir)
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(a.seed)
    width = max(3, len(str(a.hosts - 1)))
    uris = []
    for h in range(a.hosts):
        path = os.path.join(outdir, "host%0*d.xml" % (width, h))
        with open(path, "w", encoding="utf-8") as f:
            f.write(host(rng, h, a.vms))
        uris.append("test://" + path)
    with open(os.path.join(outdir, "uris.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(uris) + "\n")
    sys.stdout.write("\n".join(uris) + "\n")


if __name__ == "__main__":
    main()
