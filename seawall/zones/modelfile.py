"""A zone model as octets: the compact form of a last good snapshot, read fast.

Reading a snapshot's master file means parsing every record and building
the tree again (about 16 µs a record: 1.6 s for 100k records), before a
restart can answer anything. This form keeps the tree as it was built: a
plain leaf's tuple (see :mod:`.leaves`) as its octets, every other node
with its flags and RRsets in wire form, in the order they were added, so
the zone read back is the zone written — the same nodes, RRsets, TTLs and
records in the same order, and so the same ``image.zone_digest``. It is
plain data (no pickle, nothing that runs code) and every field is checked
as it is read: a name, a length or a record that does not parse raises
ValueError. The caller (``failover/store.py``) keeps its checksum beside
it and uses the master file when this form is missing, damaged or refused.

Format (little-endian)::

    header  magic "SWZMODEL", format u16, node count u32, RRset count u32,
            origin (wire)
    node    flags u8 (apex 1, delegation 2, occluded 4), name (wire, as written),
            RRsets u16 × rrset, signatures u16 × rrset, children u32 × child
    rrset   type u16, covered u16, TTL u32, records u16 × (len u16, wire)
    child   label (u8 length, lowercase octets), kind u8: 0 a leaf, 1 a node
    leaf    sets u8 × (type u16, TTL u32, records u8 (0: one, bare),
                       × (kind u8 (0 octets, 1 a record), len u16, octets or wire))
    then    NSEC3 owners u32 × (label, node)

Example::

    data = dump_zone(zone)            # None: a record the form cannot hold
    zone = load_zone(data, origin)    # ValueError when anything is off
"""

from __future__ import annotations

import gc
import struct

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from . import leaves
from .model import NO_CHILDREN, NO_SIGNATURES, Children, Node, Zone

MAGIC = b"SWZMODEL"
FORMAT = 1
_HEAD = struct.Struct("<8sHII")
_RRSET = struct.Struct("<HHIH")
_SET = struct.Struct("<HIB")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
IN = dns.rdataclass.IN
A, AAAA = dns.rdatatype.A, dns.rdatatype.AAAA
_SIZES = {int(A): 4, int(AAAA): 16}


class Unrepresentable(Exception):
    """A record kept as an object, not octets (say, with a comment): no compact form."""


# ------------------------------------------------------------------ writing

def dump_zone(zone: Zone) -> bytes | None:
    """The zone as octets; None when a record of it has no exact octet form."""
    out: list[bytes] = [_HEAD.pack(MAGIC, FORMAT, zone.node_count, zone.rrset_count),
                        zone.origin.to_wire()]
    try:
        _dump_node(out, zone.apex)
        out.append(_U32.pack(len(zone.nsec3_nodes)))
        for key, node in zone.nsec3_nodes.items():
            out.append(bytes((len(key),)) + key)
            _dump_node(out, node)
    except (Unrepresentable, dns.exception.DNSException):
        return None   # e.g. a relative name in a record: no wire form of its own
    return b"".join(out)


def _dump_node(out: list[bytes], node: Node) -> None:
    out.append(bytes((node.is_apex | node.is_delegation << 1 | node.is_occluded << 2,)))
    out.append(node.name.to_wire())
    for table in (node.rrsets, node.rrsigs):
        out.append(_U16.pack(len(table)))
        for rrset in table.values():
            out.append(_RRSET.pack(rrset.rdtype, rrset.covers, rrset.ttl, len(rrset)))
            for rdata in rrset:
                if rdata.rdcomment is not None:
                    raise Unrepresentable
                wire = rdata.to_wire()
                out.append(_U16.pack(len(wire)) + wire)
    entries = node.children.entries
    out.append(_U32.pack(len(entries)))
    for key, entry in entries.items():
        out.append(bytes((len(key),)) + key)
        if type(entry) is tuple:
            out.append(b"\x00")
            _dump_leaf(out, entry)
        else:
            out.append(b"\x01")
            _dump_node(out, entry)   # type: ignore[arg-type]


