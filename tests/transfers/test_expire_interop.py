"""EDNS EXPIRE (RFC 7314) from a real server, asked with kdig, dig and dnspython.

Two cases: zones served from files (Seawall is the primary: the SOA EXPIRE,
as Knot DNS answers as a primary for the same zone file), and a zone pulled
from a hidden Knot primary (Seawall is its secondary: the time left counts
down from the primary's last confirmation, and keeps counting down while the
primary is stopped and the zone is served stale).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import dns.edns
import dns.message
import dns.query
import dns.rdatatype
import pytest

from conftest import ROOT, SeawallProcess, decode_twice, exchange_raw, free_port, \
    require_tool, wait_for
from failover.failover_peers import Knot, emergency_text, zone_text
from secondaries import Knot as KnotSecondary
from transfer_setup import ZONE, start_primary

pytestmark = pytest.mark.interop
EXPIRE = 9


def expire_query(qname: str, qtype: str = "SOA", *, expire: bool = True) -> dns.message.Message:
    options = [dns.edns.GenericOption(EXPIRE, b"")] if expire else []
    return dns.message.make_query(qname, qtype, use_edns=0, options=options)


def expire_of(message: dns.message.Message) -> int | None:
    values = [int.from_bytes(o.to_wire(), "big") for o in message.options if o.otype == EXPIRE]
    return values[0] if values else None


def ask_expire(addr: tuple[str, int], qname: str, qtype: str = "SOA", *, tcp: bool = False,
               expire: bool = True) -> int | None:
    raw = exchange_raw(addr, expire_query(qname, qtype, expire=expire).to_wire(), tcp=tcp)
    assert raw is not None, f"no answer from {addr}"
    return expire_of(decode_twice(raw))   # dnspython and dnslib both read it


def transfer_expires(addr: tuple[str, int], qname: str, qtype: str = "AXFR", *,
                     expire: bool = True) -> list[int | None]:
    """The EXPIRE value of each message of a transfer (None: no option in that message)."""
    query = expire_query(qname, qtype, expire=expire)
    out = []
    with socket.create_connection(addr, timeout=10) as sock:
        dns.query.send_tcp(sock, query)
        soas = 0
        while soas < 2:
            response, _ = dns.query.receive_tcp(sock, expiration=time.time() + 10,
                                                 one_rr_per_rrset=True)
            out.append(expire_of(response))
            soas += sum(len(r) for r in response.answer if r.rdtype == dns.rdatatype.SOA)
    return out


def kdig_expire(addr: tuple[str, int], qname: str, *extra: str) -> int | None:
    require_tool("kdig")
    out = subprocess.run(["kdig", f"@{addr[0]}", "-p", str(addr[1]), qname, "SOA", "+expire",
                          "+norec", *extra], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r";; EXPIRE: (\d+)", out)
    return int(found.group(1)) if found else None


def dig_expire(addr: tuple[str, int], qname: str) -> int | None:
    require_tool("dig")
    out = subprocess.run(["dig", f"@{addr[0]}", "-p", str(addr[1]), qname, "SOA", "+expire",
                          "+norec"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"; EXPIRE: (\d+)", out)
    return int(found.group(1)) if found else None


# ------------------------------------------------------------ files: primary

def test_files_zone_answers_its_soa_expire_as_knot_does_as_primary(tmp_path: Path) -> None:
    server = start_primary(tmp_path, "  allow:\n    - {address: [\"127.0.0.0/8\"]}\n")
    knot = Knot(tmp_path / "knot", {ZONE.rstrip("."): (ROOT / "zones" / "example.com.zone")
                                    .read_text()})
    try:
        knot.start()
        knot_addr = ("127.0.0.1", knot.port)
        soa = dns.message.make_query(ZONE, "SOA")
        raw = exchange_raw(server.addr, soa.to_wire())
        assert raw is not None
        field = decode_twice(raw).answer[0][0].expire
        # Knot DNS, primary for the same file, answers the SOA EXPIRE field (RFC 7314).
        assert ask_expire(knot_addr, ZONE) == field
        for tcp in (False, True):
            assert ask_expire(server.addr, ZONE, tcp=tcp) == field
        assert kdig_expire(server.addr, ZONE) == field
        assert kdig_expire(server.addr, ZONE, "+tcp") == field
        assert dig_expire(server.addr, ZONE) == field
        # Only when asked, and only on the refresh query and transfers.
        assert ask_expire(server.addr, ZONE, expire=False) is None
        assert ask_expire(server.addr, "www." + ZONE, "A") is None
        # Every message of a transfer carries it when asked, as Knot's do.
        messages = transfer_expires(server.addr, ZONE)
        assert messages and all(value == field for value in messages)
        assert set(transfer_expires(knot_addr, ZONE)) == {field}
        assert set(transfer_expires(server.addr, ZONE, expire=False)) == {None}
        ixfr = transfer_expires(server.addr, ZONE, "IXFR")
        assert ixfr and set(ixfr) == {field}
    finally:
        knot.kill()
        server.stop()


# ------------------------------------------------ axfr backend: a secondary

@pytest.mark.parametrize("workers", ["1", "2"])
def test_axfr_zone_counts_down_from_the_last_confirmation(tmp_path: Path, workers: str) -> None:
    origin = "example.net"
    knot = Knot(tmp_path / "knot", {origin: zone_text(origin, 1, hosts=50)})
    knot.start()
    port = free_port()
    (tmp_path / "emergency").mkdir()
    (tmp_path / "emergency" / f"{origin}.zone").write_text(emergency_text(origin))
    config = tmp_path / "seawall.yaml"
    config.write_text(
        f"listen: [\"127.0.0.1:{port}\"]\nstate_dir: state\nemergency_dir: emergency\n"
        f"workers: {workers}\n"
        f"transfers:\n  allow:\n    - {{address: [\"127.0.0.0/8\"]}}\n"
        f"backends:\n  - type: axfr\n    primary: \"127.0.0.1:{knot.port}\"\n"
        f"    zones: [{origin}]\n"
        f"failover:\n  probe_interval: 0.3s\n  probe_timeout: 0.3s\n  fail_after: 2\n"
        f"  recover_after: 2\n  startup_wait: 3s\n")
    server = SeawallProcess(tmp_path, config=config).start()
    qname = origin + "."
    field = 1209600   # the SOA EXPIRE of zone_text
    try:
        assert wait_for(lambda: ask_expire(server.addr, qname) is not None, 10)
        # Live: probed every 0.3 s, so within a second or two of the full EXPIRE.
        live = ask_expire(server.addr, qname)
        assert live is not None and field - 2 <= live <= field
        assert kdig_expire(server.addr, qname) is not None
        assert field - 2 <= kdig_expire(server.addr, qname) <= field   # type: ignore[operator]
        # The primary hangs: nothing confirms the copy any more, it counts down
        # (live, then stale after fail_after failed probes).
        knot.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        time.sleep(4)
        first = ask_expire(server.addr, qname)
        first_at = time.monotonic()
        time.sleep(3)
        second = ask_expire(server.addr, qname, tcp=True)
        second_at = time.monotonic()
        assert first is not None and second is not None
        assert field - (first_at - stopped) - 2 <= first <= field - 3
        assert first - (second_at - first_at) - 2 <= second <= first - 2
        # A transfer from us passes on the same countdown (RFC 7314).
        messages = transfer_expires(server.addr, qname)
        assert messages and all(v is not None and v <= second for v in messages)
        # A Knot secondary of ours times its expiry by it: its copy is as old
        # as ours, not new from the moment it took it.
        with KnotSecondary(tmp_path / "downstream", server.addr, [qname]) as downstream:
            assert wait_for(lambda: downstream.serial(qname) is not None, 15)
            theirs = ask_expire(("127.0.0.1", downstream.port), qname)
            ours = ask_expire(server.addr, qname)
            assert theirs is not None and ours is not None
            assert ours - 2 <= theirs <= ours + 1 and theirs <= field - 6
        # The primary is back: confirmed again, the full EXPIRE again.
        knot.signal(signal.SIGCONT)
        assert wait_for(lambda: (ask_expire(server.addr, qname) or 0) >= field - 2, 15)
    finally:
        knot.signal(signal.SIGCONT)
        knot.kill()
        server.stop()
