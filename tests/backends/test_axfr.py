"""The axfr backend against Knot: NOTIFY, IXFR and its AXFR fallback, TSIG."""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.tsig
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "failover"))

from conftest import SeawallProcess, ask, exchange, free_port, wait_for  # noqa: E402
from failover_peers import (EMERGENCY_WWW, LIVE_WWW, Knot, emergency_text, events,  # noqa: E402
                            zone_text)
from seawall.backends.axfr import AxfrBackend  # noqa: E402
from seawall.config import BackendConfig, FailoverConfig, TsigKey  # noqa: E402

pytestmark = pytest.mark.interop
ZONE = "example.net"
SECRET = base64.b64encode(b"seawall-test-secret-0123456789ab").decode()
WRONG = base64.b64encode(b"not-the-secret-0123456789abcdefg").decode()
KEY = ("xfr-key", "hmac-sha256", SECRET)


def serve(tmp_path: Path, knot: Knot, port: int, *, key=None, probe_interval: str = "30s",
          extra: str = "") -> SeawallProcess:
    (tmp_path / "emergency").mkdir(exist_ok=True)
    (tmp_path / "emergency" / f"{ZONE}.zone").write_text(emergency_text(ZONE))
    tsig = (f"    tsig: {{name: {key[0]}, algorithm: {key[1]}, secret: \"{key[2]}\"}}\n"
            if key else "")
    config = tmp_path / "seawall.yaml"
    config.write_text(
        f"listen: [\"127.0.0.1:{port}\"]\nstate_dir: state\nemergency_dir: emergency\n"
        f"backends:\n  - type: axfr\n    primary: \"127.0.0.1:{knot.port}\"\n"
        f"    zones: [{ZONE}]\n{tsig}{extra}"
        f"failover:\n  probe_interval: {probe_interval}\n  probe_timeout: 0.5s\n"
        f"  startup_wait: 3s\n")
    return SeawallProcess(tmp_path, config=config)


def serial(server: SeawallProcess) -> int:
    return ask(server.addr, f"{ZONE}.", "SOA").answer[0][0].serial


def test_notify_from_primary_triggers_transfer_within_a_second(tmp_path):
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 1)}, notify_port=port).start()
    try:
        with serve(tmp_path, knot, port) as server:
            assert serial(server) == 1
            knot.publish(ZONE, zone_text(ZONE, 2, www="192.0.2.81"), 2)
            published = time.monotonic()
            assert wait_for(lambda: serial(server) == 2, 5), server.output()
            took = time.monotonic() - published
            print(f"\n[NOTIFY] primary has serial 2 -> Seawall serves it: {took:.3f}s")
            assert took < 1.0
            assert ask(server.addr, f"www.{ZONE}.").answer[0][0].address == "192.0.2.81"
            assert "notify: zone=example.net." in server.output()
    finally:
        knot.kill()


def test_ixfr_when_the_primary_keeps_a_journal(tmp_path):
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 1)}, notify_port=port,
                journal=True).start()
    try:
        with serve(tmp_path, knot, port) as server:
            knot.publish(ZONE, zone_text(ZONE, 2, extra="new A 192.0.2.77\n"), 2)
            assert wait_for(lambda: serial(server) == 2, 5), server.output()
            assert ask(server.addr, f"new.{ZONE}.").answer[0][0].address == "192.0.2.77"
            assert "how=ixfr serial=2" in server.output()
    finally:
        knot.kill()


def test_axfr_fallback_when_the_primary_has_no_history(tmp_path):
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 1)}, notify_port=port).start()
    try:
        with serve(tmp_path, knot, port) as server:
            knot.publish(ZONE, zone_text(ZONE, 2, extra="new A 192.0.2.77\n"), 2)
            assert wait_for(lambda: serial(server) == 2, 5), server.output()
            assert ask(server.addr, f"new.{ZONE}.").answer[0][0].address == "192.0.2.77"
    finally:
        knot.kill()


def test_probe_picks_up_a_new_serial_without_notify(tmp_path):
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 1)}).start()
    try:
        with serve(tmp_path, knot, port, probe_interval="0.3s") as server:
            knot.publish(ZONE, zone_text(ZONE, 2), 2)
            assert wait_for(lambda: serial(server) == 2, 3), server.output()
    finally:
        knot.kill()


def test_refresh_timer_checks_the_primary(tmp_path):
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 1)}).start()
    try:
        with serve(tmp_path, knot, port, probe_interval="1h", extra="    refresh: 0.5s\n") \
                as server:
            knot.publish(ZONE, zone_text(ZONE, 2), 2)
            assert wait_for(lambda: serial(server) == 2, 3), server.output()
    finally:
        knot.kill()


