"""The zone model: an immutable tree of names keyed by lowercase labels.

A zone is built once from its records and never changed afterwards; a new
version of a zone is a new object. Everything a query needs to know about a
name that does not depend on the query — apex, delegation point, glue below a
cut, wildcard — is decided here, at build time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .dnssec import build_chains
from .reader import Record

NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
DNAME = dns.rdatatype.DNAME
RRSIG = dns.rdatatype.RRSIG
NSEC3 = dns.rdatatype.NSEC3
DNSKEY = dns.rdatatype.DNSKEY
WILDCARD = b"*"


class Node:
    """One owner name of a zone, with its RRsets and its children.

    ``rrsets`` holds every RRset but RRSIG, by type; ``rrsigs`` holds the
    signatures, by the type they cover. A node with no RRsets but with
    children is an empty non-terminal (RFC 4592 §2.2.2).
    """

    __slots__ = ("name", "children", "rrsets", "rrsigs", "is_apex", "is_delegation",
                 "is_occluded")

    def __init__(self, name: dns.name.Name) -> None:
        self.name = name
        self.children: dict[bytes, Node] = {}
        self.rrsets: dict[int, dns.rrset.RRset] = {}
        self.rrsigs: dict[int, dns.rrset.RRset] = {}
        self.is_apex = False
        self.is_delegation = False  # NS below the apex: a zone cut (RFC 1034 §4.2.1)
        self.is_occluded = False    # below a zone cut: glue or occluded data

    @property
    def is_empty_non_terminal(self) -> bool:
        return not self.rrsets and not self.rrsigs

    def get(self, rdtype: int) -> dns.rrset.RRset | None:
        return self.rrsets.get(rdtype)

    def __repr__(self) -> str:
        types = ",".join(dns.rdatatype.to_text(t) for t in self.rrsets)
        return f"<Node {self.name} {types}>"


@dataclass(frozen=True, slots=True)
class Walk:
    """What one walk down a zone's tree learnt about a query name.

    * ``node``: the node of the name itself, or None if it does not exist.
    * ``closest_encloser``: the deepest existing ancestor-or-self (RFC 4592 §3.3.1).
    * ``delegation``: the zone cut at or above the name, if any.
    * ``dname``: a DNAME strictly above the name that redirects it (RFC 6672 §2.3).
    * ``wildcard``: the ``*`` child of the closest encloser when the name does
      not exist (RFC 4592 §3.3.1: the source of synthesis).
    """

    node: Node | None
    closest_encloser: Node
    delegation: Node | None = None
    dname: Node | None = None
    wildcard: Node | None = None


class Zone:
    """An immutable authoritative zone: origin, SOA, and a tree of nodes."""

    def __init__(self, origin: dns.name.Name, apex: Node, *, source: str = "",
                 node_count: int = 0, rrset_count: int = 0,
                 nsec3_nodes: dict[bytes, Node] | None = None) -> None:
        self.origin = origin
        self.apex = apex
        self.source = source
        self.node_count = node_count
        self.rrset_count = rrset_count
        self.origin_key = name_key(origin)
        soa = apex.get(SOA)
        if soa is None:
            raise ValueError(f"zone {origin} has no SOA")
        self.soa = soa
        self.serial: int = soa[0].serial
        # NSEC3 records are kept out of the tree: their owners are not names
        # of the zone and must not answer queries (RFC 5155 §7.2.8).
        self.nsec3_nodes: dict[bytes, Node] = nsec3_nodes or {}
        self.is_signed = DNSKEY in apex.rrsets
        self.nsec, self.nsec3 = build_chains(origin, apex, self.nodes(), self.nsec3_nodes)

    @functools.cached_property
    def signature_expiry(self) -> int | None:
        """The earliest RRSIG expiration (seconds since the epoch); None if unsigned.

        Computed once per zone version: a served zone must be re-signed, or
        leave emergency, before this moment (RFC 4034 §3.1.5).
        """
        earliest = None
        for rrset in self.rrsets():
            if rrset.rdtype == RRSIG:
                for sig in rrset:
                    if earliest is None or sig.expiration < earliest:
                        earliest = sig.expiration
        return earliest

    @property
    def negative_ttl(self) -> int:
        """RFC 2308 §3: the SOA in a negative answer has TTL min(SOA TTL, MINIMUM)."""
        return min(self.soa.ttl, self.soa[0].minimum)

    def relative_keys(self, qname: dns.name.Name) -> list[bytes]:
        """The lowercase labels of ``qname`` below the origin, from the top down."""
        depth = len(qname.labels) - len(self.origin.labels)
        return [label.lower() for label in reversed(qname.labels[:depth])]

    def walk(self, qname: dns.name.Name) -> Walk:
        """Walk from the apex towards ``qname``, stopping at a cut or a DNAME.

        RFC 1034 §4.3.2 step 3: match down label by label; a zone cut on the
        way means a referral, a missing label means the name does not exist
        and the wildcard of the closest encloser may apply.
        """
        node = self.apex
        for key in self.relative_keys(qname):
            if node.is_delegation:
                return Walk(None, node, delegation=node)
            if DNAME in node.rrsets:
                return Walk(None, node, dname=node)
            child = node.children.get(key)
            if child is None:
                return Walk(None, node, wildcard=node.children.get(WILDCARD))
            node = child
        return Walk(node, node, delegation=node if node.is_delegation else None)

    def find_node(self, name: dns.name.Name) -> Node | None:
        """The node of ``name`` inside this zone, occluded or not."""
        if not name.is_subdomain(self.origin):
            return None
        node: Node | None = self.apex
        for key in self.relative_keys(name):
            node = node.children.get(key) if node else None
        return node

    def nodes(self) -> Iterator[Node]:
        """Every node, parents before children."""
        stack = [self.apex]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children.values())

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        """Every RRset of the zone, signatures and the NSEC3 chain included."""
        for node in self.nodes():
            yield from node.rrsets.values()
            yield from node.rrsigs.values()
        for node in self.nsec3_nodes.values():
            yield from node.rrsets.values()
            yield from node.rrsigs.values()

    def __repr__(self) -> str:
        return f"<Zone {self.origin} serial={self.serial} rrsets={self.rrset_count}>"


def name_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """A case-insensitive key for a name: its lowercase labels."""
    return tuple(label.lower() for label in name.labels)


def build_zone(origin: dns.name.Name, records: Iterable[Record], *, source: str = "") -> Zone:
    """Build the tree of a zone from records already known to belong to it.

    Records with the same owner and type merge into one RRset whose TTL is
    the smallest of theirs (RFC 2181 §5.2 forbids differing TTLs; the
    smallest is the safe reading). Raises ValueError if there is no SOA.
    """
    apex = Node(origin)
    apex.is_apex = True
    node_count = 1
    rrset_count = 0
    depth_of_origin = len(origin.labels)
    nsec3_nodes: dict[bytes, Node] = {}
    for record in records:
        node = apex
        name = record.name
        labels = name.labels
        rdata = record.rdata
        if _is_nsec3_data(rdata) and len(labels) == depth_of_origin + 1:
            key = labels[0].lower()
            node = nsec3_nodes.get(key) or nsec3_nodes.setdefault(key, Node(name))
            rrset_count += _add(node, record)
            continue
        for i in range(len(labels) - depth_of_origin - 1, -1, -1):
            key = labels[i].lower()
            child = node.children.get(key)
            if child is None:
                # The record's own name serves its node (an equal Name, built once).
                child = Node(name if i == 0 else dns.name.Name(labels[i:]))
                node.children[key] = child
                node_count += 1
            node = child
        rrset_count += _add(node, record)
    _mark_cuts(apex)
    return Zone(origin, apex, source=source, node_count=node_count, rrset_count=rrset_count,
                nsec3_nodes=nsec3_nodes)


def _is_nsec3_data(rdata) -> bool:
    return rdata.rdtype == NSEC3 or (rdata.rdtype == RRSIG and rdata.covers() == NSEC3)


def _add(node: Node, record: Record) -> int:
    """Add a record to its node's RRset; 1 if that started a new RRset."""
    rdata = record.rdata
    if rdata.rdtype == RRSIG:
        table, key_type = node.rrsigs, rdata.covers()
    else:
        table, key_type = node.rrsets, rdata.rdtype
    rrset = table.get(key_type)
    if rrset is None:
        rrset = dns.rrset.RRset(node.name, dns.rdataclass.IN, rdata.rdtype,
                                rdata.covers() if rdata.rdtype == RRSIG else dns.rdatatype.NONE)
        table[key_type] = rrset
        # The first record of a set has nothing to merge with: what Rdataset.add
        # would do, without its duplicate check (two hashes of the whole rdata).
        rrset.update_ttl(record.ttl)
        rrset.items[rdata] = None
        return 1
    rrset.add(rdata, record.ttl)
    return 0


def _mark_cuts(apex: Node) -> None:
    """Flag delegation points and everything below them (RFC 1034 §4.2.1)."""
    stack: list[tuple[Node, bool]] = [(child, False) for child in apex.children.values()]
    while stack:
        node, below_cut = stack.pop()
        node.is_occluded = below_cut
        node.is_delegation = not below_cut and NS in node.rrsets
        stack.extend((child, below_cut or node.is_delegation)
                     for child in node.children.values())
