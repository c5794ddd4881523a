"""Dropping root after the sockets are open.

Binding port 53 needs privilege. Seawall can start as root, open its
sockets, then become an unprivileged user and group for the rest of its
life, as NSD and Knot do. The alternative that needs no root at all is
systemd's ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` (see
``contrib/seawall.service``).
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger("seawall.privileges")


def resolve_ids(user: str | None, group: str | None) -> tuple[int | None, int | None]:
    """Numeric ids for a user and group given by name or number; errors name the culprit."""
    uid = gid = None
    if user:
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except KeyError:
            raise ConfigError(f"user {user!r} does not exist") from None
        uid, gid = entry.pw_uid, entry.pw_gid
    if group:
        try:
            gid = (grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)).gr_gid
        except KeyError:
            raise ConfigError(f"group {group!r} does not exist") from None
    return uid, gid


def drop_privileges(user: str | None, group: str | None, state_dir: Path | None = None) -> None:
    """Become ``user``/``group`` for good (group first, while we still may).

    The state directory (snapshots, events, control socket) is handed to the
    new owner first, so the server can keep writing it, and closed to others.
    """
    if not user and not group:
        return
    uid, gid = resolve_ids(user, group)
    if os.geteuid() != 0:
        if (uid is None or uid == os.geteuid()) and (gid is None or gid == os.getegid()):
            return
        raise ConfigError("user/group is set but the server is not running as root")
    if state_dir is not None and state_dir.is_dir():
        _hand_over(state_dir, uid if uid is not None else -1, gid if gid is not None else -1)
    if gid is not None:
        os.setgroups([gid])
        os.setresgid(gid, gid, gid)
    if uid is not None:
        os.setresuid(uid, uid, uid)
    log.info("privileges dropped: uid=%d gid=%d", os.getuid(), os.getgid())


def _hand_over(directory: Path, uid: int, gid: int) -> None:
    """chown the state directory tree to the serving user; no access for others."""
    for path in [directory, *directory.rglob("*")]:
        if not path.is_symlink():
            os.chown(path, uid, gid)
    directory.chmod(0o750)
