"""The responder (bytes in, bytes out) on arbitrary input.

STYLE, on the wire: short header → drop; unparsable → FORMERR; our bug →
SERVFAIL. So for any input the responder must not raise, and a SERVFAIL
means a bug: these properties feed it mutated and random messages.
"""

from __future__ import annotations

import os

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dnslib
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import decode_twice, zone_from_text
from seawall.dns.responder import TCP, UDP, Responder
from seawall.zones.zoneset import ZoneSet

ZONE = """$TTL 3600
@        SOA   ns1 hostmaster 1 7200 3600 1209600 300
@        NS    ns1
ns1      A     192.0.2.53
www      A     192.0.2.80
alias    CNAME www
*.wild   MX    10 www
deleg    NS    ns1.deleg
ns1.deleg A    192.0.2.201
dn       DNAME example.test.
"""

QNAMES = ["www.example.test.", "alias.example.test.", "x.wild.example.test.",
          "a.deleg.example.test.", "www.dn.example.test.", "nope.example.test.",
          "example.org.", "example.test."]
QTYPES = ["A", "AAAA", "MX", "NS", "SOA", "ANY", "TXT", "DS", "CNAME", "DNAME"]


@pytest.fixture(scope="module")
def responder() -> Responder:
    return Responder(ZoneSet([zone_from_text("example.test.", ZONE)]))


def check_response(query: bytes, response: bytes | None) -> None:
    if response is None:
        return
    if (response[2] >> 3) & 0xF == 5:
        # dnspython reads an UPDATE as RFC 2136 sections and refuses a zone
        # section that is not SOA; check the echo of any question as a QUERY.
        response = response[:2] + bytes([response[2] & 0x87]) + response[3:]
    try:
        dnslib.DNSRecord.parse(query)
    except Exception:
        # dnslib cannot read some legal names (labels that are not UTF-8); when it
        # cannot read the question it cannot read the echo of it either.
        message = dns.message.from_wire(response)
    else:
        message = decode_twice(response)
    assert message.rcode() != dns.rcode.SERVFAIL, f"SERVFAIL for {query.hex()}"
    assert message.flags & dns.flags.QR
    assert response[:2] == query[:2]


valid = st.builds(
    lambda qname, qtype, edns, dnssec, payload, qid: dns.message.make_query(
        qname, qtype, use_edns=edns, want_dnssec=dnssec, payload=payload, id=qid).to_wire(),
    st.sampled_from(QNAMES), st.sampled_from(QTYPES), st.sampled_from([False, 0]),
    st.booleans(), st.integers(0, 65535), st.integers(0, 65535))


@st.composite
def mutated(draw) -> bytes:
    wire = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and wire:
            index = draw(st.integers(0, len(wire) - 1))
            wire[index] = draw(st.integers(0, 255))
        elif action == "cut":
            del wire[draw(st.integers(0, len(wire))):]
        else:
            index = draw(st.integers(0, len(wire)))
            wire[index:index] = draw(st.binary(min_size=1, max_size=8))
    return bytes(wire)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(wire=st.one_of(mutated(), st.binary(max_size=64)), tcp=st.booleans())
@example(wire=bytes.fromhex("123400000001000000000000") + b"\x00\x00\x01\x00\x01", tcp=False)
def test_never_raises_and_never_servfails(responder, wire, tcp):
    check_response(wire, responder.respond(wire, TCP if tcp else UDP, ("127.0.0.1", 5300)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire=valid)
def test_valid_queries_answer_with_the_question_echoed(responder, wire):
    for _ in range(2):  # the second answer comes from the cache
        response = responder.respond(wire, UDP)
        assert response is not None
        message = decode_twice(response)
        assert message.rcode() != dns.rcode.SERVFAIL
        question_end = 12 + len(dns.message.from_wire(wire).question[0].name.to_wire()) + 4
        assert response[12:question_end] == wire[12:question_end]


def test_cache_does_not_leak_between_edns_and_plain(responder):
    """The cache key includes the OPT: an EDNS answer is not replayed to a plain query."""
    plain = dns.message.make_query("www.example.test.", "A", use_edns=False).to_wire()
    with_edns = dns.message.make_query("www.example.test.", "A", use_edns=0).to_wire()
    for wire, edns in ((with_edns, 0), (plain, -1), (with_edns, 0), (plain, -1)):
        assert decode_twice(responder.respond(wire, UDP)).edns == edns


@pytest.mark.parametrize("first, second", [("HTTPS", "TYPE97"), ("TYPE90", "TYPE122"),
                                           ("TYPE97", "HTTPS")])
def test_cache_keeps_types_apart_that_differ_by_an_ascii_case_bit(first, second):
    """Only the name is case-insensitive (RFC 4343); QTYPE 65 is not QTYPE 97."""
    zone = zone_from_text("example.test.", ZONE + 'www HTTPS 1 . alpn="h2"\n'
                                                  "www TYPE97 \\# 4 01020304\n")
    responder = Responder(ZoneSet([zone]))
    for qtype in (first, second, first, second):
        wire = dns.message.make_query("WWW.example.test.", qtype).to_wire()
        message = decode_twice(responder.respond(wire, UDP))
        assert message.question[0].rdtype == dns.rdatatype.from_text(qtype)
        assert [r.rdtype for r in message.answer] in ([], [dns.rdatatype.from_text(qtype)])
