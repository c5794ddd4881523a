"""Real components for the failover tests: Knot as a hidden primary, a query loop.

Knot runs in the foreground on a free loopback port with its own config in
the test's directory (PEERS.md); SIGKILL / SIGSTOP on its PID simulate a
dead or hung primary. The query loop asks Seawall a bounded number of
questions per second from a thread and logs every answer, so a test can
show that nothing was lost and nothing answered SERVFAIL during a switch.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype

from conftest import SeawallProcess, free_port, require_tool

LIVE_WWW = "192.0.2.80"
EMERGENCY_WWW = "192.0.2.99"


def zone_text(origin: str, serial: int, hosts: int = 2000, www: str = LIVE_WWW,
              refresh: int = 3600, retry: int = 600, extra: str = "") -> str:
    """A zone of ``hosts`` A records plus the usual apex, for ``origin``."""
    lines = [f"$ORIGIN {origin}.", "$TTL 3600",
             f"@ SOA ns1 hostmaster {serial} {refresh} {retry} 1209600 300",
             "@ NS ns1", "@ NS ns2", "ns1 A 192.0.2.53", "ns2 A 192.0.2.54",
             f"www A {www}", "mail A 192.0.2.25", "@ MX 10 mail"]
    lines += [f"h{i} A 198.51.{100 + i // 250}.{i % 250 + 1}" for i in range(hosts)]
    return "\n".join(lines) + "\n" + extra


def emergency_text(origin: str) -> str:
    return "\n".join([f"$ORIGIN {origin}.", "$TTL 300",
                      "@ SOA ns1 hostmaster 1 300 60 1209600 60",
                      "@ NS ns1", "@ NS ns2", "ns1 A 192.0.2.53", "ns2 A 192.0.2.54",
                      f"www A {EMERGENCY_WWW}", "mail A 192.0.2.25", "@ MX 10 mail"]) + "\n"


class Knot:
    """knotd as a hidden primary for ``zones`` ({origin: text})."""

    def __init__(self, work: Path, zones: dict[str, str], *, notify_port: int | None = None,
                 tsig: tuple[str, str, str] | None = None, journal: bool = False) -> None:
        require_tool("knotd", "knotc")
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.zones = zones
        self.conf = work / "knot.conf"
        self.proc: subprocess.Popen | None = None
        key = ""
        key_ref = ""
        if tsig is not None:
            name, algorithm, secret = tsig
            key = f"key:\n  - id: {name}\n    algorithm: {algorithm}\n    secret: {secret}\n"
            key_ref = f"    key: {name}\n"
        remote = notify = ""
        if notify_port is not None:
            remote = (f"remote:\n  - id: sec\n    address: 127.0.0.1@{notify_port}\n{key_ref}")
            notify = "    notify: sec\n"
        content = "changes" if journal else "none"
        load = "difference" if journal else "whole"
        conf = (f"server:\n  listen: 127.0.0.1@{self.port}\n  rundir: {work}\n"
                f"control:\n  listen: {work}/knot.sock\n"
                f"database:\n  storage: {work}\n"
                f"log:\n  - target: stderr\n    any: info\n{key}{remote}"
                f"acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\n{key_ref}"
                f"template:\n  - id: default\n    zonefile-sync: -1\n"
                f"    journal-content: {content}\n    zonefile-load: {load}\n"
                f"    semantic-checks: off\n"
                f"zone:\n")
        for origin in zones:
            conf += (f"  - domain: \"{origin}\"\n    file: \"{work}/{origin}.zone\"\n"
                     f"    acl: xfr\n{notify}")
        self.conf.write_text(conf)
        for origin, text in zones.items():
            self.write_zone(origin, text)
        self.log_path = work / "knotd.log"

    def write_zone(self, origin: str, text: str) -> None:
        (self.work / f"{origin}.zone").write_text(text)

    def start(self) -> Knot:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["knotd", "-c", str(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        origin = next(iter(self.zones))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"knotd exited:\n{self.output()}")
            if self.soa_serial(origin) is not None:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"knotd did not answer:\n{self.output()}")

    def soa_serial(self, origin: str) -> int | None:
        query = dns.message.make_query(origin + ".", "SOA")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            sock.sendto(query.to_wire(), ("127.0.0.1", self.port))
            try:
                response = dns.message.from_wire(sock.recv(65535))
            except OSError:
                return None
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        return None

    def publish(self, origin: str, text: str, serial: int) -> None:
        """Write a new version of the zone and have Knot load it (and NOTIFY)."""
        self.write_zone(origin, text)
        subprocess.run(["knotc", "-c", str(self.conf), "zone-reload", origin], check=True,
                       capture_output=True, timeout=10)
        deadline = time.monotonic() + 10
        while self.soa_serial(origin) != serial:
            if time.monotonic() > deadline:
                raise RuntimeError(f"knot did not load serial {serial}:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Answer:
    t: float
    outcome: str      # an address, "NXDOMAIN"/"SERVFAIL"/..., or "lost"


@dataclass
class QueryLoop:
    """Ask ``qname`` A at ``rate`` per second from a thread until stopped (bounded)."""

    addr: tuple[str, int]
    qname: str = "www.example.net."
    rate: float = 200.0
    timeout: float = 2.0
    max_seconds: float = 120.0
    answers: list[Answer] = field(default_factory=list)
    # Answers that came after their query was counted lost: (sent at, seconds late).
    # A loss with a late answer is a stalled server; without one, a dropped datagram.
    late: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> QueryLoop:
        self._thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        self._thread.join(timeout=self.max_seconds)
        return self.answers

    def _run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(self.timeout)
        sock.connect(self.addr)
        started = time.monotonic()
        period = 1.0 / self.rate
        lost: dict[int, tuple[float, float]] = {}   # query id -> (wall, monotonic) sent
        try:
            while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
                t0 = time.monotonic()
                sent_at = time.time()
                query = dns.message.make_query(self.qname, "A")
                sock.send(query.to_wire())
                outcome = "lost"
                try:
                    while True:
                        response = dns.message.from_wire(sock.recv(65535))
                        if response.id == query.id:
                            break
                        if response.id in lost:
                            wall, mono = lost.pop(response.id)
                            self.late.append((wall, time.monotonic() - mono))
                    if response.rcode() != dns.rcode.NOERROR:
                        outcome = dns.rcode.to_text(response.rcode())
                    else:
                        outcome = ",".join(rd.address for rrset in response.answer
                                           for rd in rrset) or "NODATA"
                except OSError:
                    lost[query.id] = (sent_at, t0)
                self.answers.append(Answer(time.time(), outcome))
                delay = period - (time.monotonic() - t0)
                if delay > 0:
                    time.sleep(delay)
        finally:
            sock.close()

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for answer in self.answers:
            out[answer.outcome] = out.get(answer.outcome, 0) + 1
        return out

    def first(self, outcome: str, after: float = 0.0) -> float | None:
        for answer in self.answers:
            if answer.t >= after and answer.outcome == outcome:
                return answer.t
        return None


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def events(state_dir: Path) -> list[dict]:
    path = state_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def transitions(state_dir: Path, zone: str) -> list[tuple[str | None, str | None, str]]:
    return [(e["from"], e["to"], e["cause"]) for e in events(state_dir)
            if e["zone"] == zone and e["kind"] == "transition"]


def start_seawall(tmp_path: Path, config: Path) -> SeawallProcess:
    return SeawallProcess(tmp_path, config=config).start()
