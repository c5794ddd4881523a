"""The axfr backend with BIND 9 as the hidden primary: transfer, NOTIFY, IXFR, failover."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "failover"))

from conftest import SeawallProcess, ask, free_port, require_tool, wait_for  # noqa: E402
from failover_peers import EMERGENCY_WWW, LIVE_WWW, emergency_text, zone_text  # noqa: E402

pytestmark = pytest.mark.interop
ZONE = "example.net"


class Bind:
    """named -g as a primary with ixfr-from-differences, notifying Seawall."""

    def __init__(self, work: Path, text: str, notify_port: int) -> None:
        require_tool("named")
        work.mkdir(parents=True)
        self.work, self.port = work, free_port()
        (work / f"{ZONE}.zone").write_text(text)
        (work / "named.conf").write_text(
            f"options {{\n  directory \"{work}\";\n  pid-file \"{work}/named.pid\";\n"
            f"  listen-on port {self.port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n"
            f"  recursion no;\n  dnssec-validation no;\n  allow-transfer {{ 127.0.0.1; }};\n"
            f"  notify explicit;\n  also-notify {{ 127.0.0.1 port {notify_port}; }};\n"
            f"  check-names primary ignore;\n}};\ncontrols {{ }};\n"
            f"zone \"{ZONE}\" {{ type primary; file \"{work}/{ZONE}.zone\";"
            f" ixfr-from-differences yes; notify-delay 0; }};\n")
        self.log_path = work / "named.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Bind:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["named", "-g", "-c", str(self.work / "named.conf")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: self.serial() is not None, 15):
            raise RuntimeError(f"named did not answer:\n{self.log_path.read_text()}")
        return self

    def serial(self) -> int | None:
        query = dns.message.make_query(f"{ZONE}.", "SOA")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            sock.sendto(query.to_wire(), ("127.0.0.1", self.port))
            try:
                response = dns.message.from_wire(sock.recv(65535))
            except OSError:
                return None
        return next((r[0].serial for r in response.answer if r.rdtype == dns.rdatatype.SOA),
                    None)

    def publish(self, text: str, serial: int) -> None:
        (self.work / f"{ZONE}.zone").write_text(text)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        if not wait_for(lambda: self.serial() == serial, 10):
            raise RuntimeError(f"named did not load {serial}:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


def test_bind_primary_notify_ixfr_and_failover(tmp_path):
    port = free_port()
    bind = Bind(tmp_path / "bind", zone_text(ZONE, 1, hosts=500), port).start()
    (tmp_path / "emergency").mkdir()
    (tmp_path / "emergency" / f"{ZONE}.zone").write_text(emergency_text(ZONE))
    config = tmp_path / "seawall.yaml"
    config.write_text(
        f"listen: [\"127.0.0.1:{port}\"]\nstate_dir: state\nemergency_dir: emergency\n"
        f"backends:\n  - type: axfr\n    primary: \"127.0.0.1:{bind.port}\"\n"
        f"    zones: [{ZONE}]\n"
        # probes rarely, so the new serial must come by NOTIFY; one failure is enough
        # stale_for 0s: no last good data is served, the emergency zone at once
        "failover: {probe_interval: 3s, probe_timeout: 0.5s, fail_after: 1,"
        " recover_after: 3, stale_for: 0s}\n")
    try:
        with SeawallProcess(tmp_path, config=config) as server:
            assert ask(server.addr, f"www.{ZONE}.").answer[0][0].address == LIVE_WWW
            bind.publish(zone_text(ZONE, 2, hosts=500, extra="new A 192.0.2.77\n"), 2)
            published = time.monotonic()
            assert wait_for(lambda: ask(server.addr, f"{ZONE}.", "SOA").answer[0][0].serial
                            == 2, 2), server.output()
            print(f"\n[BIND NOTIFY] serial 2 served {time.monotonic() - published:.3f}s "
                  "after BIND loaded it")
            assert ask(server.addr, f"new.{ZONE}.").answer[0][0].address == "192.0.2.77"
            assert "how=ixfr serial=2" in server.output()
            assert "notify: zone=example.net." in server.output()
            bind.kill()
            assert wait_for(lambda: ask(server.addr, f"www.{ZONE}.").answer[0][0].address
                            == EMERGENCY_WWW, 10), server.output()
    finally:
        bind.kill()
