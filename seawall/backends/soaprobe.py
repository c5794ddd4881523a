"""Many SOA probes to one primary at once, over one UDP socket.

A probe round asks the primary for the SOA of every zone it serves. One
query per thread would take ``zones / threads × probe_timeout`` when the
primary is silent (1,000 zones: minutes); here every query leaves at once on
one socket and the answers are matched to their questions by message ID and
question (RFC 1035 §4.1.1, §7.3), so a round ends within ``probe_timeout``
however many zones there are, and holds one file descriptor.

Each answer is checked as the single-zone probe checks it: NOERROR, AA set,
the zone's SOA in the answer section, and, with a TSIG key, a valid
signature over it (RFC 8945 §5.3).
"""

from __future__ import annotations

import asyncio
import secrets

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig

SOA = dns.rdatatype.SOA
MAX_IDS = 65536


class ProbeError(Exception):
    """Why one zone's SOA probe failed; the message says it."""


class _Collector(asyncio.DatagramProtocol):
    """Receives answers and hands each datagram to the round that waits for it."""

    def __init__(self) -> None:
        self.on_datagram = None
        self.error: OSError | None = None

    def datagram_received(self, data: bytes, addr) -> None:
        if self.on_datagram is not None:
            self.on_datagram(data)

    def error_received(self, exc: OSError) -> None:
        self.error = exc   # e.g. ICMP port unreachable: the primary is not listening


async def probe_serials(origins: list[dns.name.Name], host: str, port: int, timeout: float,
                        key: dns.tsig.Key | None = None) -> dict[dns.name.Name, int | ProbeError]:
    """The SOA serial of each zone at ``host:port``, or why there is none, within ``timeout``."""
    results: dict[dns.name.Name, int | ProbeError] = {}
    for start in range(0, len(origins), MAX_IDS):
        results.update(await _round(origins[start:start + MAX_IDS], host, port, timeout, key))
    return results


async def _round(origins: list[dns.name.Name], host: str, port: int, timeout: float,
                 key: dns.tsig.Key | None) -> dict[dns.name.Name, int | ProbeError]:
    loop = asyncio.get_running_loop()
    ids = _unique_ids(len(origins))
    pending: dict[int, tuple[dns.name.Name, dns.message.Message]] = {}
    results: dict[dns.name.Name, int | ProbeError] = {}
    done = loop.create_future()
    transport, protocol = await loop.create_datagram_endpoint(_Collector,
                                                              remote_addr=(host, port))

    def received(data: bytes) -> None:
        if len(data) < 12:
            return
        entry = pending.get(int.from_bytes(data[:2], "big"))
        if entry is None:
            return   # not ours, or answered already
        origin, query = entry
        try:
            response = dns.message.from_wire(
                data, keyring={key.name: key} if key is not None else None,
                request_mac=query.mac if key is not None else b"")
        except (dns.exception.DNSException, ValueError) as exc:
            results[origin] = ProbeError(f"bad answer: {exc}")
        else:
            if not response.question or response.question[0].name != origin:
                return   # same ID, other question: not the answer to this query
            results[origin] = _serial(response, origin)
        del pending[query.id]
        if not pending and not done.done():
            done.set_result(None)

    protocol.on_datagram = received
    try:
        for origin, query_id in zip(origins, ids):
            query = dns.message.make_query(origin, SOA, id=query_id)
            if key is not None:
                query.use_tsig(key)
            wire = query.to_wire()
            pending[query_id] = (origin, query)
            transport.sendto(wire)
        if pending:
            try:
                await asyncio.wait_for(asyncio.shield(done), timeout)
            except asyncio.TimeoutError:
                pass
    finally:
        transport.close()
    why = f"timed out after {timeout:g}s"
    if protocol.error is not None:
        why = f"failed: {protocol.error.strerror or protocol.error}"
    for origin, _ in pending.values():
        results[origin] = ProbeError(why)
    return results


def _serial(response: dns.message.Message, origin: dns.name.Name) -> int | ProbeError:
    if response.rcode() != dns.rcode.NOERROR:
        return ProbeError(dns.rcode.to_text(response.rcode()))
    if not response.flags & dns.flags.AA:
        return ProbeError("answer is not authoritative")
    for rrset in response.answer:
        if rrset.rdtype == SOA and rrset.name == origin:
            return int(rrset[0].serial)
    return ProbeError(f"no SOA for {origin} in the answer")


def _unique_ids(count: int) -> list[int]:
    """``count`` distinct random message IDs (RFC 5452 §4.3: unpredictable)."""
    ids: set[int] = set()
    while len(ids) < count:
        ids.add(secrets.randbelow(MAX_IDS))
    return list(ids)
