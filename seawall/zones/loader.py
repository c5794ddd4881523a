"""Load zone files and zone directories into validated Zone objects.

One zone per file; the origin comes from the file name (``example.com.zone``
or ``example.com`` is the zone ``example.com.``) unless the configuration
names another origin for it. ``example.com.yaml`` (or ``.yml``) is the same
zone in octoDNS's YAML format (see :mod:`.octodns`). Files that are not
zones by their name (``*.inc``, editor backups, hidden files, single-label
``*.yaml`` such as ``octodns.yaml``) are skipped, so ``$INCLUDE`` fragments
and configuration can live beside the zones.

A file name gives a zone name only when it is a plain host name (letters,
digits, ``-``, ``_``, dots; ``root`` for the root zone; see :mod:`.names`):
any other zone file is refused with a problem, never served. A zone file
that is a link is read only when its target is inside the directory, and
every load stays within its budget of work and time (:mod:`.confine`,
:mod:`.budget`); a file past a limit fails its zone alone.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path

import dns.name

from .budget import BudgetExceeded, LoadBudget
from .fastreader import read_master_file_fast
from .model import Zone, build_zone
from .octodns import SUFFIXES as OCTODNS_SUFFIXES
from .octodns import is_octodns_file, read_octodns_file
from .names import ZoneNameError, zone_name_from_stem
from .problems import Location, Problem, shown_path
from .reader import Record
from .validate import check_records, check_zone

NOT_ZONE_SUFFIXES = (".inc", ".include", ".md", ".txt", ".orig", ".bak", ".rej", ".swp",
                     "~", ".json", ".jnl", ".signed.inc", ".keys", ".key", ".private",
                     ".conf", ".yaml", ".yml", ".sh", ".py")


@dataclass
class LoadedZone:
    """The outcome of loading one zone file: a zone, or the reasons there is none."""

    path: Path
    origin: dns.name.Name | None
    zone: Zone | None
    problems: list[Problem] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def ok(self) -> bool:
        return self.zone is not None and not self.errors


def is_zone_file(path: Path) -> bool:
    """A zone by its name; its content is not looked at.

    A link counts whatever it points at (a device, a FIFO, nothing, a file
    outside the directory), so that loading it refuses it loudly.
    """
    name = path.name
    if name.startswith(".") or not (path.is_file() or path.is_symlink()):
        return False
    if name.lower().endswith(OCTODNS_SUFFIXES):
        return is_octodns_file(path)
    return not name.lower().endswith(NOT_ZONE_SUFFIXES)


def origin_for(path: Path) -> dns.name.Name:
    """The zone a file holds, by its name: ``NAME.zone``, ``.yaml`` or ``NAME`` is ``NAME.``.

    ``NAME`` must be a plain host name, or ``root`` for the root zone;
    ZoneNameError otherwise (:mod:`.names`).
    """
    stem = path.name
    if stem.endswith(".zone"):
        stem = stem[:-len(".zone")]
    elif stem.lower().endswith(OCTODNS_SUFFIXES):
        stem = stem.rsplit(".", 1)[0]
    return zone_name_from_stem(stem)


def load_zone_file(path: Path, origin: dns.name.Name | None = None, *,
                   include_root: Path | None = None, display_root: Path | None = None,
                   strict: bool = True, budget: LoadBudget | None = None) -> LoadedZone:
    """Read, check and build one zone. Never raises for bad content.

    ``include_root`` (default: the file's directory) is the directory the
    file and its includes must lie in; ``budget`` (default: a fresh
    :class:`.budget.LoadBudget`) bounds the work the load may do.

    The cyclic garbage collector is paused meanwhile: a zone is a few objects
    per record and none of them form cycles, yet every 700 allocations the
    collector would walk the young ones (about a third of the load time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_zone_file(path, origin, include_root=include_root,
                               display_root=display_root, strict=strict,
                               budget=budget or LoadBudget.start())
    finally:
        if was_enabled:
            gc.enable()


def _load_zone_file(path: Path, origin: dns.name.Name | None, *,
                    include_root: Path | None, display_root: Path | None,
                    strict: bool, budget: LoadBudget) -> LoadedZone:
    shown = shown_path(path, display_root)
    try:
        origin = origin or origin_for(path)
    except ZoneNameError as exc:
        return LoadedZone(path, None, None,
                          [Problem(Location(shown, 0), f"the file name gives no zone name: "
                                                       f"{exc}")])
    if path.name.lower().endswith(OCTODNS_SUFFIXES):
        records, problems = read_octodns_file(path, origin, display_root=display_root,
                                              root=include_root)
    else:
        records, problems = read_master_file_fast(path, origin, include_root=include_root,
                                                  display_root=display_root, budget=budget)
    zone = None
    if any(p.stops for p in problems):
        return LoadedZone(path, origin, None, problems, records)
    try:
        budget.check_time()
        problems += check_records(origin, records, shown, strict=strict)
        if not any(p.is_error for p in problems):
            budget.check_time()
            zone = build_zone(origin, records, source=shown)
            problems += check_zone(zone, records)
            budget.check_time()
    except BudgetExceeded as exc:
        zone = None
        problems.append(Problem(Location(shown, 0), str(exc), stops=True))
    return LoadedZone(path, origin, zone, problems, records)


def zone_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if is_zone_file(p))


def load_directory(directory: Path, *, strict: bool = True,
                   display_root: Path | None = None) -> list[LoadedZone]:
    """Load every zone file directly inside ``directory`` (not its subdirectories).

    Files are shown relative to ``display_root`` (default: the directory's parent,
    so ``zones/example.com.zone``).
    """
    shown_from = directory.parent if display_root is None else display_root
    return [load_zone_file(path, include_root=directory, display_root=shown_from,
                           strict=strict)
            for path in zone_files(directory)]
