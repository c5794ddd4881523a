"""The files backend: a directory of zone files, typically a git checkout.

A deploy job updates the directory (``git pull``); the backend notices by
comparing file signatures (mtime, size, inode, ctime) and reloads only the
zones whose files, or files they include, changed. Every look at the
directory is a health check, and what a deploy does to files in passing
must never look like an intent:

* an unreadable directory, or one where most zone files vanished in one
  scan (a broken checkout), is one failure of the backend: every zone it
  served gets a failure report, so they serve their last good data;
* a missing file is a failure of its zone (``git checkout`` unlinks, then
  writes), not its removal; a zone is removed only when its file has stayed
  absent for ``remove_after`` (default 1 h), or on an operator's
  ``seawall failover remove``;
* a file is stat'ed before and after it is read, and a version read while
  the file changed is not taken: it is read again at the next look;
* a file that fails validation is bad data, which the controller's guard
  holds (the last good version keeps serving).

A version's tag names every file it was read from with its signature
(``example.com.zone=MTIME.SIZE.INODE.CTIME``, the zone file first, then the
files it includes). At start-up, a zone file whose own signature and whose
included files' signatures are all those of a restored last good version's
tag (``restored``) is not read again: its version is that snapshot's zone.
A restart with unchanged files so costs a few stat calls, not a parse of
every record on the CPU that answers queries; any change of any of those
files (an edit, ``git checkout``, a copy back from a backup: all change the
ctime) reads the file as before. octoDNS files are always read (their
version carries whether the serial is a content hash).

Example::

    backends:
      - type: files
        path: zones
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.rdatatype

from ..zones.filesig import Signature, signature, source_signatures, unchanged
from ..zones.loader import LoadedZone, is_zone_file, load_zone_file
from ..zones.model import Zone
from ..zones.octodns import SUFFIXES as OCTODNS_SUFFIXES
from ..zones.octodns import content_serial
from .base import Backend, BackendFailure, Report, Version

log = logging.getLogger("seawall.backends.files")

TAG_FILES = 1000
"""A restored tag naming more files than this is not believed (a bound on stat calls)."""
MOST = 0.5
"""More than this share of a directory's zones gone in one scan is a broken checkout."""


@dataclass
class Scan:
    """What one look at the directory found."""

    loaded: list[LoadedZone] = field(default_factory=list)   # zones (re)read this time
    absent: list[dns.name.Name] = field(default_factory=list)   # zone files not there now
    moving: list[Path] = field(default_factory=list)          # changed while being read
    adopted: list[tuple[Path, Version]] = field(default_factory=list)   # restored, unchanged
    error: str | None = None                                  # the directory itself failed


