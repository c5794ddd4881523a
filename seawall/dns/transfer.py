"""Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995) over TCP, behind an ACL.

A request is checked in this order:

1. **TSIG** (RFC 8945 §5.2): a signed request must verify with one of the
   configured keys, else NOTAUTH with the TSIG error in a TSIG record:
   BADKEY (unknown name, or the right name with another algorithm), BADSIG,
   BADTIME (see ``xfrwire.tsig_error_response``).
2. **ACL**: a rule allows a request when the client's address is in one of
   its prefixes (no prefixes: any address) and, if the rule names a key,
   the request is signed with that key. No rule allows it: REFUSED.
3. **Zone**: the name must be the apex of a served zone, else NOTAUTH
   (RFC 5936 §2.2.1).

The response is built from one ZoneSet snapshot, so a swap during a
transfer cannot mix two versions. AXFR is the SOA, every other RRset (with
signatures and the NSEC3 chain), and the SOA again, in as many messages as
it takes (at most 64 KiB each, the question in the first only; RFC 5936
§2.2). With TSIG, every message is signed, each MAC chained to the previous
one (RFC 8945 §5.3.1). The AXFR of a served version is rendered once and
finished per request (:mod:`.xfrwire`), so several secondaries, or one that
retries, cost one rendering.

IXFR answers from the kept differences between served versions
(:class:`History`): a client already at our serial or newer gets the SOA
alone (RFC 1995 §2); a client whose serial starts a chain of kept
differences gets those differences; any other gets the whole zone in an
AXFR-style IXFR response (RFC 1995 §4), which every secondary accepts.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig

from ..budgets import LogLimiter
from ..zones.model import Zone
from ..zones.zoneset import ZoneSet
from .query import Query
from .serials import serial_gt
from .expire import ExpireSource, soa_expire
from .xfrwire import TSIG_ERRORS, Signer, check_tsig, finish, render_bodies, tsig_error_response

log = logging.getLogger("seawall.transfers")

SOA = dns.rdatatype.SOA
AXFR, IXFR = dns.rdatatype.AXFR, dns.rdatatype.IXFR

RecordKey = tuple[dns.name.Name, int, object]   # (owner, ttl, rdata)


# ------------------------------------------------------------------ ACL


@dataclass(frozen=True)
class Rule:
    """One ACL entry: address prefixes (none: any address) and/or a key name."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    key: dns.name.Name | None = None

    def allows(self, address: str | None, key: dns.name.Name | None) -> bool:
        if self.key is not None and key != self.key:
            return False
        if not self.networks:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


@dataclass(frozen=True)
class Acl:
    """Rules tried in order; the first that matches allows. No rules: nobody."""

    rules: tuple[Rule, ...] = ()

    def allows(self, address: str | None, key: dns.name.Name | None) -> bool:
        return any(rule.allows(address, key) for rule in self.rules)


def make_rule(addresses: Iterable[str], key: str | None) -> Rule:
    """A Rule from configuration text; ValueError names a bad prefix."""
    networks = tuple(ipaddress.ip_network(a, strict=False) for a in addresses)
    return Rule(networks, dns.name.from_text(key) if key else None)


# -------------------------------------------------------------- history


@dataclass(frozen=True)
class Difference:
    """What changed from one served version of a zone to the next (RFC 1995 §4)."""

    old_soa: dns.rrset.RRset
    new_soa: dns.rrset.RRset
    deleted: tuple[RecordKey, ...]
    added: tuple[RecordKey, ...]

    @property
    def old_serial(self) -> int:
        return self.old_soa[0].serial

    @property
    def new_serial(self) -> int:
        return self.new_soa[0].serial


def zone_records(zone: Zone) -> set[RecordKey]:
    """Every record of a zone but the SOA, as (owner, ttl, rdata)."""
    out: set[RecordKey] = set()
    for rrset in zone.rrsets():
        if rrset.rdtype == SOA:
            continue
        for rdata in rrset:
            out.add((rrset.name, rrset.ttl, rdata))
    return out


@dataclass
class _Kept:
    records: set[RecordKey]
    serial: int
    differences: deque[Difference] = field(default_factory=deque)


