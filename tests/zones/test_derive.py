"""A derived version (seawall/zones/derive.py) answers as a zone built from its records.

The property: for a random zone (wildcards, a delegation with glue and
occluded data, empty non-terminals, CNAMEs, mixed case) and random
replacements of its A/AAAA/TXT RRsets, ``replace_rrsets`` answers every
random query exactly as ``build_zone`` over the zone's records with the
replaced RRsets' records in their place does (through the engine,
``resolve``), and the base zone is left as it was.
"""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.dns.engine import resolve
from seawall.zones.derive import replace_rrsets
from seawall.zones.model import build_zone
from seawall.zones.problems import Location
from seawall.zones.reader import Record
from seawall.zones.zoneset import ZoneSet

ORIGIN = dns.name.from_text("example.test.")
WHERE = Location("test", 0)
SOA_TEXT = "ns1.example.test. host.example.test. 1 7200 3600 1209600 300"
A, AAAA, TXT, MX, NS, CNAME = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT,
                               dns.rdatatype.MX, dns.rdatatype.NS, dns.rdatatype.CNAME)
# Owners: plain, deep (with empty non-terminals), wildcards, a cut with glue and
# occluded data below it, mixed case (a Node, not a compact leaf).
OWNERS = ["www", "api", "a.b.c", "x.b.c", "*", "*.w", "h.w", "sub", "ns.sub", "deep.ns.sub",
          "WwW2", "mail", "alias", "*.b"]
QNAMES = OWNERS + ["", "b", "b.c", "c", "nope", "q.w", "z.q.w", "other.b", "k.sub", "n.api",
                   "www2", "a.b.C"]
QTYPES = [A, AAAA, TXT, MX, NS, CNAME, dns.rdatatype.SOA, dns.rdatatype.ANY]
CHANGEABLE = (A, AAAA, TXT)


def rdata(rdtype: int, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


def value(rdtype: int, n: int) -> str:
    return {A: f"192.0.2.{n}", AAAA: f"2001:db8::{n:x}", TXT: f'"t{n}"'}[rdtype]


def name_of(label: str) -> dns.name.Name:
    return dns.name.from_text(label, ORIGIN) if label else ORIGIN


@st.composite
def zones(draw) -> tuple[list[Record], dict[tuple[dns.name.Name, int], tuple[int, list]]]:
    """The records of a zone, and replacements for some of its RRsets."""
    records = [Record(ORIGIN, 3600, rdata(dns.rdatatype.SOA, SOA_TEXT),
                      WHERE),
               Record(ORIGIN, 3600, rdata(NS, "ns1.example.test."), WHERE),
               Record(name_of("ns1"), 3600, rdata(A, "192.0.2.53"), WHERE)]
    if draw(st.booleans()):
        records.append(Record(name_of("sub"), 3600, rdata(NS, "ns.sub.example.test."), WHERE))
    if draw(st.booleans()):
        records.append(Record(name_of("mail"), 300, rdata(MX, "10 www.example.test."), WHERE))
    if draw(st.booleans()):
        records.append(Record(name_of("alias"), 300, rdata(CNAME, "www.example.test."), WHERE))
    owners = draw(st.lists(st.sampled_from([o for o in OWNERS if o not in ("mail", "alias")]),
                           min_size=1, max_size=8, unique=True))
    rrsets: list[tuple[dns.name.Name, int]] = []
    for owner in owners:
        for rdtype in draw(st.lists(st.sampled_from(CHANGEABLE), min_size=1, max_size=3,
                                    unique=True)):
            ttl = draw(st.sampled_from([60, 300]))
            for n in draw(st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True)):
                records.append(Record(name_of(owner), ttl, rdata(rdtype, value(rdtype, n)),
                                      WHERE))
            rrsets.append((name_of(owner), rdtype))
    chosen = draw(st.lists(st.sampled_from(rrsets), max_size=len(rrsets), unique=True))
    replace = {}
    for name, rdtype in chosen:
        ttl = draw(st.sampled_from([30, 60, 300]))
        numbers = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True))
        replace[(name, rdtype)] = (ttl, [rdata(rdtype, value(rdtype, n)) for n in numbers])
    return records, replace


