"""The guard: every new version of a zone is judged before it is served.

Bad data is held, never served (DESIGN principle 2). A version is rejected when

* it fails the checks of ``seawall check`` (the backend delivered no zone);
* it removes the apex SOA or NS RRset, or empties or removes an RRset listed
  in ``protect`` (one wiped record can take a service down: a single empty
  A record is enough);
* it deletes more than ``max_delete_ratio`` of the RRsets served now, or
  changes (deletes or modifies) more than ``max_change_ratio`` of them.
  Additions are not changes: a zone may grow freely;
* its content changed but its SOA serial did not ("bump the serial"), or
  its serial is behind the served one in RFC 1982 arithmetic. Both apply
  only to serials that mean an order: a content-hash serial (octoDNS YAML
  without ``serial``) names a version, it does not rank it;
* it is signed and its signatures have expired, or its KSKs no longer match
  the DS of the version served now (DNSSEC must stay valid through changes).

The reasons name the numbers, e.g. ``would delete 9120 of 10000 RRsets
(91% > 30%)``, because the operator deciding whether to ``accept`` it needs
them. The SOA and the DNSSEC records (RRSIG, NSEC, NSEC3) are left out of
the counts: they change with every version, and every re-signing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype
import dns.rrset

from ..backends.base import Version
from ..zones.model import Node, Zone
from ..zones.signatures import earliest_expiry, keeps_trust_chain

SOA = dns.rdatatype.SOA
NS = dns.rdatatype.NS
RRSIG = dns.rdatatype.RRSIG
SIGNING = frozenset({SOA, RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3})
SERIAL_HALF = 2**31


@dataclass(frozen=True)
class Limits:
    max_delete_ratio: float = 0.3
    max_change_ratio: float = 0.5
    protect: frozenset[tuple[dns.name.Name, int]] = frozenset()

    @classmethod
    def of(cls, max_delete_ratio: float, max_change_ratio: float,
           protect: Iterable[tuple[str, str]] = ()) -> Limits:
        """Limits from configuration values; ``protect`` as (name, type mnemonic) pairs."""
        return cls(max_delete_ratio, max_change_ratio,
                   frozenset((dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
                             for name, rdtype in protect))


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
        """Deleted or modified RRsets: what a version takes away from the served one."""
        return self.deleted + self.modified

    @property
    def any(self) -> bool:
        return bool(self.added or self.deleted or self.modified)


@dataclass
class Verdict:
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    diff: Diff | None = None
    unchanged: bool = False   # same serial, same data: nothing new (a touched file)
    older: bool = False       # its serial is behind the served one: older data

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: is serial ``a`` after ``b``?"""
    return a != b and ((a - b) % 2**32) < SERIAL_HALF


def diff(old: Zone, new: Zone) -> Diff:
    """Count data RRsets added, deleted and modified (SOA and DNSSEC records left
    out, as in :func:`rrsets_by_key`), walking both trees together by label.

    Names stored the same way in both versions are passed over without
    building their RRsets: two compact leaves (``zones/leaves.py``) that are
    equal tuples hold the same records, and one Node object shared by both
    versions is the same data. Only names that differ are compared RRset by
    RRset. Comparing two unchanged 100k-record versions therefore costs a
    walk, not 200k RRsets built and hashed (it took 5.7 s, on every restart).
    """
    result = Diff()
    stack: list[tuple[Node | tuple | None, Node | tuple | None]] = [(old.apex, new.apex)]
    while stack:
        before, after = stack.pop()
        if before is after or (isinstance(before, tuple) and before == after):
            count = _data_rrsets(before)
            result.before += count
            result.after += count
            continue
        if before is None or after is None:
            count = _data_rrsets(before if after is None else after)
            if after is None:
                result.before += count
                result.deleted += count
            else:
                result.after += count
                result.added += count
            continue
        old_node, new_node = _as_node(before), _as_node(after)
        _compare_rrsets(old_node.rrsets, new_node.rrsets, result)
        old_entries, new_entries = old_node.children.entries, new_node.children.entries
        for key, entry in old_entries.items():
            stack.append((_child(old_node, key, entry), _child(new_node, key,
                                                              new_entries.get(key))))
        for key, entry in new_entries.items():
            if key not in old_entries:
                stack.append((None, _child(new_node, key, entry)))
    return result


def _child(parent: Node, key: bytes, entry: Node | tuple | None) -> Node | tuple | None:
    """A child entry as stored (a compact leaf stays a tuple, tagged with its owner
    so that it can become a Node if its twin differs)."""
    if type(entry) is tuple:
        return _Leaf(parent, key, entry)
    return entry


class _Leaf(tuple):
    """A compact leaf's tuple that also knows where it hangs (equal as a tuple)."""

    parent: Node
    key: bytes

    def __new__(cls, parent: Node, key: bytes, entry: tuple) -> _Leaf:
        leaf = super().__new__(cls, entry)
        leaf.parent, leaf.key = parent, key
        return leaf