class History:
    """The last ``depth`` differences between served versions of every zone.

    Kept in memory only: after a restart a secondary's first IXFR is
    answered with the whole zone, as RFC 1995 §4 allows.
    """

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._zones: dict[dns.name.Name, _Kept] = {}

    def record(self, old: Zone | None, new: Zone | None) -> None:
        """Note that ``new`` replaced ``old`` as the served version of its zone."""
        if self.depth <= 0:
            return
        if new is None:
            if old is not None:
                self._zones.pop(old.origin, None)
            return
        records = zone_records(new)
        kept = self._zones.get(new.origin)
        if kept is not None and new.serial == kept.serial and records == kept.records:
            return   # the same version again
        if old is None or kept is None or kept.serial != old.serial \
                or not serial_gt(new.serial, old.serial):
            # No base to diff against, or a serial that did not move forward:
            # nothing a secondary could apply incrementally.
            self._zones[new.origin] = _Kept(records, new.serial)
            return
        difference = Difference(old.soa, new.soa,
                                tuple(_ordered(kept.records - records)),
                                tuple(_ordered(records - kept.records)))
        kept.differences.append(difference)
        while len(kept.differences) > self.depth:
            kept.differences.popleft()
        kept.records, kept.serial = records, new.serial

    def chain(self, origin: dns.name.Name, serial: int, current: int) -> list[Difference] | None:
        """The differences from ``serial`` up to ``current``, or None if not kept."""
        kept = self._zones.get(origin)
        if kept is None or kept.serial != current:
            return None
        differences = list(kept.differences)
        for start, difference in enumerate(differences):
            if difference.old_serial == serial:
                return differences[start:]
        return None


def _ordered(records: Iterable[RecordKey]) -> list[RecordKey]:
    return sorted(records, key=lambda r: (r[0], r[2].rdtype, r[1]))


# ------------------------------------------------------------- handler


class TransferServer:
    """Answers AXFR and IXFR requests from the served ZoneSet."""

    def __init__(self, acl: Acl, keyring: dict[dns.name.Name, dns.tsig.Key],
                 zoneset: Callable[[], ZoneSet], history: History) -> None:
        self.acl = acl
        self.keyring = keyring
        self.zoneset = zoneset
        self.history = history
        # EDNS EXPIRE (RFC 7314): the seconds left on a served zone; its SOA EXPIRE
        # by default, as its primary (seawall/failover/expiry.py gives the failover view).
        self.expire_of: ExpireSource = soa_expire
        # The rendered AXFR of each served version, while that version lives.
        self._rendered: weakref.WeakKeyDictionary[Zone, list[bytes]] = \
            weakref.WeakKeyDictionary()

    def handle(self, query: Query, client: object, wire: bytes) -> list[bytes]:
        """The messages answering one transfer request (RFC 5936 §2.2, RFC 1995 §4)."""
        host = client[0] if isinstance(client, tuple) and client else None
        kind = "ixfr" if query.qtype == IXFR else "axfr"
        check = check_tsig(wire, self.keyring)
        if check.request is None:
            rcode = dns.rcode.FORMERR if check.error is None else dns.rcode.NOTAUTH
            _refused(query, host, kind, rcode,
                     f"tsig {TSIG_ERRORS.get(check.error or 0, '-')}: {check.reason}")
            return [tsig_error_response(wire, query.question_end, check, self.keyring)]
        request = check.request
        key = request.keyname if request.had_tsig else None
        signer = Signer(request) if request.had_tsig else None
        question = wire[12:query.question_end]
        origin = query.qname
        if not self.acl.allows(host, key):
            return self._deny(query, wire, host, kind, dns.rcode.REFUSED,
                              "not allowed by transfers.allow", signer, request)
        zone = self.zoneset().get(origin)
        if zone is None:
            return self._deny(query, wire, host, kind, dns.rcode.NOTAUTH,
                              "not a zone served here", signer, request)
        started = time.monotonic()
        how = kind
        sections = None
        if kind == "ixfr":
            sections, how = self._ixfr(request, zone)
        bodies = self.axfr_bodies(zone) if sections is None else \
            render_bodies(zone.origin, IXFR, sections)
        # RFC 7314: only when asked for; the time left as the transfer starts.
        expire = self.expire_of(zone) if query.expire else None
        messages = finish(bodies, request, question, signer, expire)
        log.info("transfer out: zone=%s how=%s serial=%d client=%s key=%s messages=%d "
                 "seconds=%.3f", origin, how, zone.serial, host, key, len(messages),
                 time.monotonic() - started)
        return messages

    def axfr_bodies(self, zone: Zone) -> list[bytes]:
        """The AXFR of a served version, rendered once (see xfrwire.py)."""
        bodies = self._rendered.get(zone)
        if bodies is None:
            bodies = render_bodies(zone.origin, AXFR, _axfr_stream(zone))
            self._rendered[zone] = bodies
        return bodies

    def _ixfr(self, request: dns.message.Message,
              zone: Zone) -> tuple[Iterator[dns.rrset.RRset] | None, str]:
        """RFC 1995 §4: the SOA alone, the kept differences, or (None) the whole zone."""
        theirs = None
        for rrset in request.authority:
            if rrset.rdtype == SOA and len(rrset):
                theirs = rrset[0].serial
        current = zone.serial
        if theirs is None:
            return None, "ixfr-as-axfr"
        if theirs == current or serial_gt(theirs, current):
            if theirs != current:
                # A secondary ahead of us (the state directory was lost?) will not
                # follow until our serial passes its own (seawall/dns/serials.py).
                log.warning("secondary ahead: zone=%s theirs=%d ours=%d", zone.origin, theirs,
                            current)
            return iter([zone.soa]), "ixfr-up-to-date"
        chain = self.history.chain(zone.origin, theirs, current)
        if chain is None:
            return None, "ixfr-as-axfr"
        return _ixfr_stream(zone, chain), "ixfr"

    def _deny(self, query: Query, wire: bytes, host: str | None, kind: str, rcode: int,
              reason: str, signer: Signer | None, request: dns.message.Message) -> list[bytes]:
        _refused(query, host, kind, rcode, reason)
        bodies = render_bodies(query.qname, query.qtype, (), rcode)
        return finish(bodies, request, wire[12:query.question_end], signer)


