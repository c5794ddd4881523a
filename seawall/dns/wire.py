"""A fast encoder for the engine's answers, byte for byte what ``render.py`` makes.

``render.render_answer`` goes through dnspython's Renderer, which builds a
Name object for every suffix of every name it compresses: about 30 µs per
answer, most of a cache miss. This encoder writes the same bytes directly:
the same compression (RFC 1035 §4.1.4, first occurrence wins, only offsets up
to 0x3FFF, case-insensitive), the same record order, the same truncation
(RFC 2181 §9: an answer or authority RRset that does not fit sets TC and ends
the message; additional data is dropped silently unless it is required glue),
the same OPT. Rdata without compressible names is encoded once per record
and kept. Types whose names dnspython compresses in ways not mirrored here
(IPSECKEY, AMTRELAY gateways) and anything that is not class IN raise
``Unsupported``, and the caller renders with ``render.py`` instead.

``tests/dns/test_fastpath.py`` compares the two on many answers.
"""

from __future__ import annotations

import dns.name
import dns.rrset

from .engine import Answer
from .query import TC, Query
from .render import OPT_SIZE, response_flags

IN = 1
NS, CNAME, SOA, PTR, MX = 2, 5, 6, 12, 15
UNSUPPORTED_TYPES = {45, 260}   # IPSECKEY, AMTRELAY: gateway names, compressed by dnspython
MAX_POINTER = 0x3FFF
RDATA_CACHE = 200_000
"""Entries kept per table (rdata wire forms, name suffix keys); full: start again."""


class Unsupported(Exception):
    """This answer needs dnspython's renderer."""


class _TooBig(Exception):
    pass


