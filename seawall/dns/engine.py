"""The answer engine: RFC 1034 §4.3.2, step by step, on one ZoneSet snapshot.

Given a question it decides the rcode, the AA flag and the RRsets of the
three sections; it never touches the wire and never mutates zone data (a
synthesized record is always a new RRset). One helper per outcome: answer,
referral, NODATA, NXDOMAIN, CNAME/DNAME chasing, additional-section data.

Choices where the RFCs leave room (the README lists them too):

* ANY (RFC 8482 §4.1): one RRset, the one with the lowest type code at the
  name, as Knot DNS does; additional processing applies to it.
* CNAME and DNAME chains are followed through every served zone, up to
  ``MAX_CHAIN`` links, as NSD does.
* Referral glue: addresses of in-bailiwick name servers; the renderer sets
  TC when they do not all fit (RFC 9471 §3), as Knot DNS does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

from ..zones.model import Node, Zone
from ..zones.zoneset import ZoneSet
from .dnssec import Denial, rrsig

A, AAAA, NS, CNAME, SOA, MX, SRV, DNAME, DS, ANY, RRSIG = (
    dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.NS, dns.rdatatype.CNAME,
    dns.rdatatype.SOA, dns.rdatatype.MX, dns.rdatatype.SRV, dns.rdatatype.DNAME,
    dns.rdatatype.DS, dns.rdatatype.ANY, dns.rdatatype.RRSIG)
IN = dns.rdataclass.IN
MAX_CHAIN = 16
"""CNAME/DNAME links followed in one answer; a longer chain is cut, not an error."""
ADDRESS_TYPES = (A, AAAA)


class Outcome(enum.Enum):
    """What the lookup of the first name in the answer concluded."""

    ANSWER = "answer"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    DELEGATION = "delegation"
    REFUSED = "refused"


@dataclass
class Answer:
    """Sections and header bits of a response, before rendering."""

    rcode: int = dns.rcode.NOERROR
    aa: bool = True
    outcome: Outcome = Outcome.ANSWER
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    # RFC 9471 §3: glue for in-bailiwick name servers must all fit, else TC.
    required_additional: int = 0
    zone: Zone | None = None


def resolve(zoneset: ZoneSet, qname: dns.name.Name, qtype: int, *,
            dnssec: bool = False) -> Answer:
    """Answer ``qname``/``qtype`` (class IN) from ``zoneset``.

    ``dnssec`` is the query's DO bit (RFC 3225): with it, answers from signed
    zones carry their RRSIGs and proofs of non-existence (RFC 4035 §3.1);
    without it, none are added (RFC 4035 §3.1.1).
    """
    zone = zoneset.find_zone(qname)
    if zone is None:
        # Step 2: not a name we are authoritative for.
        return Answer(rcode=dns.rcode.REFUSED, aa=False, outcome=Outcome.REFUSED)
    if qtype == DS and qname == zone.origin:
        # RFC 4035 §3.1.4.1: DS lives on the parent side of the cut.
        zone = zoneset.parent_zone(zone) or zone
    answer = Answer(zone=zone)
    _Lookup(zoneset, answer, qtype, dnssec).run(zone, qname)
    return answer


class _Lookup:
    """One answer in the making: the first name, then any CNAME/DNAME chain."""

    def __init__(self, zoneset: ZoneSet, answer: Answer, qtype: int, dnssec: bool) -> None:
        self.zoneset = zoneset
        self.answer = answer
        self.qtype = qtype
        self.dnssec = dnssec
        self.seen: set[dns.name.Name] = set()
        self.first = True

    def run(self, zone: Zone, qname: dns.name.Name) -> None:
        while True:
            next_name = self.step(zone, qname)
            self.first = False
            if next_name is None:
                return
            if next_name in self.seen or len(self.seen) >= MAX_CHAIN:
                return  # a loop or an over-long chain: answer with what we have
            found = self.zoneset.find_zone(next_name)
            if found is None:
                return  # the chain leaves our data; the resolver follows it
            zone, qname = found, next_name

    def step(self, zone: Zone, qname: dns.name.Name) -> dns.name.Name | None:
        """Look up one name in ``zone``; return the next name of a chain, if any."""
        self.seen.add(qname)
        self.signing = self.dnssec and zone.is_signed
        walk = zone.walk(qname)
        # Step 3b: a zone cut above the name (or at it, unless DS is asked) means a referral.
        if walk.delegation is not None and not (walk.node is walk.delegation and self.qtype == DS):
            self.referral(zone, walk.delegation)
            return None
        # Step 3c (RFC 6672 §3.3): a DNAME above the name rewrites it.
        if walk.dname is not None:
            return self.dname(zone, walk.dname, qname)
        node = walk.node
        if node is not None:
            # Step 3a: the name exists (possibly as an empty non-terminal).
            return self.at_node(zone, node, qname)
        if walk.wildcard is not None:
            # Step 3c, RFC 4592 §3.3.1: synthesize from the closest encloser's wildcard.
            return self.at_node(zone, walk.wildcard, qname, closest=walk.closest_encloser)
        self.nxdomain(zone, qname, walk.closest_encloser)
        return None

    # ------------------------------------------------------------ outcomes

    def at_node(self, zone: Zone, node: Node, qname: dns.name.Name,
                closest: Node | None = None) -> dns.name.Name | None:
        """Answer from ``node``; ``closest`` is set when it is a wildcard standing in."""
        qtype = self.qtype
        if qtype == ANY:
            return self.any(zone, node, qname, closest)
        if qtype == RRSIG and self.signing and node.rrsigs:
            # RFC 4035 §3.1.5 leaves RRSIG queries open: every signature at the name.
            for rdtype in sorted(node.rrsigs):
                self.answer.answer.append(_sigs_for_answer(node, rdtype, qname, closest))
            return None
        rrset = node.rrsets.get(qtype)
        if rrset is not None:
            self.add_answer(zone, node, rrset, qname, closest)
            return None
        cname = node.rrsets.get(CNAME)
        if cname is not None:
            # RFC 1034 §4.3.2 step 3a: a CNAME answers any other type; follow it.
            self.add_answer(zone, node, cname, qname, closest)
            return cname[0].target
        self.nodata(zone, qname, node, closest)
        return None

    def any(self, zone: Zone, node: Node, qname: dns.name.Name,
            closest: Node | None) -> dns.name.Name | None:
        """RFC 8482 §4.1: one RRset stands for all of them (the lowest type, as Knot)."""
        if not node.rrsets:
            self.nodata(zone, qname, node, closest)
            return None
        rdtype = min(node.rrsets)
        self.add_answer(zone, node, node.rrsets[rdtype], qname, closest)
        return None

    def add_answer(self, zone: Zone, node: Node, rrset: dns.rrset.RRset,
                   qname: dns.name.Name, closest: Node | None) -> None:
        if closest is not None or rrset.name != qname:
            rrset = _renamed(rrset, qname)
        self.answer.answer.append(rrset)
        if self.signing:
            sigs = _sigs_for_answer(node, rrset.rdtype, qname, closest)
            if sigs is not None:
                self.answer.answer.append(sigs)
            if closest is not None:
                # RFC 4035 §3.1.3.3: prove that the query name itself does not exist.
                self.answer.authority += Denial(zone).wildcard_answer(qname, closest)
        self.additional_for(zone, rrset)

    def referral(self, zone: Zone, cut: Node) -> None:
        """RFC 1034 §4.3.2 step 3b: NS of the cut in authority, glue in additional, AA=0."""
        answer = self.answer
        if self.first:
            answer.aa = False
            answer.outcome = Outcome.DELEGATION
        ns = cut.rrsets[NS]
        answer.authority.append(ns)
        if self.signing:
            # RFC 4035 §3.1.4: the DS and its RRSIG, or proof that there is no DS.
            ds = cut.rrsets.get(DS)
            if ds is not None:
                answer.authority += [r for r in (ds, cut.rrsigs.get(DS)) if r is not None]
            else:
                answer.authority += Denial(zone).no_ds(cut)
        # In-bailiwick glue first: RFC 9471 §3 requires all of it (or TC);
        # sibling glue elsewhere in the zone follows, and may be dropped.
        before = len(answer.additional)
        self.additional_for(zone, ns, below=cut.name)
        answer.required_additional = len(answer.additional) - before
        self.additional_for(zone, ns)

    def dname(self, zone: Zone, node: Node, qname: dns.name.Name) -> dns.name.Name | None:
        """RFC 6672 §3.3: the DNAME, a synthesized CNAME, then follow the new name."""
        dname = node.rrsets[DNAME]
        self.answer.answer.append(dname)
        if self.signing and DNAME in node.rrsigs:
            # The synthesized CNAME is unsigned; the DNAME's signature vouches for it.
            self.answer.answer.append(node.rrsigs[DNAME])
        try:
            target = qname.relativize(node.name).derelativize(dname[0].target)
        except dns.name.NameTooLong:
            # RFC 6672 §2.2: the substituted name does not fit.
            self.answer.rcode = dns.rcode.YXDOMAIN
            return None
        cname = dns.rrset.RRset(qname, IN, CNAME)
        cname.add(dns.rdtypes.ANY.CNAME.CNAME(IN, CNAME, target), dname.ttl)
        self.answer.answer.append(cname)
        return None if self.qtype == CNAME else target

    def nodata(self, zone: Zone, qname: dns.name.Name, node: Node,
               closest: Node | None = None) -> None:
        """RFC 2308 §2.2: NOERROR, empty answer, the SOA in authority.

        Signed: the NSEC/NSEC3 showing the type is absent (RFC 4035 §3.1.3.1),
        or, for a wildcard, that the name does not exist and the wildcard
        lacks the type (RFC 4035 §3.1.3.4).
        """
        if self.first:
            self.answer.outcome = Outcome.NODATA
        self.negative_soa(zone)
        if self.signing:
            denial = Denial(zone)
            if closest is not None:
                self.answer.authority += denial.wildcard_nodata(qname, closest, node)
            else:
                self.answer.authority += denial.nodata(qname)

    def nxdomain(self, zone: Zone, qname: dns.name.Name, closest: Node) -> None:
        """RFC 2308 §2.1 (and RFC 6604 §2 after a chain): NXDOMAIN with the SOA.

        Signed: proof that neither the name nor a wildcard exists (RFC 4035 §3.1.3.2).
        """
        if self.first:
            self.answer.outcome = Outcome.NXDOMAIN
        self.answer.rcode = dns.rcode.NXDOMAIN
        self.negative_soa(zone)
        if self.signing:
            self.answer.authority += Denial(zone).nxdomain(qname, closest)

    def negative_soa(self, zone: Zone) -> None:
        """The zone's SOA (and RRSIG) with the negative-caching TTL of RFC 2308 §3."""
        ttl = zone.negative_ttl
        soa = zone.soa
        if ttl != soa.ttl:
            soa = _renamed(soa, zone.origin)
            soa.ttl = ttl
        self.answer.authority.append(soa)
        if self.signing:
            sigs = rrsig(zone.apex, SOA, ttl=ttl)
            if sigs is not None:
                self.answer.authority.append(sigs)

    # ---------------------------------------------------------- additional

    def additional_for(self, zone: Zone, rrset: dns.rrset.RRset,
                       below: dns.name.Name | None = None) -> None:
        """RFC 1034 §3.6 / RFC 2782: addresses of NS, MX and SRV targets in the zone.

        With ``below`` set, only targets at or below that name are considered.
        Authoritative addresses carry their RRSIGs when signing; glue has none.
        """
        rdtype = rrset.rdtype
        if rdtype == NS:
            targets = [rd.target for rd in rrset]
        elif rdtype == MX:
            targets = [rd.exchange for rd in rrset]
        elif rdtype == SRV:
            targets = [rd.target for rd in rrset]
        else:
            return
        additional = self.answer.additional
        present = {(r.name, r.rdtype, r.covers) for r in additional}
        for target in targets:
            if below is not None and not target.is_subdomain(below):
                continue
            node, synthesized = _address_source(zone, target)
            if node is None:
                continue
            for address_type in ADDRESS_TYPES:
                address = node.rrsets.get(address_type)
                if address is None or (target, address_type, 0) in present:
                    continue
                additional.append(_renamed(address, target) if synthesized else address)
                present.add((target, address_type, 0))
                if self.signing and not node.is_occluded:
                    sigs = rrsig(node, address_type, owner=target if synthesized else None)
                    if sigs is not None:
                        additional.append(sigs)


def _sigs_for_answer(node: Node, rdtype: int, qname: dns.name.Name,
                     closest: Node | None) -> dns.rrset.RRset | None:
    """RRSIGs of an answer RRset, under the query name when synthesized or case differs."""
    sigs = node.rrsigs.get(rdtype)
    if sigs is None:
        return None
    if closest is not None or sigs.name != qname:
        return rrsig(node, rdtype, owner=qname)
    return sigs


def _address_source(zone: Zone, target: dns.name.Name) -> tuple[Node | None, bool]:
    """The node holding ``target``'s addresses: its own (glue included), else a
    wildcard that covers it (RFC 4592 §3.3.1), flagged as synthesized."""
    node = zone.find_node(target)
    if node is not None:
        return node, False
    walk = zone.walk(target)
    if walk.wildcard is not None and walk.delegation is None and walk.dname is None:
        return walk.wildcard, True
    return None, False


def _renamed(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """A copy of ``rrset`` under another owner (wildcard synthesis, RFC 4592 §3.3.1)."""
    copy = dns.rrset.RRset(owner, rrset.rdclass, rrset.rdtype, rrset.covers)
    copy.update(rrset)
    return copy
