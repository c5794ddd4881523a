"""The messages of a zone transfer on the wire: packing, per-request finishing, TSIG.

A transfer is rendered in two steps, so that the expensive one can be done
once per served version and off the event loop:

1. ``render_bodies``: the RRsets packed into as few messages as they fit in
   (64 KiB each, less room kept for OPT and TSIG), the question in the
   first only (RFC 5936 §2.2); the header carries no ID and no RD bit yet.
2. ``finish``: per request, the ID, the RD bit and the question name as
   the client spelt it are patched in (same length: the name matched the
   zone's apex), then the OPT record if the request had one (RFC 6891 §7),
   with the EDNS EXPIRE option if asked for (RFC 7314, in every message
   as Knot DNS does; :mod:`.expire`), and the TSIG record, each message's
   MAC chained to the previous one (RFC 8945 §5.3.1).

``check_tsig`` and ``tsig_error_response`` answer a signed request whose
TSIG does not verify as RFC 8945 §5.2 says: NOTAUTH with the TSIG error
BADKEY (unknown key name, or a known name with another algorithm), BADSIG
or BADTIME in a TSIG record, never a normal answer.
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterable

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.renderer
import dns.rrset
import dns.tsig

from .expire import OPTION_CODE, option

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
           signer: Signer | None, expire: int | None = None) -> list[bytes]:
    """The bodies made into the response to ``request`` (``question``: its wire form);
    ``expire``: the seconds of an EDNS EXPIRE option for each OPT (RFC 7314)."""
    opt = None
    if request.edns >= 0:
        response = dns.message.make_response(request)
        if expire is not None:
            response.use_edns(0, response.ednsflags, response.payload,
                              options=[dns.edns.GenericOption(OPTION_CODE,
                                                              option(expire)[4:])])
        opt = response.opt
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


# ------------------------------------------------------------- TSIG checks

BADSIG, BADKEY, BADTIME = 16, 17, 18          # TSIG error codes (RFC 8945 §3)
TSIG_ERRORS = {BADSIG: "BADSIG", BADKEY: "BADKEY", BADTIME: "BADTIME"}


class TsigCheck:
    """What RFC 8945 §5.2 says of a signed request: ``request`` verified (error 0),
    or a TSIG error (BADKEY, BADSIG, BADTIME) with ``reason``; ``error`` None: the
    message cannot be read at all (FORMERR)."""

    def __init__(self, request: dns.message.Message | None, error: int | None,
                 reason: str = "", unverified: dns.message.Message | None = None) -> None:
        self.request = request
        self.error = error
        self.reason = reason
        self.unverified = unverified   # the request as sent, when its TSIG was readable


def check_tsig(wire: bytes, keyring: dict[dns.name.Name, dns.tsig.Key]) -> TsigCheck:
    """Verify the TSIG of ``wire`` against ``keyring`` (RFC 8945 §5.2, in its order:
    key and algorithm (§5.2.1), MAC (§5.2.2), time (§5.2.3))."""
    try:
        return TsigCheck(dns.message.from_wire(wire, keyring=keyring), 0)
    except (dns.message.UnknownTSIGKey, dns.tsig.BadKey, dns.tsig.BadAlgorithm) as exc:
        error, reason = BADKEY, f"unknown key or algorithm: {exc or type(exc).__name__}"
    except dns.tsig.BadSignature as exc:
        error, reason = BADSIG, f"bad signature: {exc or type(exc).__name__}"
    except dns.tsig.BadTime as exc:
        error, reason = BADTIME, f"time outside the fudge: {exc or type(exc).__name__}"
    except dns.tsig.PeerError as exc:   # a request carrying a TSIG error of its own
        error, reason = BADSIG, f"request with a TSIG error: {type(exc).__name__}"
    except dns.exception.DNSException as exc:
        return TsigCheck(None, None, f"bad request: {exc}")
    try:
        unverified = dns.message.from_wire(wire, keyring=False)
    except dns.exception.DNSException:
        unverified = None
    if unverified is None or unverified.tsig is None:
        return TsigCheck(None, None, reason)
    return TsigCheck(None, error, reason, unverified)


def tsig_error_response(wire: bytes, question_end: int, check: TsigCheck,
                        keyring: dict[dns.name.Name, dns.tsig.Key]) -> bytes:
    """NOTAUTH with a TSIG record carrying ``check.error`` (RFC 8945 §5.2, §5.3.2).

    BADKEY and BADSIG go unsigned: the TSIG record has an empty MAC (the
    server cannot, or must not, sign with that key). BADTIME is signed with
    the key, bound to the request's MAC, and its Other Data is the server's
    time (§5.2.3), so the client can tell how far off its clock is. A request
    that cannot be read gets FORMERR, header and question only.
    """
    qid, flags = struct.unpack("!HH", wire[:4])
    opcode_rd = flags & (0x7800 | dns.flags.RD)
    if check.error is None or check.unverified is None:
        header = struct.pack("!HHHHHH", qid, dns.flags.QR | opcode_rd | dns.rcode.FORMERR,
                             1, 0, 0, 0)
        return header + wire[12:question_end]
    request = check.unverified
    tsig = request.tsig[0]
    if check.error == BADTIME:
        key = keyring.get(request.keyname)
        if key is not None:
            response = dns.message.Message(id=qid)
            response.flags = dns.flags.Flag(dns.flags.QR | opcode_rd)
            response.set_rcode(dns.rcode.NOTAUTH)
            response.question = list(request.question)
            now = int(time.time())
            response.use_tsig(key, fudge=tsig.fudge, original_id=tsig.original_id,
                              tsig_error=BADTIME, other_data=now.to_bytes(6, "big"))
            response.request_mac = tsig.mac
            return response.to_wire()
    header = struct.pack("!HHHHHH", qid, dns.flags.QR | opcode_rd | dns.rcode.NOTAUTH,
                         1, 0, 0, 1)
    owner = request.keyname.to_wire()
    rdata = (tsig.algorithm.to_wire() + int(time.time()).to_bytes(6, "big")
             + struct.pack("!HH", tsig.fudge, 0)                        # empty MAC
             + struct.pack("!HHH", tsig.original_id, check.error, 0))   # no other data
    record = owner + struct.pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0,
                                 len(rdata)) + rdata
    return header + wire[12:question_end] + record
