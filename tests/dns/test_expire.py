"""EDNS EXPIRE (RFC 7314) in the answer path: the option, which answers get it, the caches."""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rdatatype
import dnslib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import decode_twice, zone_from_text
from seawall.dns.expire import OPTION_CODE, add_to_response, option
from seawall.dns.query import parse_query
from seawall.dns.responder import Responder, UDP, TCP
from seawall.zones.zoneset import ZoneSet

ZONE = """$ORIGIN expire.test.
$TTL 300
@ SOA ns1 hostmaster 7 3600 600 864000 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
"""
SOA_EXPIRE = 864000


def responder(expire_of=None) -> Responder:
    zone = zone_from_text("expire.test.", ZONE)
    served = Responder(ZoneSet().replace({zone.origin: zone}))
    served.expire_of = expire_of
    return served


def query(qname: str, qtype: str, *, expire: bool = True, edns: bool = True,
          payload: int = 1232, qid: int = 4242) -> bytes:
    options = [dns.edns.GenericOption(OPTION_CODE, b"")] if expire else []
    message = dns.message.make_query(qname, qtype, use_edns=0 if edns else False,
                                     payload=payload, options=options)
    message.id = qid
    return message.to_wire()


def expire_in(wire: bytes) -> int | None:
    """The EXPIRE seconds of a response, read by dnspython and checked with dnslib."""
    message = decode_twice(wire)
    values = [int.from_bytes(o.to_wire(), "big") for o in message.options
              if o.otype == OPTION_CODE]
    record = dnslib.DNSRecord.parse(wire)
    assert len([rr for rr in record.ar if rr.rtype == 41]) == (1 if message.edns >= 0 else 0)
    opts = [o for rr in record.ar if rr.rtype == 41 for o in rr.rdata]
    dnslib_values = [int.from_bytes(o.data, "big") for o in opts if o.code == OPTION_CODE]
    assert dnslib_values == values, (dnslib_values, values)
    assert len(values) <= 1
    return values[0] if values else None


# ------------------------------------------------------------------ the option

@given(st.integers(min_value=-(2 ** 40), max_value=2 ** 40))
def test_option_is_code_9_length_4_clamped_to_32_bits(seconds: int) -> None:
    wire = option(seconds)
    assert wire[:4] == b"\x00\x09\x00\x04" and len(wire) == 8
    assert int.from_bytes(wire[4:], "big") == min(max(seconds, 0), 0xFFFFFFFF)
    # dnspython reads it back as the EXPIRE option with the same 4 octets.
    parsed = dns.edns.option_from_wire(OPTION_CODE, wire, 4, 4)
    assert parsed.to_wire() == wire[4:]


@given(st.integers(min_value=0, max_value=0xFFFFFFFF), st.booleans())
def test_added_option_round_trips_through_both_decoders(seconds: int, tcp: bool) -> None:
    plain = responder().respond(query("expire.test.", "SOA", expire=False), TCP if tcp else UDP)
    assert plain is not None
    with_option = add_to_response(plain, seconds, 65535)
    assert expire_in(with_option) == seconds
    # Only the OPT's RDLENGTH and the option itself are new.
    assert with_option[:len(plain) - 2] == plain[:-2] and len(with_option) == len(plain) + 8


def test_option_left_out_when_it_does_not_fit() -> None:
    plain = responder().respond(query("expire.test.", "SOA", expire=False), UDP)
    assert add_to_response(plain, 5, len(plain) + 7) == plain
    assert expire_in(add_to_response(plain, 5, len(plain) + 8)) == 5


def test_query_flag_is_the_option_anywhere_in_the_opt() -> None:
    message = dns.message.make_query("expire.test.", "SOA", use_edns=0, options=[
        dns.edns.GenericOption(10, b"12345678"), dns.edns.GenericOption(OPTION_CODE, b"")])
    assert parse_query(message.to_wire()).expire
    assert not parse_query(query("expire.test.", "SOA", expire=False)).expire
    assert not parse_query(query("expire.test.", "SOA", expire=False, edns=False)).expire


# ------------------------------------------------------- which answers get it

@pytest.mark.parametrize("transport", [UDP, TCP])
@pytest.mark.parametrize("qname, qtype, expected", [
    ("expire.test.", "SOA", SOA_EXPIRE),        # the refresh query (RFC 1034 §4.3.5)
    ("EXPIRE.Test.", "SOA", SOA_EXPIRE),        # letter case does not matter
    ("www.expire.test.", "SOA", None),          # an SOA query below the apex: NODATA
    ("nope.expire.test.", "SOA", None),         # NXDOMAIN
    ("www.expire.test.", "A", None),            # other types: never
    ("expire.test.", "NS", None),
    ("other.test.", "SOA", None),               # not ours: REFUSED
])
def test_which_answers_carry_expire(qname: str, qtype: str, expected: int | None,
                                    transport: str) -> None:
    wire = responder().respond(query(qname, qtype), transport)
    assert wire is not None
    assert expire_in(wire) == expected


def test_no_option_without_edns_or_without_asking() -> None:
    served = responder()
    assert expire_in(served.respond(query("expire.test.", "SOA", expire=False), UDP)) is None
    assert expire_in(served.respond(query("expire.test.", "SOA", expire=False, edns=False),
                                    UDP)) is None


def test_value_comes_from_the_expire_source() -> None:
    seen = []

    def source(zone):
        seen.append(zone.origin.to_text())
        return 1234

    wire = responder(source).respond(query("expire.test.", "SOA"), UDP)
    assert expire_in(wire) == 1234 and seen == ["expire.test."]


def test_answer_otherwise_unchanged_by_the_option() -> None:
    """The records and flags are those of the same query without the option."""
    plain = decode_twice(responder().respond(query("expire.test.", "SOA", expire=False), UDP))
    asked = decode_twice(responder().respond(query("expire.test.", "SOA"), UDP))
    assert asked.flags == plain.flags and asked.answer == plain.answer
    assert asked.authority == plain.authority and asked.additional == plain.additional


# -------------------------------------------------------------------- caches

@pytest.mark.parametrize("transport", [UDP, TCP])
def test_caches_keep_the_two_kinds_of_answer_apart(transport: str) -> None:
    """A cached answer made without the option never serves a query with it, and
    the other way round; a query without it is answered byte for byte as before."""
    served = responder(lambda zone: 77)
    reference = responder()
    reference.expire_of = None
    plain_query = query("expire.test.", "SOA", expire=False)
    expire_query = query("expire.test.", "SOA")
    before = reference.respond(plain_query, transport)
    for _ in range(3):   # the second and third come from the caches, if anywhere
        assert served.respond(plain_query, transport) == before
        assert expire_in(served.respond(expire_query, transport)) == 77
    assert served.fast.answer(expire_query, transport == TCP) is None
    served.fast.warm_all()
    assert served.respond(plain_query, transport) == before
    assert expire_in(served.respond(expire_query, transport)) == 77


def test_a_worker_hands_expire_queries_to_the_supervisor() -> None:
    """The expire timer lives with the failover state, in the supervisor."""
    from seawall.dns.responder import HandOff

    served = responder()
    served.hand_off = True
    with pytest.raises(HandOff):
        served.respond(query("expire.test.", "SOA"), UDP)
    # Everything else is still answered in the worker.
    assert served.respond(query("expire.test.", "SOA", expire=False), UDP) is not None
    assert served.respond(query("www.expire.test.", "A"), UDP) is not None
