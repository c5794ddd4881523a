"""The files backend: a directory of zone files, typically a git checkout.

A deploy job updates the directory (``git pull``); the backend notices by
comparing file signatures (mtime, size, inode) and reloads only the zones
whose files, or files they include, changed. A zone whose new file fails
validation is reported and the caller keeps serving the previous version.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import dns.name

from ..zones.loader import LoadedZone, is_zone_file, load_zone_file

log = logging.getLogger("seawall.backends.files")

Signature = tuple[int, int, int]


@dataclass
class Scan:
    """What one look at the directory found."""

    loaded: list[LoadedZone] = field(default_factory=list)   # zones (re)read this time
    removed: list[dns.name.Name] = field(default_factory=list)  # zone files that disappeared
    error: str | None = None                                  # the directory itself failed


class FilesBackend:
    """Reads zones from ``directory``; re-reads only what changed."""

    def __init__(self, directory: Path, *, strict: bool = True) -> None:
        self.directory = directory
        self.strict = strict
        # zone file -> (origin, signatures of the files it was built from)
        self._seen: dict[Path, tuple[dns.name.Name | None, dict[Path, Signature]]] = {}

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
            sources = {path} | {self._on_disk(r.location.file) for r in loaded.records}
            self._seen[path] = (loaded.origin, {p: _signature(p) for p in sources})
            scan.loaded.append(loaded)
        for path in set(self._seen) - set(paths):
            origin = self._seen.pop(path)[0]
            if origin is not None:
                scan.removed.append(origin)
        return scan

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
