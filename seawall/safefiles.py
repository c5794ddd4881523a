"""Writing the server's own small files safely: atomically, privately, never through a link.

The server may start as root, and its state directory may be writable by
others than root (a deploy user, a shared volume). A file written there is
created afresh (``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600) under a temporary
name, fsynced, and renamed over the old one in the same directory, so a
symbolic link planted under either name is never followed, and a crash
leaves the old version or the new one, never half of either.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic_at(dfd: int, name: str, data: bytes) -> None:
    """Write ``name`` in the directory open as ``dfd``: new file, fsync, rename, fsync dir."""
    tmp = f".{name}.{os.getpid()}.tmp"
    try:
        os.unlink(tmp, dir_fd=dfd)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        os.unlink(tmp, dir_fd=dfd)
        raise
    os.close(fd)
    os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    os.fsync(dfd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` atomically and privately; its directory is created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        write_atomic_at(dfd, path.name, data)
    finally:
        os.close(dfd)
