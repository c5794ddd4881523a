"""Checks of a pre-signed zone: signatures, their lifetime, and the denial chains.

``seawall check`` runs all of them; the failover guard uses the cheap ones
(expiry, keys still matching the DS) on every new version, because a signed
zone whose signatures lapse or whose keys no longer match the parent's DS is
an outage for every validating resolver (RFC 4035 §5).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import dns.dnssec
import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset

from .dnssec import OPT_OUT, b32hex
from .model import Node, Zone
from .problems import Location, Problem, Severity

DEFAULT_HORIZON = 7 * 86400
"""Warn about signatures that expire within a week."""
NS, DS, NSEC, NSEC3, RRSIG, DNSKEY = (dns.rdatatype.NS, dns.rdatatype.DS, dns.rdatatype.NSEC,
                                      dns.rdatatype.NSEC3, dns.rdatatype.RRSIG,
                                      dns.rdatatype.DNSKEY)
Where = Callable[[dns.name.Name, int], Location]


def signed_rrsets(zone: Zone) -> Iterator[tuple[Node, dns.rrset.RRset]]:
    """Every RRset that must carry signatures: authoritative data only (RFC 4035 §2.2).

    Glue and the NS RRset of a delegation belong to the child and are unsigned.
    """
    for node in list(zone.nodes()) + list(zone.nsec3_nodes.values()):
        if node.is_occluded:
            continue
        for rdtype, rrset in node.rrsets.items():
            if node.is_delegation and rdtype not in (DS, NSEC):
                continue
            yield node, rrset


def earliest_expiry(zone: Zone) -> int | None:
    """The first RRSIG expiration time (seconds since the epoch), None if unsigned."""
    return zone.signature_expiry


def check_expiry(zone: Zone, where: Where, now: float | None = None,
                 horizon: int = DEFAULT_HORIZON) -> list[Problem]:
    """Expired signatures are errors; those expiring within ``horizon`` are warnings."""
    now = time.time() if now is None else now
    problems = []
    for node in list(zone.nodes()) + list(zone.nsec3_nodes.values()):
        for covered, sigs in node.rrsigs.items():
            for sig in sigs:
                type_text = dns.rdatatype.to_text(covered)
                if sig.expiration < now:
                    problems.append(Problem(where(node.name, covered),
                                            f"RRSIG {type_text} at {node.name} expired at "
                                            f"{_stamp(sig.expiration)}"))
                elif sig.expiration < now + horizon:
                    days = (sig.expiration - now) / 86400
                    problems.append(Problem(where(node.name, covered),
                                            f"RRSIG {type_text} at {node.name} expires at "
                                            f"{_stamp(sig.expiration)} (in {days:.1f} days)",
                                            Severity.WARNING))
                elif sig.inception > now:
                    problems.append(Problem(where(node.name, covered),
                                            f"RRSIG {type_text} at {node.name} is not valid "
                                            f"before {_stamp(sig.inception)}"))
    return problems


def check_signatures(zone: Zone, where: Where, now: float | None = None) -> list[Problem]:
    """Every authoritative RRset is signed by a key of the zone's own DNSKEY set."""
    keys = zone.apex.rrsets.get(DNSKEY)
    if keys is None:
        return []
    now = time.time() if now is None else now
    keyring = {zone.origin: keys}
    problems = []
    for node, rrset in signed_rrsets(zone):
        type_text = dns.rdatatype.to_text(rrset.rdtype)
        sigs = node.rrsigs.get(rrset.rdtype)
        if sigs is None:
            problems.append(Problem(where(node.name, rrset.rdtype),
                                    f"{node.name} {type_text} has no RRSIG"))
            continue
        try:
            dns.dnssec.validate(rrset, sigs, keyring, now=now)
        except dns.dnssec.ValidationFailure as exc:
            if any(sig.inception <= now <= sig.expiration for sig in sigs):
                problems.append(Problem(where(node.name, rrset.rdtype),
                                        f"RRSIG {type_text} at {node.name} does not verify "
                                        f"with the zone's DNSKEYs: {exc}"))
    return problems


