"""The guard: every new version of a zone is judged before it is served.

Bad data is a failure too (DESIGN principle 2). A version is rejected when

* it fails the checks of ``seawall check`` (the backend delivered no zone);
* its SOA serial does not move forward in RFC 1982 serial arithmetic;
* it deletes more than ``max_delete_ratio`` of the RRsets served now, or
  changes (adds, deletes or modifies) more than ``max_change_ratio`` of them;
* it is signed and its signatures have expired, or its KSKs no longer match
  the DS of the version served now (DNSSEC must stay valid through changes).

The reasons name the numbers, e.g. ``would delete 9120 of 10000 RRsets
(91% > 30%)``, because the operator deciding whether to ``accept`` it needs
them. The SOA itself is left out of the counts: it changes every time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import dns.rdatatype
import dns.rrset

from ..backends.base import Version
from ..zones.model import Node, Zone
from ..zones.signatures import earliest_expiry, keeps_trust_chain

SOA = dns.rdatatype.SOA
RRSIG = dns.rdatatype.RRSIG
SERIAL_HALF = 2**31


@dataclass(frozen=True)
class Limits:
    max_delete_ratio: float = 0.3
    max_change_ratio: float = 0.5


@dataclass
class Diff:
    """How two versions of a zone differ, in RRsets (SOA left out)."""

    before: int = 0
    after: int = 0
    added: int = 0
    deleted: int = 0
    modified: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.deleted + self.modified


@dataclass
class Verdict:
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    diff: Diff | None = None
    unchanged: bool = False   # same serial, same data: nothing new (a touched file)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: is serial ``a`` after ``b``?"""
    return a != b and ((a - b) % 2**32) < SERIAL_HALF


def diff(old: Zone, new: Zone) -> Diff:
    """Count RRsets added, deleted and modified, walking both trees by label."""
    before = _rrsets(old)
    after = _rrsets(new)
    result = Diff(before=len(before), after=len(after))
    for key, rrset in before.items():
        other = after.get(key)
        if other is None:
            result.deleted += 1
        elif other.ttl != rrset.ttl or len(other) != len(rrset) or set(other) != set(rrset):
            result.modified += 1
    result.added = sum(1 for key in after if key not in before)
    return result


def judge(current: Zone | None, version: Version, limits: Limits) -> Verdict:
    """Accept or reject ``version`` against the zone served now (None: nothing yet)."""
    new = version.zone
    if new is None:
        errors = version.errors or version.problems
        shown = "; ".join(str(p) for p in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return Verdict(False, [f"fails validation with {len(errors)} error(s): {shown}{more}"])
    reasons = _dnssec_reasons(current, new)
    if current is None:
        return Verdict(not reasons, reasons)
    change = diff(current, new)
    if new.serial == current.serial and not change.changed and new.soa == current.soa:
        return Verdict(not reasons, reasons, diff=change, unchanged=not reasons)
    if not serial_gt(new.serial, current.serial):
        how = "is the same as" if new.serial == current.serial else "is not after"
        reasons.append(f"serial {new.serial} {how} the served serial {current.serial} "
                       "(RFC 1982)")
    if change.before:
        ratio = change.deleted / change.before
        if ratio > limits.max_delete_ratio:
            reasons.append(f"would delete {change.deleted} of {change.before} RRsets "
                           f"({ratio:.0%} > {limits.max_delete_ratio:.0%})")
        ratio = change.changed / change.before
        if ratio > limits.max_change_ratio:
            reasons.append(f"would change {change.changed} of {change.before} RRsets "
                           f"(+{change.added} -{change.deleted} ~{change.modified}: "
                           f"{ratio:.0%} > {limits.max_change_ratio:.0%})")
    return Verdict(not reasons, reasons, change)


def _dnssec_reasons(current: Zone | None, new: Zone, now: float | None = None) -> list[str]:
    """A signed version that validators would reject is bad data (RFC 4035 §5).

    Its signatures must not have expired while the served version's are still
    valid (a regression), and its KSKs must still match the DS that the
    parent holds for the version served now. With nothing served yet, expired
    data is still better than none for resolvers that do not validate.
    """
    reasons = []
    now = time.time() if now is None else now
    served_valid = current is not None and (earliest_expiry(current) or now + 1) > now
    if new.is_signed and served_valid:
        first = earliest_expiry(new)
        if first is not None and first < now:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first))
            reasons.append(f"signatures expired at {stamp} (the served ones are still valid)")
    if current is not None and current.is_signed and not keeps_trust_chain(current, new):
        reasons.append("its DNSKEY set no longer matches the DS of the served version's KSKs")
    return reasons


def _rrsets(zone: Zone) -> dict[tuple, dns.rrset.RRset]:
    """Every RRset but the SOA, keyed by (labels below the apex, type, covered type)."""
    out: dict[tuple, dns.rrset.RRset] = {}
    stack: list[tuple[tuple[bytes, ...], Node]] = [((), zone.apex)]
    while stack:
        path, node = stack.pop()
        for rdtype, rrset in node.rrsets.items():
            if rdtype != SOA:
                out[(path, rdtype, 0)] = rrset
        for covered, rrset in node.rrsigs.items():
            out[(path, RRSIG, covered)] = rrset
        stack.extend((path + (label,), child) for label, child in node.children.items())
    return out
