"""Parse an incoming query straight from the wire, without a message object.

Only what an authoritative server needs is read: the header, the one
question (its name bytes kept exactly as sent, for the case echo and the
answer cache key), and an OPT record (RFC 6891 §6.1). The other records are
walked over only to check that the message is well formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name

# Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
CD = 0x0010
OPCODE_MASK = 0x7800
OPT = 41
TSIG = 250
DO_BIT = 0x8000
EXPIRE_OPTION = 9               # EDNS option code of EXPIRE (RFC 7314)
MAX_NAME = 255


class Drop(Exception):
    """The packet gets no answer at all (RFC 1035 §4.1.1: not a readable query)."""


class FormError(Exception):
    """The header is readable but the rest is not: answer FORMERR."""


@dataclass(slots=True)
class Query:
    """The parts of a query that decide its answer."""

    id: int
    flags: int
    qname_wire: bytes            # the name as sent (case kept), uncompressed
    qtype: int
    qclass: int
    question_end: int            # offset just past the question
    edns_version: int = -1       # -1: no OPT
    edns_flags: int = 0          # the OPT TTL field's low 16 bits (DO)
    payload: int = 512           # the requester's UDP payload size
    ancount: int = 0
    nscount: int = 0
    has_tsig: bool = False       # a TSIG record ends the message (RFC 8945 §5.1)
    expire: bool = False         # an EDNS EXPIRE option: the zone's expire timer (RFC 7314)

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> 11

    @property
    def dnssec_ok(self) -> bool:
        return bool(self.edns_flags & DO_BIT)

    @property
    def has_edns(self) -> bool:
        return self.edns_version >= 0

    @property
    def qname(self) -> dns.name.Name:
        return name_from_wire(self.qname_wire)


def read_header(wire: bytes) -> tuple[int, int, int, int, int, int]:
    """ID, flags and the four counts; Drop if there is no full header."""
    if len(wire) < 12:
        raise Drop("shorter than a header")
    return (int.from_bytes(wire[0:2], "big"), int.from_bytes(wire[2:4], "big"),
            int.from_bytes(wire[4:6], "big"), int.from_bytes(wire[6:8], "big"),
            int.from_bytes(wire[8:10], "big"), int.from_bytes(wire[10:12], "big"))


def parse_query(wire: bytes) -> Query:
    """Parse a query; raise Drop or FormError (RFC 1035 §4.1, RFC 6891 §6.1.1)."""
    qid, flags, qdcount, ancount, nscount, arcount = read_header(wire)
    if flags & QR:
        raise Drop("a response, not a query")
    if qdcount != 1:
        raise FormError(f"QDCOUNT is {qdcount}, not 1")
    end = _question_name_end(wire, 12)
    if end + 4 > len(wire):
        raise FormError("question cut short")
    query = Query(qid, flags, wire[12:end], int.from_bytes(wire[end:end + 2], "big"),
                  int.from_bytes(wire[end + 2:end + 4], "big"), end + 4,
                  ancount=ancount, nscount=nscount)
    offset = query.question_end
    for index in range(ancount + nscount + arcount):
        owner_is_root = offset < len(wire) and wire[offset] == 0
        offset = _skip_name(wire, offset)
        if offset + 10 > len(wire):
            raise FormError("record cut short")
        rdtype = int.from_bytes(wire[offset:offset + 2], "big")
        rdlength = int.from_bytes(wire[offset + 8:offset + 10], "big")
        if offset + 10 + rdlength > len(wire):
            raise FormError("rdata runs past the end of the message")
        if rdtype == OPT:
            if index < ancount + nscount:
                raise FormError("OPT outside the additional section")
            if query.has_edns:
                raise FormError("more than one OPT record")
            if not owner_is_root:
                raise FormError("OPT owner is not the root")
            query.payload = max(512, int.from_bytes(wire[offset + 2:offset + 4], "big"))
            query.edns_version = wire[offset + 5]
            query.edns_flags = int.from_bytes(wire[offset + 6:offset + 8], "big")
            if rdlength:
                query.expire = _check_options(wire, offset + 10, offset + 10 + rdlength)
        offset += 10 + rdlength
        if rdtype == TSIG and index == ancount + nscount + arcount - 1:
            query.has_tsig = True
    return query


def _question_name_end(wire: bytes, offset: int) -> int:
    """End of the question name; compression is refused there (nothing precedes it)."""
    total = 0
    while True:
        if offset >= len(wire):
            raise FormError("question name cut short")
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length > 63:
            raise FormError("compression pointer or bad label in the question name")
        total += length + 1
        if total + 1 > MAX_NAME:
            raise FormError("question name longer than 255 octets")
        offset += length + 1


def _skip_name(wire: bytes, offset: int) -> int:
    """Offset after a (possibly compressed) name; only backward pointers are valid."""
    start = offset
    while True:
        if offset >= len(wire):
            raise FormError("name cut short")
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(wire):
                raise FormError("compression pointer cut short")
            pointer = ((length & 0x3F) << 8) | wire[offset + 1]
            if pointer >= start:
                raise FormError("forward compression pointer")
            return offset + 2
        if length > 63:
            raise FormError("bad label type")
        offset += length + 1


def _check_options(wire: bytes, offset: int, end: int) -> bool:
    """EDNS options must tile the OPT rdata exactly (RFC 6891 §6.1.2).

    Returns whether one of them is EXPIRE (RFC 7314): a request for the
    zone's expire timer. Its length is not checked: a query carries it empty,
    and a non-empty one is read as the same request, as Knot DNS reads it.
    """
    expire = False
    while offset < end:
        if offset + 4 > end:
            raise FormError("EDNS option header cut short")
        if wire[offset] == 0 and wire[offset + 1] == EXPIRE_OPTION:
            expire = True
        length = int.from_bytes(wire[offset + 2:offset + 4], "big")
        offset += 4 + length
        if offset > end:
            raise FormError("EDNS option runs past the OPT record")
    return expire


def name_from_wire(name_wire: bytes) -> dns.name.Name:
    """A dnspython Name from uncompressed wire labels (already validated)."""
    labels = []
    offset = 0
    while True:
        length = name_wire[offset]
        labels.append(name_wire[offset + 1:offset + 1 + length])
        if length == 0:
            return dns.name.Name(labels)
        offset += length + 1