def _dump_leaf(out: list[bytes], leaf: tuple) -> None:
    out.append(bytes((len(leaf) // 3,)))
    for at in range(0, len(leaf), 3):
        data = leaf[at + 2]
        items = data if type(data) is tuple else (data,)
        out.append(_SET.pack(leaf[at], leaf[at + 1], len(items) if type(data) is tuple else 0))
        for item in items:
            if type(item) is bytes:
                out.append(b"\x00" + _U16.pack(len(item)) + item)
            else:   # a record leaves.py keeps whole (CAA, HINFO...): its wire form
                if item.rdcomment is not None:
                    raise Unrepresentable
                wire = item.to_wire()
                out.append(b"\x01" + _U16.pack(len(wire)) + wire)


# ------------------------------------------------------------------ reading

def load_zone(data: bytes, origin: dns.name.Name, *, source: str = "") -> Zone:
    """The zone ``dump_zone`` wrote; ValueError when the octets are not such a zone.

    The cyclic collector is paused meanwhile, as for a master file (loader.py).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Reader(data).zone(origin, source)
    except (IndexError, struct.error, dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(f"not a zone model: {type(exc).__name__}: {exc}") from None
    finally:
        if was_enabled:
            gc.enable()


class _Reader:
    """Reads one model from the front, checking each field."""

    __slots__ = ("data", "at", "ttls")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.ttls: dict[int, int] = {}   # one int object per distinct TTL, as build_zone

    def zone(self, origin: dns.name.Name, source: str) -> Zone:
        data = self.data
        if len(data) < _HEAD.size:
            raise ValueError("shorter than its header")
        magic, form, node_count, rrset_count = _HEAD.unpack_from(data, 0)
        if magic != MAGIC or form != FORMAT:
            raise ValueError(f"not a zone model of format {FORMAT}")
        self.at = _HEAD.size
        if self.name() != origin:
            raise ValueError(f"a model of another zone, not {origin}")
        apex = self.node()
        if not apex.is_apex or apex.name != origin:
            raise ValueError("the first node is not the apex")
        nsec3: dict[bytes, Node] = {}
        for _ in range(self.u32()):
            key = self.label()
            nsec3[key] = self.node()
        if self.at != len(data):
            raise ValueError("octets after the end")
        return Zone(origin, apex, source=source, node_count=node_count,
                    rrset_count=rrset_count, nsec3_nodes=nsec3)

    def u16(self) -> int:
        (value,) = _U16.unpack_from(self.data, self.at)
        self.at += 2
        return value

    def u32(self) -> int:
        (value,) = _U32.unpack_from(self.data, self.at)
        self.at += 4
        return value

    def take(self, size: int) -> bytes:
        end = self.at + size
        if end > len(self.data):
            raise ValueError("truncated")
        value = self.data[self.at:end]
        self.at = end
        return value

    def name(self) -> dns.name.Name:
        name, used = dns.name.from_wire(self.data, self.at)   # checks labels and length
        self.at += used
        return name

    def label(self) -> bytes:
        size = self.data[self.at]
        if not 0 < size < 64:
            raise ValueError("a label of a wrong length")
        self.at += 1
        return self.take(size)

    def node(self) -> Node:
        flags = self.data[self.at]
        if flags > 7:
            raise ValueError("unknown node flags")
        self.at += 1
        node = Node(self.name())
        node.is_apex, node.is_delegation, node.is_occluded = \
            bool(flags & 1), bool(flags & 2), bool(flags & 4)
        node.rrsets = self.rrsets(node.name, signatures=False)
        sigs = self.rrsets(node.name, signatures=True)
        if sigs:
            node.rrsigs = sigs
        else:
            node.rrsigs = NO_SIGNATURES
        count = self.u32()
        if count:
            children = node.children = Children(node.name)
            entries = children.entries
            for _ in range(count):
                key = self.label()
                kind = self.data[self.at]
                self.at += 1
                if kind == 0:
                    entries[key] = self.leaf()
                elif kind == 1:
                    entries[key] = self.node()
                else:
                    raise ValueError("unknown child kind")
        else:
            node.children = NO_CHILDREN
        return node

    def rrsets(self, owner: dns.name.Name, *, signatures: bool) -> dict:
        table: dict = {}
        for _ in range(self.u16()):
            rdtype, covers, ttl, count = _RRSET.unpack_from(self.data, self.at)
            self.at += _RRSET.size
            if (rdtype == dns.rdatatype.RRSIG) != signatures:
                raise ValueError("a signature among the RRsets, or the reverse")
            rrset = dns.rrset.RRset(owner, IN, rdtype, covers)
            rrset.ttl = ttl
            items = rrset.items
            for _ in range(count):
                size = self.u16()
                start = self.at
                self.take(size)
                items[dns.rdata.from_wire(IN, rdtype, self.data, start, size)] = None
            if not count:
                raise ValueError("an empty RRset")
            table[rrset.covers if signatures else rrset.rdtype] = rrset
        return table

    def leaf(self) -> tuple:
        data = self.data
        at = self.at
        sets = data[at]
        at += 1
        if not sets:
            raise ValueError("an empty leaf")
        out: list = []
        for _ in range(sets):
            rdtype, ttl, count = _SET.unpack_from(data, at)
            at += _SET.size
            if rdtype not in leaves.COMPACT_TYPES:
                raise ValueError(f"type {rdtype} in a compact leaf")
            ttl = self.ttls.setdefault(ttl, ttl)
            expected = _SIZES.get(rdtype)
            if count == 0 and expected is not None and data[at] == 0:
                # Most leaves of a big zone: one address, read here without a call.
                (size,) = _U16.unpack_from(data, at + 1)
                end = at + 3 + size
                if size != expected or end > len(data):
                    raise ValueError("an address of a wrong length")
                out += (rdtype, ttl, data[at + 3:end])
                at = end
                continue
            self.at = at
            items = tuple([self.item(rdtype) for _ in range(count or 1)])
            at = self.at
            out += (rdtype, ttl, items if count else items[0])
        self.at = at
        return tuple(out)

    def item(self, rdtype: int) -> object:
        kind = self.data[self.at]
        self.at += 1
        size = self.u16()
        if kind == 1:
            start = self.at
            self.take(size)
            return dns.rdata.from_wire(IN, rdtype, self.data, start, size)
        if kind != 0:
            raise ValueError("unknown record kind")
        expected = _SIZES.get(rdtype)
        if expected is not None:
            if size != expected:
                raise ValueError("an address of a wrong length")
            return self.take(size)
        start = self.at
        item = self.take(size)
        dns.rdata.from_wire(IN, rdtype, self.data, start, size)   # it must parse
        return item


__all__ = ["dump_zone", "load_zone"]
