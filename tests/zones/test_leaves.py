"""Compact leaves hand out exactly the Nodes a tree of Nodes would hold.

The same records are built twice: as the model stores them (plain leaves as
tuples, see ``seawall/zones/leaves.py``) and with every name a Node (the
reference: ``leaves.add`` refusing every record). Every node, in the same
order, must have the same name (with its case), flags, RRsets (type, TTL,
records as text and wire) and signatures; counts must agree too.
"""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.zones import leaves
from seawall.zones.model import build_zone
from seawall.zones.problems import Location
from seawall.zones.reader import Record

ORIGIN = dns.name.from_text("example.test.")
HERE = Location("test", 1)

owners = st.sampled_from(["www", "WWW", "Www", "a.b", "b", "x.a.b", "child", "ns1.child",
                          "deep.ns1.child", "*", "*.w", "mail", "dn", "under.dn", "c",
                          "h1", "h2"])
ttls = st.sampled_from([60, 300, 300, 3600, 86400])
rdatas = st.one_of(
    st.tuples(st.just("A"), st.sampled_from(["192.0.2.1", "192.0.2.2", "10.0.0.1", "0.0.0.0"])),
    st.tuples(st.just("AAAA"), st.sampled_from(["2001:db8::1", "2001:db8::2", "::ffff:192.0.2.1",
                                                "2001:db8:0:0:1::1"])),
    st.tuples(st.just("CNAME"), st.sampled_from(["www.example.test.", "WWW.Example.test.",
                                                 "elsewhere.test."])),
    st.tuples(st.just("MX"), st.sampled_from(["10 mail.example.test.", "10 MAIL.example.test.",
                                              "20 mx.other.test."])),
    st.tuples(st.just("TXT"), st.sampled_from(['"hello"', '"a b" c', '""'])),
    st.tuples(st.just("SRV"), st.sampled_from(["1 2 3 t.example.test.", "1 2 3 T.example.test."])),
    st.tuples(st.just("PTR"), st.sampled_from(["p.example.test."])),
    st.tuples(st.just("NS"), st.sampled_from(["ns1.child.example.test.", "ns.other.test."])),
    st.tuples(st.just("DNAME"), st.sampled_from(["target.test."])),
    st.tuples(st.just("CAA"), st.sampled_from(['0 issue "ca.example"'])),
    st.tuples(st.just("DS"), st.sampled_from(["12345 13 2 " + "ab" * 32])),
)


def record(owner: str, ttl: int, rdtype: str, text: str) -> Record:
    name = dns.name.from_text(owner, ORIGIN)
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text,
                                ORIGIN, relativize=False)
    return Record(name, ttl, rdata, HERE)


APEX = [record("@", 3600, "SOA", "ns1 hostmaster 1 7200 3600 1209600 300"),
        record("@", 3600, "NS", "ns1.example.test.")]


def shape(zone) -> list:
    out = []
    for node in zone.nodes():
        sets = []
        for table in (node.rrsets, node.rrsigs):
            for rdtype, rrset in table.items():
                sets.append((int(rdtype), rrset.name.labels, rrset.ttl, int(rrset.rdtype),
                             int(rrset.covers), [r.to_text() for r in rrset],
                             [r.to_wire() for r in rrset], [type(r) for r in rrset]))
        out.append((node.name.labels, node.is_apex, node.is_delegation, node.is_occluded,
                    sorted(node.children), sets))
    return out


def reference(records: list[Record]):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(leaves, "add", lambda leaf, rdata, ttl: None)
        return build_zone(ORIGIN, records)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(owners, ttls, rdatas), max_size=25))
def test_same_nodes_as_a_tree_of_nodes(entries) -> None:
    records = APEX + [record(owner, ttl, rdtype, text) for owner, ttl, (rdtype, text) in entries]
    zone = build_zone(ORIGIN, records)
    full = reference(records)
    assert shape(zone) == shape(full)
    assert (zone.node_count, zone.rrset_count) == (full.node_count, full.rrset_count)
    for owner, *_ in entries:
        name = dns.name.from_text(owner, ORIGIN)
        found, expected = zone.find_node(name), full.find_node(name)
        assert found.name.labels == expected.name.labels
        assert found.rrsets.keys() == expected.rrsets.keys()


def test_a_leaf_is_stored_compactly() -> None:
    zone = build_zone(ORIGIN, APEX + [record("www", 300, "A", "192.0.2.1"),
                                      record("www", 300, "AAAA", "2001:db8::1"),
                                      record("alias", 300, "CNAME", "www.example.test.")])
    entries = zone.apex.children.entries
    assert type(entries[b"www"]) is tuple and type(entries[b"alias"]) is tuple
    node = zone.apex.children[b"www"]
    assert node.rrsets[dns.rdatatype.A][0].address == "192.0.2.1"
    assert list(zone.nodes(leaves=False)) == [zone.apex]


@pytest.mark.parametrize("extra, why", [
    (record("www", 300, "NS", "ns.other.test."), "a zone cut"),
    (record("a.www", 300, "A", "192.0.2.9"), "a child"),
    (record("WWW", 300, "TXT", '"x"'), "a second record, any case, is merged"),
])
def test_leaf_grows_into_a_node(extra, why) -> None:
    records = APEX + [record("www", 300, "A", "192.0.2.1"), extra]
    assert shape(build_zone(ORIGIN, records)) == shape(reference(records)), why


def test_many_records_at_one_name() -> None:
    records = APEX + [record("rr", 300 - i, "A", f"192.0.2.{i}") for i in range(20)]
    zone = build_zone(ORIGIN, records)
    assert shape(zone) == shape(reference(records))
    assert zone.find_node(dns.name.from_text("rr", ORIGIN)).rrsets[dns.rdatatype.A].ttl == 281


def test_loaded_file_has_compact_leaves(tmp_path: Path) -> None:
    from seawall.zones.loader import load_zone_file
    path = tmp_path / "example.test.zone"
    path.write_text("$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.53\n"
                    "www A 192.0.2.1\nwww AAAA 2001:db8::1\nc CNAME www\n")
    loaded = load_zone_file(path)
    assert loaded.ok
    assert shape(loaded.zone) == shape(reference(loaded.records))
