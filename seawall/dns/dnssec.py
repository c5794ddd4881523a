"""DNSSEC additions to an answer from a pre-signed zone (RFC 4035 §3.1, RFC 5155 §7.2).

The answer engine decides *what* the answer is; this module supplies the
signatures and the proofs of non-existence that go with it when the query
had the DO bit and the zone is signed. Nothing here is computed per query
beyond a binary search: the chains are indexed when the zone is built
(``seawall.zones.dnssec``).
"""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset

from ..zones.dnssec import OPT_OUT
from ..zones.model import Node, Zone

NSEC, NSEC3, RRSIG, SOA = (dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.RRSIG,
                           dns.rdatatype.SOA)
WILDCARD = b"*"


def rrsig(node: Node, rdtype: int, owner: dns.name.Name | None = None,
          ttl: int | None = None) -> dns.rrset.RRset | None:
    """The signatures covering ``rdtype`` at ``node``, renamed/re-timed for synthesis.

    RFC 4035 §3.1.3.3: a wildcard answer carries the wildcard's RRSIG under the
    query name; its labels field tells the validator it was synthesized.
    """
    sigs = node.rrsigs.get(rdtype)
    if sigs is None or (owner is None and ttl is None):
        return sigs
    copy = dns.rrset.RRset(owner if owner is not None else sigs.name, sigs.rdclass, RRSIG,
                           rdtype)
    copy.update(sigs)
    if ttl is not None:
        copy.ttl = ttl
    return copy


class Denial:
    """Proofs of non-existence for one zone, from its NSEC or NSEC3 chain."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.nsec = zone.nsec
        self.nsec3 = zone.nsec3

    # ------------------------------------------------------------- outcomes

    def nxdomain(self, qname: dns.name.Name, closest: Node) -> list[dns.rrset.RRset]:
        """The name and the wildcard that could have matched do not exist."""
        wildcard = dns.name.Name((WILDCARD,) + closest.name.labels)
        if self.nsec3 is not None:
            # RFC 5155 §7.2.2: closest encloser proof plus the wildcard's cover.
            return _unique(self._closest_encloser_proof(qname, closest.name)
                           + self._nsec3(self.nsec3.cover(wildcard)))
        if self.nsec is not None:
            # RFC 4035 §3.1.3.2: an NSEC covering the name, one covering the wildcard.
            return _unique(self._nsec(self.nsec.cover(qname))
                           + self._nsec(self.nsec.cover(wildcard)))
        return []

    def nodata(self, qname: dns.name.Name) -> list[dns.rrset.RRset]:
        """The name exists but not with the type asked (RFC 4035 §3.1.3.1, RFC 5155 §7.2.3)."""
        if self.nsec3 is not None:
            match = self.nsec3.match(qname)
            if match is not None:
                return self._nsec3(match)
            # RFC 5155 §7.2.4: no NSEC3 for the name (opt-out): closest provable encloser.
            return self._closest_provable_encloser(qname)
        if self.nsec is not None:
            match = self.nsec.match(qname)
            # An empty non-terminal has no NSEC: the one before it proves it empty.
            return self._nsec(match if match is not None else self.nsec.cover(qname))
        return []

    def wildcard_answer(self, qname: dns.name.Name, closest: Node) -> list[dns.rrset.RRset]:
        """The query name itself does not exist (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6)."""
        if self.nsec3 is not None:
            return self._nsec3(self.nsec3.cover(_next_closer(qname, closest.name)))
        if self.nsec is not None:
            return self._nsec(self.nsec.cover(qname))
        return []

    def wildcard_nodata(self, qname: dns.name.Name, closest: Node,
                        wildcard: Node) -> list[dns.rrset.RRset]:
        """No exact match, and the wildcard lacks the type (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5)."""
        if self.nsec3 is not None:
            match = self.nsec3.match(wildcard.name)
            return _unique(self._closest_encloser_proof(qname, closest.name)
                           + (self._nsec3(match) if match is not None else []))
        if self.nsec is not None:
            match = self.nsec.match(wildcard.name)
            return _unique(self._nsec(self.nsec.cover(qname))
                           + (self._nsec(match) if match is not None else []))
        return []

    def no_ds(self, cut: Node) -> list[dns.rrset.RRset]:
        """An unsigned delegation: no DS at the cut (RFC 4035 §3.1.4, RFC 5155 §7.2.7)."""
        return self.nodata(cut.name)

    # -------------------------------------------------------------- helpers

    def _closest_encloser_proof(self, qname: dns.name.Name,
                                encloser: dns.name.Name) -> list[dns.rrset.RRset]:
        """RFC 5155 §7.2.1: NSEC3 matching the encloser, NSEC3 covering the next closer."""
        assert self.nsec3 is not None
        proof = []
        match = self.nsec3.match(encloser)
        if match is not None:
            proof += self._nsec3(match)
        if qname != encloser:
            proof += self._nsec3(self.nsec3.cover(_next_closer(qname, encloser)))
        return _unique(proof)

    def _closest_provable_encloser(self, name: dns.name.Name) -> list[dns.rrset.RRset]:
        """RFC 5155 §7.2.4 / §8.3: climb until an ancestor has a matching NSEC3."""
        assert self.nsec3 is not None
        encloser = name
        while encloser != self.zone.origin and self.nsec3.match(encloser) is None:
            encloser = encloser.parent()
        return self._closest_encloser_proof(name, encloser)

    def _nsec(self, node: Node) -> list[dns.rrset.RRset]:
        out = [node.rrsets[NSEC]]
        sig = node.rrsigs.get(NSEC)
        if sig is not None:
            out.append(sig)
        return out

    def _nsec3(self, node: Node) -> list[dns.rrset.RRset]:
        out = [node.rrsets[NSEC3]]
        sig = node.rrsigs.get(NSEC3)
        if sig is not None:
            out.append(sig)
        return out


def is_opt_out(node: Node) -> bool:
    return bool(node.rrsets[NSEC3][0].flags & OPT_OUT)


def _next_closer(qname: dns.name.Name, encloser: dns.name.Name) -> dns.name.Name:
    """The encloser with one more label of the query name (RFC 5155 §1.3)."""
    return dns.name.Name(qname.labels[-(len(encloser.labels) + 1):])


def _unique(rrsets: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    seen = set()
    out = []
    for rrset in rrsets:
        key = (rrset.name, rrset.rdtype, rrset.covers)
        if key not in seen:
            seen.add(key)
            out.append(rrset)
    return out
