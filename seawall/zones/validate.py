"""Semantic checks of a zone's records, each problem naming its file and line.

The reader has already reported syntax errors, TTLs out of range, names and
labels too long, and names outside the zone. These checks need the whole
zone: SOA and apex NS (RFC 1035 §5.2), CNAME beside other data (RFC 1034
§3.6.2, RFC 2181 §10.1), data hidden below a zone cut, NS targets inside the
zone without addresses, and data below a DNAME (RFC 6672 §2.4).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import dns.name
import dns.rdatatype

from .model import Zone
from .problems import Location, Problem, Severity
from .reader import Record

A, AAAA, NS, SOA, CNAME, DNAME = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.NS,
                                  dns.rdatatype.SOA, dns.rdatatype.CNAME, dns.rdatatype.DNAME)
# Types that may sit beside a CNAME (RFC 2181 §10.1, RFC 4035 §2.5).
CNAME_COMPANIONS = {CNAME, dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.KEY}
GLUE_TYPES = {A, AAAA}
# Types that belong at a delegation point rather than below it (RFC 4035 §2.4).
CUT_TYPES = {NS, dns.rdatatype.DS, dns.rdatatype.NSEC, dns.rdatatype.RRSIG}


def check_records(origin: dns.name.Name, records: Sequence[Record], source: str, *,
                  strict: bool = True) -> list[Problem]:
    """Problems visible from the records alone (before a tree is built).

    With ``strict`` off (Knot's ``semantic-checks: off``) a zone without apex
    NS records is a warning, not an error: it can still answer correctly.
    """
    problems: list[Problem] = []
    soas = [r for r in records if r.rdata.rdtype == SOA]
    for record in soas:
        if record.name != origin:
            problems.append(_error(record, f"SOA at {record.name}, not at the zone apex {origin}"))
    at_apex = [r for r in soas if r.name == origin]
    if not at_apex:
        problems.append(Problem(Location(source, 1), f"zone {origin} has no SOA record"))
    for record in at_apex[1:]:
        problems.append(_error(record, f"second SOA record at {origin}; a zone has exactly one "
                                       f"(first at line {at_apex[0].location.line})"))
    if not any(r.rdata.rdtype == NS and r.name == origin for r in records):
        problems.append(Problem(Location(source, 1), f"zone {origin} has no NS records at its apex",
                                Severity.ERROR if strict else Severity.WARNING))

    # Keyed by lowercase labels: the same grouping as by Name, without
    # dnspython's per-character Name hash (100k records: seconds).
    # Only names with a CNAME need their records grouped.
    lower = bytes.lower
    aliases = {tuple(map(lower, r.name.labels)) for r in records if r.rdata.rdtype == CNAME}
    if aliases:
        by_name: dict[tuple[bytes, ...], list[Record]] = defaultdict(list)
        for record in records:
            key = tuple(map(lower, record.name.labels))
            if key in aliases:
                by_name[key].append(record)
        for owned in by_name.values():
            problems += _check_cname(owned[0].name, owned)
    return problems


def _check_cname(name: dns.name.Name, owned: list[Record]) -> list[Problem]:
    cnames = [r for r in owned if r.rdata.rdtype == CNAME]
    if not cnames:
        return []
    problems = []
    if len(cnames) > 1 and len({r.rdata for r in cnames}) > 1:
        problems.append(_error(cnames[1], f"{name} has more than one CNAME (RFC 2181 §10.1)"))
    others = sorted({dns.rdatatype.to_text(r.rdata.rdtype) for r in owned
                     if r.rdata.rdtype not in CNAME_COMPANIONS})
    if others:
        problems.append(_error(cnames[0], f"CNAME at {name} beside other data ({', '.join(others)}) "
                                          "(RFC 1034 §3.6.2)"))
    return problems


def check_zone(zone: Zone, records: Sequence[Record]) -> list[Problem]:
    """Problems that need the tree: cuts, glue, DNAME subtrees."""
    first_line: dict[tuple[dns.name.Name, int], Location] = {}

    def where(name: dns.name.Name, rdtype: int) -> Location:
        # Built on the first problem only: hashing 100k Names costs a second.
        if not first_line:
            for record in records:
                first_line.setdefault((record.name, record.rdata.rdtype), record.location)
        return first_line.get((name, rdtype), Location(zone.source, 1))

    problems: list[Problem] = []
    # A compact leaf is never occluded, a cut, a DNAME owner or an NS owner.
    for node in zone.nodes(leaves=False):
        if node.is_occluded:
            hidden = sorted(dns.rdatatype.to_text(t) for t in node.rrsets if t not in GLUE_TYPES)
            if hidden:
                rdtype = next(t for t in node.rrsets if t not in GLUE_TYPES)
                problems.append(Problem(where(node.name, rdtype),
                                        f"{node.name} is below a zone cut and not glue "
                                        f"({', '.join(hidden)}): it will never be served",
                                        Severity.WARNING))
        if node.is_delegation:
            extra = sorted(dns.rdatatype.to_text(t) for t in node.rrsets if t not in CUT_TYPES)
            if extra:
                rdtype = next(t for t in node.rrsets if t not in CUT_TYPES)
                problems.append(Problem(where(node.name, rdtype),
                                        f"{node.name} is a delegation point; its "
                                        f"{', '.join(extra)} data will never be served",
                                        Severity.WARNING))
        if DNAME in node.rrsets and node.children:
            problems.append(Problem(where(node.name, DNAME),
                                    f"DNAME at {node.name} has names below it; they are "
                                    "never served (RFC 6672 §2.4)", Severity.WARNING))
        ns = node.rrsets.get(NS)
        if ns is not None and (node.is_apex or node.is_delegation):
            for rdata in ns:
                target = rdata.target
                if not target.is_subdomain(zone.origin):
                    continue
                target_node = zone.find_node(target)
                if target_node is None or not (GLUE_TYPES & target_node.rrsets.keys()):
                    problems.append(Problem(where(node.name, NS),
                                            f"NS target {target} is inside the zone but has no "
                                            "A or AAAA record", Severity.WARNING))
    return problems


def _error(record: Record, message: str) -> Problem:
    return Problem(record.location, message, Severity.ERROR)
