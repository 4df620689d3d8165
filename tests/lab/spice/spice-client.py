#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/lab/spice/spice-client.py - a headless SPICE client for the lab.

Connects to a SPICE server (QEMU -spice) with spice-gtk's SpiceClientGLib,
opens EVERY channel the server offers (a client that opens only the main
channel crashed at migration: see /work/shared/LAB.md), follows a
server-driven migration (client_migrate_info / libvirt graphics relocation,
seamless or semi-seamless) like a real viewer, and writes its state as one
JSON object per line whenever that state changes.

Needs Debian's python3 with python3-gi and gir1.2-spiceclientglib-2.0; no X,
no GTK. See tests/lab/spice/README.md for the status line format.

usage: spice-client.py [options] HOST PORT | spice://HOST:PORT
"""

import argparse
import json
import os
import signal
import sys
import time

import gi

gi.require_version("SpiceClientGLib", "2.0")
from gi.repository import GLib, GObject, SpiceClientGLib as Spice  # noqa: E402

# Exit statuses.
EXIT_OK = 0  # stopped by SIGTERM/SIGINT/--exit-after
EXIT_FAIL = 1  # could not connect / bad arguments at run time
EXIT_USAGE = 2
EXIT_DISCONNECTED = 3  # the server went away (or the session dropped)

CHANNEL_EVENTS = {
    Spice.ChannelEvent.NONE: "none",
    Spice.ChannelEvent.OPENED: "opened",
    Spice.ChannelEvent.SWITCHING: "switching",
    Spice.ChannelEvent.CLOSED: "closed",
    Spice.ChannelEvent.ERROR_CONNECT: "error-connect",
    Spice.ChannelEvent.ERROR_TLS: "error-tls",
    Spice.ChannelEvent.ERROR_LINK: "error-link",
    Spice.ChannelEvent.ERROR_AUTH: "error-auth",
    Spice.ChannelEvent.ERROR_IO: "error-io",
}

MIGRATION_STATES = {
    Spice.SessionMigration.NONE: "none",
    Spice.SessionMigration.SWITCHING: "switching",
    Spice.SessionMigration.MIGRATING: "migrating",
    Spice.SessionMigration.CONNECTING: "connecting",
}

# How often the channels' sockets are looked at: a seamless switch swaps a
# channel's connection without any channel event. Fast while a migration is
# under way, slow otherwise (0.1 % CPU).
POLL_MS = 250
POLL_MIGRATING_MS = 20
# After spice-gtk's migration state is back to "none", how long the channels
# may take to show the target as their peer before the attempt counts as
# not switched.
SWITCH_GRACE = 3.0


def gsignal(obj, name, cb, *data):
    # SpiceChannel.connect / SpiceSession.connect are spice_*_connect(), not
    # GObject's signal connect: always go through GObject.Object.connect.
    return GObject.Object.connect(obj, name, cb, *data)


def sock_peer(sock):
    """'host:port' of a GSocket's remote end, or None."""
    if sock is None:
        return None
    try:
        addr = sock.get_remote_address()
    except GLib.Error:
        return None
    if addr is None:
        return None
    try:
        host = addr.get_address().to_string()
        port = addr.get_port()
    except AttributeError:  # not an inet socket
        return None
    if ":" in host:
        host = "[%s]" % host
    return "%s:%d" % (host, port)


def channel_key(ch):
    ty = ch.get_property("channel-type")
    name = Spice.Channel.type_to_string(ty) or ("type%d" % ty)
    return "%s:%d" % (name, ch.get_property("channel-id"))


