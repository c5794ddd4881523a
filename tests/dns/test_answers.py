"""Answer tables (seawall/dns/answers.py): built per zone version, reused, exact.

A responder serving from tables that were built ahead (for another zone set
with the same version of a zone, or for an emergency version before the
switch) must answer byte for byte as one without a fast path. A body that
reads another zone (a CNAME into it, DS at a child apex) is built again for
each set, so a change of the other zone is never answered from the old one.
"""

from __future__ import annotations

import random

import dns.flags
import dns.message
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import zone_from_text
from seawall.dns.answers import TableStore, key_question, questions
from seawall.dns.responder import TCP, UDP, Responder, ResponderSettings
from seawall.zones.zoneset import ZoneSet

LIVE = """$TTL 300
@        SOA   ns1 hostmaster 1 7200 3600 1209600 60
@        NS    ns1
@        MX    10 mail.other.test.
ns1      A     192.0.2.53
www      A     192.0.2.80
www      AAAA  2001:db8::80
alias    CNAME www
into     CNAME www.other.test.
out      CNAME www.elsewhere.test.
*.wild   A     192.0.2.1
sub      NS    ns.sub
ns.sub   A     192.0.2.54
kid      NS    ns1.other.test.
kid      DS    12345 8 2 {digest}
"""

EMERGENCY = LIVE.replace("192.0.2.80", "198.51.100.80").replace(" 1 7200", " 2 7200")

OTHER = """$TTL 300
@        SOA   ns1 hostmaster {serial} 7200 3600 1209600 60
@        NS    ns1
ns1      A     192.0.2.10
www      A     {address}
mail     A     192.0.2.25
"""

KID = """$TTL 300
@        SOA   ns1.other.test. hostmaster.other.test. 1 7200 3600 1209600 60
@        NS    ns1.other.test.
h        A     192.0.2.7
"""

DIGEST = "AB" * 32
QTYPES = ["A", "AAAA", "MX", "TXT", "ANY", "CNAME", "NS", "SOA", "DS"]


def zones(serial: int = 1, address: str = "192.0.2.20", live: str = LIVE):
    return (zone_from_text("example.test.", live.format(digest=DIGEST), strict=False),
            zone_from_text("other.test.", OTHER.format(serial=serial, address=address)),
            zone_from_text("kid.example.test.", KID))


def all_names(zoneset: ZoneSet) -> list[str]:
    names = []
    for zone in zoneset:
        for node in zone.nodes():
            names.append(node.name.to_text())
    return names + ["nope.example.test.", "x.wild.example.test.", "a.b.sub.example.test."]


def query_wire(qname: str, qtype: str, rng: random.Random) -> bytes:
    edns = rng.choice([False, 0, 0])
    query = dns.message.make_query(qname, qtype, use_edns=edns,
                                   payload=rng.choice([512, 1232, 4096]),
                                   want_dnssec=edns is not False and rng.random() < 0.3)
    query.id = rng.randrange(65536)
    if rng.random() < 0.5:
        query.flags &= ~dns.flags.RD
    return query.to_wire()


def assert_same(zoneset: ZoneSet, store: TableStore, rng: random.Random, count: int) -> Responder:
    """A responder whose bodies are ``store``'s table answers as one without a fast path."""
    fast = Responder(zoneset, ResponderSettings(cache_entries=50), store=store)
    bodies = store.bodies_for(zoneset)
    assert bodies is not None
    fast.fast.bodies = dict(bodies)
    slow = Responder(zoneset, ResponderSettings(fast_path=False))
    names = all_names(zoneset)
    for _ in range(count):
        name = rng.choice(names)
        if rng.random() < 0.3:
            name = "".join(c.upper() if rng.random() < 0.3 else c for c in name)
        wire = query_wire(name, rng.choice(QTYPES), rng)
        transport = rng.choice([UDP, UDP, TCP])
        expected = slow.respond(wire, transport)
        assert fast.respond(wire, transport) == expected, (name, transport)
    return fast


def build(store: TableStore, zoneset: ZoneSet) -> int:
    before = store.built
    for _ in store.prepare(zoneset):
        pass
    return store.built - before


def test_tables_answer_as_the_engine() -> None:
    zoneset = ZoneSet(zones())
    store = TableStore()
    assert build(store, zoneset) > 20
    fast = assert_same(zoneset, store, random.Random(1), 1500)
    assert fast.fast.body_hits > 100


