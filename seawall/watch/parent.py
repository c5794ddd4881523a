"""The parent's view of a zone: its delegation (NS, glue) and DS, per parent server.

Finding the parent's servers works on an isolated network: from configured
root hints, follow referrals down (RFC 1034 §5.3.3, as an iterative resolver
does, with the glue the referrals carry) until a server refers to the zone
itself or denies it; those servers, all of them, are the parent's. Or use
configured parent addresses directly. Each parent server is then asked for
the zone's NS (a referral: NS in authority, glue in additional) and its DS
(the parent is authoritative for it, RFC 4034 §5), and what they say is
compared with what Seawall serves (:func:`compare`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from .ask import Server, Unanswered, ask
from .findings import (DELEGATION_MISSING, DS_MISMATCH, DS_MISSING, GLUE_MISMATCH,
                       NS_MISMATCH, PARENT_DISAGREE, PARENT_UNREACHABLE, Finding)
from .served import DsTuple, Served

NS, DS, A, AAAA, SOA = (dns.rdatatype.NS, dns.rdatatype.DS, dns.rdatatype.A,
                        dns.rdatatype.AAAA, dns.rdatatype.SOA)
MAX_REFERRALS = 16   # a walk longer than this is a loop


@dataclass
class Delegation:
    """What one parent server says about the zone."""

    server: Server
    error: str | None = None                  # no usable answer
    missing: str | None = None                # NXDOMAIN / NODATA: the delegation is gone
    ns: frozenset[dns.name.Name] = frozenset()
    glue: dict[dns.name.Name, frozenset[str]] = field(default_factory=dict)
    ds: list[dns.rdata.Rdata] = field(default_factory=list)
    ds_ttl: int = 0

    def summary(self) -> str:
        if self.error:
            return f"no answer ({self.error})"
        if self.missing:
            return self.missing
        return f"NS {names(self.ns)}; glue {glue_text(self.glue)}; DS {ds_text(self.ds)}"

    def same_as(self, other: Delegation) -> bool:
        return (self.missing is None) == (other.missing is None) and self.ns == other.ns \
            and self.glue == other.glue and ds_set(self.ds) == ds_set(other.ds)


def names(items) -> str:
    return " ".join(sorted(n.to_text() for n in items)) or "none"


def glue_text(glue: dict[dns.name.Name, frozenset[str]]) -> str:
    return ", ".join(f"{n}={'/'.join(sorted(a)) or 'none'}" for n, a in sorted(glue.items())) \
        or "none"


def ds_set(ds: list[dns.rdata.Rdata]) -> set[tuple[int, int, int, bytes]]:
    return {(rd.key_tag, rd.algorithm, rd.digest_type, rd.digest) for rd in ds}


def ds_text(ds: list[dns.rdata.Rdata]) -> str:
    return ", ".join(sorted(f"{rd.key_tag}/{rd.algorithm}/{rd.digest_type}" for rd in ds)) \
        or "none"


# ------------------------------------------------------------------ walking

def referral(response: dns.message.Message, qname: dns.name.Name,
             above: dns.name.Name) -> tuple[dns.name.Name, list[dns.name.Name], dict] | None:
    """A referral towards ``qname`` below ``above``: (cut, NS names, glue), else None."""
    if response.flags & dns.flags.AA or response.rcode() != dns.rcode.NOERROR:
        return None
    for rrset in response.authority:
        if rrset.rdtype == NS and qname.is_subdomain(rrset.name) \
                and rrset.name != above and rrset.name.is_subdomain(above):
            targets = [rd.target for rd in rrset]
            return rrset.name, targets, addresses_in(response.additional, targets)
    return None


def addresses_in(section, targets) -> dict[dns.name.Name, frozenset[str]]:
    found: dict[dns.name.Name, set[str]] = {}
    for rrset in section:
        if rrset.rdtype in (A, AAAA) and rrset.name in targets:
            found.setdefault(rrset.name, set()).update(rd.address for rd in rrset)
    return {n: frozenset(a) for n, a in found.items()}


@dataclass
class Walker:
    """Follows referrals from the root hints; resolves nameserver addresses the same way."""

    roots: Sequence[Server]
    port: int
    timeout: float
    depth: int = 0

    async def first(self, servers: Sequence[Server], qname: dns.name.Name,
                    rdtype: int) -> tuple[dns.message.Message, Server]:
        errors = []
        for server in servers:
            try:
                return await ask(server, qname, rdtype, self.timeout), server
            except Unanswered as exc:
                errors.append(str(exc))
        raise Unanswered("; ".join(errors) or "no server to ask")

    async def parent_servers(self, origin: dns.name.Name) -> tuple[dns.name.Name, list[Server]]:
        """The parent zone's name and every one of its servers (from the last referral)."""
        servers, cut = list(self.roots), dns.name.root
        for _ in range(MAX_REFERRALS):
            response, _ = await self.first(servers, origin, NS)
            step = referral(response, origin, cut)
            if step is None or step[0] == origin:
                return cut, servers      # refers to the zone, denies it, or answers: the parent
            cut, targets, glue = step
            servers = await self.servers_of(targets, glue, cut)
            if not servers:
                raise Unanswered(f"the referral to {cut} has no usable nameserver address")
        raise Unanswered(f"more than {MAX_REFERRALS} referrals towards {origin}")

    async def servers_of(self, targets, glue, cut: dns.name.Name) -> list[Server]:
        out = []
        for target in targets:
            addresses = glue.get(target) or await self.addresses(target)
            out += [Server(a, self.port) for a in sorted(addresses)]
        return out

    async def addresses(self, name: dns.name.Name) -> frozenset[str]:
        """A and AAAA of ``name``, resolved iteratively from the root hints (bounded)."""
        if self.depth > 3 or not self.roots:
            return frozenset()
        sub = Walker(self.roots, self.port, self.timeout, self.depth + 1)
        found: set[str] = set()
        for rdtype in (A, AAAA):
            servers, cut = list(self.roots), dns.name.root
            for _ in range(MAX_REFERRALS):
                try:
                    response, _ = await sub.first(servers, name, rdtype)
                except Unanswered:
                    break
                step = referral(response, name, cut)
                if step is None:
                    for rrset in response.answer:
                        if rrset.rdtype == rdtype and rrset.name == name:
                            found |= {rd.address for rd in rrset}
                    break
                cut, targets, glue = step
                servers = await sub.servers_of(targets, glue, cut)
        return frozenset(found)