class Encoder:
    """Encodes answers; keeps the wire form of zone rdata (bounded) between calls."""

    def __init__(self, cache_limit: int = RDATA_CACHE) -> None:
        self.rdata_wire: dict[int, tuple[object, bytes]] = {}
        self.name_keys: dict[int, tuple[dns.name.Name, list[tuple[bytes, ...]]]] = {}
        self.cache_limit = cache_limit
        self._qname: tuple[object, list[tuple[bytes, ...]]] = (None, [])
        self.complete = False

    def encode(self, query: Query, qname: dns.name.Name, answer: Answer, max_size: int,
               edns_payload: int) -> bytes:
        """Exactly ``render.render_answer(query, qname, answer, max_size, edns_payload)``."""
        flags = response_flags(query, answer.rcode, answer.aa)
        out = bytearray(12)
        compress: dict[tuple[bytes, ...], int] = {}
        # The query name is new every time: its keys are not kept.
        lowered = tuple(label.lower() for label in qname.labels)
        self._qname = (qname, [lowered[i:] for i in range(len(lowered))])
        self._name(out, qname, compress)
        out += query.qtype.to_bytes(2, "big") + query.qclass.to_bytes(2, "big")
        limit = max_size - OPT_SIZE if query.has_edns else max_size
        if len(out) > limit:
            raise Unsupported("question alone too big")
        counts = [1, 0, 0, 0]
        truncated = dropped = False
        for section, rrsets in ((1, answer.answer), (2, answer.authority)):
            for rrset in rrsets:
                try:
                    counts[section] += self._rrset(out, rrset, compress, limit)
                except _TooBig:
                    truncated = True
                    break
            if truncated:
                break
        if not truncated:
            for index, rrset in enumerate(answer.additional):
                try:
                    counts[3] += self._rrset(out, rrset, compress, limit)
                except _TooBig:
                    if index < answer.required_additional:
                        truncated = True
                        break
                    dropped = True
        if query.has_edns:
            # render.add_opt: version 0, our payload, DO echoed, extended rcode.
            ednsflags = ((answer.rcode >> 4) << 24) | (query.edns_flags & 0x8000)
            out += (b"\x00\x00\x29" + edns_payload.to_bytes(2, "big")
                    + ednsflags.to_bytes(4, "big") + b"\x00\x00")
            counts[3] += 1
        if truncated:
            flags |= TC
        # Every record the engine gave is in: the same records fit any larger limit.
        self.complete = not truncated and not dropped
        out[0:12] = (query.id.to_bytes(2, "big") + flags.to_bytes(2, "big")
                     + counts[0].to_bytes(2, "big") + counts[1].to_bytes(2, "big")
                     + counts[2].to_bytes(2, "big") + counts[3].to_bytes(2, "big"))
        return bytes(out)

    # ----------------------------------------------------------------- parts

    def _rrset(self, out: bytearray, rrset: dns.rrset.RRset,
               compress: dict[tuple[bytes, ...], int], limit: int) -> int:
        """Write one RRset whole, or roll back and raise _TooBig (dnspython's _track_size)."""
        start = len(out)
        rdtype = rrset.rdtype
        if rrset.rdclass != IN or rdtype in UNSUPPORTED_TYPES:
            raise Unsupported(f"type {rdtype} class {rrset.rdclass}")
        name = rrset.name
        if len(rrset) == 0:
            self._name(out, name, compress)
            out += rdtype.to_bytes(2, "big") + b"\x00\x01\x00\x00\x00\x00\x00\x00"
        else:
            fixed = rdtype.to_bytes(2, "big") + b"\x00\x01" + rrset.ttl.to_bytes(4, "big")
            for rdata in rrset:
                self._name(out, name, compress)
                out += fixed
                length_at = len(out)
                out += b"\x00\x00"
                if rdtype == CNAME or rdtype == NS or rdtype == PTR:
                    self._name(out, rdata.target, compress)
                elif rdtype == MX:
                    out += rdata.preference.to_bytes(2, "big")
                    self._name(out, rdata.exchange, compress)
                elif rdtype == SOA:
                    self._name(out, rdata.mname, compress)
                    self._name(out, rdata.rname, compress)
                    out += b"".join(v.to_bytes(4, "big") for v in (
                        rdata.serial, rdata.refresh, rdata.retry, rdata.expire, rdata.minimum))
                else:
                    out += self._rdata(rdata)
                size = len(out) - length_at - 2
                out[length_at:length_at + 2] = size.to_bytes(2, "big")
        if len(out) > limit:
            del out[start:]
            for key in [k for k, v in compress.items() if v >= start]:
                del compress[key]
            raise _TooBig
        return len(rrset) or 1

    def _rdata(self, rdata: object) -> bytes:
        entry = self.rdata_wire.get(id(rdata))
        if entry is not None and entry[0] is rdata:
            return entry[1]
        wire = rdata.to_wire()  # type: ignore[attr-defined]
        if len(self.rdata_wire) >= self.cache_limit:
            self.rdata_wire.clear()
        # The rdata is kept with its wire form, so its id cannot be reused meanwhile.
        self.rdata_wire[id(rdata)] = (rdata, wire)
        return wire

    def _keys(self, name: dns.name.Name) -> list[tuple[bytes, ...]]:
        if name is self._qname[0]:
            return self._qname[1]
        entry = self.name_keys.get(id(name))
        if entry is not None and entry[0] is name:
            return entry[1]
        if not name.is_absolute():
            raise Unsupported("relative name")
        lowered = tuple(label.lower() for label in name.labels)
        keys = [lowered[i:] for i in range(len(lowered))]
        if len(self.name_keys) >= self.cache_limit:
            self.name_keys.clear()
        self.name_keys[id(name)] = (name, keys)
        return keys

    def _name(self, out: bytearray, name: dns.name.Name,
              compress: dict[tuple[bytes, ...], int]) -> None:
        """dns.name.Name.to_wire with a compression table keyed by lowercase labels."""
        keys = self._keys(name)
        for index, label in enumerate(name.labels):
            if not label:
                out.append(0)
                return
            key = keys[index]
            position = compress.get(key)
            if position is not None:
                out += (0xC000 | position).to_bytes(2, "big")
                return
            position = len(out)
            if position <= MAX_POINTER:
                compress[key] = position
            out.append(len(label))
            out += label