def test_a_new_version_of_one_zone_rebuilds_that_zone_and_what_reads_it() -> None:
    live, other, kid = zones()
    first = ZoneSet([live, other, kid])
    store = TableStore()
    build(store, first)
    other2 = zones(serial=2, address="203.0.113.20")[1]
    second = first.replace({other2.origin: other2})
    built = build(store, second)
    # The new zone's own questions, and the bodies of example.test that read
    # other.test (the CNAME into it, the MX target's address, the DS at kid).
    assert built < len(list(questions(live))) + len(list(questions(other2)))
    assert store.has(live, second) and store.has(kid, second)
    assert_same(second, store, random.Random(2), 1500)
    # The alias into the changed zone has its new address.
    bodies = store.bodies_for(second)
    assert bodies is not None
    into_a = (b"\x04into\x07example\x04test\x00", 1)
    into = [body for key, body in bodies.items() if key_question(key) == into_a]
    assert into and all(bytes([203, 0, 113, 20]) in body for body in into)


def test_an_emergency_version_built_ahead_costs_only_its_foreign_bodies() -> None:
    live, other, kid = zones()
    served = ZoneSet([live, other, kid])
    emergency = zones(live=EMERGENCY)[0]
    store = TableStore()
    store.keep = lambda: [emergency]
    build(store, served)
    assert store.missing(served) == [emergency]
    for _ in store.prepare_zone(emergency, served):
        pass
    assert store.missing(served) == []
    switched = served.replace({emergency.origin: emergency})
    # Only the bodies that read other zones are made at the switch.
    assert build(store, switched) <= 6
    assert_same(switched, store, random.Random(3), 1000)
    # And back: the live version's table was kept.
    assert build(store, served) == 0 or store.has(live, served)


def test_retain_forgets_versions_neither_served_nor_kept() -> None:
    live, other, kid = zones()
    served = ZoneSet([live, other, kid])
    store = TableStore()
    build(store, served)
    other2 = zones(serial=2)[1]
    newer = served.replace({other2.origin: other2})
    build(store, newer)
    store.retain(newer)
    assert store.bodies_for(served) is None
    assert not store.has(other, newer)
    assert store.has(live, newer) and store.has(other2, newer)


def test_a_new_set_of_origins_rebuilds_every_table() -> None:
    live, other, kid = zones()
    store = TableStore()
    build(store, ZoneSet([live, other]))
    # With kid.example.test served, the names under it are its, not example.test's.
    with_kid = ZoneSet([live, other, kid])
    assert not store.has(live, with_kid)
    build(store, with_kid)
    assert_same(with_kid, store, random.Random(4), 800)


def test_a_table_past_its_limit_is_cut_and_still_exact() -> None:
    zoneset = ZoneSet(zones())
    store = TableStore(limit=5)
    build(store, zoneset)
    bodies = store.bodies_for(zoneset)
    assert bodies is not None and len(bodies) <= 5
    assert_same(zoneset, store, random.Random(5), 500)


def test_a_stopped_build_leaves_no_table() -> None:
    zoneset = ZoneSet(zones())
    store = TableStore()
    for _ in store.prepare(zoneset, stop=lambda: True):
        pass
    assert store.bodies_for(zoneset) is None


@pytest.fixture(scope="module")
def prepared() -> tuple[ZoneSet, TableStore]:
    live, other, kid = zones()
    emergency = zones(live=EMERGENCY)[0]
    store = TableStore()
    store.keep = lambda: [emergency]
    served = ZoneSet([live, other, kid])
    for _ in store.prepare_zone(emergency, served):
        pass
    switched = served.replace({emergency.origin: emergency})
    build(store, switched)
    return switched, store


@settings(max_examples=150, deadline=None)
@given(label=st.sampled_from(["www", "alias", "into", "out", "ns1", "x.wild", "kid", "h.kid",
                              "sub", "ns.sub", "", "nope", "mail", "a.b"]),
       zone=st.sampled_from(["example.test.", "other.test."]),
       qtype=st.sampled_from(QTYPES), seed=st.integers(0, 2**32 - 1))
def test_random_questions_to_tables_built_ahead(prepared, label: str, zone: str, qtype: str,
                                                seed: int) -> None:
    """Random questions: tables built ahead for an emergency version answer as the engine."""
    zoneset, store = prepared
    rng = random.Random(seed)
    fast = Responder(zoneset, ResponderSettings(cache_entries=50), store=store)
    fast.fast.bodies = dict(store.bodies_for(zoneset) or {})
    slow = Responder(zoneset, ResponderSettings(fast_path=False))
    name = f"{label}.{zone}" if label else zone
    wire = query_wire(name, qtype, rng)
    for transport in (UDP, TCP):
        expected = slow.respond(wire, transport)
        assert fast.respond(wire, transport) == expected
        assert fast.respond(wire, transport) == expected   # from the cache too


# ------------------------------------------------- incremental builds