# ------------------------------------------------------------------ asking

async def delegation_at(server: Server, origin: dns.name.Name, timeout: float) -> Delegation:
    """Ask one parent server for the zone's NS (and glue) and DS."""
    seen = Delegation(server)
    try:
        ns_reply, ds_reply = await asyncio.gather(ask(server, origin, NS, timeout),
                                                  ask(server, origin, DS, timeout))
    except Unanswered as exc:
        seen.error = str(exc)
        return seen
    rcode = ns_reply.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        seen.missing = "NXDOMAIN"
        return seen
    if rcode != dns.rcode.NOERROR:
        seen.error = f"{server}: {dns.rcode.to_text(rcode)}"
        return seen
    ns_rrset = None
    for section in (ns_reply.authority, ns_reply.answer):
        for rrset in section:
            if rrset.rdtype == NS and rrset.name == origin:
                ns_rrset = rrset
    if ns_rrset is None:
        soa = [r.name.to_text() for r in ns_reply.authority if r.rdtype == SOA]
        seen.missing = "NODATA" + (f" (SOA of {soa[0]})" if soa else "") \
            if not any(r.rdtype == NS for r in ns_reply.authority) \
            else "a referral elsewhere (" + names(r.name for r in ns_reply.authority
                                                  if r.rdtype == NS) + ")"
        return seen
    seen.ns = frozenset(rd.target for rd in ns_rrset)
    inside = [n for n in seen.ns if n.is_subdomain(origin)]
    seen.glue = addresses_in(ns_reply.additional, inside)
    if ds_reply.rcode() == dns.rcode.NOERROR:
        for rrset in ds_reply.answer:
            if rrset.rdtype == DS and rrset.name == origin:
                seen.ds = list(rrset)
                seen.ds_ttl = rrset.ttl
    return seen


