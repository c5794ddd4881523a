"""The axfr backend falls back to AXFR when its primary refuses IXFR (RFC 1995 §2:
a server may answer an IXFR it cannot serve with a full zone, or refuse it).

The primary is a small dnspython server in this test: it serves SOA (UDP and
TCP) and AXFR, and answers every IXFR with the rcode under test. Knot and NSD
answer an IXFR they have no history for with a full zone, which dnspython
accepts as an IXFR, so only a primary that refuses reaches the fallback.
"""

from __future__ import annotations

import asyncio
import logging
import socketserver
import threading
from collections.abc import Iterator

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from conftest import free_port
from seawall.backends.axfr import AxfrBackend
from seawall.config import BackendConfig, FailoverConfig

ZONE = "fallback.example."


def zone_text(serial: int, www: str) -> str:
    return (f"$ORIGIN {ZONE}\n$TTL 300\n"
            f"@ SOA ns1 hostmaster {serial} 3600 600 86400 300\n"
            f"@ NS ns1\nns1 A 192.0.2.1\nwww A {www}\n")


class RefusingPrimary:
    """SOA and AXFR from ``self.zone``; IXFR answered with ``ixfr_rcode``."""

    def __init__(self, ixfr_rcode: dns.rcode.Rcode) -> None:
        self.ixfr_rcode = ixfr_rcode
        self.zone = dns.zone.from_text(zone_text(1, "192.0.2.10"), ZONE, relativize=False)
        self.asked: list[str] = []      # the qtypes of the transfers asked for, in order
        self.port = free_port()
        primary = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(primary.answer(dns.message.from_wire(data))[0].to_wire(),
                            self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                size = int.from_bytes(self.request.recv(2), "big")
                data = b""
                while len(data) < size:
                    data += self.request.recv(size - len(data))
                for message in primary.answer(dns.message.from_wire(data)):
                    wire = message.to_wire(max_size=65535)
                    self.request.sendall(len(wire).to_bytes(2, "big") + wire)

        socketserver.ThreadingUDPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.servers = [socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp),
                        socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)]
        for server in self.servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def answer(self, query: dns.message.Message) -> list[dns.message.Message]:
        question = query.question[0]
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if question.rdtype == dns.rdatatype.IXFR:
            self.asked.append("IXFR")
            response.set_rcode(self.ixfr_rcode)
            return [response]
        soa = self.zone.find_rrset(self.zone.origin, dns.rdatatype.SOA)
        if question.rdtype == dns.rdatatype.AXFR:
            self.asked.append("AXFR")
            response.answer.append(soa)
            for name, rdataset in self.zone.iterate_rdatasets():
                if rdataset.rdtype != dns.rdatatype.SOA:
                    response.find_rrset(response.answer, name, rdataset.rdclass,
                                        rdataset.rdtype, create=True).update(rdataset)
            response.answer.append(soa)
            return [response]
        if question.rdtype == dns.rdatatype.SOA:
            response.answer.append(soa)
        return [response]

    def publish(self, serial: int, www: str) -> None:
        self.zone = dns.zone.from_text(zone_text(serial, www), ZONE, relativize=False)

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(params=[dns.rcode.REFUSED, dns.rcode.NOTIMP], ids=["REFUSED", "NOTIMP"])
def primary(request) -> Iterator[RefusingPrimary]:
    server = RefusingPrimary(request.param)
    yield server
    server.close()


def test_ixfr_refused_falls_back_to_axfr(primary: RefusingPrimary, caplog) -> None:
    backend = AxfrBackend(BackendConfig(type="axfr", primary=f"127.0.0.1:{primary.port}",
                                        zones=(ZONE,)),
                          FailoverConfig(probe_timeout=2.0))
    origin = dns.name.from_text(ZONE)
    first = asyncio.run(backend.look(origin))
    assert first.ok and first.version is not None and first.version.serial == 1, first
    assert primary.asked == ["AXFR"]      # no copy yet: a full transfer

    primary.publish(2, "192.0.2.20")
    with caplog.at_level(logging.INFO, logger="seawall"):
        second = asyncio.run(backend.look(origin))
    # The backend held serial 1, so it asked for the difference first; the
    # primary refused, and the zone came by AXFR instead.
    assert primary.asked == ["AXFR", "IXFR", "AXFR"]
    assert second.ok, second.error
    assert second.version is not None and second.version.serial == 2
    assert backend.transfers == [(ZONE, "axfr", 1), (ZONE, "axfr", 2)]
    fallback = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("ixfr refused, falling back to axfr")]
    assert len(fallback) == 1, caplog.text
    assert f"zone={ZONE}" in fallback[0]
    assert dns.rcode.to_text(primary.ixfr_rcode) in fallback[0]
    assert backend.copies[origin].find_rdataset(f"www.{ZONE}", "A")[0].address == "192.0.2.20"