def built_in_place(records: list[Record], replace) -> list[Record]:
    """The records with each replaced RRset's records where its first record was."""
    out, done = [], set()
    for record in records:
        key = (record.name, record.rdata.rdtype)
        if key not in replace:
            out.append(record)
        elif key not in done:
            done.add(key)
            ttl, rdatas = replace[key]
            out += [Record(record.name, ttl, r, WHERE) for r in rdatas]
    return out


def shown(answer) -> tuple:
    """An engine answer as comparable text, in order, TTLs and owner case included."""
    def section(rrsets):
        return [(r.name.to_text(), r.ttl, r.rdtype, r.covers, sorted(x.to_text() for x in r))
                for r in rrsets]
    return (answer.rcode, answer.aa, answer.outcome, section(answer.answer),
            section(answer.authority), section(answer.additional), answer.required_additional)


def queries(draw) -> list[tuple[dns.name.Name, int]]:
    return draw(st.lists(st.tuples(st.sampled_from(QNAMES), st.sampled_from(QTYPES)),
                         min_size=20, max_size=60))


@settings(max_examples=300, deadline=None)
@given(zone=zones(), data=st.data())
def test_a_derived_version_answers_as_a_zone_built_from_its_records(zone, data):
    records, replace = zone
    base = build_zone(ORIGIN, records)
    before = {(q, t): shown(resolve(ZoneSet([base]), name_of(q), t)) for q in QNAMES
              for t in QTYPES}
    derived = replace_rrsets(base, replace)
    expected = build_zone(ORIGIN, built_in_place(records, replace))
    assert (derived.node_count, derived.rrset_count, derived.serial) == \
        (expected.node_count, expected.rrset_count, expected.serial)
    ours, theirs = ZoneSet([derived]), ZoneSet([expected])
    for qname, qtype in queries(data.draw):
        assert shown(resolve(ours, name_of(qname), qtype)) == \
            shown(resolve(theirs, name_of(qname), qtype)), (qname, qtype)
    # The base is untouched: every answer it gave, it still gives.
    assert {(q, t): shown(resolve(ZoneSet([base]), name_of(q), t)) for q in QNAMES
            for t in QTYPES} == before


def base_zone():
    return build_zone(ORIGIN, [
        Record(ORIGIN, 3600, rdata(dns.rdatatype.SOA, SOA_TEXT), WHERE),
        Record(ORIGIN, 3600, rdata(NS, "ns1.example.test."), WHERE),
        Record(name_of("ns1"), 3600, rdata(A, "192.0.2.53"), WHERE),
        Record(name_of("a.b"), 60, rdata(A, "192.0.2.1"), WHERE),
        Record(name_of("www"), 60, rdata(A, "192.0.2.1"), WHERE)])


def test_only_the_path_is_copied():
    base = base_zone()
    derived = replace_rrsets(base, {(name_of("www"), A): (60, [rdata(A, "192.0.2.9")])})
    # The subtree off the path is the base's own object, not a copy.
    assert derived.apex.children.entries[b"b"] is base.apex.children.entries[b"b"]
    assert derived.apex is not base.apex
    assert [r.to_text() for r in derived.find_node(name_of("www")).get(A)] == ["192.0.2.9"]
    assert [r.to_text() for r in base.find_node(name_of("www")).get(A)] == ["192.0.2.1"]


@pytest.mark.parametrize("key, records, why", [
    (("www", NS), ["ns1"], "shape the tree"),
    (("nope", A), ["192.0.2.1"], "not a name of the zone"),
    (("b", A), ["192.0.2.1"], "no b.example.test. A"),          # an empty non-terminal
    (("www", AAAA), ["2001:db8::1"], "no www.example.test. AAAA"),
    (("www", A), [], "empty"),
])
def test_what_cannot_be_replaced_is_refused(key, records, why):
    base = base_zone()
    rdtype = key[1]
    with pytest.raises(ValueError, match=why):
        replace_rrsets(base, {(name_of(key[0]), rdtype): (60, [rdata(rdtype, r)
                                                              for r in records])})
    assert [r.to_text() for r in base.find_node(name_of("www")).get(A)] == ["192.0.2.1"]