_refusals = LogLimiter(log, burst=20)


def _refused(query: Query, host: str | None, kind: str, rcode: int, reason: str) -> None:
    """The log line of a refused transfer (20 per 10 s at most: a flood is not logged)."""
    _refusals.warning("transfer", "transfer refused: zone=%s how=%s client=%s rcode=%s "
                      "reason=%s", query.qname, kind, host, dns.rcode.to_text(rcode), reason)


def _axfr_stream(zone: Zone) -> Iterator[dns.rrset.RRset]:
    """RFC 5936 §2.2: SOA, every other RRset, SOA."""
    yield zone.soa
    for rrset in zone.rrsets():
        if rrset.rdtype != SOA:
            yield rrset
    yield zone.soa


def _ixfr_stream(zone: Zone, chain: list[Difference]) -> Iterator[dns.rrset.RRset]:
    """RFC 1995 §4: current SOA, then per difference old SOA, deletions, new SOA,
    additions, and the current SOA to close."""
    yield zone.soa
    for difference in chain:
        yield difference.old_soa
        yield from _as_rrsets(difference.deleted)
        yield difference.new_soa
        yield from _as_rrsets(difference.added)
    yield zone.soa


def _as_rrsets(records: Iterable[RecordKey]) -> Iterator[dns.rrset.RRset]:
    """Consecutive records of one owner, type and TTL grouped into RRsets."""
    current: dns.rrset.RRset | None = None
    for name, ttl, rdata in records:
        rdtype = rdata.rdtype  # type: ignore[attr-defined]
        covers = rdata.covers()  # type: ignore[attr-defined]
        if current is None or current.name != name or current.rdtype != rdtype \
                or current.covers != covers or current.ttl != ttl:
            if current is not None:
                yield current
            current = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype, covers)
            current.update_ttl(ttl)
        current.add(rdata)  # type: ignore[arg-type]
    if current is not None:
        yield current
