"""BIND (named) and Knot (knotd) as secondaries of Seawall, on free loopback ports.

Each runs in the foreground with its own configuration in the test's
directory (PEERS.md) and logs to a file the tests read: BIND with
``named -g``, Knot with a stderr log target. Stopped by PID.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.rdatatype

from conftest import free_port, require_tool


class Secondary:
    """A secondary server process; ``port`` answers queries for the zones it holds."""

    name = "secondary"

    def __init__(self, work: Path) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = work / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Secondary:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.work)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.output()}")
            if self.listening():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start:\n{self.output()}")

    def listening(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def query(self, qname: str, qtype: str = "A") -> dns.message.Message | None:
        message = dns.message.make_query(qname, qtype)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            sock.sendto(message.to_wire(), ("127.0.0.1", self.port))
            try:
                return dns.message.from_wire(sock.recv(65535))
            except OSError:
                return None

    def serial(self, zone: str) -> int | None:
        response = self.query(zone, "SOA")
        if response is None:
            return None
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        return None

    def address(self, qname: str) -> str | None:
        response = self.query(qname, "A")
        if response is None:
            return None
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.A:
                return rrset[0].address
        return None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self) -> Secondary:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Bind(Secondary):
    """named as a secondary of ``primary`` for ``zones``, optionally with a TSIG key."""

    name = "named"

    def __init__(self, work: Path, primary: tuple[str, int], zones: list[str], *,
                 key: tuple[str, str, str] | None = None) -> None:
        require_tool("named")
        super().__init__(work)
        host, port = primary
        key_block = key_ref = ""
        if key is not None:
            name, algorithm, secret = key
            key_block = f'key "{name}" {{ algorithm {algorithm}; secret "{secret}"; }};\n'
            key_ref = f" key {name}"
        conf = (f'options {{ directory "{work}"; pid-file "{work}/named.pid";\n'
                f'  listen-on port {self.port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n'
                f'  recursion no; notify no; dnssec-validation no;\n'
                f'  session-keyfile "{work}/session.key"; }};\n'
                f'controls {{ }};\n{key_block}')
        for zone in zones:
            name = zone.rstrip(".")
            conf += (f'zone "{name}" {{ type secondary; file "{name}.db";\n'
                     f'  primaries {{ {host} port {port}{key_ref}; }};\n'
                     f'  allow-notify {{ {host}; }}; }};\n')
        self.conf = work / "named.conf"
        self.conf.write_text(conf)

    def argv(self) -> list[str]:
        return ["named", "-g", "-d", "3", "-c", str(self.conf)]


class Knot(Secondary):
    """knotd as a secondary of ``primary`` for ``zones``, optionally with a TSIG key."""

    name = "knotd"

    def __init__(self, work: Path, primary: tuple[str, int], zones: list[str], *,
                 key: tuple[str, str, str] | None = None) -> None:
        require_tool("knotd")
        super().__init__(work)
        host, port = primary
        key_block = key_ref = ""
        if key is not None:
            name, algorithm, secret = key
            key_block = f"key:\n  - id: {name}\n    algorithm: {algorithm}\n    secret: {secret}\n"
            key_ref = f"    key: {name}\n"
        conf = (f"server:\n  listen: 127.0.0.1@{self.port}\n  rundir: {work}\n"
                f"control:\n  listen: {work}/knot.sock\n"
                f"database:\n  storage: {work}\n"
                f"log:\n  - target: stderr\n    any: info\n{key_block}"
                f"remote:\n  - id: primary\n    address: {host}@{port}\n{key_ref}"
                f"acl:\n  - id: notify\n    address: {host}\n    action: notify\n{key_ref}"
                f"template:\n  - id: default\n    zonefile-sync: -1\n"
                f"    semantic-checks: off\n"
                f"zone:\n")
        for zone in zones:
            name = zone.rstrip(".")
            conf += (f"  - domain: \"{name}\"\n    file: \"{work}/{name}.zone\"\n"
                     f"    master: primary\n    acl: notify\n")
        self.conf = work / "knot.conf"
        self.conf.write_text(conf)

    def argv(self) -> list[str]:
        return ["knotd", "-c", str(self.conf)]
