"""The fast path answers byte for byte as the engine's slow path does.

A responder with the fast path (answer cache + templates for names that do
not exist) and one without it get the same queries; every response must be
identical, whether it came from a cache miss, a cache hit, a case-patched
hit or a template. The zones are built to corner the templates: wildcards
at the apex and deeper, wildcard CNAME and MX, SOA names inside the zone,
delegations, DNAME, empty non-terminals, a child zone, large RRsets near the
size limits, names near 255 octets.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_tool, zone_from_text
from seawall.dns.responder import TCP, UDP, Responder, ResponderSettings
from seawall.zones.loader import load_zone_file
from seawall.zones.zoneset import ZoneSet

DNSSEC_HELPERS = Path(__file__).resolve().parents[1] / "dnssec"

PARENT = """$TTL 3600
@         SOA   ns1.sub hostmaster.rname 7 7200 3600 1209600 300
@         NS    ns1
@         NS    ns2.elsewhere.test.
@         MX    10 mail
ns1       A     192.0.2.53
mail      A     192.0.2.25
mail      AAAA  2001:db8::25
www       A     192.0.2.80
alias     CNAME www
out       CNAME www.elsewhere.test.
*.wild    A     192.0.2.1
*.wild    MX    10 mail
*.wild    MX    20 x.wild
*.cn      CNAME www
*.loop    CNAME a.loop
*.self    CNAME self.example.test.
*.big     TXT   "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
*.big     TXT   "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
*.big     TXT   "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
*.big     TXT   "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt    TXT   "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt    TXT   "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt    TXT   "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt    TXT   "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt    TXT   "4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
a.b.c.ent A     192.0.2.9
deleg     NS    ns.deleg
ns.deleg  A     192.0.2.201
*.deleg   A     192.0.2.202
dn        DNAME example.net.
child     NS    ns1
"""

CHILD = """$TTL 300
@   SOA  ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 60
@   NS   ns1.example.test.
*   AAAA 2001:db8::1
h   A    192.0.2.7
"""

APEX_WILDCARD = """$TTL 60
@   SOA  ns hostmaster 1 7200 3600 1209600 30
@   NS   ns
ns  A    192.0.2.1
*   A    192.0.2.99
*   TXT  "apex wildcard"
x   A    192.0.2.100
"""

ENCLOSERS = ["", "www.", "wild.", "cn.", "loop.", "self.", "big.", "ent.", "c.ent.",
             "b.c.ent.", "deleg.", "dn.", "child.", "h.child.", "sub.", "rname.",
             "hostmaster.", "ns1.", "mail."]
FIRST_LABELS = ["nope", "x", "NoPe", "hostmaster", "rname", "sub", "ns1", "a", "mail",
                "www", "*", "self", "abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxy"]
QTYPES = ["A", "AAAA", "MX", "TXT", "ANY", "CNAME", "NS", "SOA", "DS", "SRV", "NULL"]


@pytest.fixture(scope="module")
def zoneset() -> ZoneSet:
    return ZoneSet([zone_from_text("example.test.", PARENT, strict=False),
                    zone_from_text("child.example.test.", CHILD),
                    zone_from_text("apex.test.", APEX_WILDCARD)])


def responders(zoneset: ZoneSet) -> tuple[Responder, Responder]:
    fast = Responder(zoneset, ResponderSettings(cache_entries=50))
    slow = Responder(zoneset, ResponderSettings(fast_path=False))
    return fast, slow


def query_wire(qname: str, qtype: str, rng: random.Random) -> bytes:
    edns = rng.choice([False, 0, 0])
    payload = rng.choice([512, 600, 1232, 4096])
    query = dns.message.make_query(qname, qtype, use_edns=edns, payload=payload,
                                   want_dnssec=edns is not False and rng.random() < 0.3)
    query.id = rng.randrange(65536)
    if rng.random() < 0.5:
        query.flags &= ~dns.flags.RD
    return query.to_wire()


def random_case(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.3 else c for c in text)


def names(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        zone = rng.choice(["example.test.", "example.test.", "apex.test."])
        encloser = rng.choice(ENCLOSERS) if zone == "example.test." else rng.choice(["", "x."])
        first = rng.choice(FIRST_LABELS + [f"r{rng.randrange(10**9)}"])
        extra = rng.choice(["", "", f"q{rng.randrange(1000)}."])
        out.append(f"{extra}{first}.{encloser}{zone}")
    return out


def check_same(fast: Responder, slow: Responder, wire: bytes, transport: str) -> None:
    expected = slow.respond(wire, transport)
    for attempt in range(2):   # a miss, then a hit or a template
        got = fast.respond(wire, transport)
        assert got == expected, (f"attempt {attempt}: {dns.message.from_wire(wire).question} "
                                 f"over {transport}\nfast {got and got.hex()}\n"
                                 f"slow {expected and expected.hex()}")


def test_many_names_byte_identical(zoneset: ZoneSet) -> None:
    fast, slow = responders(zoneset)
    rng = random.Random(5)
    for qname in names(rng, 3000):
        qname = random_case(qname, rng) if rng.random() < 0.3 else qname
        wire = query_wire(qname, rng.choice(QTYPES), rng)
        check_same(fast, slow, wire, rng.choice([UDP, UDP, TCP]))
    # The templates did their share, and the cache stayed within its bound.
    assert fast.fast.template_hits > 500
    assert len(fast.fast.udp) <= 50 and len(fast.fast.tcp) <= 50


def test_warmed_bodies_serve_every_shape(zoneset: ZoneSet) -> None:
    """Bodies built ahead of time (as after a swap) answer any shape identically."""
    fast, slow = responders(zoneset)
    assert fast.fast.warm_all() > 10
    rng = random.Random(13)
    existing = ["www.example.test.", "alias.example.test.", "mail.example.test.",
                "example.test.", "ns1.example.test.", "a.b.c.ent.example.test.",
                "c.ent.example.test.", "ns.deleg.example.test.", "h.child.example.test.",
                "child.example.test.", "out.example.test.", "x.apex.test.", "apex.test.",
                "deleg.example.test.", "dn.example.test.", "bigtxt.example.test.",
                "bigtxt.example.test."]
    for _ in range(1500):
        qname = rng.choice(existing)
        qname = random_case(qname, rng) if rng.random() < 0.3 else qname
        wire = query_wire(qname, rng.choice(QTYPES), rng)
        check_same(fast, slow, wire, rng.choice([UDP, UDP, TCP]))
    assert fast.fast.body_hits > 100


def test_the_plainest_query_is_its_own_key_and_gets_its_whole_answer(zoneset: ZoneSet) -> None:
    """RD, no OPT, lower case: answered straight from the table, byte for byte the
    slow path's answer; an answer over 512 octets is not (UDP without EDNS
    truncates it, RFC 1035 §4.2.1), nor is anything with QR set."""
    fast, slow = responders(zoneset)
    fast.fast.warm_all()
    for qname, qtype in [("www.example.test.", "A"), ("alias.example.test.", "A"),
                         ("example.test.", "NS"), ("bigtxt.example.test.", "TXT")]:
        query = dns.message.make_query(qname, qtype, use_edns=False)
        query.id = 777
        wire = query.to_wire()
        before = fast.fast.body_hits
        assert fast.respond(wire, UDP) == slow.respond(wire, UDP)
        assert fast.respond(wire, TCP) == slow.respond(wire, TCP)
        assert len(fast.fast.udp) == 0 or qname.startswith("bigtxt")  # nothing copied
        assert fast.fast.body_hits > before


def test_a_response_is_never_answered_even_when_its_bytes_are_a_key(zoneset: ZoneSet) -> None:
    """A DO answer is keyed with the QR bit (no query has it): a message with QR
    set and those very bytes is a response, and dropped as the slow path does."""
    from seawall.dns.answers import body_key
    fast, slow = responders(zoneset)
    query = dns.message.make_query("www.example.test.", "A", use_edns=0, want_dnssec=True)
    fast.respond(query.to_wire(), UDP)           # learns the DO body
    name = dns.name.from_text("www.example.test.").to_wire()
    key = body_key(name, 1, 0x80, b"\x01\x00")
    assert key in fast.fast.bodies
    wire = b"\x12\x34" + key
    assert slow.respond(wire, UDP) is None
    assert fast.respond(wire, UDP) is None


def test_case_variants_share_one_entry(zoneset: ZoneSet) -> None:
    fast, slow = responders(zoneset)
    rng = random.Random(7)
    for qname in ["www.example.test.", "x.wild.example.test.", "nope.example.test."]:
        for _ in range(5):
            wire = query_wire(random_case(qname, rng), "A", rng)
            check_same(fast, slow, wire, UDP)


def test_long_names_near_the_limits(zoneset: ZoneSet) -> None:
    """Names of every length under a big wildcard: truncation must agree."""
    fast, slow = responders(zoneset)
    rng = random.Random(9)
    for length in range(1, 63):
        for depth in range(0, 4):
            labels = ["a" * 63] * depth + ["b" * length]
            qname = ".".join(labels) + ".big.example.test."
            try:
                dns.name.from_text(qname)
            except dns.name.NameTooLong:
                continue
            for payload, edns in [(512, False), (512, 0), (600, 0), (1232, 0)]:
                query = dns.message.make_query(qname, "TXT", use_edns=edns, payload=payload)
                query.id = rng.randrange(65536)
                check_same(fast, slow, query.to_wire(), UDP)


def test_swap_forgets_old_answers(zoneset: ZoneSet) -> None:
    fast, slow = responders(zoneset)
    rng = random.Random(11)
    wire = query_wire("www.example.test.", "A", rng)
    nx = query_wire("zzz.example.test.", "A", rng)
    check_same(fast, slow, wire, UDP)
    check_same(fast, slow, nx, UDP)
    empty = ZoneSet()
    fast.zoneset = empty
    slow.zoneset = empty
    check_same(fast, slow, wire, UDP)
    check_same(fast, slow, nx, UDP)


@settings(max_examples=300, deadline=None)
@given(labels=st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=4),
       encloser=st.sampled_from(ENCLOSERS), qtype=st.sampled_from(QTYPES),
       tcp=st.booleans(), seed=st.integers(0, 2**16))
def test_random_labels_byte_identical(zoneset: ZoneSet, labels: list[bytes], encloser: str,
                                      qtype: str, tcp: bool, seed: int) -> None:
    rng = random.Random(seed)
    try:
        qname = dns.name.Name(labels + list(dns.name.from_text(encloser + "example.test.")
                                            .labels))
    except dns.name.NameTooLong:
        return
    query = dns.message.make_query(qname, qtype, use_edns=rng.choice([False, 0]))
    fast, slow = responders(zoneset)
    check_same(fast, slow, query.to_wire(), TCP if tcp else UDP)
    # The same query shape again with another name under the same encloser.
    other = dns.name.Name([b"other"] + list(qname.labels))
    check_same(fast, slow, dns.message.make_query(other, qtype).to_wire(), UDP)


def test_types_seen(zoneset: ZoneSet) -> None:
    """Sanity: the zone set answers what the corner cases assume."""
    fast, _ = responders(zoneset)
    rng = random.Random(1)
    response = dns.message.from_wire(fast.respond(query_wire("q.big.example.test.", "TXT", rng),
                                                  TCP))
    assert response.answer and response.answer[0].rdtype == dns.rdatatype.TXT


@pytest.mark.interop
@pytest.mark.parametrize("nsec3", [False, True])
def test_signed_zone_with_and_without_do(tmp_path, nsec3: bool) -> None:
    """Signed answers (RRSIG, NSEC/NSEC3 proofs that depend on the name) stay exact."""
    require_tool("dnssec-signzone")
    if str(DNSSEC_HELPERS) not in sys.path:
        sys.path.insert(0, str(DNSSEC_HELPERS))
    from dnssec_signing import sign_zone

    text = PARENT.replace("dn        DNAME example.net.\n", "").replace("child     NS    ns1\n", "")
    signed = sign_zone(text, "example.test.", tmp_path / "sign", nsec3=nsec3)
    target = tmp_path / "example.test.zone"
    shutil.copy(signed, target)
    loaded = load_zone_file(target, strict=False)
    assert loaded.zone is not None and loaded.zone.is_signed, loaded.problems
    zoneset = ZoneSet([loaded.zone])
    fast, slow = responders(zoneset)
    fast.fast.warm_all()
    rng = random.Random(17)
    for qname in names(rng, 600):
        if "apex.test" in qname or "child" in qname or "dn." in qname:
            continue
        query = dns.message.make_query(qname, rng.choice(QTYPES), use_edns=0,
                                       want_dnssec=rng.random() < 0.7, payload=4096)
        query.id = rng.randrange(65536)
        check_same(fast, slow, query.to_wire(), rng.choice([UDP, TCP]))