BASE = {
    "@": ["SOA ns1 hostmaster 1 7200 3600 1209600 60", "NS ns1", "MX 10 mail"],
    "ns1": ["A 192.0.2.53"],
    "mail": ["A 192.0.2.25"],
    "www": ["A 192.0.2.80", "AAAA 2001:db8::80"],
    "alias": ["CNAME www"],
    "chain": ["CNAME alias"],
    "svc": ["MX 5 mail", "SRV 0 0 443 www"],
    "a.b.deep": ["A 192.0.2.9"],
    "*.wild": ["A 192.0.2.1", "MX 10 mail"],
    "x.wild": ["TXT \"exists\""],
    "sub": ["NS ns.sub"],
    "ns.sub": ["A 192.0.2.54"],
    "to-wild": ["CNAME q.wild"],
    "to-nowhere": ["CNAME gone"],
    "h1": ["A 10.0.0.1"],
    "h2": ["A 10.0.0.2"],
}

MUTATIONS = [
    ("set", "www", ["A 198.51.100.80", "AAAA 2001:db8::80"]),
    ("set", "mail", ["A 198.51.100.25"]),
    ("set", "h1", ["A 10.0.0.9"]),
    ("set", "gone", ["A 192.0.2.77"]),
    ("set", "new.b.deep", ["A 192.0.2.10"]),
    ("set", "*", ["TXT \"apex wildcard\""]),
    ("set", "*.wild", ["A 192.0.2.2"]),
    ("set", "alias", ["CNAME h2"]),
    ("set", "ns.sub", ["A 192.0.2.55"]),
    ("set", "deep", ["A 192.0.2.8"]),
    ("set", "sub", ["NS ns.sub", "NS ns1"]),
    ("set", "h2", ["NS ns1"]),
    ("del", "www", []),
    ("del", "a.b.deep", []),
    ("del", "x.wild", []),
    ("del", "mail", []),
    ("ttl", "h2", []),
    ("soa", "@", []),
]


def zone_text(records: dict[str, list[str]], serial: int = 1, ttl_of: str = "") -> str:
    lines = ["$TTL 300"]
    for owner, rdatas in records.items():
        for rdata in rdatas:
            if rdata.startswith("SOA"):
                rdata = rdata.replace(" 1 7200", f" {serial} 7200")
            ttl = "600 " if owner == ttl_of else ""
            lines.append(f"{owner} {ttl}{rdata}")
    return "\n".join(lines) + "\n"


def oracle_check(store: TableStore, zoneset: ZoneSet) -> None:
    """Every body of the set's table is exactly what the engine makes now."""
    from seawall.dns.answers import Builder
    bodies = store.bodies_for(zoneset)
    assert bodies is not None
    builder = Builder()
    for key, entry in bodies.items():
        made = builder.body(zoneset, None, *key_question(key))
        assert made is not None and made[1] == entry, key


def full_keys(zoneset: ZoneSet) -> set[bytes]:
    fresh = TableStore()
    build(fresh, zoneset)
    return set(fresh.bodies_for(zoneset) or {})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4))
def test_an_incremental_build_equals_the_engine(mutations) -> None:
    """A version built from an older one's table answers exactly as the engine, and
    holds every body a build from scratch would."""
    other = zones()[1]
    before = dict(BASE)
    new = dict(BASE)
    serial, ttl_of = 1, ""
    for kind, owner, rdatas in mutations:
        if kind == "set":
            new[owner] = rdatas
        elif kind == "del":
            new.pop(owner, None)
        elif kind == "ttl":
            ttl_of = owner
        else:
            serial = 2
    old_zone = zone_from_text("example.test.", zone_text(before), strict=False)
    new_zone = zone_from_text("example.test.", zone_text(new, serial, ttl_of), strict=False)
    first = ZoneSet([old_zone, other])
    store = TableStore()
    build(store, first)
    second = first.replace({new_zone.origin: new_zone})
    build(store, second)
    oracle_check(store, second)
    assert full_keys(second) <= set(store.bodies_for(second) or {})


def test_a_one_record_change_rebuilds_little() -> None:
    records = dict(BASE)
    records.update({f"n{i}": [f"A 10.1.{i // 250}.{i % 250}"] for i in range(500)})
    old_zone = zone_from_text("example.test.", zone_text(records), strict=False)
    records["n7"] = ["A 10.9.9.9"]
    new_zone = zone_from_text("example.test.", zone_text(records, serial=2), strict=False)
    store = TableStore()
    first = ZoneSet([old_zone])
    build(store, first)
    second = ZoneSet([new_zone])
    built = build(store, second)
    # n7 itself, and the answers that carry the SOA (the apex's, negative ones).
    assert built < 30 and store.reused > 480
    oracle_check(store, second)
    assert full_keys(second) <= set(store.bodies_for(second) or {})
