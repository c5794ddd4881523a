"""A new version of a zone with a few RRsets replaced, sharing the rest with its base.

Health-checked answers (seawall.health) serve, for each health view, the
zone with its declared RRsets holding the healthy addresses. Building that
version with :func:`.model.build_zone` over every record costs the whole
zone (seconds for 100k records) for a change of one RRset. A zone is
immutable, so a version that differs in a few RRsets can instead share
every node off the path to them with its base: :func:`replace_rrsets`
copies the apex, the ``children`` tables and the nodes on each path, and
nothing else (path copying, as persistent trees do). The result answers
every query as ``build_zone`` over the base's records, with those RRsets'
records in place of the base's, would (tests/zones/test_derive.py checks it
against the engine).

Only RRsets that change no walk down the tree may be replaced: not NS
(zone cuts), SOA, DNAME, or DNSSEC data, whose flags and chains are set at
build time over the whole zone. Each replaced RRset must exist in the
base, and its replacement must not be empty: nodes are neither added nor
removed, so the flags (apex, delegation, occluded) and the counts of the
base hold for the new version.

Example::

    derived = replace_rrsets(zone, {(www, A): (300, [a_rdata_1, a_rdata_2])})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .model import NO_CHILDREN, Children, Node, Zone

STRUCTURAL = frozenset({
    dns.rdatatype.NS, dns.rdatatype.SOA, dns.rdatatype.DNAME, dns.rdatatype.RRSIG,
    dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.NSEC3PARAM,
    dns.rdatatype.DNSKEY, dns.rdatatype.DS, dns.rdatatype.CDS, dns.rdatatype.CDNSKEY})
"""Types whose change may change a walk, a flag or a chain: never replaced here."""

Replacement = tuple[int, Iterable[dns.rdata.Rdata]]
"""A replaced RRset's TTL and records."""


def replace_rrsets(zone: Zone, replace: Mapping[tuple[dns.name.Name, int], Replacement]
                   ) -> Zone:
    """``zone`` with each (owner, type) of ``replace`` holding the given TTL and records.

    Raises ValueError for a type of :data:`STRUCTURAL`, an owner outside the
    zone, an RRset the zone does not have, or no records; ``zone`` is never
    changed. Copies O(depth × siblings) of the tree per replaced RRset.
    """
    apex = _copy(zone.apex)
    fresh: set[int] = {id(apex)}       # objects made here, and so ours to change
    for (name, rdtype), (ttl, rdatas) in replace.items():
        if rdtype in STRUCTURAL:
            raise ValueError(f"{dns.rdatatype.to_text(rdtype)} RRsets are not replaced "
                             "in place (they shape the tree)")
        if not name.is_subdomain(zone.origin):
            raise ValueError(f"{name} is not in zone {zone.origin}")
        node = apex
        for key in zone.relative_keys(name):
            node = _own_child(node, key, fresh, name)
        if rdtype not in node.rrsets:
            raise ValueError(f"zone {zone.origin} has no {name} "
                             f"{dns.rdatatype.to_text(rdtype)} RRset to replace")
        rrset = dns.rrset.RRset(node.name, dns.rdataclass.IN, rdtype)
        rrset.update_ttl(ttl)
        for rdata in rdatas:
            rrset.add(rdata)
        if not rrset:
            raise ValueError(f"the new {name} {dns.rdatatype.to_text(rdtype)} RRset is empty")
        # Assigning an existing key keeps its place: the node's types stay in the
        # base's order (the order a build from the records in place would give).
        node.rrsets[rdtype] = rrset
    # The NSEC chain holds the base's nodes: shared only when there is none (NSEC3
    # owners live outside the tree, so an NSEC3 chain never refers to a tree node).
    chains = (None, zone.nsec3) if zone.nsec is None else None
    return Zone(zone.origin, apex, source=zone.source, node_count=zone.node_count,
                rrset_count=zone.rrset_count, nsec3_nodes=zone.nsec3_nodes, chains=chains)


def _copy(node: Node) -> Node:
    """A new Node with ``node``'s flags, RRsets (a new table) and children (shared)."""
    copy = Node(node.name)
    copy.children = node.children
    copy.rrsets = dict(node.rrsets)
    copy.rrsigs = node.rrsigs            # read-only, never replaced here
    copy.is_apex = node.is_apex
    copy.is_delegation = node.is_delegation
    copy.is_occluded = node.is_occluded
    return copy


def _own_child(node: Node, key: bytes, fresh: set[int], name: dns.name.Name) -> Node:
    """The child ``key`` of a node made here, itself made here (copied on first use)."""
    children = node.children
    if id(children) not in fresh:
        if children is NO_CHILDREN:
            raise ValueError(f"{name} is not a name of the zone")
        copy = Children(children.owner)
        copy.entries = dict(children.entries)
        children = node.children = copy
        fresh.add(id(children))
    entry = children.entries.get(key)
    if entry is None:
        raise ValueError(f"{name} is not a name of the zone")
    if type(entry) is tuple:
        child = children.leaf(key, entry)   # a compact leaf becomes a Node of its own
    elif id(entry) in fresh:
        return entry   # type: ignore[return-value]
    else:
        child = _copy(entry)   # type: ignore[arg-type]
    children.entries[key] = child
    fresh.add(id(child))
    return child
