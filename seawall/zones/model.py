"""The zone model: an immutable tree of names keyed by lowercase labels.

A zone is built once from its records and never changed afterwards; a new
version of a zone is a new object. Everything a query needs to know about a
name that does not depend on the query — apex, delegation point, glue below a
cut, wildcard — is decided here, at build time.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from . import leaves
from .dnssec import Nsec3Chain, NsecChain, build_chains
from .reader import Record

NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
DNAME = dns.rdatatype.DNAME
RRSIG = dns.rdatatype.RRSIG
NSEC3 = dns.rdatatype.NSEC3
DNSKEY = dns.rdatatype.DNSKEY
WILDCARD = b"*"


NO_SIGNATURES: Mapping[int, dns.rrset.RRset] = types.MappingProxyType({})
"""The ``rrsigs`` of every node without signatures (one shared, read-only table)."""


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
        self.children: Children = NO_CHILDREN
        self.rrsets: dict[int, dns.rrset.RRset] = {}
        self.rrsigs: Mapping[int, dns.rrset.RRset] = NO_SIGNATURES
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


class Children(Mapping[bytes, Node]):
    """The nodes below one node, by lowercase label; read-only once the zone is built.

    Plain leaves are kept as tuples (see :mod:`.leaves`) and handed out as a
    new Node at each lookup, equal in content every time.
    """

    __slots__ = ("entries", "owner")

    def __init__(self, owner: dns.name.Name | None) -> None:
        self.entries: dict[bytes, Node | tuple] = {}
        self.owner = owner

    def get(self, key: bytes, default: Node | None = None) -> Node | None:  # type: ignore[override]
        entry = self.entries.get(key)
        if entry is None:
            return default
        if type(entry) is tuple:
            return self.leaf(key, entry)
        return entry  # type: ignore[return-value]

    def __getitem__(self, key: bytes) -> Node:
        entry = self.entries[key]
        if type(entry) is tuple:
            return self.leaf(key, entry)
        return entry  # type: ignore[return-value]

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.entries)

    def values(self) -> Iterator[Node]:  # type: ignore[override]
        for key, entry in self.entries.items():
            yield self.leaf(key, entry) if type(entry) is tuple else entry  # type: ignore[misc]

    def items(self) -> Iterator[tuple[bytes, Node]]:  # type: ignore[override]
        for key, entry in self.entries.items():
            yield key, (self.leaf(key, entry) if type(entry) is tuple else entry)  # type: ignore[misc]

    def leaf(self, key: bytes, entry: tuple) -> Node:
        """The Node of a compact leaf: its label (lowercase, as written) under the owner."""
        node = Node(leaves.new_name((key,) + self.owner.labels))  # type: ignore[union-attr]
        node.rrsets = leaves.rrsets(node.name, entry)
        return node

    def __repr__(self) -> str:
        return f"<Children of {self.owner}: {len(self.entries)}>"


NO_CHILDREN = Children(None)
"""The ``children`` of every leaf node (one shared, empty table)."""


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
                 nsec3_nodes: dict[bytes, Node] | None = None,
                 chains: tuple[NsecChain | None, Nsec3Chain | None] | None = None) -> None:
        """``chains``: the NSEC and NSEC3 chains when known (a version derived from
        another that shares them, see :mod:`.derive`); by default built here."""
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
        if chains is None:
            chains = build_chains(origin, apex, self.nodes(leaves=False), self.nsec3_nodes)
        self.nsec, self.nsec3 = chains

    @functools.cached_property
    def signature_expiry(self) -> int | None:
        """The earliest RRSIG expiration (seconds since the epoch); None if unsigned.

        Computed once per zone version: a served zone must be re-signed, or
        leave emergency, before this moment (RFC 4034 §3.1.5).
        """
        earliest = None
        for rrset in self.rrsets(leaves=False):   # a compact leaf has no signatures
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

    def nodes(self, *, leaves: bool = True) -> Iterator[Node]:
        """Every node, parents before children, depth first, last child first.

        ``leaves=False`` leaves out the plain leaves kept compact (see
        :mod:`.leaves`): none of them is a cut, glue, DNAME or signed, so the
        checks and the DNSSEC chains need only the others.
        """
        yield self.apex
        stack = [(self.apex.children, reversed(self.apex.children.entries.items()))]
        while stack:
            children, pending = stack[-1]
            for key, entry in pending:
                if type(entry) is tuple:
                    if leaves:
                        yield children.leaf(key, entry)
                    continue
                yield entry
                if entry.children.entries:
                    stack.append((entry.children, reversed(entry.children.entries.items())))
                    break
            else:
                stack.pop()

    def rrsets(self, *, leaves: bool = True) -> Iterator[dns.rrset.RRset]:
        """Every RRset of the zone, signatures and the NSEC3 chain included."""
        for node in self.nodes(leaves=leaves):
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
    Plain leaves are stored compactly (see :mod:`.leaves`) and become Nodes
    when a record they cannot hold, or a child, arrives.
    """
    apex = Node(origin)
    apex.is_apex = True
    node_count = 1
    rrset_count = 0
    depth_of_origin = len(origin.labels)
    nsec3_nodes: dict[bytes, Node] = {}
    ttls: dict[int, int] = {}   # one int object per distinct TTL
    for record in records:
        name = record.name
        labels = name.labels
        rdata = record.rdata
        if _is_nsec3_data(rdata) and len(labels) == depth_of_origin + 1:
            key = labels[0].lower()
            node = nsec3_nodes.get(key) or nsec3_nodes.setdefault(key, Node(name))
            rrset_count += _add(node, record)
            continue
        depth = len(labels) - depth_of_origin
        if depth == 0:
            rrset_count += _add(apex, record)
            continue
        node = apex
        for i in range(depth - 1, 0, -1):
            child, created = _inner(node, labels, i)
            node_count += created
            node = child
        children = node.children
        if children is NO_CHILDREN:
            children = node.children = Children(node.name)
        entries = children.entries
        label = labels[0]
        key = label.lower()   # a new object: a label made by the reader is not kept
        entry = entries.get(key)
        if entry is None or type(entry) is tuple:
            # A new leaf is compact only if its name is its parent's plus its
            # label as the tree keys it: then the Node it becomes has this name.
            if entry is not None or (key == label and labels[1:] == node.name.labels):
                ttl = ttls.setdefault(record.ttl, record.ttl)
                leaf = leaves.add(entry, rdata, ttl)  # type: ignore[arg-type]
                if leaf is not None:
                    node_count += entry is None
                    entries[key] = leaf
                    rrset_count += leaves.rrset_count(leaf) - leaves.rrset_count(entry)  # type: ignore[arg-type]
                    continue
            if entry is None:
                child = Node(name)
                node_count += 1
            else:
                child = children.leaf(key, entry)  # type: ignore[arg-type]
            entries[key] = child
            entry = child
        rrset_count += _add(entry, record)  # type: ignore[arg-type]
    _mark_cuts(apex)
    return Zone(origin, apex, source=source, node_count=node_count, rrset_count=rrset_count,
                nsec3_nodes=nsec3_nodes)


