"""From query bytes to response bytes: the policy around the answer engine.

The responder decides what kind of question it is looking at (RFC 1035 §4.1
header checks, EDNS per RFC 6891 §6.1.3, opcodes, classes, transfers), asks
the engine for the answer, renders it, and keeps the rendered bytes in a
bounded cache keyed by the question, so a repeated question costs a dict
lookup and a byte patch of the ID (and of the name's letter case); names that
do not exist are answered from templates (``fastpath.py``), so a
random-subdomain flood neither costs a full answer each nor flushes the cache.
The answer tables (``answers.py``) hold the bodies of every name and type,
built once per zone version; the fast path reads them, and reaches this
module only through its ``Answerer`` interface (``answer_query``, ``limit``).

Nothing a client sends can raise out of ``respond``: an internal error is
logged once with the packet in hex and answered SERVFAIL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ..zones.zoneset import ZoneSet
from .answers import TableStore
from .engine import Answer, Outcome, resolve
from .expire import ExpireSource, add_to_response, soa_expire
from .fastpath import FastPath
from .wire import Unsupported
from .query import AA, RD, Drop, FormError, Query, parse_query, read_header
from .render import header_only, render_answer, render_error

log = logging.getLogger("seawall.dns")

QUERY, NOTIFY = int(dns.opcode.QUERY), int(dns.opcode.NOTIFY)
IN, CH, ANY_CLASS = int(dns.rdataclass.IN), int(dns.rdataclass.CH), int(dns.rdataclass.ANY)
AXFR, IXFR = int(dns.rdatatype.AXFR), int(dns.rdatatype.IXFR)
TXT = int(dns.rdatatype.TXT)
SOA = int(dns.rdatatype.SOA)
UDP, TCP = "udp", "tcp"
TCP_MAX = 65535


@dataclass(frozen=True)
class ResponderSettings:
    """What the responder needs from the configuration."""

    udp_payload: int = 1232          # our EDNS payload size (DNS flag day 2020)
    cache_entries: int = 100_000     # rendered answers kept per ZoneSet and transport
    fast_path: bool = True           # False: every answer from the engine (tests)
    identity: dict[str, str] | None = None  # CHAOS TXT names -> text; None hides them


IDENTITY_NAMES = ("version.bind.", "hostname.bind.", "id.server.", "version.server.")


class HandOff(Exception):
    """Raised in a worker for a message only the supervisor can answer (a NOTIFY or a
    zone transfer: they need the backends and the transfer history, which live in
    the supervisor); the server passes the message on (seawall/workers.py)."""


class Responder:
    """Answers DNS messages from the current ZoneSet."""

    def __init__(self, zoneset: ZoneSet, settings: ResponderSettings | None = None,
                 store: TableStore | None = None) -> None:
        self.settings = settings or ResponderSettings()
        self._zoneset = zoneset
        self.fast = FastPath(self, self.settings.cache_entries,
                             udp_payload=self.settings.udp_payload, store=store)
        # NOTIFY (RFC 1996): (query, client, wire) -> an rcode, or a whole response
        # (e.g. one signed with TSIG, RFC 8945 §5.3).
        self.notify_handler: Callable[[Query, object, bytes], int | bytes] | None = None
        # Zone transfers out (RFC 5936): (query, client, wire) -> the messages of a
        # transfer, or None to refuse (the wire: for TSIG and the IXFR serial).
        self.transfer_handler: Callable[[Query, object, bytes], list[bytes] | None] | None = None
        # A query signed with TSIG (RFC 8945 §5.3): (wire, response, tcp) -> the response
        # signed, or an error if the signature does not verify; None: answered unsigned.
        self.tsig_handler: Callable[[bytes, bytes, bool], bytes] | None = None
        # EDNS EXPIRE (RFC 7314): the seconds left on a served zone; None: its SOA
        # EXPIRE, as its primary (seawall/failover/expiry.py gives the failover view).
        self.expire_of: ExpireSource | None = None
        # True in a worker process: NOTIFY, transfers and EXPIRE queries raise HandOff.
        self.hand_off = False
        self.errors_logged = 0
        self.identity = {dns.name.from_text(k): v
                         for k, v in (self.settings.identity or {}).items()}

    @property
    def zoneset(self) -> ZoneSet:
        return self._zoneset

    @zoneset.setter
    def zoneset(self, zoneset: ZoneSet) -> None:
        """Swap the served data: one assignment, and a cache for the new set."""
        self._zoneset = zoneset
        self.fast.reset()

    # ---------------------------------------------------------------- entry

    def respond(self, wire: bytes, transport: str, client: object = None) -> bytes | None:
        """The response to one message, or None to send nothing."""
        try:
            if self.settings.fast_path:
                response = self.fast.answer(wire, transport == TCP)
                if response is not None:
                    return response
            return self._respond(wire, transport, client)
        except HandOff:
            raise
        except Exception:
            return self._internal_error(wire)

    def _respond(self, wire: bytes, transport: str, client: object) -> bytes | None:
        tcp = transport == TCP
        try:
            query = parse_query(wire)
        except Drop:
            return None
        except FormError:
            qid, flags = int.from_bytes(wire[0:2], "big"), int.from_bytes(wire[2:4], "big")
            # An opcode we do not implement is NOTIMP whatever follows the header
            # (RFC 1035 §4.1.1; RFC 8490 §5.1: a DSO message has no question).
            known = (flags >> 11) & 0xF in (QUERY, NOTIFY)
            return header_only(qid, flags, dns.rcode.FORMERR if known else dns.rcode.NOTIMP)
        payload = self.settings.udp_payload
        if query.opcode not in (QUERY, NOTIFY):
            return render_error(query, dns.rcode.NOTIMP, payload)
        if query.has_edns and query.edns_version != 0:
            # RFC 6891 §6.1.3: we speak version 0 only.
            return render_error(query, dns.rcode.BADVERS, payload)
        if self.hand_off and (query.opcode == NOTIFY or query.qtype in (AXFR, IXFR)
                              or (query.expire and query.qtype == SOA)):
            # The expire timer lives in the supervisor, with the failover state.
            raise HandOff
        if query.opcode == NOTIFY:
            return self._notify(query, client, wire)
        if query.ancount or (query.nscount and query.qtype != IXFR):
            # A query carries no answers, and authority data only for IXFR (RFC 1995 §3).
            return render_error(query, dns.rcode.FORMERR, payload)
        response = self._query(query, tcp, client)
        if query.has_tsig and self.tsig_handler is not None and response is not None:
            return self.tsig_handler(wire, response, tcp)
        if response is not None and self.settings.fast_path and self._cacheable(query):
            self.fast.remember(wire, tcp, response)
        return response

    # ------------------------------------------------------------- queries

    def answer_query(self, query: Query, tcp: bool) -> bytes | None:
        """The slow path's response to a parsed query (the fast path's ``Answerer``)."""
        return self._query(query, tcp, None)

    def limit(self, query: Query, tcp: bool) -> int:
        """The largest response ``query`` may get (the fast path's ``Answerer``)."""
        return self._limit(query, tcp)

    def _query(self, query: Query, tcp: bool, client: object) -> bytes | None:
        payload = self.settings.udp_payload
        qtype, qclass = query.qtype, query.qclass
        if qclass == CH:
            return self._chaos(query)
        if qclass not in (IN, ANY_CLASS):
            return render_error(query, dns.rcode.REFUSED, payload)
        if qtype in (AXFR, IXFR):
            return self._transfer(query, tcp, client)
        # MAILA and MAILB (RFC 1035 §3.2.3) are answered like any type the name
        # lacks (NODATA), as Knot DNS and NSD do; not NOTIMP.
        qname = query.qname
        answer = resolve(self._zoneset, qname, qtype, dnssec=query.dnssec_ok)
        if qclass == ANY_CLASS:
            # An answer for class ANY cannot be authoritative for every class.
            answer.aa = False
        limit = self._limit(query, tcp)
        response = self._render(query, qname, answer, limit, payload)
        if query.expire and qtype == SOA and answer.aa and answer.rcode == 0:
            response = self._with_expire(qname, response, limit)
        return response

    def _with_expire(self, qname: dns.name.Name, response: bytes, limit: int) -> bytes:
        """RFC 7314: the refresh query's answer (the apex SOA) with the time left."""
        zone = self._zoneset.get(qname)
        if zone is None:
            return response   # an SOA query below an apex: not a refresh query
        seconds = self.expire_of(zone) if self.expire_of is not None else soa_expire(zone)
        return add_to_response(response, seconds, limit)

    def _render(self, query: Query, qname: dns.name.Name, answer: Answer, limit: int,
                payload: int) -> bytes:
        """``render_answer``, through the fast encoder when it can (same bytes)."""
        if self.settings.fast_path:
            try:
                response = self.fast.encoder.encode(query, qname, answer, limit, payload)
            except Unsupported:
                pass
            else:
                if self.fast.encoder.complete and answer.outcome is not Outcome.NXDOMAIN:
                    self.fast.remember_body(query, response)
                return response
        return render_answer(query, qname, answer, limit, payload)

    def _limit(self, query: Query, tcp: bool) -> int:
        """RFC 1035 §4.2.1 / RFC 6891 §6.2.5: 512 without EDNS, else the smaller payload."""
        if tcp:
            return TCP_MAX
        if not query.has_edns:
            return 512
        return min(query.payload, self.settings.udp_payload)

    def _chaos(self, query: Query) -> bytes:
        """CHAOS TXT identity names: REFUSED unless the configuration sets a text."""
        text = self.identity.get(query.qname) if query.qtype in (TXT, 255) else None
        if text is None:
            return render_error(query, dns.rcode.REFUSED, self.settings.udp_payload)
        rrset = dns.rrset.from_text(query.qname, 0, "CH", "TXT", _quote(text))
        answer = Answer(aa=True, answer=[rrset])
        return render_answer(query, query.qname, answer, self._limit(query, False),
                             self.settings.udp_payload)

    def _transfer(self, query: Query, tcp: bool, client: object) -> bytes | None:
        """AXFR/IXFR: not over UDP for AXFR (RFC 5936 §4.2); REFUSED unless allowed."""
        if query.qtype == AXFR and not tcp:
            return render_error(query, dns.rcode.NOTIMP, self.settings.udp_payload)
        return render_error(query, dns.rcode.REFUSED, self.settings.udp_payload)

    def _notify(self, query: Query, client: object, wire: bytes) -> bytes:
        """RFC 1996 §3.7: a NOTIFY from a configured primary is acknowledged, else REFUSED."""
        rcode: int = dns.rcode.REFUSED
        if self.notify_handler is not None:
            result = self.notify_handler(query, client, wire)
            if isinstance(result, bytes):
                return result
            rcode = result
        return render_error(query, rcode, self.settings.udp_payload,
                            aa=bool(query.flags & AA))

    def respond_stream(self, wire: bytes, client: object = None) -> list[bytes]:
        """Responses to one TCP message: several for a zone transfer, else at most one."""
        if self.transfer_handler is not None and len(wire) > 12:
            try:
                query = parse_query(wire)
            except (Drop, FormError):
                query = None
            if query is not None and query.qtype in (AXFR, IXFR) and query.opcode == QUERY:
                try:
                    messages = self.transfer_handler(query, client, wire)
                except Exception:
                    messages = None
                    log.exception("transfer failed: packet=%s", wire.hex())
                if messages:
                    return messages
        response = self.respond(wire, TCP, client)
        return [response] if response is not None else []

    # --------------------------------------------------------------- cache

    def _cacheable(self, query: Query) -> bool:
        return query.qclass == IN and query.qtype not in (AXFR, IXFR)

    # -------------------------------------------------------------- errors

    def _internal_error(self, wire: bytes) -> bytes | None:
        """Our bug, not the client's: log once per kind with the packet, SERVFAIL."""
        if self.errors_logged < 100:
            self.errors_logged += 1
            log.exception("answer failed: packet=%s", wire.hex())
        try:
            qid, flags = read_header(wire)[:2]
        except Drop:
            return None
        return header_only(qid, flags, dns.rcode.SERVFAIL)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["Responder", "ResponderSettings", "UDP", "TCP", "RD"]
