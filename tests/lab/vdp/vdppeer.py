#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/lab/vdp/vdppeer.py - IEEE 802.1Qbg (VDP22 over ECP22) wire tools for
the vmmigrate VDP lab. Python 3 standard library only; run as root inside the
bridge namespace (vdp.sh does that).

  vdppeer.py monitor EVENTS       sniff every ECP22 frame on every interface of
                                  this network namespace and append one line
                                  per VSI TLV to EVENTS (see below); SIGUSR1
                                  drains the socket and appends a 'reset'
                                  marker (vdp.sh sends it when the bridge
                                  lldpad stops or starts: its state is gone)
  vdppeer.py fold EVENTS          what the bridge has accepted, from the
                                  frames it sent: "PORT UUID MAC VLAN MODE"
                                  per filter entry
  vdppeer.py bridge POLICY IF...  a minimal EVB/ECP/VDP22 *bridge* on the
                                  given ports, in place of lldpad: LLDP with
                                  the EVB TLV, ECP22 acks, and VDP replies
                                  decided by the POLICY file (re-read for
                                  every request; see below). It can refuse,
                                  which Debian's lldpad bridge never does

EVENTS lines (space separated):
  TIME in|out PORT SEQ MODE STATUS UUID MGRID TYPEID TYPEIDVER FILTERS
    in  = station -> bridge (a request), out = bridge -> station (a reply or
    a bridge-initiated deassoc); MODE preassoc|preassoc-rr|assoc|deassoc;
    STATUS two hex digits (replies: 0x40 ack, low nibble error, 0x10 keep,
    0x20 hard); FILTERS comma separated VLAN-MAC (format 2), VLAN (1),
    VLAN--GROUP (3), VLAN-MAC-GROUP (4); VLAN is the 12-bit VID.
  TIME monitor-start | TIME reset      (the bridge's state is unknown/empty)

POLICY lines ('#' comments; the first matching line wins; default accept):
  UUID|*  MODE|*  ACTION
    MODE   preassoc, preassoc-rr, assoc, deassoc or *
    ACTION accept         reply with the same mode, status 0x40
           reject[:ERR]   reply DEASSOC with status 0x40|ERR (ERR 1..15,
                          default 2 = insufficient resources)
           keep[:ERR]     reply the request's mode with status 0x50|ERR
                          (refused, but the previous state is kept)
           ignore         ECP-ack the frame but never answer the VSI TLV
           drop           do not even ECP-ack (the station retransmits)
"""

import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ECP22 = 0x8940
ETH_P_LLDP = 0x88CC
ETH_P_ALL = 0x0003
GROUP_MAC = bytes.fromhex("0180c2000000")  # nearest customer bridge
PACKET_OUTGOING = 4

MODES = {1: "preassoc", 2: "preassoc-rr", 3: "assoc", 4: "deassoc"}
MODE_NUM = {v: k for k, v in MODES.items()}
TLV_MGRID = 5

ACKBIT = 0x40
KEEPBIT = 0x10
# vdp.sh's readiness probe (see evb_ready there): not listed, always accepted.
PROBE_UUID = "fffffffe-0000-4000-8000-0000000f00be"


def die(msg, code=1):
    sys.stderr.write("vdppeer.py: %s\n" % msg)
    sys.exit(code)


# ---- VDP22 TLV parsing ------------------------------------------------------


def fmt_uuid(b):
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def fmt_mac(b):
    return ":".join("%02x" % x for x in b)


def fmt_mgrid(b):
    s = b.rstrip(b"\0")
    if s and all(0x21 <= c < 0x7F for c in s):
        return s.decode("ascii")
    return "0x" + b.hex()


def parse_filters(fif, data):
    """-> list of filter strings (vdptool's syntax) or None if malformed."""
    if len(data) < 2:
        return None
    (n,) = struct.unpack_from("!H", data, 0)
    size = {1: 2, 2: 8, 3: 6, 4: 12}.get(fif)
    if size is None or len(data) < 2 + n * size:
        return None
    out = []
    off = 2
    for _ in range(n):
        e = data[off:off + size]
        off += size
        if fif == 1:
            (v,) = struct.unpack("!H", e)
            out.append("%d" % (v & 0xFFF))
        elif fif == 2:
            (v,) = struct.unpack("!H", e[6:8])
            out.append("%d-%s" % (v & 0xFFF, fmt_mac(e[0:6])))
        elif fif == 3:
            g, v = struct.unpack("!IH", e)
            out.append("%d--%d" % (v & 0xFFF, g))
        else:
            (g,) = struct.unpack("!I", e[0:4])
            (v,) = struct.unpack("!H", e[10:12])
            out.append("%d-%s-%d" % (v & 0xFFF, fmt_mac(e[4:10]), g))
    return out


def parse_vdp(payload):
    """VDP22 packed TLVs -> list of dicts (one per VSI TLV)."""
    vsis = []
    mgrid = b""
    off = 0
    while off + 2 <= len(payload):
        (head,) = struct.unpack_from("!H", payload, off)
        typ, ln = head >> 9, head & 0x1FF
        body = payload[off + 2:off + 2 + ln]
        raw = payload[off:off + 2 + ln]
        off += 2 + ln
        if typ == 0:
            break
        if typ == TLV_MGRID:
            mgrid = body
        elif typ in MODES and len(body) >= 23:
            status = body[0]
            typeid = int.from_bytes(body[1:4], "big")
            typeidver = body[4]
            idfmt = body[5]
            vsiid = body[6:22]
            fif = body[22]
            filters = parse_filters(fif, body[23:])
            vsis.append({
                "mode": MODES[typ], "status": status, "typeid": typeid,
                "typeidver": typeidver, "idfmt": idfmt,
                "uuid": fmt_uuid(vsiid) if idfmt == 5 else "0x" + vsiid.hex(),
                "fif": fif, "filters": filters or [], "mgrid": mgrid,
                "raw": raw,
            })
    return vsis


def parse_ecp(frame):
    """Ethernet frame -> (op, subtype, seq, payload) or None."""
    if len(frame) < 18:
        return None
    (etype,) = struct.unpack_from("!H", frame, 12)
    if etype != ETH_P_ECP22:
        return None
    hdr, seq = struct.unpack_from("!HH", frame, 14)
    ver, op, sub = hdr >> 12, (hdr >> 10) & 3, hdr & 0x3FF
    if ver != 1:
        return None
    return op, sub, seq, frame[18:]


def event_line(direction, port, seq, v):
    return "%.6f %s %s %d %s %02x %s %s %d %d %s\n" % (
        time.time(), direction, port, seq, v["mode"], v["status"], v["uuid"],
        fmt_mgrid(v["mgrid"]), v["typeid"], v["typeidver"],
        ",".join(v["filters"]) or "-")


# ---- monitor ------------------------------------------------------------------


def cmd_monitor(args):
    if len(args) != 1:
        die("usage: monitor EVENTS", 2)
    # ETH_P_ALL: a socket bound to one protocol does not see the frames
    # sent on this host (the bridge's replies), only received ones.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                         socket.htons(ETH_P_ALL))
    sock.setblocking(False)
    out = open(args[0], "a", buffering=1)

    def drain():
        while True:
            try:
                frame, addr = sock.recvfrom(65535)
            except BlockingIOError:
                return
            e = parse_ecp(frame)
            if e is None or e[0] != 0 or e[1] != 1:
                continue  # ECP acks, other subtypes
            direction = "out" if addr[2] == PACKET_OUTGOING else "in"
            for v in parse_vdp(e[3]):
                out.write(event_line(direction, addr[0], e[2], v))

    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    pending = []
    signal.signal(signal.SIGUSR1, lambda s, f: pending.append("reset"))
    signal.signal(signal.SIGTERM, lambda s, f: pending.append("exit"))
    signal.signal(signal.SIGINT, lambda s, f: pending.append("exit"))
    out.write("%.6f monitor-start\n" % time.time())
    while True:
        try:
            r, _, _ = select.select([sock, rfd], [], [])
        except InterruptedError:
            r = []
        drain()
        if rfd in r:
            os.read(rfd, 512)
        while pending:
            what = pending.pop(0)
            if what == "exit":
                return 0
            out.write("%.6f reset\n" % time.time())


# ---- fold -------------------------------------------------------------------


def cmd_fold(args):
    if len(args) != 1:
        die("usage: fold EVENTS", 2)
    state = {}  # (port, uuid) -> (mode, filters)
    try:
        f = open(args[0])
    except OSError as e:
        die("cannot read %s: %s" % (args[0], e.strerror))
    with f:
        for line in f:
            w = line.split()
            if len(w) == 2 and w[1] in ("monitor-start", "reset"):
                state.clear()
                continue
            if len(w) != 11 or w[1] != "out":
                continue
            port, mode, status, uuid, filters = w[2], w[4], int(w[5], 16), w[6], w[10]
            if uuid == PROBE_UUID:
                continue
            key = (port, uuid)
            if mode == "deassoc":
                state.pop(key, None)
            elif status & KEEPBIT or status & 0x0F:
                pass  # refused, previous state kept
            else:
                state[key] = (mode, filters)
    for (port, uuid), (mode, filters) in sorted(state.items()):
        for flt in (filters.split(",") if filters != "-" else ["-"]):
            p = flt.split("-")
            if len(p) >= 2 and p[1]:
                vlan, mac = p[0], p[1]
            else:
                vlan, mac = p[0], "-"
            print("%s %s %s %s %s" % (port, uuid, mac, vlan, mode))
    return 0


# ---- a minimal bridge -----------------------------------------------------------


def evb_tlv(retries=3, rte=10, rwd=16, rka=20):
    """The EVB TLV (802.1Qbg-2012, OUI 00-80-c2 subtype 0x0d), bridge role,
    reflective relay capable and active, as Debian's lldpad bridge sends it."""
    info = bytes([0x00, 0x80, 0xC2, 0x0D,
                  0x03,                        # bridge status: RRCAP, RRCTR
                  0x00,                        # station status
                  (retries & 7) << 5 | (rte & 0x1F),
                  0x40 | 0x20 | (rwd & 0x1F),  # EVB mode bridge, R/L, RWD
                  0x20 | (rka & 0x1F)])        # R/L, RKA
    return struct.pack("!H", 127 << 9 | len(info)) + info


def lldp_frame(mac, port):
    tlvs = b""
    tlvs += struct.pack("!H", 1 << 9 | 7) + b"\x04" + mac         # chassis: MAC
    pn = port.encode()[:255]
    tlvs += struct.pack("!H", 2 << 9 | (1 + len(pn))) + b"\x05" + pn  # port: ifname
    tlvs += struct.pack("!HH", 3 << 9 | 2, 120)                   # TTL
    tlvs += evb_tlv()
    tlvs += b"\x00\x00"
    return GROUP_MAC + mac + struct.pack("!H", ETH_P_LLDP) + tlvs


def read_policy(path):
    rules = []
    try:
        with open(path) as f:
            for line in f:
                w = line.split("#", 1)[0].split()
                if len(w) == 3:
                    rules.append((w[0].lower(), w[1].lower(), w[2].lower()))
    except OSError:
        pass
    return rules


def decide(rules, uuid, mode):
    if uuid == PROBE_UUID:
        return "accept"
    for u, m, action in rules:
        if u in ("*", uuid) and m in ("*", mode):
            return action
    return "accept"


class Port:
    def __init__(self, name):
        self.name = name
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                  socket.htons(ETH_P_ALL))
        self.sock.bind((name, 0))
        self.sock.setblocking(False)
        self.mac = self.sock.getsockname()[4][:6]
        self.seq = int.from_bytes(os.urandom(2), "big")

    def send(self, payload, etype):
        self.sock.send(GROUP_MAC + self.mac + struct.pack("!H", etype) + payload)

    def ecp(self, op, seq, payload=b""):
        self.send(struct.pack("!HH", 1 << 12 | op << 10 | 1, seq) + payload, ETH_P_ECP22)

    def reply(self, v, mode, status):
        body = bytearray(v["raw"])
        body[0:2] = struct.pack("!H", MODE_NUM[mode] << 9 | (len(body) - 2))
        body[2] = status
        mgr = struct.pack("!H", TLV_MGRID << 9 | 16) + v["mgrid"].ljust(16, b"\0")[:16]
        self.seq = (self.seq + 1) & 0xFFFF
        self.ecp(0, self.seq, mgr + bytes(body))


def cmd_bridge(args):
    if len(args) < 2:
        die("usage: bridge POLICY IFNAME...", 2)
    policy = args[0]
    ports = [Port(n) for n in args[1:]]
    stop = []
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(1))
    signal.signal(signal.SIGINT, lambda s, f: stop.append(1))
    last_rx = {}  # port -> last ECP seq received (duplicate suppression)
    next_lldp = 0.0
    while not stop:
        now = time.monotonic()
        if now >= next_lldp:
            for p in ports:
                try:
                    p.send(lldp_frame(p.mac, p.name)[14:], ETH_P_LLDP)
                except OSError:
                    pass
            # At once (the station talks VDP only after our TLV), then every
            # 5 s: well within the 120 s TTL.
            next_lldp = now + 5.0
        try:
            r, _, _ = select.select([p.sock for p in ports], [], [],
                                    max(0.0, next_lldp - time.monotonic()))
        except InterruptedError:
            continue
        for p in ports:
            if p.sock not in r:
                continue
            while True:
                try:
                    frame, addr = p.sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                e = parse_ecp(frame)
                if e is None or e[0] != 0 or e[1] != 1:
                    continue
                _, _, seq, payload = e
                vsis = parse_vdp(payload)
                actions = [decide(read_policy(policy), v["uuid"], v["mode"]) for v in vsis]
                if "drop" in actions:
                    continue
                p.ecp(1, seq)
                if last_rx.get(p.name) == seq:
                    continue  # a retransmission we already answered
                last_rx[p.name] = seq
                for v, action in zip(vsis, actions):
                    if v["status"] & ACKBIT:
                        continue  # not a request
                    kind, _, err = action.partition(":")
                    code = int(err) & 0x0F if err.isdigit() else 2
                    if kind == "accept":
                        p.reply(v, v["mode"], ACKBIT)
                    elif kind == "reject":
                        p.reply(v, "deassoc", ACKBIT | code)
                    elif kind == "keep":
                        p.reply(v, v["mode"], ACKBIT | KEEPBIT | code)
                    # ignore: ECP-acked, never answered
    return 0


def main():
    if len(sys.argv) < 2:
        die("usage: vdppeer.py monitor|fold|bridge ARGS...", 2)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "monitor":
        return cmd_monitor(args)
    if cmd == "fold":
        return cmd_fold(args)
    if cmd == "bridge":
        return cmd_bridge(args)
    die("unknown command '%s'" % cmd, 2)
    return 2


if __name__ == "__main__":
    sys.exit(main())
