"""What Seawall serves for a zone, in the terms a parent and a peer are compared in.

Built from a served :class:`~seawall.zones.model.Zone` inside the server,
or (``seawall watch`` on the command line) by asking the running server over
DNS: the apex NS set, the addresses of nameservers inside the zone (the
glue the parent must hold, RFC 1034 §4.2.1), the DS digests of its KSKs and
its serial.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ..zones.model import Zone
from ..zones.signatures import ds_digests
from .ask import Server, Unanswered, ask

NS, A, AAAA, DNSKEY, SOA = (dns.rdatatype.NS, dns.rdatatype.A, dns.rdatatype.AAAA,
                            dns.rdatatype.DNSKEY, dns.rdatatype.SOA)
DsTuple = tuple[int, int, bytes]


@dataclass
class Served:
    """One zone as Seawall serves it."""

    origin: dns.name.Name
    serial: int | None
    ns: frozenset[dns.name.Name]
    glue: dict[dns.name.Name, frozenset[str]]    # in-zone nameservers -> their addresses
    ksk_ds: set[DsTuple] = field(default_factory=set)   # ds_digests() of the KSKs
    dnskeys: list = field(default_factory=list)  # the DNSKEY rdatas (for other digest types)
    signed: bool = False
    zone: Zone | None = None                     # the data itself, inside the server

    def addresses(self, name: dns.name.Name) -> frozenset[str]:
        return self.glue.get(name, frozenset())

    def matches_ds(self, ds: dns.rdata.Rdata) -> bool:
        """Does one DS record (any digest type) point at one of the served KSKs?"""
        for key in self.dnskeys:
            if not key.flags & 0x0001:
                continue
            try:
                made = dns.dnssec.make_ds(self.origin, key, ds.digest_type)
            except (dns.dnssec.UnsupportedAlgorithm, ValueError):
                continue
            if made.key_tag == ds.key_tag and made.digest == ds.digest:
                return True
        return False


def served_from_zone(zone: Zone) -> Served:
    ns_rrset = zone.apex.rrsets.get(NS)
    ns = frozenset(rd.target for rd in ns_rrset) if ns_rrset is not None else frozenset()
    glue = {}
    for name in ns:
        if name.is_subdomain(zone.origin):
            node = zone.find_node(name)
            addresses = set()
            if node is not None:
                for rdtype in (A, AAAA):
                    rrset = node.rrsets.get(rdtype)
                    if rrset is not None:
                        addresses |= {rd.address for rd in rrset}
            glue[name] = frozenset(addresses)
    keys = zone.apex.rrsets.get(DNSKEY)
    return Served(zone.origin, zone.serial, ns, glue, ds_digests(zone),
                  list(keys) if keys is not None else [], zone.is_signed, zone)


async def served_from_server(server: Server, origin: dns.name.Name, timeout: float) -> Served:
    """The same view, asked of a running Seawall over DNS (answers with AA only)."""
    async def rrset(name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
        response = await ask(server, name, rdtype, timeout, dnssec=True)
        try:
            return response.find_rrset(response.answer, name, dns.rdataclass.IN, rdtype)
        except KeyError:
            return None

    soa = await rrset(origin, SOA)
    if soa is None:
        raise Unanswered(f"{server}: does not serve {origin}")
    ns_rrset = await rrset(origin, NS)
    ns = frozenset(rd.target for rd in ns_rrset) if ns_rrset is not None else frozenset()
    glue = {}
    for name in ns:
        if name.is_subdomain(origin):
            addresses: set[str] = set()
            for rdtype in (A, AAAA):
                found = await rrset(name, rdtype)
                addresses |= {rd.address for rd in found} if found is not None else set()
            glue[name] = frozenset(addresses)
    keys = await rrset(origin, DNSKEY)
    ksk_ds = set()
    for key in keys or []:
        if key.flags & 0x0001:
            ds = dns.dnssec.make_ds(origin, key, "SHA256")
            ksk_ds.add((ds.key_tag, ds.algorithm, ds.digest))
    return Served(origin, soa[0].serial, ns, glue, ksk_ds, list(keys or []), keys is not None)


# ------------------------------------------------------------------ digests

def record_lines(origin: dns.name.Name,
                 rrsets: Iterable[tuple[dns.name.Name, int, dns.rdata.Rdata]]) -> bytes:
    """A SHA-256 over records in canonical form (RFC 4034 §6.2), sorted: order-free."""
    items = sorted(name.canonicalize().to_wire() + rd.rdtype.to_bytes(2, "big")
                   + ttl.to_bytes(4, "big") + rd.to_digestable(origin)
                   for name, ttl, rd in rrsets)
    digest = hashlib.sha256()
    for item in items:
        digest.update(len(item).to_bytes(4, "big") + item)
    return digest.digest()


def zone_digest(zone: Zone) -> bytes:
    """The digest of every record of a served zone (signatures included)."""
    return record_lines(zone.origin, ((rrset.name, rrset.ttl, rd)
                                      for rrset in zone.rrsets() for rd in rrset))


def rrset_records(rrset: dns.rrset.RRset | None) -> list[tuple[dns.name.Name, int, dns.rdata.Rdata]]:
    return [(rrset.name, rrset.ttl, rd) for rd in rrset] if rrset is not None else []


def zone_rrset(zone: Zone, name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
    node = zone.find_node(name)
    return node.rrsets.get(rdtype) if node is not None else None
