"""Open zone files only inside the zones directory, and only regular files.

Whoever can write the zones directory can make zones; they must not make
the server read anything else. A zone file or an ``$INCLUDE`` (RFC 1035
§5.1) that is a symbolic link is followed only when its target is inside
the directory too: ``zones/c.test.zone -> /etc/os-release`` is refused.

Checking a resolved path and then opening it by name would leave a window
in which a directory on the way is swapped for a link. So the file is
opened component by component from the directory, each step with
``O_NOFOLLOW`` relative to the previous directory's descriptor (the
``openat`` way): a link that appears meanwhile makes the open fail instead
of being followed. ``O_NONBLOCK`` keeps a FIFO from hanging the reader, and
anything that is not a regular file (a FIFO, a device) is refused.

Example::

    with open_confined(Path("zones/example.com.zone"), Path("zones")) as f:
        data = f.read()
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import SeawallError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)


class RefusedZoneFile(SeawallError):
    """A zone file or an included file may not be read: it is, or links to, a file
    outside the zones directory, or it is not a regular file."""


def confined_path(path: Path, root: Path) -> Path:
    """``path`` with every link resolved; RefusedZoneFile if it leaves ``root``."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(real_root):
        raise RefusedZoneFile(f"it leads to {real}, outside the zones directory "
                                    f"{real_root}")
    return real


def open_confined(path: Path, root: Path) -> BinaryIO:
    """Open ``path`` for reading in binary; it must be a regular file inside ``root``.

    RefusedZoneFile when it (through links) is not; OSError when it
    cannot be opened, or changed into a link while it was being opened.
    """
    real = confined_path(path, root)
    real_root = Path(os.path.realpath(root))
    parts = real.relative_to(real_root).parts
    if not parts:
        raise IsADirectoryError(21, "Is a directory", str(path))
    fd = os.open(real_root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            parent, fd = fd, os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(parent)
        parent, fd = fd, os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        os.close(parent)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RefusedZoneFile("it is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