def _inner(node: Node, labels: tuple[bytes, ...], i: int) -> tuple[Node, int]:
    """The child of ``node`` for ``labels[i]`` as a Node (made, or grown from a leaf)."""
    children = node.children
    if children is NO_CHILDREN:
        children = node.children = Children(node.name)
    key = labels[i].lower()
    entry = children.entries.get(key)
    if type(entry) is Node:
        return entry, 0
    if entry is None:
        child = Node(dns.name.Name(labels[i:]))
        created = 1
    else:
        child = children.leaf(key, entry)  # type: ignore[arg-type]
        created = 0
    children.entries[key] = child
    return child, created


def _is_nsec3_data(rdata) -> bool:
    return rdata.rdtype == NSEC3 or (rdata.rdtype == RRSIG and rdata.covers() == NSEC3)


def _add(node: Node, record: Record) -> int:
    """Add a record to its node's RRset; 1 if that started a new RRset."""
    rdata = record.rdata
    if rdata.rdtype == RRSIG:
        if node.rrsigs is NO_SIGNATURES:
            node.rrsigs = {}
        table, key_type = node.rrsigs, rdata.covers()
    else:
        table, key_type = node.rrsets, rdata.rdtype
    rrset = table.get(key_type)
    if rrset is None:
        rrset = dns.rrset.RRset(node.name, dns.rdataclass.IN, rdata.rdtype,
                                rdata.covers() if rdata.rdtype == RRSIG else dns.rdatatype.NONE)
        table[key_type] = rrset  # type: ignore[index]
        # The first record of a set has nothing to merge with: what Rdataset.add
        # would do, without its duplicate check (two hashes of the whole rdata).
        rrset.update_ttl(record.ttl)
        rrset.items[rdata] = None
        return 1
    rrset.add(rdata, record.ttl)
    return 0


def _mark_cuts(apex: Node) -> None:
    """Flag delegation points and everything below them (RFC 1034 §4.2.1).

    Leaves below a cut become Nodes: glue and occluded data are few, and the
    checks look at each of them.
    """
    stack: list[tuple[Node, bool]] = [(apex, False)]
    while stack:
        node, below_cut = stack.pop()
        if node is not apex:
            node.is_occluded = below_cut
            node.is_delegation = not below_cut and NS in node.rrsets
        children = node.children
        if not children.entries:
            continue
        below = below_cut or node.is_delegation
        entries = children.entries
        for key, entry in entries.items():
            if type(entry) is tuple:
                if not below:
                    continue
                entry = entries[key] = children.leaf(key, entry)
            stack.append((entry, below))  # type: ignore[arg-type]
