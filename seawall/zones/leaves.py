"""Plain leaf names stored as one small tuple instead of a node with RRsets.

Most names of a big zone are leaves with an address or an alias: a Node, its
Name, dicts, an RRset with its own dict and an Rdata with its text address
come to about 1.1 KB per name. A leaf that needs nothing a walk down the tree
must see (no children, no zone cut, no DNAME, no DNSSEC data, not glue, its
owner written in lowercase) is kept in its parent's ``children`` table as a
tuple instead, ``(rdtype, ttl, data, rdtype, ttl, data, ...)``, where
``data`` is one record or a tuple of records. A record is kept as octets
made while the zone is built: A and AAAA as their address (when dnspython's
text for it is what ``socket`` makes of those octets), CNAME, PTR, MX, SRV,
TXT and SPF as their wire form (which holds all they are). That is about
200 octets per name, and nothing made while reading the file outlives the
load (objects kept from then would pin the reader's memory pages).

A leaf becomes a Node (with RRsets equal to the ones ``model._add`` builds
from the same records) when it is looked up; callers see Nodes only.
"""

from __future__ import annotations

import socket

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

IN = dns.rdataclass.IN
A, AAAA = dns.rdatatype.A, dns.rdatatype.AAAA
COMPACT_TYPES = frozenset({
    dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME, dns.rdatatype.MX,
    dns.rdatatype.TXT, dns.rdatatype.SPF, dns.rdatatype.PTR, dns.rdatatype.SRV,
    dns.rdatatype.CAA, dns.rdatatype.HINFO, dns.rdatatype.NAPTR, dns.rdatatype.SSHFP,
    dns.rdatatype.TLSA, dns.rdatatype.LOC, dns.rdatatype.RP, dns.rdatatype.URI,
    dns.rdatatype.SVCB, dns.rdatatype.HTTPS})
"""Types a compact leaf may hold: none of them changes how a walk or a check goes."""
MAX_RECORDS = 8
"""More records than this at one leaf: a Node (adding to a tuple copies it)."""

_set = object.__setattr__
_CLASSES = {A: dns.rdata.get_rdata_class(IN, A), AAAA: dns.rdata.get_rdata_class(IN, AAAA)}
_FAMILY = {A: socket.AF_INET, AAAA: socket.AF_INET6}
CNAME, PTR = dns.rdatatype.CNAME, dns.rdatatype.PTR
_WIRE_TYPES = {t: dns.rdata.get_rdata_class(IN, t) for t in (
    CNAME, PTR, dns.rdatatype.MX, dns.rdatatype.SRV, dns.rdatatype.TXT, dns.rdatatype.SPF)}
_SINGLETON = frozenset(t for t in COMPACT_TYPES if dns.rdatatype.is_singleton(t))


def new_name(labels: tuple[bytes, ...]) -> dns.name.Name:
    """A Name from labels already checked (dnspython's constructor re-checks each)."""
    name = object.__new__(dns.name.Name)
    _set(name, "labels", labels)
    return name


def _pack(rdata: dns.rdata.Rdata) -> object:
    """The octets that rebuild a record exactly; else the record itself."""
    if rdata.rdcomment is not None:
        return rdata
    cls = _CLASSES.get(rdata.rdtype)
    if cls is None:
        if type(rdata) is _WIRE_TYPES.get(rdata.rdtype):
            return rdata.to_wire()
        return rdata
    if type(rdata) is not cls:
        return rdata
    address = rdata.address  # type: ignore[attr-defined]
    family = _FAMILY[rdata.rdtype]
    try:
        packed = socket.inet_pton(family, address)
    except (OSError, TypeError, ValueError):
        return rdata
    return packed if socket.inet_ntop(family, packed) == address else rdata


def unpack(rdtype: int, item: object) -> dns.rdata.Rdata:
    """The record an item of a leaf stands for."""
    if type(item) is not bytes:
        return item  # type: ignore[return-value]
    if rdtype == CNAME or rdtype == PTR:
        return _target_from_wire(rdtype, item)
    if rdtype in _WIRE_TYPES:
        return dns.rdata.from_wire(IN, rdtype, item, 0, len(item))
    rdata = object.__new__(_CLASSES[rdtype])
    _set(rdata, "rdclass", IN)
    _set(rdata, "rdtype", A if rdtype == A else AAAA)
    _set(rdata, "rdcomment", None)
    _set(rdata, "address", socket.inet_ntop(_FAMILY[rdtype], item))
    return rdata