def test_tsig_signed_transfer_and_notify(tmp_path):
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 1)}, notify_port=port,
                tsig=KEY).start()
    try:
        with serve(tmp_path, knot, port, key=KEY) as server:
            assert serial(server) == 1
            assert ask(server.addr, f"www.{ZONE}.").answer[0][0].address == LIVE_WWW
            knot.publish(ZONE, zone_text(ZONE, 2), 2)
            assert wait_for(lambda: serial(server) == 2, 2), server.output()
            # an unsigned NOTIFY, even from the primary's address, is refused
            notify = dns.message.make_query(f"{ZONE}.", "SOA")
            notify.set_opcode(dns.opcode.NOTIFY)
            notify.flags |= dns.flags.AA
            response = exchange(server.addr, notify.to_wire())
            assert response.rcode() == dns.rcode.NOTAUTH
            # RFC 8945 §5.2: a TSIG that does not verify: NOTAUTH with the TSIG error
            for key, error in ((dns.tsig.Key(KEY[0], WRONG, KEY[1]), 16),      # BADSIG
                               (dns.tsig.Key("other-key", SECRET, KEY[1]), 17)):  # BADKEY
                bad = dns.message.make_query(f"{ZONE}.", "SOA")
                bad.set_opcode(dns.opcode.NOTIFY)
                bad.flags |= dns.flags.AA
                bad.use_tsig(key)
                refused = exchange_unverified(server.addr, bad)
                assert refused.rcode() == dns.rcode.NOTAUTH
                assert refused.tsig is not None and refused.tsig[0].error == error
            # a signed one is acknowledged, signed
            notify.use_tsig(dns.tsig.Key(KEY[0], KEY[2], KEY[1]))
            wire = exchange_signed(server.addr, notify)
            assert wire.rcode() == dns.rcode.NOERROR and wire.had_tsig
        # Knot accepted our TSIG-signed acknowledgement of its NOTIFY for serial 2
        assert f"notify, outgoing, remote 127.0.0.1@{port}, serial 2" in knot.output()
        last = knot.output().split(f"remote 127.0.0.1@{port}, serial 2")[-1]
        assert "failed" not in last
    finally:
        knot.kill()


def exchange_unverified(addr, message: dns.message.Message) -> dns.message.Message:
    """The answer to ``message`` with its TSIG record read, not verified."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(message.to_wire(), addr)
        raw = sock.recv(65535)
    return dns.message.from_wire(raw, keyring=False)


def exchange_signed(addr, message: dns.message.Message) -> dns.message.Message:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(message.to_wire(), addr)
        raw = sock.recv(65535)
    return dns.message.from_wire(raw, keyring=message.keyring, request_mac=message.mac)


def test_wrong_tsig_key_is_a_failure(tmp_path):
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 1)}, tsig=KEY).start()
    try:
        with serve(tmp_path, knot, port, key=(KEY[0], KEY[1], WRONG)) as server:
            assert ask(server.addr, f"www.{ZONE}.").answer[0][0].address == EMERGENCY_WWW
            first = [e for e in events(tmp_path / "state") if e["kind"] == "transition"][0]
            assert first["to"] == "emergency" and first["cause"] == "startup"
            assert "SOA query to 127.0.0.1" in first["reason"], first
    finally:
        knot.kill()


def test_notify_from_another_address_is_refused():
    backend = AxfrBackend(BackendConfig(type="axfr", primary="127.0.0.1:5300", zones=(ZONE,)),
                          FailoverConfig())
    query = type("Q", (), {"qname": dns.name.from_text(ZONE)})()
    assert backend.on_notify(query, ("192.0.2.1", 53), b"") == dns.rcode.REFUSED
    assert backend.on_notify(query, ("127.0.0.1", 5300), b"") == dns.rcode.NOERROR
    keyed = AxfrBackend(BackendConfig(type="axfr", primary="127.0.0.1:5300", zones=(ZONE,),
                                      tsig=TsigKey("k", "hmac-sha256", SECRET)),
                        FailoverConfig())
    unsigned = dns.message.make_query(f"{ZONE}.", "SOA")
    unsigned.set_opcode(dns.opcode.NOTIFY)
    assert keyed.on_notify(query, ("127.0.0.1", 1), unsigned.to_wire()) == dns.rcode.NOTAUTH


def test_notify_for_a_zone_without_axfr_backend_is_refused(seawall):
    notify = dns.message.make_query("example.com.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    assert exchange(seawall.addr, notify.to_wire()).rcode() == dns.rcode.REFUSED


def test_a_zone_belongs_to_one_backend(tmp_path):
    """A files backend holding a zone that the axfr backend declares does not fight it."""
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 7)}).start()
    files = tmp_path / "zones"
    files.mkdir()
    (files / f"{ZONE}.zone").write_text(zone_text(ZONE, 99, hosts=3))
    try:
        with serve(tmp_path, knot, port, probe_interval="0.2s",
                   extra="  - type: files\n    path: zones\n") as server:
            time.sleep(0.6)
            assert serial(server) == 7
            assert "zone ignored: zone=example.net. backend=files:" in server.output()
    finally:
        knot.kill()