async def delegations(servers: Sequence[Server], origin: dns.name.Name,
                      timeout: float) -> list[Delegation]:
    return list(await asyncio.gather(*(delegation_at(s, origin, timeout) for s in servers)))


# ---------------------------------------------------------------- comparing

def ds_tuples(served: Served, ds: list[dns.rdata.Rdata]) -> set[DsTuple]:
    """The parent's DS records as ds_digests() tuples (SHA-256 of the key they match).

    A DS of another digest type that matches a served KSK stands for that
    key's SHA-256 tuple; one that matches nothing is kept as it is (it can
    never match, which is the point).
    """
    out: set[DsTuple] = set()
    for rd in ds:
        if rd.digest_type == 2:
            out.add((rd.key_tag, rd.algorithm, rd.digest))
            continue
        match = [t for t in served.ksk_ds if t[0] == rd.key_tag and t[1] == rd.algorithm]
        if match and served.matches_ds(rd):
            out |= set(match)
        else:
            out.add((rd.key_tag, rd.algorithm, rd.digest))
    return out


def compare(served: Served, seen: list[Delegation]) -> list[Finding]:
    """Findings from what the parent servers say about one zone."""
    zone = served.origin.to_text()
    ours_ns = names(served.ns)
    findings = []
    answered = [d for d in seen if d.error is None]
    for d in seen:
        if d.error is not None:
            findings.append(Finding(zone, PARENT_UNREACHABLE, str(d.server),
                                    f"parent server {d.server} gave no answer: {d.error}"))
    if not answered:
        return findings
    # The parent's servers among themselves: each one against the most common answer.
    reference = max(answered, key=lambda d: sum(o.same_as(d) for o in answered))
    for d in answered:
        if not d.same_as(reference):
            findings.append(Finding(zone, PARENT_DISAGREE, str(d.server),
                                    f"parent server {d.server} disagrees with "
                                    f"{reference.server}", d.summary(), reference.summary()))
    for d in answered:
        server = str(d.server)
        if d.missing is not None:
            findings.append(Finding(zone, DELEGATION_MISSING, server,
                                    f"the parent has no delegation for {zone} (hold, expiry "
                                    f"or deletion at the registry?)", d.missing,
                                    f"NS {ours_ns}"))
            continue
        if d.ns != served.ns:
            findings.append(Finding(zone, NS_MISMATCH, server,
                                    f"the parent's NS set differs: only at the parent: "
                                    f"{names(d.ns - served.ns)}; only served: "
                                    f"{names(served.ns - d.ns)}", f"NS {names(d.ns)}",
                                    f"NS {ours_ns}"))
        for name in sorted(n for n in d.ns | served.ns if n.is_subdomain(served.origin)):
            theirs, ours = d.glue.get(name, frozenset()), served.addresses(name)
            if name in d.ns and name in served.ns and theirs != ours:
                findings.append(Finding(zone, GLUE_MISMATCH, server,
                                        f"glue of {name} differs", "/".join(sorted(theirs))
                                        or "none", "/".join(sorted(ours)) or "none"))
        findings += _ds_findings(served, d)
    return findings


def _ds_findings(served: Served, d: Delegation) -> list[Finding]:
    zone, server = served.origin.to_text(), str(d.server)
    ours = ", ".join(sorted(f"{t}/{a}" for t, a, _ in served.ksk_ds)) or "none"
    if not d.ds:
        if served.signed and served.ksk_ds:
            return [Finding(zone, DS_MISSING, server, "signed here, but the parent publishes "
                            "no DS: validators treat the zone as insecure", "DS none",
                            f"KSK {ours}")]
        return []
    if not served.signed:
        return [Finding(zone, DS_MISMATCH, server, "the parent publishes DS records but the "
                        "served zone is unsigned: validators see it as bogus",
                        f"DS {ds_text(d.ds)}", "unsigned")]
    if not ds_tuples(served, d.ds) & served.ksk_ds:
        return [Finding(zone, DS_MISMATCH, server, "none of the parent's DS records matches a "
                        "served KSK: validators see the zone as bogus (RFC 4035 §5)",
                        f"DS {ds_text(d.ds)}", f"KSK {ours}")]
    return []
