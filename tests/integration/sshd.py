# SPDX-License-Identifier: MIT
"""sshd.py — a real OpenSSH server on loopback for the lab, so that tests can
reach the lab hosts over qemu+ssh:// as operators do.

    with Sshd() as s:
        s.uri("a")   # qemu+ssh://root@127.0.0.1:PORT/system?socket=...&keyfile=...&command=...

The server is `sshd -D` started by the test (a child it owns and stops by
PID), listening on 127.0.0.1 only, on a port derived from the lab index
(inside the lab's own range: tests/lab/lab.sh gives index L the ports
20000+1000L .. +959; this takes +990). Its host key and the client's key are
generated into a temporary directory; only that key is accepted (no
passwords). libvirt's remote driver then runs `ssh ... nc -U SOCKET` for
`socket=`, so netcat-openbsd must be installed (it is "the remote side").
The URI's `command=` names a wrapper that runs ssh with a config file of
its own (`-F`): the client checks the server's key against a known_hosts
file holding just that key, and nothing is read from or written to the
user's ~/.ssh.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

from labtest import Failure, lab, log

SSHD = "/usr/sbin/sshd"


def port_for_lab(index=None):
    index = int(os.environ.get("VMM_LAB_INDEX", "0") if index is None else index)
    return 20000 + index * 1000 + 990


class Sshd:
    def __init__(self, port=None, start_timeout=10.0):
        self.port = port or port_for_lab()
        self.start_timeout = start_timeout
        self.dir = None
        self.proc = None

    # -- life cycle --------------------------------------------------------

    def start(self):
        for tool in (SSHD, "ssh", "ssh-keygen", "nc"):
            if not shutil.which(tool):
                raise Failure(f"'{tool}' is needed for the ssh tests (openssh-server, "
                              f"openssh-client, netcat-openbsd)")
        self.dir = tempfile.mkdtemp(prefix="vmm-sshd-")
        os.chmod(self.dir, 0o700)
        self.host_key = os.path.join(self.dir, "host_ed25519")
        self.key = os.path.join(self.dir, "client_ed25519")
        for path in (self.host_key, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path],
                           check=True, capture_output=True, timeout=30)
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        with open(self.host_key + ".pub") as f:
            host_pub = " ".join(f.read().split()[:2])
        known_hosts = os.path.join(self.dir, "known_hosts")
        with open(known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {host_pub}\n")
        self.ssh_config = os.path.join(self.dir, "ssh_config")
        with open(self.ssh_config, "w") as f:
            f.write(f"""Host 127.0.0.1
    IdentityFile {self.key}
    IdentitiesOnly yes
    BatchMode yes
    StrictHostKeyChecking yes
    UserKnownHostsFile {known_hosts}
    GlobalKnownHostsFile /dev/null
    LogLevel ERROR
""")
        # The ssh libvirt runs (command=): both vmmigrate's and, for a
        # peer-to-peer migration, the source libvirtd's.
        self.ssh = os.path.join(self.dir, "ssh")
        with open(self.ssh, "w") as f:
            f.write(f'#!/bin/sh\nexec ssh -F {self.ssh_config} "$@"\n')
        os.chmod(self.ssh, 0o755)
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as f:
            f.write(f"""ListenAddress 127.0.0.1
HostKey {self.host_key}
AuthorizedKeysFile {self.dir}/authorized_keys
PidFile none
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel ERROR
""")
        # sshd insists on its privilege separation directory (the system's
        # service creates it at boot; nothing else here does).
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.log_path = os.path.join(self.dir, "sshd.log")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config, "-p", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path, "w"))
        self._wait_ready()
        log(f"sshd pid {self.proc.pid} on 127.0.0.1:{self.port}")
        return self

    def _wait_ready(self):
        """Until an ssh login with the client key runs a command, or the
        deadline passes."""
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"sshd exited ({self.proc.returncode}): {self._log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
            except OSError as e:
                last = str(e)
                time.sleep(0.05)
                continue
            p = subprocess.run(self.ssh_argv("true"), capture_output=True, text=True, timeout=10)
            if p.returncode == 0:
                return
            last = p.stderr.strip()
            time.sleep(0.1)
        self.stop()
        raise Failure(f"sshd on 127.0.0.1:{self.port} not usable within {self.start_timeout} s: "
                      f"{last}; {self._log()}")

    def _log(self):
        try:
            with open(self.log_path) as f:
                return f.read().strip()[-1000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- clients ------------------------------------------------------------

    def ssh_argv(self, *command):
        return [self.ssh, "-p", str(self.port), "root@127.0.0.1", *command]

    def uri(self, host):
        """The qemu+ssh:// URI of lab host `host`: its libvirtd socket,
        reached through this sshd."""
        unix = lab("uri", host)  # qemu+unix:///system?socket=PATH
        sock = urllib.parse.parse_qs(urllib.parse.urlparse(unix).query)["socket"][0]
        query = urllib.parse.urlencode({"socket": sock, "keyfile": self.key,
                                        "command": self.ssh}, safe="/")
        return f"qemu+ssh://root@127.0.0.1:{self.port}/system?{query}"