def _as_node(entry: Node | tuple) -> Node:
    if isinstance(entry, _Leaf):
        return entry.parent.children.leaf(entry.key, tuple(entry))
    return entry   # type: ignore[return-value]


def _data_rrsets(entry: Node | tuple | None) -> int:
    """Data RRsets at and below ``entry``."""
    if entry is None:
        return 0
    if isinstance(entry, tuple):
        return len(entry) // 3   # (rdtype, ttl, data) per RRset; no DNSSEC type is compact
    count = 0
    stack: list[Node | tuple] = [entry]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            count += len(node) // 3
            continue
        count += sum(1 for rdtype in node.rrsets if rdtype not in SIGNING)
        stack.extend(node.children.entries.values())
    return count


def _compare_rrsets(before: dict[int, dns.rrset.RRset], after: dict[int, dns.rrset.RRset],
                    result: Diff) -> None:
    for rdtype, rrset in before.items():
        if rdtype in SIGNING:
            continue
        result.before += 1
        other = after.get(rdtype)
        if other is None:
            result.deleted += 1
        elif other is not rrset and (other.ttl != rrset.ttl or len(other) != len(rrset)
                                     or set(other) != set(rrset)):
            result.modified += 1
    for rdtype in after:
        if rdtype not in SIGNING:
            result.after += 1
            if rdtype not in before:
                result.added += 1


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
    reasons += _apex_reasons(current, new)
    reasons += _protected_reasons(current, new, limits.protect)
    change = diff(current, new)
    if new.serial == current.serial and not change.any and new.soa == current.soa:
        return Verdict(not reasons, reasons, diff=change, unchanged=not reasons)
    older = False
    if version.serial_ordered:
        if new.serial == current.serial:
            reasons.append(f"the content changed (+{change.added} -{change.deleted} "
                           f"~{change.modified} RRsets) but the serial {new.serial} did not: "
                           "bump the serial")
        elif not serial_gt(new.serial, current.serial):
            older = True
            reasons.append(f"serial {new.serial} is older than the served serial "
                           f"{current.serial} (RFC 1982)")
    if change.before:
        ratio = change.deleted / change.before
        if ratio > limits.max_delete_ratio:
            reasons.append(f"would delete {change.deleted} of {change.before} RRsets "
                           f"({ratio:.0%} > {limits.max_delete_ratio:.0%})")
        ratio = change.changed / change.before
        if ratio > limits.max_change_ratio:
            reasons.append(f"would change {change.changed} of {change.before} RRsets "
                           f"(-{change.deleted} ~{change.modified}: "
                           f"{ratio:.0%} > {limits.max_change_ratio:.0%})")
    return Verdict(not reasons, reasons, change, older=older)


def _apex_reasons(current: Zone, new: Zone) -> list[str]:
    """Removing the apex NS RRset makes the zone unreachable (RFC 1034 §4.2.1): never.

    Only a removal counts: a zone served without apex NS (``--lenient``) may
    go on without it.
    """
    had = current.apex.rrsets.get(NS)
    ns = new.apex.rrsets.get(NS)
    if had and (ns is None or len(ns) == 0):
        return ["it has no NS RRset at the apex (apex SOA and NS can never be removed)"]
    return []


def _protected_reasons(current: Zone, new: Zone,
                       protect: frozenset[tuple[dns.name.Name, int]]) -> list[str]:
    """RRsets listed in ``protect`` that the served version has and ``new`` removes or empties."""
    reasons = []
    for name, rdtype in sorted(protect):
        if not name.is_subdomain(current.origin):
            continue
        had = _rrset_at(current, name, rdtype)
        if had is None or len(had) == 0:
            continue
        has = _rrset_at(new, name, rdtype)
        if has is None or len(has) == 0:
            reasons.append(f"it removes the protected RRset {name} "
                           f"{dns.rdatatype.to_text(rdtype)} ({len(had)} record(s) served now)")
    return reasons


def _rrset_at(zone: Zone, name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
    node = zone.find_node(name)
    return node.get(rdtype) if node is not None else None


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


def rrsets_by_key(zone: Zone) -> dict[tuple, dns.rrset.RRset]:
    """Every data RRset, keyed by (labels below the apex, type).

    The SOA changes with every version, and the DNSSEC records (RRSIG, NSEC,
    NSEC3) with every re-signing: counting them would make a routine
    re-signing look like a change of the whole zone. Their validity is
    judged on its own (``_dnssec_reasons``).
    """
    out: dict[tuple, dns.rrset.RRset] = {}
    stack: list[tuple[tuple[bytes, ...], Node]] = [((), zone.apex)]
    while stack:
        path, node = stack.pop()
        for rdtype, rrset in node.rrsets.items():
            if rdtype not in SIGNING:
                out[(path, rdtype)] = rrset
        stack.extend((path + (label,), child) for label, child in node.children.items())
    return out
