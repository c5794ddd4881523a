"""The files backend: a directory of zone files, typically a git checkout.

A deploy job updates the directory (``git pull``); the backend notices by
comparing file signatures (mtime, size, inode) and reloads only the zones
whose files, or files they include, changed. Every look at the directory is
a health check: an unreadable directory, or one whose zone files all
vanished, is a failure of every zone it served; a file that fails
validation is bad data, which the controller's guard turns into a failure
of that zone (the last good version keeps serving). Example::

    backends:
      - type: files
        path: zones
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dns.name

from ..zones.loader import LoadedZone, is_zone_file, load_zone_file
from .base import Backend, BackendFailure, Report, Version

log = logging.getLogger("seawall.backends.files")

Signature = tuple[int, int, int]


@dataclass
class Scan:
    """What one look at the directory found."""

    loaded: list[LoadedZone] = field(default_factory=list)   # zones (re)read this time
    removed: list[dns.name.Name] = field(default_factory=list)  # zone files that disappeared
    error: str | None = None                                  # the directory itself failed


class FilesBackend(Backend):
    """Reads zones from ``directory``; re-reads only what changed."""

    kind = "files"

    def __init__(self, directory: Path, *, strict: bool = True, timeout: float = 60.0,
                 probe_timeout: float = 1.0) -> None:
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

    def declared_zones(self) -> Iterable[dns.name.Name]:
        return ()

    def owns(self, origin: dns.name.Name) -> bool:
        return origin in self._versions

    def scan(self, force: bool = False) -> Scan:
        """Load new and changed zone files; ``force`` re-reads every one."""
        try:
            paths = sorted(p for p in self.directory.iterdir() if is_zone_file(p))
        except OSError as exc:
            return Scan(error=f"cannot list {self.directory}: {exc.strerror}")
        scan = Scan()
        for path in paths:
            previous = self._seen.get(path)
            if not force and previous is not None and _unchanged(previous[1]):
                continue
            loaded = load_zone_file(path, include_root=self.directory,
                                    display_root=self.directory.parent, strict=self.strict)
            # The files the zone came from ($INCLUDE): a Path each, not one per record.
            sources = {path} | {self._on_disk(f) for f in {r.location.file
                                                            for r in loaded.records}}
            self._seen[path] = (loaded.origin, {p: _signature(p) for p in sources})
            scan.loaded.append(loaded)
        for path in set(self._seen) - set(paths):
            origin = self._seen.pop(path)[0]
            if origin is not None:
                scan.removed.append(origin)
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
            if known and not self._seen:
                # Every zone file vanished at once: a broken checkout, not an intent.
                return self._all_failed(known, f"no zone files left in {self.directory}")
            reports: dict[dns.name.Name, Report] = {}
            for loaded in scan.loaded:
                if loaded.origin is None:
                    log.error("zone file skipped: file=%s reason=%s", loaded.path,
                              "; ".join(map(str, loaded.problems)))
                    continue
                signature = self._seen[loaded.path][1]
                tag = ",".join(f"{s[0]}.{s[1]}.{s[2]}" for s in signature.values())
                version = Version(loaded.origin, loaded.zone if loaded.ok else None,
                                  list(loaded.problems), tag, f"files:{loaded.path}")
                self._versions[loaded.origin] = version
                reports[loaded.origin] = Report(loaded.origin, True, tag=tag, version=version,
                                                kind="scan")
            for origin in scan.removed:
                if origin not in reports:
                    self._versions.pop(origin, None)
                    reports[origin] = Report(origin, True, removed=True, kind="scan")
            for origin, version in self._versions.items():
                if origin not in reports:
                    reports[origin] = Report(origin, True, tag=version.tag, kind="scan")
            for origin, report in reports.items():
                mangled = self.faults.mangle(self._versions.get(origin))
                if mangled is not None:
                    report.version, report.tag, report.drill = mangled, mangled.tag, True
            return await self.faults.after_scan(list(reports.values()), self.probe_timeout)

    def forget(self, origin: dns.name.Name) -> None:
        """Re-read the zone's file next time and report it as new data."""
        for path, (seen_origin, _) in list(self._seen.items()):
            if seen_origin == origin:
                del self._seen[path]

    def _all_failed(self, origins: list[dns.name.Name], reason: str,
                    drill: bool = False) -> list[Report]:
        return [Report(origin, False, error=reason, kind="scan", drill=drill)
                for origin in origins]

    def _on_disk(self, shown: str) -> Path:
        """The file behind a location, which is shown relative to the directory's parent."""
        path = Path(shown)
        return path if path.is_absolute() else self.directory.parent / path


def _signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _unchanged(signatures: dict[Path, Signature]) -> bool:
    return all(_signature(p) == s for p, s in signatures.items())
