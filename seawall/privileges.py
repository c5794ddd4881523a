"""Dropping root after the sockets are open.

Binding port 53 needs privilege. Seawall can start as root, open its
sockets, then become an unprivileged user and group for the rest of its
life, as NSD and Knot do. The alternative that needs no root at all is
systemd's ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` (see
``contrib/seawall.service``).

``group`` without ``user`` is a configuration error (seawall/config.py): a
process that keeps uid 0 keeps every privilege whatever its group, so
"dropping" only the group would promise what it does not do.

Files the server creates are for its own user: ``restrict_umask`` (called
first thing at start-up) sets the umask to 077, so the state directory,
its snapshots and event log are created 0700/0600 whether or not ``user``
is set. Handing the state directory to ``user`` never follows a symbolic
link: a link planted in the directory (``events.jsonl -> /etc/shadow``)
would otherwise give that file to the serving user.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import stat
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


def restrict_umask() -> int:
    """Files and directories created from now on are for our user only (077); the old mask."""
    return os.umask(0o077)


def _hand_over(directory: Path, uid: int, gid: int) -> None:
    """chown the state directory tree to the serving user; no access for others.

    Nothing is followed: the directory itself is opened with O_NOFOLLOW (a state
    directory that is a symbolic link is left alone, and said so), entries are
    walked through directory descriptors, and links are changed themselves
    (``lchown``), never what they point at.
    """
    try:
        top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        log.error("state directory not handed over: path=%s reason=%s (a symbolic link?)",
                  directory, exc)
        return
    try:
        os.fchown(top, uid, gid)
        os.fchmod(top, 0o750)
        _hand_over_entries(top, uid, gid, depth=0)
    finally:
        os.close(top)


def _hand_over_entries(parent: int, uid: int, gid: int, depth: int) -> None:
    if depth > 32:
        return
    for name in os.listdir(parent):
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
        except OSError as exc:
            log.warning("state entry not handed over: name=%s reason=%s", name, exc)
            continue
        if stat.S_ISDIR(info.st_mode):
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                dir_fd=parent)
            except OSError:
                continue   # replaced by a link meanwhile: not followed
            try:
                _hand_over_entries(child, uid, gid, depth + 1)
            finally:
                os.close(child)