def check_chain(zone: Zone, where: Where) -> list[Problem]:
    """The NSEC or NSEC3 chain is closed and every name that needs one has one."""
    if zone.nsec is not None:
        return _check_nsec(zone, where)
    if zone.nsec3 is not None:
        return _check_nsec3(zone, where)
    return []


def _check_nsec(zone: Zone, where: Where) -> list[Problem]:
    """RFC 4034 §4.1.1: each NSEC names the next owner in canonical order; the last, the apex."""
    chain = zone.nsec
    assert chain is not None
    problems = []
    owners = chain.owners
    for i, node in enumerate(chain.nodes):
        expected = owners[(i + 1) % len(owners)]
        actual = node.rrsets[NSEC][0].next
        if actual != expected:
            problems.append(Problem(where(node.name, NSEC),
                                    f"NSEC chain broken at {node.name}: next is {actual}, "
                                    f"expected {expected}"))
    have = set(owners)
    for node in zone.nodes():
        if node.is_occluded or not node.rrsets:
            continue
        if node.name not in have:
            problems.append(Problem(where(node.name, next(iter(node.rrsets))),
                                    f"{node.name} has no NSEC record"))
    return problems


def _check_nsec3(zone: Zone, where: Where) -> list[Problem]:
    """RFC 5155 §7.1: hashed owners in order, each naming the next; names covered."""
    chain = zone.nsec3
    assert chain is not None
    problems = []
    for i, node in enumerate(chain.nodes):
        expected = chain.hashes[(i + 1) % len(chain.hashes)]
        next_label = b32hex(node.rrsets[NSEC3][0].next)
        if next_label != expected:
            problems.append(Problem(where(node.name, NSEC3),
                                    f"NSEC3 chain broken at {node.name}: next hashed owner is "
                                    f"{next_label.decode()}, expected {expected.decode()}"))
    opt_out = any(n.rrsets[NSEC3][0].flags & OPT_OUT for n in chain.nodes)
    for node in zone.nodes():
        if node.is_occluded:
            continue
        insecure = node.is_delegation and DS not in node.rrsets
        if insecure and opt_out:
            continue
        if chain.match(node.name) is None:
            rdtype = next(iter(node.rrsets), NSEC3)
            problems.append(Problem(where(node.name, rdtype),
                                    f"{node.name} has no matching NSEC3 record"))
    return problems


def ds_digests(zone: Zone) -> set[tuple[int, int, bytes]]:
    """(key tag, algorithm, SHA-256 digest) of the zone's KSKs (DNSKEY flag SEP)."""
    keys = zone.apex.rrsets.get(DNSKEY)
    if keys is None:
        return set()
    out = set()
    for key in keys:
        if key.flags & 0x0001:  # SEP: the key a parent's DS points at
            ds = dns.dnssec.make_ds(zone.origin, key, "SHA256")
            out.add((ds.key_tag, ds.algorithm, ds.digest))
    return out


def keeps_trust_chain(old: Zone, new: Zone) -> bool:
    """True if ``new`` still has a KSK that the DS of ``old``'s KSKs would accept."""
    before = ds_digests(old)
    return not before or bool(before & ds_digests(new))


def _stamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def locator(zone: Zone, records) -> Where:
    """Map (owner, type) to the line of its first record, for ``file:line`` output."""
    first: dict[tuple[dns.name.Name, int], Location] = {}
    for record in records:
        rdtype = record.rdata.covers() if record.rdata.rdtype == RRSIG else record.rdata.rdtype
        first.setdefault((record.name, rdtype), record.location)

    def where(name: dns.name.Name, rdtype: int) -> Location:
        return first.get((name, rdtype), Location(zone.source, 1))

    return where


def check_dnssec(zone: Zone, records, *, now: float | None = None,
                 horizon: int = DEFAULT_HORIZON, verify: bool = True) -> list[Problem]:
    """All DNSSEC checks of a signed zone; nothing for an unsigned one."""
    if not zone.is_signed:
        return []
    where = locator(zone, records)
    problems = check_expiry(zone, where, now, horizon) + check_chain(zone, where)
    if verify:
        problems += check_signatures(zone, where, now)
    return problems
