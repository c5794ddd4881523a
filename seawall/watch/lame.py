"""Lame delegation: a listed nameserver that does not answer for the zone with
authority (RFC 1912 §2.8). Every address of every nameserver the parent or
Seawall lists is asked for the zone's SOA; anything but an authoritative
NOERROR answer carrying the SOA is a finding naming the server and why.
"""

from __future__ import annotations

import asyncio

import dns.flags
import dns.name
import dns.rcode
import dns.rdatatype

from .ask import Server, Unanswered, ask
from .findings import LAME, Finding

SOA = dns.rdatatype.SOA


async def lame_check(origin: dns.name.Name,
                     addresses: dict[dns.name.Name, frozenset[str]],
                     port: int, timeout: float) -> list[Finding]:
    """Findings for the nameservers (name -> addresses) that are lame for ``origin``."""
    targets = [(name, Server(address, port)) for name, found in sorted(addresses.items())
               for address in sorted(found)]
    results = await asyncio.gather(*(_one(origin, name, server, timeout)
                                     for name, server in targets))
    return [f for f in results if f is not None]


async def _one(origin: dns.name.Name, name: dns.name.Name, server: Server,
               timeout: float) -> Finding | None:
    zone = origin.to_text()
    label = f"{name.to_text()} {server}"
    try:
        reply = await ask(server, origin, SOA, timeout)
    except Unanswered as exc:
        return Finding(zone, LAME, label, f"nameserver {name} at {server} gives no answer",
                       str(exc))
    rcode = reply.rcode()
    has_soa = any(r.rdtype == SOA and r.name == origin for r in reply.answer)
    if rcode == dns.rcode.NOERROR and reply.flags & dns.flags.AA and has_soa:
        return None
    why = dns.rcode.to_text(rcode) if rcode != dns.rcode.NOERROR else \
        ("no authority (AA clear)" if not reply.flags & dns.flags.AA else "no SOA")
    return Finding(zone, LAME, label, f"nameserver {name} at {server} does not answer for the "
                   f"zone with authority", why)