class FilesBackend(Backend):
    """Reads zones from ``directory``; re-reads only what changed."""

    kind = "files"

    def __init__(self, directory: Path, *, strict: bool = True, timeout: float = 60.0,
                 probe_timeout: float = 1.0, remove_after: float = 3600.0) -> None:
        super().__init__(str(directory))
        self.directory = directory
        self.strict = strict
        self.timeout = timeout              # reading changed files may take a while
        self.probe_timeout = probe_timeout  # a drill's hang lasts this long
        # zone file -> (origin, signatures of the files it was built from)
        self._seen: dict[Path, tuple[dns.name.Name | None, dict[Path, Signature]]] = {}
        self._versions: dict[dns.name.Name, Version] = {}   # the version each file holds now
        self._lock = asyncio.Lock()
        self.listed = False   # the last look read the directory (a zone missing is really gone)
        self.remove_after = remove_after
        self._absent_since: dict[dns.name.Name, float] = {}   # monotonic, per missing zone
        # zone file -> a restored last good version with its tag's signatures (start-up)
        self._restored: dict[Path, tuple[Version, dict[Path, Signature]]] = {}

    def declared_zones(self) -> Iterable[dns.name.Name]:
        return ()

    def owns(self, origin: dns.name.Name) -> bool:
        return origin in self._versions

    def restored(self, versions: Iterable[tuple[dns.name.Name, Zone, str, str]]) -> None:
        """Keep the restored versions that came from a file of this directory,
        for the first look at that file (see the module's docstring)."""
        for origin, zone, source, tag in versions:
            path = Path(source.removeprefix("files:"))
            if not source.startswith("files:") or path.parent != self.directory or \
                    path.name.lower().endswith(OCTODNS_SUFFIXES):
                continue
            signatures = self._tag_signatures(tag)
            if signatures is None or next(iter(signatures), None) != path:
                continue
            version = Version(origin, zone, [], tag, source)
            self._restored[path] = (version, signatures)

    def scan(self, force: bool = False) -> Scan:
        """Load new and changed zone files; ``force`` re-reads every one."""
        try:
            paths = sorted(p for p in self.directory.iterdir() if is_zone_file(p))
        except OSError as exc:
            return Scan(error=f"cannot list {self.directory}: {exc.strerror}")
        scan = Scan()
        for path in paths:
            previous = self._seen.get(path)
            if not force and previous is not None and unchanged(previous[1]):
                continue
            restored = self._restored.pop(path, None)
            if restored is not None and previous is None and unchanged(restored[1]):
                version, signatures = restored
                self._seen[path] = (version.origin, signatures)
                scan.adopted.append((path, version))
                continue
            before = signature(path)
            loaded = load_zone_file(path, include_root=self.directory,
                                    display_root=self.directory.parent, strict=self.strict)
            if signature(path) != before:
                # Still being written: what was read may be a part of it. Next look.
                scan.moving.append(path)
                continue
            # The files the zone came from ($INCLUDE): a Path each, not one per record.
            signatures = source_signatures(path, loaded, before, self.directory.parent)
            self._seen[path] = (loaded.origin, signatures)
            scan.loaded.append(loaded)
        for path in set(self._seen) - set(paths):
            origin = self._seen.pop(path)[0]
            if origin is not None:
                scan.absent.append(origin)
        return scan

    async def check(self, force: bool = False) -> list[Report]:
        """One look at the directory: a report for every zone it holds or held."""
        async with self._lock:
            known = list(self._versions)
            try:
                await self.faults.before_call(self.probe_timeout)
                scan = await asyncio.wait_for(asyncio.to_thread(self.scan, force), self.timeout)
            except asyncio.TimeoutError:
                return self._all_failed(known, f"reading {self.directory} took over "
                                                f"{self.timeout:g}s")
            except BackendFailure as exc:
                return self._all_failed(known, str(exc), drill=exc.drill)
            if scan.error:
                self.listed = False
                return self._all_failed(known, scan.error)
            self.listed = True
            reports: dict[dns.name.Name, Report] = {}
            for loaded in scan.loaded:
                if loaded.origin is None:
                    log.error("zone file skipped: file=%s reason=%s", loaded.path,
                              "; ".join(map(str, loaded.problems)))
                    continue
                self._absent_since.pop(loaded.origin, None)
                tag = self._tag(self._seen[loaded.path][1])
                version = Version(loaded.origin, loaded.zone if loaded.ok else None,
                                  list(loaded.problems), tag, f"files:{loaded.path}",
                                  serial_ordered=not _hashed_serial(loaded))
                self._versions[loaded.origin] = version
                reports[loaded.origin] = Report(loaded.origin, True, tag=tag, version=version,
                                                kind="scan")
            for path, version in scan.adopted:
                log.info("zone file unchanged since its last good snapshot: file=%s "
                         "zone=%s serial=%s", path, version.origin, version.serial)
                self._absent_since.pop(version.origin, None)
                self._versions[version.origin] = version
                reports[version.origin] = Report(version.origin, True, tag=version.tag,
                                                 version=version, kind="scan")
            self._restored.clear()   # only the first look may take a restored version
            gone = self._gone(scan, reports)
            if known and len(gone) > MOST * len(known) and len(gone) > 1:
                # Most zone files vanished at once: a broken checkout, not an intent.
                return self._all_failed(known, f"{len(gone)} of {len(known)} zone files "
                                               f"vanished from {self.directory} at once")
            now = time.monotonic()
            for origin in gone:
                since = self._absent_since.setdefault(origin, now)
                if now - since >= self.remove_after:
                    self._forget_zone(origin)
                    reports[origin] = Report(origin, True, removed=True, kind="scan")
                else:
                    reports[origin] = Report(origin, False, kind="scan", error=(
                        f"its zone file is missing from {self.directory} (for {now - since:.0f}s;"
                        f" removed after remove_after={self.remove_after:g}s)"))
            for origin, version in self._versions.items():
                if origin not in reports:
                    reports[origin] = Report(origin, True, tag=version.tag, kind="scan")
            for origin, report in reports.items():
                mangled = self.faults.mangle(self._versions.get(origin))
                if mangled is not None:
                    report.version, report.tag, report.drill = mangled, mangled.tag, True
            return await self.faults.after_scan(list(reports.values()), self.probe_timeout)

    def _gone(self, scan: Scan, reports: dict[dns.name.Name, Report]) -> list[dns.name.Name]:
        """Zones whose file is not there now (newly or still), and not re-read elsewhere."""
        present = {origin for origin, _ in self._seen.values() if origin is not None}
        gone = [o for o in scan.absent if o not in reports and o not in present]
        gone += [o for o in self._absent_since if o not in gone and o not in present
                 and o not in reports]
        return [o for o in gone if o in self._versions or o in self._absent_since]

    def _forget_zone(self, origin: dns.name.Name) -> None:
        self._versions.pop(origin, None)
        self._absent_since.pop(origin, None)

    def remove(self, origin: dns.name.Name) -> None:
        """An operator removed the zone: forget it now (its file may come back later)."""
        self._forget_zone(origin)
        self.forget(origin)

    def forget(self, origin: dns.name.Name) -> None:
        """Re-read the zone's file next time and report it as new data."""
        for path, (seen_origin, _) in list(self._seen.items()):
            if seen_origin == origin:
                del self._seen[path]

    def _all_failed(self, origins: list[dns.name.Name], reason: str,
                    drill: bool = False) -> list[Report]:
        return [Report(origin, False, error=reason, kind="scan", drill=drill)
                for origin in origins]

    def _tag(self, signatures: dict[Path, Signature]) -> str:
        """``NAME=MTIME.SIZE.INODE.CTIME,...``: the zone file first, names relative
        to the directory (an included file outside it keeps its whole path)."""
        parts = []
        for path, sig in signatures.items():
            try:
                shown = path.relative_to(self.directory).as_posix()
            except ValueError:
                shown = str(path)
            parts.append(f"{shown}={'.'.join(map(str, sig))}")
        return ",".join(parts)

    def _tag_signatures(self, tag: str) -> dict[Path, Signature] | None:
        """The files and signatures a tag names, each a file below the directory
        (never a path that leads out of it); None for a tag of another form."""
        parts = tag.split(",")
        if not tag or len(parts) > TAG_FILES:
            return None
        out: dict[Path, Signature] = {}
        for part in parts:
            shown, _, numbers = part.rpartition("=")
            fields = numbers.split(".")
            if not shown or len(fields) != 4 or not all(f.isdigit() for f in fields):
                return None
            relative = Path(shown)
            if relative.is_absolute() or ".." in relative.parts:
                return None
            out[self.directory / relative] = tuple(int(f) for f in fields)  # type: ignore
        return out


def _hashed_serial(loaded: LoadedZone) -> bool:
    """Is the serial an octoDNS content hash (no ``serial`` in the file)? Then it has no order."""
    zone = loaded.zone
    if zone is None or not loaded.path.name.lower().endswith(OCTODNS_SUFFIXES):
        return False
    soa = zone.soa[0]
    others = [r for r in loaded.records if r.rdata.rdtype != dns.rdatatype.SOA]
    extra = (f"{soa.mname} {soa.rname} {soa.refresh} {soa.retry} {soa.expire} "
             f"{soa.minimum} {zone.soa.ttl}").encode()
    return content_serial(others, extra) == soa.serial