class Client:
    def __init__(self, opts):
        self.opts = opts
        self.loop = GLib.MainLoop()
        self.t0 = time.monotonic()
        self.out = None
        self.seq = 0
        self.exit_code = EXIT_OK
        self.stopping = False
        self.last_state = None
        self.ever_ready = False
        self.connect_time = None
        # key -> {"ch": SpiceChannel, "state": str, "peer": str|None}
        self.channels = {}
        self.mig_state = "none"
        self.mig = None  # current migration attempt (dict), or None
        self.migrations = []  # finished attempts (dicts)
        self.mig_session = None
        self.mig_channels = {}  # channels of the migration session: key -> peer/state
        self.errors = []
        self.mm_time_resets = 0
        self.fast_poll = 0  # GLib source id of the fast poll timer, or 0

        s = Spice.Session()
        s.set_property("host", opts.host)
        s.set_property("port", str(opts.port))
        # Headless: no USB redirection, no smartcard (the lab guests have
        # neither). Audio stays enabled: spice-gtk does not even create the
        # playback/record channels of a session with audio disabled, and
        # this client opens every channel. Without a GStreamer audio sink
        # installed the sound is just dropped.
        for prop, val in (("enable-audio", not opts.no_audio), ("enable-usbredir", False),
                          ("enable-smartcard", False)):
            try:
                s.set_property(prop, val)
            except TypeError:
                pass
        gsignal(s, "channel-new", self.on_channel_new)
        gsignal(s, "channel-destroy", self.on_channel_destroy)
        gsignal(s, "disconnected", self.on_session_disconnected)
        gsignal(s, "mm-time-reset", self.on_mm_time_reset)
        gsignal(s, "notify::migration-state", self.on_migration_state)
        self.session = s

    # ---- output -------------------------------------------------------------

    def now(self):
        return round(time.monotonic() - self.t0, 4)

    def state(self):
        chans = {}
        for key in sorted(self.channels):
            c = self.channels[key]
            chans[key] = {"state": c["state"], "peer": c["peer"]}
        open_ = [c for c in self.channels.values() if c["state"] == "open"]
        peers = sorted({c["peer"] for c in open_ if c["peer"]})
        main = next((c for k, c in self.channels.items() if k.startswith("main:")), None)
        connected = bool(main and main["state"] == "open")
        ready = (connected and len(self.channels) >= 2
                 and len(open_) == len(self.channels) and len(peers) == 1)
        st = {
            "server": "%s:%s" % (self.opts.host, self.opts.port),
            "connected": connected,
            "ready": ready,
            "peer": peers[0] if len(peers) == 1 else (None if not peers else "mixed"),
            "peers": peers,
            "nopen": len(open_),
            "nchannels": len(self.channels),
            "channels": chans,
            "migration": self.mig_state,
            "migrating_to": self.mig["to"] if self.mig else None,
            "mig_channels": {k: dict(v) for k, v in sorted(self.mig_channels.items())},
            "migrations": len(self.migrations),
            "last_migration": self.migrations[-1] if self.migrations else None,
            "mm_time_resets": self.mm_time_resets,
            "errors": self.errors[-5:],
            "on_migrate": self.opts.on_migrate,
        }
        return st

    def emit(self, event, force=False, **extra):
        """Write a status line if the state changed (or force / extra data)."""
        st = self.state()
        if st["ready"] and not self.ever_ready:
            self.ever_ready = True
            self.connect_time = self.now()
        if not force and not extra and st == self.last_state:
            return
        self.last_state = st
        self.seq += 1
        line = {"seq": self.seq, "ts": round(time.time(), 4), "t": self.now(),
                "pid": os.getpid(), "event": event}
        line.update(extra)
        line.update(st)
        line["connect_time"] = self.connect_time
        data = json.dumps(line, sort_keys=False) + "\n"
        try:
            self.out.write(data)
            self.out.flush()
        except (OSError, ValueError) as e:
            sys.stderr.write("spice-client: cannot write status: %s\n" % e)
        if self.opts.verbose and self.out is not sys.stdout:
            sys.stderr.write(data)

    def error(self, what):
        self.errors.append({"t": self.now(), "error": what})
        self.emit("error", error=what)

    # ---- session / channels -------------------------------------------------

    def on_channel_new(self, session, ch):
        key = channel_key(ch)
        self.channels[key] = {"ch": ch, "state": "connecting", "peer": None}
        gsignal(ch, "channel-event", self.on_channel_event, key)
        if isinstance(ch, Spice.MainChannel):
            gsignal(ch, "migration-started", self.on_migration_started)
        # Open every channel: Spice.Channel.connect is spice_channel_connect().
        if not Spice.Channel.connect(ch):
            self.channels[key]["state"] = "failed"
            self.error("cannot connect channel %s" % key)
            return
        self.emit("channel-new", channel=key)

    def unannounced_switch(self, c):
        """A switch-host without a migration-started signal first.

        spice-gtk 0.42 leaks its migration session when the server's
        switch-host message overtakes a seamless migration (the copy ended
        before the client had reported all target connections); from then
        on it answers every migration announcement with a connect error
        (log: "assertion 'session->priv->migration == NULL' failed"), emits
        no migration-started, and the server moves it by switch-host after
        the copy. Track those as migrations too ("announced": false)."""
        old = c["peer"] or (self.last_state or {}).get("peer")
        self.mig = {"to": None, "from": old, "started": self.now(), "states": [],
                    "announced": False, "state_none": self.now()}
        self.mig_channels = {}
        self.start_fast_poll()
        self.emit("migration-unannounced", force=True)

    def on_channel_destroy(self, session, ch):
        key = channel_key(ch)
        if self.mig is not None:
            self.mig["path"] = "switch-host"
        c = self.channels.get(key)
        if c is not None and c["ch"] == ch:
            del self.channels[key]
        self.emit("channel-destroy", channel=key)

    def on_channel_event(self, ch, ev, key):
        name = CHANNEL_EVENTS.get(ev, str(int(ev)))
        c = self.channels.get(key)
        if c is None or c["ch"] != ch:
            return
        if ev == Spice.ChannelEvent.OPENED:
            c["state"] = "open"
            c["peer"] = sock_peer(ch.get_property("socket"))
        elif ev == Spice.ChannelEvent.SWITCHING:
            c["state"] = "switching"
            if self.mig is None:
                self.unannounced_switch(c)
            self.mig["path"] = "switch-host"
        elif ev == Spice.ChannelEvent.CLOSED:
            c["state"] = "closed"
            c["peer"] = None
        elif name.startswith("error"):
            c["state"] = name
            c["peer"] = None
            err = ch.get_error()
            msg = "%s: %s" % (key, name)
            if err is not None:
                msg += " (%s)" % err.message
            self.errors.append({"t": self.now(), "error": msg})
        self.emit("channel-" + name, channel=key)
        if (name == "closed" or name.startswith("error")) and self.mig is not None \
                and self.mig.get("mode") == "refuse":
            # The refused migration went on without us and the source
            # closed our connections: spice-gtk will not notice by itself
            # (its main channel waits for the dropped migration session).
            self.finish_migration("refused")
            self.quit(EXIT_DISCONNECTED)
            return
        if key.startswith("main:") and name.startswith("error") and not self.ever_ready:
            # Initial connection failed: nothing to follow.
            self.error("could not connect to %s:%s" % (self.opts.host, self.opts.port))
            self.quit(EXIT_FAIL)
        elif key.startswith("main:") and (name == "closed" or name.startswith("error")) \
                and self.ever_ready and not self.stopping:
            # The server went away (a migration moves the main channel by a
            # silent swap or by "switching", never by a close). spice-gtk
            # does not end the session by itself: like a viewer, give up.
            if self.mig is not None:
                self.finish_migration("disconnected")
            self.quit(EXIT_DISCONNECTED)

    def on_session_disconnected(self, session):
        self.emit("session-disconnected", force=True)
        if not self.stopping:
            self.quit(EXIT_DISCONNECTED)

    def on_mm_time_reset(self, session):
        self.mm_time_resets += 1
        self.emit("mm-time-reset")

    def on_migration_state(self, session, pspec):
        st = MIGRATION_STATES.get(session.get_property("migration-state"), "?")
        self.mig_state = st
        if self.mig is not None:
            self.mig["states"].append([st, self.now()])
            if st == "none":
                self.mig.setdefault("state_none", self.now())
                # spice-gtk swaps the channels' connections right after
                # this notification, without a channel event.
                GLib.idle_add(self.poll_once)
        self.emit("migration-state", force=True, state=st)

    def on_migration_started(self, main, mig_session):
        to = "%s:%s" % (mig_session.get_property("host"), mig_session.get_property("port"))
        if self.mig is not None:  # a previous attempt never finished
            self.finish_migration("superseded")
        self.mig = {"to": to, "started": self.now(), "states": [], "announced": True}
        self.start_fast_poll()
        self.mig_session = mig_session
        self.mig_channels = {}
        gsignal(mig_session, "channel-new", self.on_mig_channel_new)
        self.emit("migration-started", force=True, to=to)
        mode = self.opts.on_migrate
        if mode == "unreachable":
            # The target cannot be reached during the copy: make the
            # migration session connect to a closed port (connection
            # refused at once). spice-gtk reports the error to the source.
            mig_session.set_property("port", "1")
            self.mig["mode"] = mode
        elif mode == "refuse":
            # Do not follow: drop the migration session before it connects.
            # spice-gtk's main channel then waits for it forever, so the
            # client neither answers the source nor connects to the target;
            # it stays on the source until that goes away.
            self.mig["mode"] = mode
            GLib.idle_add(self.refuse_migration, mig_session)
        elif mode == "freeze":
            # Like a hung viewer: stop this whole process (sockets stay
            # open). SIGCONT resumes it.
            self.mig["mode"] = mode
            self.emit("freezing", force=True)
            os.kill(os.getpid(), signal.SIGSTOP)
            self.emit("thawed", force=True)

    def refuse_migration(self, mig_session):
        try:
            Spice.Session.disconnect(mig_session)
        except Exception as e:  # noqa: BLE001 - report, keep running
            self.error("refusing migration: %s" % e)
        self.emit("migration-refused", force=True)
        return False

    def on_mig_channel_new(self, session, ch):
        key = channel_key(ch)
        self.mig_channels[key] = {"state": "connecting", "peer": None, "t": self.now()}
        gsignal(ch, "channel-event", self.on_mig_channel_event, key)
        self.emit("mig-channel-new", channel=key)

    def on_mig_channel_event(self, ch, ev, key):
        name = CHANNEL_EVENTS.get(ev, str(int(ev)))
        c = self.mig_channels.setdefault(key, {})
        c["state"] = "open" if name == "opened" else name
        c["peer"] = sock_peer(ch.get_property("socket")) if name == "opened" else None
        c["t"] = self.now()
        if self.mig is not None and name == "opened" and self.mig_channels and all(
                v.get("state") == "open" for v in self.mig_channels.values()):
            self.mig.setdefault("target_channels_open", self.now())
        self.emit("mig-channel-" + name, channel=key)

    def finish_migration(self, result):
        m, self.mig = self.mig, None
        m["ended"] = self.now()
        m["result"] = result
        if result == "switched":
            m.setdefault("path", "seamless")
        m["peer_after"] = self.state()["peer"]
        m["target_channels"] = {k: v.get("peer") for k, v in sorted(self.mig_channels.items())}
        self.migrations.append(m)
        self.mig_session = None
        self.mig_channels = {}
        self.emit("migration-" + result, force=True, to=m["to"])

    def check_migration(self):
        m = self.mig
        if m is None:
            return
        st = self.state()
        if m["to"] is None and st["ready"] and st["peer"] != m["from"]:
            m["to"] = st["peer"]
        if st["ready"] and st["peer"] == m["to"]:
            self.finish_migration("switched")
        elif "state_none" in m and self.now() - m["state_none"] > SWITCH_GRACE:
            self.finish_migration("refused" if m.get("mode") == "refuse" else "not-switched")

    def poll(self):
        """Catch connection changes that come without a channel event."""
        for c in self.channels.values():
            if c["state"] in ("open", "switching"):
                peer = sock_peer(c["ch"].get_property("socket"))
                if peer is not None:
                    c["peer"] = peer
                    if c["state"] == "switching":
                        c["state"] = "open"
        prev = self.last_state["peer"] if self.last_state else None
        if self.mig is not None:
            self.check_migration()
        peer = self.state()["peer"]
        if peer != prev and prev is not None:
            self.emit("peer-changed", force=True, old_peer=prev)
        else:
            self.emit("poll")
        return True

    def poll_once(self):
        self.poll()
        return False

    def start_fast_poll(self):
        if not self.fast_poll:
            self.fast_poll = GLib.timeout_add(POLL_MIGRATING_MS, self.poll_fast)

    def poll_fast(self):
        self.poll()
        if self.mig is None:
            self.fast_poll = 0
            return False
        return True

    # ---- life cycle ---------------------------------------------------------

    def quit(self, code):
        if self.stopping:
            return
        self.stopping = True
        self.exit_code = code
        GLib.idle_add(self._quit)

    def _quit(self):
        try:
            Spice.Session.disconnect(self.session)
        except Exception:  # noqa: BLE001
            pass
        # Whatever spice-gtk still reports, nothing is connected any more.
        for c in self.channels.values():
            c["state"] = "closed"
            c["peer"] = None
        self.emit("exit", force=True, exit_code=self.exit_code)
        self.loop.quit()
        return False

    def on_signal(self, signum):
        self.emit("signal", force=True, signal=signal.Signals(signum).name)
        self.quit(EXIT_OK)
        return False

    def on_connect_timeout(self):
        if not self.ever_ready:
            self.error("not all channels open after %ss" % self.opts.connect_timeout)
            self.quit(EXIT_FAIL)
        return False

    def on_glib_log(self, domain, level, message, *_):
        # spice-gtk's g_critical/g_warning (e.g. its failed assertions) go to
        # the status too; debug output (SPICE_DEBUG=1) only to stderr.
        sys.stderr.write("(%s) %s\n" % (domain, message))
        if level & (GLib.LogLevelFlags.LEVEL_CRITICAL | GLib.LogLevelFlags.LEVEL_WARNING
                    | GLib.LogLevelFlags.LEVEL_ERROR):
            self.error("%s: %s" % (domain, message))

    def run(self):
        if self.opts.status and self.opts.status != "-":
            self.out = open(self.opts.status, "a", encoding="utf-8")
        else:
            self.out = sys.stdout
        for dom in ("GSpice", "Spice"):
            GLib.log_set_handler(dom, GLib.LogLevelFlags.LEVEL_CRITICAL
                                 | GLib.LogLevelFlags.LEVEL_WARNING, self.on_glib_log, None)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, self.on_signal, sig)
        self.emit("start", force=True)
        if not Spice.Session.connect(self.session):
            self.error("spice_session_connect failed")
            return EXIT_FAIL
        GLib.timeout_add(POLL_MS, self.poll)
        if self.opts.connect_timeout > 0:
            GLib.timeout_add(int(self.opts.connect_timeout * 1000), self.on_connect_timeout)
        if self.opts.exit_after > 0:
            GLib.timeout_add(int(self.opts.exit_after * 1000), lambda: self.quit(EXIT_OK) or False)
        self.loop.run()
        if self.out is not sys.stdout:
            self.out.close()
        return self.exit_code


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="spice-client.py",
        description="Headless SPICE client that opens all channels, follows "
                    "migrations and writes its state as JSON lines.")
    p.add_argument("server", nargs="+", metavar="SERVER",
                   help="HOST PORT, or spice://HOST:PORT (as virsh domdisplay prints it)")
    p.add_argument("--status", metavar="FILE",
                   help="append JSON status lines to FILE (default: stdout)")
    p.add_argument("--pidfile", metavar="FILE",
                   help="write the PID to FILE (removed at exit)")
    p.add_argument("--on-migrate", choices=("follow", "refuse", "unreachable", "freeze"),
                   default="follow",
                   help="what to do when the server announces a migration: follow "
                        "it (default); refuse: stay on the source, never connect to "
                        "the target; unreachable: act as if the target could not be "
                        "reached during the copy; freeze: SIGSTOP this process")
    p.add_argument("--no-migrate", dest="on_migrate", action="store_const", const="refuse",
                   help="same as --on-migrate=refuse")
    p.add_argument("--connect-timeout", type=float, default=30, metavar="SEC",
                   help="exit 1 if not all channels are open after SEC (0: wait forever; default 30)")
    p.add_argument("--exit-after", type=float, default=0, metavar="SEC",
                   help="exit 0 after SEC seconds (default: run until killed or disconnected)")
    p.add_argument("--no-audio", action="store_true",
                   help="disable audio: do not open the playback/record channels")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also copy status lines to stderr")
    o = p.parse_args(argv)
    srv = o.server
    if len(srv) == 1 and srv[0].startswith("spice://"):
        hp = srv[0][len("spice://"):].rstrip("/")
        if "?" in hp:
            hp = hp.split("?", 1)[0]
        host, sep, port = hp.rpartition(":")
        if not sep:
            p.error("spice URI without port: %s" % srv[0])
        o.host, o.port = host.strip("[]"), port
    elif len(srv) == 2:
        o.host, o.port = srv
    else:
        p.error("expected HOST PORT or spice://HOST:PORT")
    if not o.port.isdigit() or not 0 < int(o.port) < 65536:
        p.error("bad port '%s'" % o.port)
    o.port = int(o.port)
    return o


def main(argv):
    opts = parse_args(argv)
    if opts.pidfile:
        tmp = "%s.tmp.%d" % (opts.pidfile, os.getpid())
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, opts.pidfile)
    try:
        return Client(opts).run()
    finally:
        if opts.pidfile:
            try:
                with open(opts.pidfile, encoding="utf-8") as f:
                    if f.read().strip() == str(os.getpid()):
                        os.unlink(opts.pidfile)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
