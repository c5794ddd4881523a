"""Reloads, failover switches and force/release every 100 ms under a bounded load.

A few thousand queries a second over UDP and TCP while the served data keeps
changing: no query times out, none gets SERVFAIL, and every answer is one of
the versions that could be served at that moment (live v1, live v2, emergency).
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import dns.message
import dns.rcode

from conftest import ROOT, SeawallProcess, decode_twice, recv_exact
from seawall.failover.control_client import ControlClient

DURATION = 6.0
VERSIONS = {"192.0.2.80", "192.0.2.81", "192.0.2.99"}   # live v1, live v2, emergency
NAMES = [("www.example.com.", "A"), ("api.example.com.", "A"), ("nope.example.com.", "A"),
         ("x.apps.example.com.", "A"), ("example.com.", "SOA")]


class Load:
    """Sequential query loops (one UDP, one TCP) that record every outcome."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.deadline = time.monotonic() + DURATION
        self.sent = self.timeouts = self.servfail = 0
        self.unexpected: list[str] = []
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def check(self, wire: bytes | None, qname: str) -> None:
        with self.lock:
            self.sent += 1
            if wire is None:
                self.timeouts += 1
                return
            message = decode_twice(wire)
            if message.rcode() == dns.rcode.SERVFAIL:
                self.servfail += 1
            addresses = {rd.address for rrset in message.answer for rd in rrset
                         if hasattr(rd, "address")}
            if qname in ("www.example.com.", "api.example.com.") and \
                    not (addresses and addresses <= VERSIONS):
                self.unexpected.append(message.to_text())
            self.seen |= addresses & VERSIONS

    def udp(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            i = 0
            while time.monotonic() < self.deadline:
                qname, qtype = NAMES[i % len(NAMES)]
                i += 1
                wire = dns.message.make_query(qname, qtype).to_wire()
                sock.sendto(wire, self.addr)
                try:
                    reply = sock.recv(65535)
                    while reply[:2] != wire[:2]:
                        reply = sock.recv(65535)
                except socket.timeout:
                    reply = None
                self.check(reply, qname)

    def tcp(self) -> None:
        with socket.create_connection(self.addr, timeout=2.0) as sock:
            i = 0
            while time.monotonic() < self.deadline:
                batch = [NAMES[(i + k) % len(NAMES)] for k in range(4)]
                i += 4
                wires = [dns.message.make_query(q, t).to_wire() for q, t in batch]
                sock.sendall(b"".join(len(w).to_bytes(2, "big") + w for w in wires))
                for (qname, _), _wire in zip(batch, wires):
                    try:
                        size = int.from_bytes(recv_exact(sock, 2), "big")
                        self.check(recv_exact(sock, size), qname)
                    except (socket.timeout, EOFError):
                        self.check(None, qname)


def test_no_query_lost_while_everything_changes(tmp_path, zones_dir):
    state = tmp_path / "state"
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\nstate_dir: {state}\n"
                      "tcp_idle_timeout: 30s\n"
                      "failover: {probe_interval: 0.2s, fail_after: 2, recover_after: 2}\n")
    live = zones_dir / "example.com.zone"
    original = live.read_text()
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        control = ControlClient(state_dir=state)
        load = Load(server.addr)
        workers = [threading.Thread(target=load.udp), threading.Thread(target=load.tcp)]
        for worker in workers:
            worker.start()
        serial, flips, reloads = 2026112701, 0, 0
        while time.monotonic() < load.deadline - 0.3:
            control.call("force", mode="emergency", zones=["example.com."],
                         reason="changes under load")
            time.sleep(0.1)
            control.call("release", zones=["example.com."])
            time.sleep(0.1)
            flips += 1
            if flips % 5 == 0:  # a new live version every second: reload by SIGHUP
                serial += 1
                www = "192.0.2.81" if reloads % 2 == 0 else "192.0.2.80"
                live.write_text(original.replace("2026112701", str(serial))
                                .replace("www         A     192.0.2.80", f"www A {www}"))
                server.signal(signal.SIGHUP)
                reloads += 1
        for worker in workers:
            worker.join(timeout=30)
        assert load.sent > 2000, load.sent
        assert load.timeouts == 0
        assert load.servfail == 0
        assert not load.unexpected, load.unexpected[:3]
        # (each force/release answers once the workers serve it: a few fewer fit)
        assert flips >= 12 and reloads >= 2
        # The changes really happened under the load: every version was served.
        assert load.seen == VERSIONS, load.seen
