"""The guard's diff walks both versions together: the same counts as comparing every RRset.

``guard.diff`` passes over names stored the same way in both versions
(equal compact leaves, shared nodes) without building their RRsets. The
reference here is the plain way, every data RRset of both versions by
(owner, type); hypothesis makes pairs of versions that differ by added,
deleted, re-addressed, re-ordered and re-timed records, on compact leaves,
full nodes (more records than a leaf holds, a zone cut with glue), deep
names and empty non-terminals.
"""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.failover.guard import Diff, diff, rrsets_by_key
from seawall.zones.model import build_zone
from seawall.zones.problems import Location
from seawall.zones.reader import Record

ORIGIN = dns.name.from_text("example.org.")
HERE = Location("test", 0)
OWNERS = ["www", "h1", "h2", "a.b", "x.y.z", "many", "sub", "ns.sub", "*.w", "mail"]


def reference(old, new) -> Diff:
    """Every data RRset of both versions, compared by (owner, type)."""
    before, after = rrsets_by_key(old), rrsets_by_key(new)
    result = Diff(before=len(before), after=len(after))
    for key, rrset in before.items():
        other = after.get(key)
        if other is None:
            result.deleted += 1
        elif other.ttl != rrset.ttl or len(other) != len(rrset) or set(other) != set(rrset):
            result.modified += 1
    result.added = sum(1 for key in after if key not in before)
    return result


def rr(owner: str, rdtype: str, text: str, ttl: int = 300) -> Record:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text,
                                origin=ORIGIN, relativize=False)
    return Record(dns.name.from_text(owner, ORIGIN), ttl, rdata, HERE)


def apex() -> list[Record]:
    return [rr("@", "SOA", "ns1 hostmaster 1 7200 3600 1209600 300"), rr("@", "NS", "ns1"),
            rr("ns1", "A", "192.0.2.53")]


record = st.builds(
    lambda owner, kind, n, ttl: (
        rr("sub", "NS", f"ns{n % 2}.sub", ttl) if owner == "sub" else
        rr(owner, "A", f"192.0.2.{n}", ttl) if kind == 0 else
        rr(owner, "AAAA", f"2001:db8::{n:x}", ttl) if kind == 1 else
        rr(owner, "TXT", f'"t{n}"', ttl) if kind == 2 else
        rr(owner, "MX", f"{n} mail", ttl)),
    st.sampled_from(OWNERS), st.integers(0, 3), st.integers(1, 12), st.sampled_from([300, 600]))

records = st.lists(record, max_size=40)


def zone(extra: list[Record]):
    # A name may carry one TTL per RRset: the first record's wins.
    ttls: dict[tuple, int] = {}
    kept = []
    for r in extra:
        key = (r.name, r.rdata.rdtype)
        ttls.setdefault(key, r.ttl)
        kept.append(Record(r.name, ttls[key], r.rdata, r.location))
    if any(r.name == dns.name.from_text("sub", ORIGIN) for r in kept):
        kept += [rr("ns0.sub", "A", "192.0.2.200"), rr("ns1.sub", "A", "192.0.2.201")]
    return build_zone(ORIGIN, apex() + kept, source="test")


@settings(max_examples=300, deadline=None)
@given(records, records, st.randoms(use_true_random=False))
def test_diff_counts_what_comparing_every_rrset_counts(common, added, rnd):
    old_records = list(common)
    new_records = [r for r in common if rnd.random() > 0.2] + added
    rnd.shuffle(new_records)
    old, new = zone(old_records), zone(new_records)
    assert diff(old, new) == reference(old, new)
    assert diff(new, old) == reference(new, old)
    assert diff(old, zone(list(old_records))) == reference(old, old)


def test_more_records_than_a_leaf_holds_and_one_changed():
    many = [rr("many", "A", f"192.0.2.{n}") for n in range(1, 12)]
    old = zone(many)
    new = zone(many[:-1] + [rr("many", "A", "192.0.2.99")])
    assert diff(old, new) == reference(old, new) == Diff(before=3, after=3, modified=1)


def test_a_version_against_itself_counts_every_rrset_unchanged():
    old = zone([rr("www", "A", "192.0.2.1"), rr("a.b", "TXT", '"x"')])
    assert diff(old, old) == Diff(before=4, after=4)
