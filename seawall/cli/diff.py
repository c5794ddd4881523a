"""``seawall diff OLD NEW``: what a change to zone files changes in the answers.

OLD and NEW are zone directories (a directory's ``emergency/`` subdirectory
is compared too) or single zone files, in either format Seawall reads. For
code review of zone changes in git: run it on a checkout of the merge base
and on the branch (``contrib/ci-check-zones.sh`` does). It prints, per zone,
the RRsets added (``+``), removed (``-``) and changed (``~``, followed by the
records that go and come), and the zones added or removed; two files that
give the same RRsets (reordered, reformatted, or the same zone in the other
format) show no difference. Exit status: 0 no difference, 1 differences,
2 an error (a path missing, a zone that does not load).

Example::

    $ seawall diff old/zones zones
    zone example.com. (zones/example.com.zone)
      ~ www.example.com. A
        - www.example.com. 3600 IN A 192.0.2.80
        + www.example.com. 300 IN A 192.0.2.81
      + new.example.com. 3600 IN AAAA 2001:db8::9
    1 zone(s) changed, 0 added, 0 removed: 1 RRset(s) added, 0 removed, 1 changed
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset

from ..zones.export import zone_rrsets
from ..zones.loader import LoadedZone, load_directory, load_zone_file
from ..zones.model import Zone

RRsetKey = tuple[dns.name.Name, int, int]
ZoneKey = tuple[str, dns.name.Name]  # ("" or "emergency", origin)


def register(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser(
        "diff", help="show what a change to zone files changes in the answers",
        description="Compare two zone directories (or two zone files) RRset by RRset. "
                    "Exit status: 0 no difference, 1 differences, 2 errors.")
    cmd.add_argument("old", type=Path, metavar="OLD", help="zone directory or file before")
    cmd.add_argument("new", type=Path, metavar="NEW", help="zone directory or file after")
    cmd.add_argument("--lenient", action="store_true",
                     help="load zones without apex NS records (as seawall check --lenient)")
    cmd.add_argument("--quiet", "-q", action="store_true",
                     help="print nothing; only the exit status tells")
    cmd.set_defaults(run=run)


@dataclass
class ZoneDiff:
    """The RRsets one zone gains, loses and changes."""

    added: list[dns.rrset.RRset] = field(default_factory=list)
    removed: list[dns.rrset.RRset] = field(default_factory=list)
    changed: list[tuple[dns.rrset.RRset, dns.rrset.RRset]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_zones(old: Zone, new: Zone) -> ZoneDiff:
    """RRset by RRset: an RRset changed if its records or its TTL differ."""
    before = _rrsets_by_key(old)
    after = _rrsets_by_key(new)
    result = ZoneDiff()
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a is None and b is not None:
            result.added.append(b)
        elif b is None and a is not None:
            result.removed.append(a)
        elif a is not None and b is not None and (a != b or a.ttl != b.ttl):
            result.changed.append((a, b))
    return result


def load_side(path: Path, strict: bool) -> tuple[dict[ZoneKey, LoadedZone], list[str]]:
    """The zones under ``path`` by (kind, origin), and every error loading them."""
    if path.is_dir():
        loaded = [("", z) for z in load_directory(path, strict=strict)]
        if (path / "emergency").is_dir():
            loaded += [("emergency", z) for z in load_directory(
                path / "emergency", strict=strict, display_root=path.parent)]
    else:
        loaded = [("", load_zone_file(path, include_root=path.parent, strict=strict))]
    zones: dict[ZoneKey, LoadedZone] = {}
    errors: list[str] = []
    for kind, zone in loaded:
        errors += [str(p) for p in zone.errors]
        if zone.origin is None:
            continue
        key = (kind, zone.origin)
        if key in zones:
            errors.append(f"{zone.path}: zone {zone.origin} is also defined by "
                          f"{zones[key].path}")
        zones[key] = zone
    return zones, errors


def run(args: argparse.Namespace) -> int:
    missing = [p for p in (args.old, args.new) if not p.exists()]
    for path in missing:
        print(f"seawall diff: {path}: no such file or directory", file=sys.stderr)
    if missing:
        return 2
    old, old_errors = load_side(args.old, not args.lenient)
    new, new_errors = load_side(args.new, not args.lenient)
    for side, errors in (("OLD", old_errors), ("NEW", new_errors)):
        for error in errors:
            print(f"seawall diff: {side}: {error}", file=sys.stderr)
    out: list[str] = []
    counts = {"changed": 0, "added": 0, "removed": 0, "rr+": 0, "rr-": 0, "rr~": 0}
    for key in sorted(old.keys() | new.keys(), key=lambda k: (k[0], k[1])):
        a, b = old.get(key), new.get(key)
        title = _title(key)
        if a is not None and b is not None:
            if a.zone is None or b.zone is None:
                out.append(f"{title}: not compared, it does not load on the "
                           f"{'OLD' if a.zone is None else 'NEW'} side")
                continue
            changes = diff_zones(a.zone, b.zone)
            if not changes:
                continue
            counts["changed"] += 1
            counts["rr+"] += len(changes.added)
            counts["rr-"] += len(changes.removed)
            counts["rr~"] += len(changes.changed)
            out.append(f"{title} ({_source(a, b)})")
            out += _render(changes)
        elif b is not None:
            counts["added"] += 1
            rrsets = zone_rrsets(b.zone) if b.zone else []
            out.append(f"{title}: added ({b.zone.source if b.zone else b.path}, "
                       f"{len(rrsets)} RRsets)")
            out += [f"  + {line}" for rrset in rrsets for line in _lines(rrset)]
        elif a is not None:
            counts["removed"] += 1
            rrsets = zone_rrsets(a.zone) if a.zone else []
            out.append(f"{title}: removed ({a.zone.source if a.zone else a.path}, "
                       f"{len(rrsets)} RRsets)")
    different = counts["changed"] or counts["added"] or counts["removed"]
    if not args.quiet:
        for line in out:
            print(line)
        print(f"{counts['changed']} zone(s) changed, {counts['added']} added, "
              f"{counts['removed']} removed: {counts['rr+']} RRset(s) added, "
              f"{counts['rr-']} removed, {counts['rr~']} changed", file=sys.stderr)
    if old_errors or new_errors:
        return 2
    return 1 if different else 0


def _render(changes: ZoneDiff) -> list[str]:
    """Each RRset in name order; a changed one with the records that go and come."""
    entries: list[tuple[RRsetKey, list[str]]] = []
    for rrset in changes.added:
        entries.append((_key(rrset), [f"  + {line}" for line in _lines(rrset)]))
    for rrset in changes.removed:
        entries.append((_key(rrset), [f"  - {line}" for line in _lines(rrset)]))
    for before, after in changes.changed:
        old_lines, new_lines = _lines(before), _lines(after)
        lines = [f"  ~ {before.name} {_type(before)}"]
        lines += [f"    - {line}" for line in old_lines if line not in new_lines]
        lines += [f"    + {line}" for line in new_lines if line not in old_lines]
        entries.append((_key(before), lines))
    return [line for _, lines in sorted(entries, key=lambda e: e[0]) for line in lines]


def _rrsets_by_key(zone: Zone) -> dict[RRsetKey, dns.rrset.RRset]:
    return {_key(rrset): rrset for rrset in zone_rrsets(zone)}


def _key(rrset: dns.rrset.RRset) -> RRsetKey:
    return (rrset.name.canonicalize(), rrset.rdtype, rrset.covers)


def _lines(rrset: dns.rrset.RRset) -> list[str]:
    return sorted(rrset.to_text().splitlines())


def _type(rrset: dns.rrset.RRset) -> str:
    text = dns.rdatatype.to_text(rrset.rdtype)
    if rrset.rdtype == dns.rdatatype.RRSIG:
        text += f"({dns.rdatatype.to_text(rrset.covers)})"
    return text


def _title(key: ZoneKey) -> str:
    kind, origin = key
    return f"{'emergency zone' if kind else 'zone'} {origin}"


def _source(a: LoadedZone, b: LoadedZone) -> str:
    old = a.zone.source if a.zone else str(a.path)
    new = b.zone.source if b.zone else str(b.path)
    return new if old == new else f"{old} -> {new}"