def _target_from_wire(rdtype: int, wire: bytes) -> dns.rdata.Rdata:
    """A CNAME or PTR record from its wire form (uncompressed, as ``to_wire`` made it)."""
    labels = []
    at = 0
    while True:
        size = wire[at]
        labels.append(wire[at + 1:at + 1 + size])
        if not size:
            break
        at += 1 + size
    rdata = object.__new__(_WIRE_TYPES[rdtype])
    _set(rdata, "rdclass", IN)
    _set(rdata, "rdtype", CNAME if rdtype == CNAME else PTR)
    _set(rdata, "rdcomment", None)
    _set(rdata, "target", new_name(tuple(labels)))
    return rdata


def _same(rdtype: int, old: object, new: object, rdata: dns.rdata.Rdata) -> bool:
    """Equal records, as a set of them sees it (names compare without case)."""
    if (rdtype == A or rdtype == AAAA) and type(old) is bytes and type(new) is bytes:
        return old == new
    return unpack(rdtype, old) == rdata


def add(leaf: tuple | None, rdata: dns.rdata.Rdata, ttl: int) -> tuple | None:
    """``leaf`` with one more record, as ``Rdataset.add`` merges it; None: needs a Node.

    Same TTL rule (the smallest), same duplicate rule (an equal record is not
    added again), same singleton rule (a second CNAME replaces the first).
    """
    rdtype = rdata.rdtype
    if rdtype not in COMPACT_TYPES:
        return None
    item = _pack(rdata)
    if leaf is None:
        # Plain ints only (not the RdataType member): a tuple of ints and
        # octets is one the cyclic collector stops tracking.
        return (int(rdtype), ttl, item)
    size = len(leaf)
    for at in range(0, size, 3):
        if leaf[at] != rdtype:
            continue
        data = leaf[at + 2]
        items = data if type(data) is tuple else (data,)
        if rdtype in _SINGLETON:
            items = (item,)
        elif not any(_same(rdtype, old, item, rdata) for old in items):
            if len(items) >= MAX_RECORDS:
                return None
            items += (item,)
        ttl = min(ttl, leaf[at + 1])
        return leaf[:at] + (leaf[at], ttl, items[0] if len(items) == 1 else items) + \
            leaf[at + 3:]
    if size >= 3 * MAX_RECORDS:
        return None
    return leaf + (int(rdtype), ttl, item)


def rrsets(name: dns.name.Name, leaf: tuple) -> dict[int, dns.rrset.RRset]:
    """The RRsets of a leaf, by type, owned by ``name``."""
    out: dict[int, dns.rrset.RRset] = {}
    for at in range(0, len(leaf), 3):
        rdtype, ttl, data = leaf[at], leaf[at + 1], leaf[at + 2]
        rrset = dns.rrset.RRset(name, IN, rdtype)
        rrset.ttl = ttl
        items = rrset.items
        if type(data) is tuple:
            for item in data:
                items[unpack(rdtype, item)] = None
        else:
            items[unpack(rdtype, data)] = None
        out[rrset.rdtype] = rrset
    return out


def rrset_count(leaf: tuple | None) -> int:
    return len(leaf) // 3 if leaf else 0


def _shortcuts_agree() -> bool:
    """Rebuilt records are exactly what dnspython's parsers make."""
    try:
        for rdtype, text in ((A, "192.0.2.1"), (AAAA, "2001:db8::1"),
                             (CNAME, "Host.Example."), (PTR, "a.b."),
                             (dns.rdatatype.MX, "10 Mail.example."),
                             (dns.rdatatype.SRV, "1 2 3 T.example."),
                             (dns.rdatatype.TXT, '"a b" c'), (dns.rdatatype.SPF, "x")):
            ref = dns.rdata.from_text(IN, rdtype, text)
            packed = _pack(ref)
            if type(packed) is not bytes:
                return False
            made = unpack(rdtype, packed)
            if not (type(made.rdclass) is type(ref.rdclass)
                    and type(made.rdtype) is type(ref.rdtype)
                    and all(getattr(made, slot) == getattr(ref, slot)
                            for cls in type(ref).__mro__
                            for slot in getattr(cls, "__slots__", ()))
                    and made == ref and made.to_wire() == ref.to_wire()
                    and made.to_text() == ref.to_text()):
                return False
        return new_name((b"a", b"")).labels == dns.name.Name([b"a", b""]).labels
    except Exception:
        return False


if not _shortcuts_agree():   # a dnspython that builds records otherwise: keep them whole
    def _pack(rdata: dns.rdata.Rdata) -> object:  # noqa: F811
        return rdata
