"""ZoneSet (longest match) and the label tree's walk (RFC 1034 §4.3.2, RFC 4592)."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

from conftest import zone_from_text
from seawall.dns.engine import resolve
from seawall.zones.zoneset import ZoneSet

PARENT = """$TTL 3600
@        SOA  ns1 hostmaster 1 7200 3600 1209600 300
@        NS   ns1
ns1      A    192.0.2.53
www      A    192.0.2.80
x.y.ent  A    192.0.2.7
*.wild   A    192.0.2.100
sub.wild A    192.0.2.101
child    NS   ns1.child
child    DS   12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns1.child A   192.0.2.200
deleg    NS   ns.example.net.
dn       DNAME target.example.net.
"""
CHILD = """$TTL 600
@    SOA ns1 hostmaster 7 7200 3600 1209600 60
@    NS  ns1
ns1  A   192.0.2.200
host A   192.0.2.201
"""


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


@pytest.fixture(scope="module")
def zoneset() -> ZoneSet:
    return ZoneSet([zone_from_text("example.test.", PARENT),
                    zone_from_text("child.example.test.", CHILD),
                    zone_from_text("test.", "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns.example.\n")])


@pytest.mark.parametrize("qname, origin", [
    ("www.example.test.", "example.test."),
    ("example.test.", "example.test."),
    ("WWW.Example.TEST.", "example.test."),
    ("host.child.example.test.", "child.example.test."),
    ("a.b.c.child.example.test.", "child.example.test."),
    ("child.example.test.", "child.example.test."),
    ("other.test.", "test."),
    ("xexample.test.", "test."),
])
def test_longest_match(zoneset, qname, origin):
    """RFC 1034 §4.3.2 step 2: the nearest ancestor zone of the query name."""
    assert zoneset.find_zone(name(qname)).origin == name(origin)


@pytest.mark.parametrize("qname", ["example.org.", ".", "tes."])
def test_no_zone(zoneset, qname):
    assert zoneset.find_zone(name(qname)) is None
    assert zoneset.lookup(name(qname)) is None


def test_parent_zone(zoneset):
    child = zoneset.get(name("child.example.test."))
    assert zoneset.parent_zone(child).origin == name("example.test.")
    assert zoneset.parent_zone(zoneset.get(name("test."))) is None


def test_replace_builds_a_new_set_and_leaves_the_old_one(zoneset):
    """A swap is a new immutable set (DESIGN: a query sees old or new, never a mix)."""
    newer = zoneset.replace({name("child.example.test."): None})
    assert name("child.example.test.") in zoneset
    assert name("child.example.test.") not in newer
    assert newer.generation == zoneset.generation + 1
    assert newer.find_zone(name("host.child.example.test.")).origin == name("example.test.")
    assert [z.origin for z in newer] == [name("test."), name("example.test.")]


def test_child_zone_data_comes_from_the_child(zoneset):
    """Parent and child both served: the child's names are answered by the child."""
    answer = resolve(zoneset, name("host.child.example.test."), dns.rdatatype.A)
    assert answer.aa and answer.zone.origin == name("child.example.test.")
    assert [str(r) for r in answer.answer] == ["host.child.example.test. 600 IN A 192.0.2.201"]


def test_ds_at_the_cut_comes_from_the_parent(zoneset):
    """RFC 4035 §3.1.4.1: DS is parent-side data, even when the child is served."""
    answer = resolve(zoneset, name("child.example.test."), dns.rdatatype.DS)
    assert answer.aa and answer.zone.origin == name("example.test.")
    assert [r.rdtype for r in answer.answer] == [dns.rdatatype.DS]


def test_ns_at_the_cut_comes_from_the_child_apex(zoneset):
    answer = resolve(zoneset, name("child.example.test."), dns.rdatatype.NS)
    assert answer.aa and answer.zone.origin == name("child.example.test.")
    assert answer.answer[0].ttl == 600


# ------------------------------------------------------------------ walk

@pytest.fixture(scope="module")
def parent(zoneset):
    return zoneset.get(name("example.test."))


def test_walk_existing_name(parent):
    walk = parent.walk(name("WWW.example.test."))
    assert walk.node is walk.closest_encloser
    assert walk.node.name == name("www.example.test.")
    assert walk.delegation is None and walk.wildcard is None


def test_walk_empty_non_terminal(parent):
    """RFC 4592 §2.2.2: ``y.ent`` and ``ent`` exist, with no data."""
    for text in ("ent.example.test.", "y.ent.example.test."):
        walk = parent.walk(name(text))
        assert walk.node is not None and walk.node.is_empty_non_terminal


def test_walk_closest_encloser_of_a_missing_name(parent):
    """RFC 4592 §3.3.1: the deepest existing ancestor, here an ENT without wildcard."""
    walk = parent.walk(name("a.b.y.ent.example.test."))
    assert walk.node is None
    assert walk.closest_encloser.name == name("y.ent.example.test.")
    assert walk.wildcard is None


def test_walk_wildcard_of_the_closest_encloser(parent):
    walk = parent.walk(name("a.b.wild.example.test."))
    assert walk.node is None
    assert walk.closest_encloser.name == name("wild.example.test.")
    assert walk.wildcard.name == name("*.wild.example.test.")


def test_walk_existing_name_under_a_wildcard_parent_is_not_synthesized(parent):
    walk = parent.walk(name("sub.wild.example.test."))
    assert walk.node.name == name("sub.wild.example.test.") and walk.wildcard is None
    below = parent.walk(name("x.sub.wild.example.test."))
    assert below.closest_encloser.name == name("sub.wild.example.test.")
    assert below.wildcard is None


@pytest.mark.parametrize("qname", ["deleg.example.test.", "a.b.deleg.example.test.",
                                   "ns1.child.example.test."])
def test_walk_stops_at_the_delegation_point(parent, qname):
    """RFC 1034 §4.3.2 step 3b: a cut at or above the name."""
    walk = parent.walk(name(qname))
    assert walk.delegation is not None
    assert walk.delegation.is_delegation
    assert walk.delegation.name in (name("deleg.example.test."), name("child.example.test."))


def test_glue_below_a_cut_is_flagged_occluded(parent):
    node = parent.find_node(name("ns1.child.example.test."))
    assert node.is_occluded and not node.is_delegation
    assert parent.find_node(name("child.example.test.")).is_delegation
    assert parent.apex.is_apex and not parent.apex.is_delegation


def test_walk_dname_above_the_name(parent):
    """RFC 6672 §2.3: a DNAME redirects the names below it, not its owner."""
    walk = parent.walk(name("x.dn.example.test."))
    assert walk.dname is not None and walk.dname.name == name("dn.example.test.")
    assert parent.walk(name("dn.example.test.")).dname is None
