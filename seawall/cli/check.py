"""``seawall check PATH...``: validate zone files and zone directories.

Every problem is printed as ``file:line: message``; the exit status is 1 if
any problem is an error (warnings alone leave it 0), 2 for bad arguments.
A directory is checked with its ``emergency/`` subdirectory, if present.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import Duration
from ..dns.serials import flag_emergency_serials
from ..failover.emergency import compare
from ..zones.loader import LoadedZone, load_directory, load_zone_file
from ..zones.problems import Location, Problem, Severity
from ..zones.signatures import check_dnssec


def register(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("check", help="validate zone files",
                              description="Validate zone files and directories; print each "
                                          "problem as file:line: message.")
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                     help="a zone file or a directory of zone files")
    cmd.add_argument("--lenient", action="store_true",
                     help="a zone without apex NS records is a warning, not an error")
    cmd.add_argument("--signature-horizon", default="7d", metavar="DURATION",
                     help="warn about RRSIGs that expire within this time (default: 7d)")
    cmd.add_argument("--quiet", "-q", action="store_true", help="print only problems")
    cmd.set_defaults(run=run)


def check_paths(paths: list[Path], strict: bool = True) -> list[LoadedZone]:
    results: list[LoadedZone] = []
    for path in paths:
        if path.is_dir():
            results += load_directory(path, strict=strict)
            emergency = path / "emergency"
            if emergency.is_dir():
                # Shown as zones/emergency/NAME.zone, like the zones beside it.
                results += load_directory(emergency, strict=strict, display_root=path.parent)
        else:
            results.append(load_zone_file(path, include_root=path.parent, strict=strict))
    return results


def flag_emergency_against_live(results: list[LoadedZone]) -> None:
    """Each emergency version against its live zone: apex NS, signed, KSK against the DS.

    The same comparison the server makes at start-up (seawall.failover.emergency):
    a zone whose emergency version fails it is unprotected, so CI must fail.
    """
    live = {r.origin: r for r in results
            if r.zone is not None and r.path.parent.name != "emergency"}
    for loaded in results:
        if loaded.zone is None or loaded.path.parent.name != "emergency":
            continue
        partner = live.get(loaded.origin)
        if partner is None or partner.zone is None:
            continue
        check = compare(loaded.zone, partner.zone, signatures=False)
        where = Location(loaded.zone.source or str(loaded.path), 1)
        for problem in check.problems:
            loaded.problems.append(Problem(where, f"emergency version of {loaded.origin}: "
                                                  f"{problem}"))
        if check.drift is not None and check.drift > DRIFT_WARNING:
            loaded.problems.append(Problem(where, f"emergency version of {loaded.origin}: "
                                                  f"{check.drift:.0%} of the live RRsets are "
                                                  "missing or different in it",
                                           Severity.WARNING))


DRIFT_WARNING = 0.5


def run(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        for path in missing:
            print(f"seawall check: {path}: no such file or directory", file=sys.stderr)
        return 2
    try:
        horizon = int(Duration.parse(args.signature_horizon))
    except ValueError as exc:
        print(f"seawall check: --signature-horizon: {exc}", file=sys.stderr)
        return 2
    results = check_paths(args.paths, strict=not args.lenient)
    _flag_twice_defined(results)
    flag_emergency_serials(results)   # secondaries must be able to follow a switch
    flag_emergency_against_live(results)   # an emergency version must be able to stand in
    for loaded in results:
        if loaded.zone is not None:
            # Signed zones: signatures verify, none expired or expiring soon, chains whole.
            loaded.problems += check_dnssec(loaded.zone, loaded.records, horizon=horizon)
    errors = warnings = 0
    for loaded in results:
        for problem in loaded.problems:
            print(problem)
            if problem.is_error:
                errors += 1
            else:
                warnings += 1
    if not args.quiet:
        print(f"{len(results)} zone(s) checked: {errors} error(s), {warnings} warning(s)",
              file=sys.stderr)
    return 1 if errors else 0


def _flag_twice_defined(results: list[LoadedZone]) -> None:
    """``example.com.zone`` beside ``example.com.yaml``: which one is served is luck."""
    first: dict[tuple[str, object], LoadedZone] = {}
    for loaded in results:
        if loaded.origin is None:
            continue
        key = (os.path.realpath(loaded.path.parent), loaded.origin)
        if key in first:
            shown = loaded.zone.source if loaded.zone else str(loaded.path)
            other = first[key].zone.source if first[key].zone else first[key].path.name
            loaded.problems.insert(0, Problem(Location(shown, 1),
                                              f"zone {loaded.origin} is also defined by "
                                              f"{other}; keep one file per zone"))
        else:
            first[key] = loaded
