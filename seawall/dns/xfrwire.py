"""The messages of a zone transfer on the wire: packing, per-request finishing, TSIG.

A transfer is rendered in two steps, so that the expensive one can be done
once per served version and off the event loop:

1. ``render_bodies``: the RRsets packed into as few messages as they fit in
   (64 KiB each, less room kept for OPT and TSIG), the question in the
   first only (RFC 5936 §2.2); the header carries no ID and no RD bit yet.
2. ``finish``: per request, the ID, the RD bit and the question name as
   the client spelt it are patched in (same length: the name matched the
   zone's apex), then the OPT record if the request had one (RFC 6891 §7)
   and the TSIG record, each message's MAC chained to the previous one
   (RFC 8945 §5.3.1).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.renderer
import dns.rrset
import dns.tsig

MAX_MESSAGE = 65535
RESERVE = 1024           # room kept in each message for the OPT and TSIG records
TSIG_FUDGE = 300         # RFC 8945 §10: the recommended fudge


class Signer:
    """TSIG for a sequence of messages, each MAC chained to the last (RFC 8945 §5.3.1)."""

    def __init__(self, request: dns.message.Message) -> None:
        self.key = request.keyring
        self.keyname = request.keyname
        self.algorithm = request.keyalgorithm
        self.request_mac = request.mac
        self.original_id = request.id
        self.ctx = None

    def sign(self, renderer: dns.renderer.Renderer) -> None:
        first = self.ctx is None
        self.ctx = renderer.add_multi_tsig(self.ctx, self.keyname, self.key, TSIG_FUDGE,
                                           self.original_id, 0, b"",
                                           self.request_mac if first else b"", self.algorithm)


def render_bodies(qname: dns.name.Name, qtype: int, rrsets: Iterable[dns.rrset.RRset],
                  rcode: int = dns.rcode.NOERROR) -> list[bytes]:
    """``rrsets`` packed into messages; an RRset too big for one is split record by record."""
    flags = dns.flags.QR | (rcode & 0xF)
    if rcode == dns.rcode.NOERROR:
        flags |= dns.flags.AA
    bodies: list[bytes] = []
    renderer = _new(flags)
    renderer.add_question(qname, qtype)
    for rrset in rrsets:
        if _added(renderer, rrset):
            continue
        if renderer.counts[dns.renderer.ANSWER]:
            bodies.append(_body(renderer))
            renderer = _new(flags)
            if _added(renderer, rrset):
                continue
        for rdata in rrset:
            single = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers)
            single.update_ttl(rrset.ttl)
            single.add(rdata)
            if not _added(renderer, single):
                bodies.append(_body(renderer))
                renderer = _new(flags)
                renderer.add_rrset(dns.renderer.ANSWER, single)
    bodies.append(_body(renderer))
    return bodies


def finish(bodies: list[bytes], request: dns.message.Message, question: bytes,
           signer: Signer | None) -> list[bytes]:
    """The bodies made into the response to ``request`` (``question``: its wire form)."""
    opt = dns.message.make_response(request).opt if request.edns >= 0 else None
    rd = request.flags & dns.flags.RD
    messages = []
    for index, body in enumerate(bodies):
        if opt is None and signer is None:
            flags = (int.from_bytes(body[2:4], "big") | rd).to_bytes(2, "big")
            rest = question + body[12 + len(question):] if index == 0 else body[12:]
            messages.append(request.id.to_bytes(2, "big") + flags + body[4:12] + rest)
            continue
        renderer = dns.renderer.Renderer(request.id, int.from_bytes(body[2:4], "big") | rd,
                                         MAX_MESSAGE)
        renderer.output = io.BytesIO()
        renderer.output.write(body)
        if index == 0:
            renderer.output.seek(12)
            renderer.output.write(question)
            renderer.output.seek(0, io.SEEK_END)
        renderer.counts = list(struct.unpack("!HHHH", body[4:12]))
        renderer.section = dns.renderer.ANSWER
        if opt is not None:
            renderer.add_opt(opt)
        renderer.write_header()
        if signer is not None:
            signer.sign(renderer)
        messages.append(renderer.get_wire())
    return messages


def _new(flags: int) -> dns.renderer.Renderer:
    return dns.renderer.Renderer(0, flags, MAX_MESSAGE - RESERVE)


def _added(renderer: dns.renderer.Renderer, rrset: dns.rrset.RRset) -> bool:
    try:
        renderer.add_rrset(dns.renderer.ANSWER, rrset)
    except dns.exception.TooBig:
        return False
    return True


def _body(renderer: dns.renderer.Renderer) -> bytes:
    renderer.write_header()
    return renderer.get_wire()
