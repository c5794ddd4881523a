"""Turn an Answer into wire format, within the size the client can take.

Truncation follows RFC 2181 §9 and RFC 1035 §4.2.1: an RRset of the answer
or authority section that does not fit sets TC and ends the message; data
of the additional section that does not fit is left out silently, except
the glue of in-bailiwick name servers in a referral (RFC 9471 §3), whose
absence sets TC too.

Records keep their zone order (dnspython would shuffle them): Knot DNS and
NSD do not rotate by default, and a response is the same bytes every time,
which is what lets the fast path cache it (``fastpath.py``).
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rcode
import dns.renderer

from .engine import Answer
from .query import AA, OPCODE_MASK, QR, RD, TC, Query

OPT_SIZE = 11
"""An OPT record without options: root owner, type, class, TTL, RDLENGTH."""

ANSWER, AUTHORITY, ADDITIONAL = (dns.renderer.ANSWER, dns.renderer.AUTHORITY,
                                 dns.renderer.ADDITIONAL)


def response_flags(query: Query, rcode: int, aa: bool) -> int:
    """QR set; opcode and RD copied (RFC 1035 §4.1.1); RA clear.

    CD is not copied: RFC 4035 §3.1.6 asks for it, but Knot DNS and NSD both
    leave it clear, and a validating resolver ignores it in a response.
    """
    flags = QR | (query.flags & (OPCODE_MASK | RD)) | (rcode & 0xF)
    return flags | AA if aa else flags


def render_answer(query: Query, qname: dns.name.Name, answer: Answer, max_size: int,
                  edns_payload: int) -> bytes:
    """The full response to ``query``; ``max_size`` is the limit for this transport."""
    flags = response_flags(query, answer.rcode, answer.aa)
    renderer = dns.renderer.Renderer(query.id, flags, max_size)
    renderer.add_question(qname, query.qtype, query.qclass)
    if query.has_edns:
        renderer.reserve(OPT_SIZE)
    truncated = False
    try:
        for rrset in answer.answer:
            renderer.add_rrset(ANSWER, rrset, want_shuffle=False)
        for rrset in answer.authority:
            renderer.add_rrset(AUTHORITY, rrset, want_shuffle=False)
    except dns.exception.TooBig:
        truncated = True
    if not truncated:
        for index, rrset in enumerate(answer.additional):
            try:
                renderer.add_rrset(ADDITIONAL, rrset, want_shuffle=False)
            except dns.exception.TooBig:
                truncated = index < answer.required_additional
                if truncated:
                    break
    if query.has_edns:
        renderer.release_reserved()
        add_opt(renderer, query, answer.rcode, edns_payload)
    if truncated:
        renderer.flags |= TC
    renderer.write_header()
    return renderer.get_wire()


def add_opt(renderer: dns.renderer.Renderer, query: Query, rcode: int, payload: int) -> None:
    """Our OPT: version 0, our payload size, DO echoed (RFC 3225 §3), extended rcode."""
    ednsflags = ((rcode >> 4) << 24) | (query.edns_flags & 0x8000)
    renderer.add_edns(0, ednsflags, payload)


def render_error(query: Query, rcode: int, edns_payload: int, *, with_question: bool = True,
                 aa: bool = False) -> bytes:
    """A response with no records: FORMERR, NOTIMP, REFUSED, BADVERS, SERVFAIL."""
    flags = response_flags(query, rcode, aa)
    renderer = dns.renderer.Renderer(query.id, flags, 65535)
    if with_question:
        renderer.add_question(query.qname, query.qtype, query.qclass)
    if query.has_edns:
        add_opt(renderer, query, rcode, edns_payload)
    renderer.write_header()
    return renderer.get_wire()


def header_only(qid: int, flags: int, rcode: int) -> bytes:
    """A bare header for a query whose question cannot be read (RFC 1035 §4.1.1)."""
    out_flags = QR | (flags & (OPCODE_MASK | RD)) | (rcode & 0xF)
    return qid.to_bytes(2, "big") + out_flags.to_bytes(2, "big") + bytes(8)

