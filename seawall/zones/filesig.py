"""File signatures: has a zone file, or a file it includes, changed since it was read?

A signature is what ``stat`` says of a file: modification time, size, inode
and change time (nanoseconds). Editing a file, replacing it (``git
checkout`` writes a new file) or copying it back from a backup changes at
least one of them; nothing a deploy does leaves all four as they were. A
missing file has the signature ``(0, 0, 0, 0)``, which no file has.

Example::

    sources = source_signatures(path, loaded, before, path.parent.parent)
    ...
    if unchanged(sources):   # the zone and every file it includes are as read
        ...
"""

from __future__ import annotations

import os
from pathlib import Path

from .loader import LoadedZone

Signature = tuple[int, int, int, int]
MISSING: Signature = (0, 0, 0, 0)


def signature(path: Path) -> Signature:
    """The file's signature now (MISSING if it cannot be stat'ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return MISSING
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def unchanged(signatures: dict[Path, Signature]) -> bool:
    """Is every file as it was when these signatures were taken?"""
    return all(signature(p) == s for p, s in signatures.items())


def source_signatures(path: Path, loaded: LoadedZone, before: Signature,
                      shown_from: Path) -> dict[Path, Signature]:
    """The zone file ``path`` (with ``before``, its signature taken before it was read) first,
    then every file it included that gave a record. Locations are shown relative to
    ``shown_from`` (the loader's ``display_root``)."""
    sources = set()
    for file in {r.location.file for r in loaded.records}:
        shown = Path(file)
        sources.add(shown if shown.is_absolute() else shown_from / shown)
    signatures = {path: before}
    signatures.update((p, signature(p)) for p in sorted(sources - {path}))
    return signatures
