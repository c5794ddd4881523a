"""Inputs found by the coverage-guided fuzzer (bench/fuzz/fuzz_responder.py), kept."""

from __future__ import annotations

import dns.rcode
import dnslib
import pytest

from seawall.dns.responder import Responder
from seawall.zones.loader import load_directory
from seawall.zones.zoneset import ZoneSet

from conftest import ROOT

FOUND = [
    # UPDATE (opcode 5) with an OPT and class 17 in its zone section: NOTIMP, header echoed.
    "e4892f000001000000000001046e6f7065076578616d706c6503636f6d0000ff00110000410000010000000000",
    "8cf72a00000100000000000101780461707073076578616d707c6503636f6d00000f00010000290000290080000000",
]


@pytest.fixture(scope="module")
def responder():
    return Responder(ZoneSet(z.zone for z in load_directory(ROOT / "zones") if z.zone))


@pytest.mark.parametrize("hexed", FOUND)
def test_update_opcodes_get_notimp_with_a_readable_header(responder, hexed):
    wire = bytes.fromhex(hexed)
    for transport in ("udp", "tcp"):
        response = responder.respond(wire, transport, ("127.0.0.1", 1))
        assert response is not None and response[:2] == wire[:2]
        assert response[3] & 0x0F == dns.rcode.NOTIMP
        assert (response[2] >> 3) & 0x0F == 5
        dnslib.DNSRecord.parse(response)
