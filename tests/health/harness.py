"""A Seawall process with one health-checked RRset and its targets on loopback.

``www.hc.example A`` is served from pool ``main`` (127.0.0.2, 127.0.0.3)
with fallback ``backup`` (127.0.0.4); ``plain.hc.example A`` is not checked.
Targets are real listeners (:mod:`targets`); the server runs ``--workers 2``.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import dns.rcode

from conftest import ROOT, SeawallProcess, ask
from targets import Target, free_port_on

MAIN = ["127.0.0.2", "127.0.0.3"]
BACKUP = ["127.0.0.4"]
ADDRESSES = MAIN + BACKUP

ZONE = """$ORIGIN hc.example.
$TTL 60
@     SOA ns1 hostmaster 1 7200 3600 1209600 60
@     NS  ns1
ns1   A   192.0.2.53
www   A   127.0.0.2
www   A   127.0.0.3
plain A   192.0.2.80
"""

SIDE = """# health-checked answers of hc.example (see README, "Health-checked answers")
www:
  type: A
  dynamic:
    pools:
      main:
        values:
          - {{value: 127.0.0.2, weight: 1}}
          - {{value: 127.0.0.3, weight: 1}}
        fallback: backup
      backup:
        values: [{{value: 127.0.0.4}}]
    rules:
      - pool: main
  healthcheck:
    protocol: {protocol}
    port: {port}
    path: /health
    body: ok
    interval: {interval}s
    timeout: {timeout}s
    rise: {rise}
    fall: {fall}
    hold_down: {hold_down}s
"""


class Site:
    """The server, its zone files and the targets of one test."""

    def __init__(self, tmp_path: Path, *, protocol: str = "HTTP", interval: float = 0.5,
                 timeout: float = 0.4, rise: int = 2, fall: int = 2, hold_down: float = 0,
                 workers: int = 2, extra: str = "") -> None:
        self.tmp = tmp_path
        self.interval, self.rise, self.fall, self.hold_down = interval, rise, fall, hold_down
        self.port = free_port_on(ADDRESSES)
        kind = "tcp" if protocol == "TCP" else "http"
        self.targets = {a: Target(a, self.port, kind) for a in ADDRESSES}
        zones = tmp_path / "zones"
        zones.mkdir()
        (zones / "hc.example.zone").write_text(ZONE)
        (zones / "hc.example.health.conf").write_text(SIDE.format(
            protocol=protocol, port=self.port, interval=interval, timeout=timeout, rise=rise,
            fall=fall, hold_down=hold_down))
        self.state = tmp_path / "state"
        self.config = tmp_path / "seawall.yaml"
        self.config.write_text("listen: ['127.0.0.1:0']\nstate_dir: state\n"
                               f"workers: {workers}\n"
                               "failover: {require_emergency: false}\n" + extra)
        self.server = SeawallProcess(tmp_path, config=self.config,
                                     env={"PYTHONPATH": str(ROOT)})

    def __enter__(self) -> Site:
        for target in self.targets.values():
            target.start()
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self.server.proc
        self.server.stop()
        self.exit_code = proc.returncode if proc is not None else None
        print(f"server exit code {self.exit_code}")
        for target in self.targets.values():
            target.kill()

    # ------------------------------------------------------------ asking

    def answer(self, name: str = "www.hc.example") -> tuple[str, frozenset[str]]:
        """The rcode and the A addresses of one UDP query."""
        response = ask(self.server.addr, name, "A", timeout=2.0)
        addresses = frozenset(r.to_text() for rrset in response.answer for r in rrset
                              if rrset.rdtype == 1)
        return dns.rcode.to_text(response.rcode()), addresses

    def status(self) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.state / "control.sock"))
            sock.sendall(json.dumps({"version": 1, "command": "status"}).encode() + b"\n")
            answer = json.loads(sock.makefile("rb").readline())
        return answer["status"]

    def health(self) -> dict:
        return self.status()["health"]

    def target_status(self, address: str) -> dict:
        return next(t for t in self.health()["targets"] if t["address"] == address)

    def fault(self, text: str | None) -> None:
        path = self.state / "health-fault"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text + "\n")

    def watch(self, until, *, limit: float, every: float = 0.02) -> tuple[float | None, list]:
        """Ask until ``until(addresses)`` holds (at most ``limit`` s); the time it took and
        every (time, rcode, addresses) seen."""
        seen = []
        start = time.monotonic()
        while time.monotonic() - start < limit:
            rcode, addresses = self.answer()
            now = time.monotonic() - start
            seen.append((now, rcode, addresses))
            if until(addresses):
                return now, seen
            time.sleep(every)
        return None, seen


def bad(seen: list) -> list:
    """Answers that must never happen: not NOERROR, or no address."""
    return [s for s in seen if s[1] != "NOERROR" or not s[2]]
