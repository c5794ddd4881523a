"""The state directory: last good snapshots, forced overrides, the event log, the lock.

Layout of ``state_dir`` (default ``.seawall``)::

    lock                      held (flock) by the one server using the directory; its pid
    snapshots/NAME.zone       the last good version of each zone (master file)
    snapshots/NAME.model      the same version as its zone model (zones/modelfile.py), read
                              at start-up instead of the master file: ten times faster
    snapshots/NAME.json       its serial and SHA-256s, when fetched and last confirmed, from where
    overrides.json            forced states, which survive a restart
    events.jsonl              one JSON object per transition, with its reason
    events.jsonl.1 .. .5      older events (rotated at 10 MiB: the log is bounded)

Safety, because the server may start as root (threat model in the README):

* File names come from :func:`safe_name`: a plain hostname as is, anything
  else as a digest, so no zone name can reach outside ``snapshots/``.
* Every file is opened relative to a directory descriptor with
  ``O_NOFOLLOW``, and the directories themselves with ``O_NOFOLLOW |
  O_DIRECTORY``: a symbolic link planted in the state directory is refused,
  never followed. Files are created mode 0600.
* Every file is replaced atomically (write, fsync, rename), so a crash leaves
  the old version or the new one; a snapshot whose checksum or serial does
  not match its metadata (torn, truncated, edited) is ignored, with a reason
  in :attr:`StateStore.ignored`. The model is only a faster way to the same
  version: it is read only once the master file's checksum matched, and a
  model that is missing or does not check out (checksum, format, zone,
  serial) is passed over with a log line, the master file being read instead.
* A write that fails (disk full, read-only) raises OSError to the caller,
  which reports it and keeps serving.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.name

from ..errors import SeawallError
from ..safefiles import write_atomic_at
from ..zones.loader import load_zone_file
from ..zones.model import Zone
from ..zones.modelfile import dump_zone, load_zone

log = logging.getLogger("seawall.failover")
EVENTS_MAX_BYTES = 10 << 20
"""events.jsonl is rotated past this size; EVENTS_KEEP older files are kept."""
EVENTS_KEEP = 5
SNAPSHOT_FORMAT = 2
MAX_META_BYTES = 64 << 10
_PLAIN = re.compile(r"[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class StateDirBusy(SeawallError):
    """Another server holds the state directory's lock."""


def safe_name(origin: dns.name.Name) -> str:
    """A file name for ``origin`` that cannot leave its directory.

    A plain hostname (letters, digits, ``-``, ``_``) is used as is, lowercased;
    any other name — escapes, slashes, dots of its own — becomes ``=`` and the
    SHA-256 of its wire form, which no hostname can spell.
    """
    text = origin.to_text(omit_final_dot=True).lower()
    if origin == dns.name.root:
        return "root"
    if _PLAIN.fullmatch(text) and len(text) <= 200:
        return text
    return "=" + hashlib.sha256(origin.canonicalize().to_wire()).hexdigest()


@dataclass
class Snapshot:
    """A persisted last good version of a zone."""

    zone: Zone
    fetched_at: float      # wall clock
    confirmed_at: float    # wall clock
    source: str
    tag: str


class StateStore:
    """Reads and writes the state directory."""

    def __init__(self, directory: Path, *, background: bool = False) -> None:
        self.directory = directory
        # Snapshots of big zones take a while to write: with ``background`` they are
        # written by one thread, in order, so the event loop keeps answering.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="snapshots") if background \
            else None
        self.snapshots = directory / "snapshots"
        self.events_path = directory / "events.jsonl"
        self.overrides_path = directory / "overrides.json"
        self.error: str | None = None          # the last write that failed, until one succeeds
        self.ignored: list[tuple[str, str]] = []   # (zone or file, why) of snapshots not used
        self._lock_fd: int | None = None

    def prepare(self) -> None:
        """Create the directories (mode 0700); never through a symbolic link."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        top = self._dir_fd()
        try:
            try:
                os.mkdir("snapshots", 0o700, dir_fd=top)
            except FileExistsError:
                pass
            os.close(os.open("snapshots", _DIR_FLAGS, dir_fd=top))
        except OSError as exc:
            raise OSError(exc.errno, f"{self.snapshots}: {_why(exc)}") from None
        finally:
            os.close(top)

    # ----------------------------------------------------------------- lock

    def lock(self) -> None:
        """Take the directory for this server; StateDirBusy names the holder if taken."""
        top = self._dir_fd()
        try:
            fd = os.open("lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=top)
        finally:
            os.close(top)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateDirBusy(f"state directory {self.directory} is in use by another "
                                   f"seawall server (pid {holder}); give each server a "
                                   "state_dir of its own") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------ snapshots

    def save_snapshot(self, zone: Zone, *, fetched_at: float, confirmed_at: float,
                      source: str, tag: str) -> None:
        if self._writer is not None:
            self._writer.submit(self._logged, self._save_snapshot, zone, fetched_at,
                                confirmed_at, source, tag)
        else:
            self._save_snapshot(zone, fetched_at, confirmed_at, source, tag)

    def flush(self) -> None:
        """Wait for every snapshot written in the background."""
        if self._writer is not None:
            self._writer.submit(lambda: None).result()

    def _logged(self, fn, *args) -> None:
        try:
            fn(*args)
        except OSError as exc:
            if self.error is None:
                log.error("state directory: not written: reason=%s", exc)
            self.error = f"not written: {exc}"
        else:
            self.error = None

    def _save_snapshot(self, zone: Zone, fetched_at: float, confirmed_at: float,
                       source: str, tag: str) -> None:
        lines = [f"; last good version of {zone.origin} serial {zone.serial} from {source}",
                 f"$ORIGIN {zone.origin.to_text()}"]
        for rrset in zone.rrsets():
            lines.append(rrset.to_text(origin=None, relativize=False))
        data = ("\n".join(lines) + "\n").encode("utf-8")
        name = safe_name(zone.origin)
        model = dump_zone(zone)   # None: a record only the master file can hold
        with self._snapshots_fd() as dfd:
            write_atomic_at(dfd, f"{name}.zone", data)
            if model is not None:
                write_atomic_at(dfd, f"{name}.model", model)
            # The metadata last: until it is written, the files above do not match it.
            self._write_meta(dfd, zone.origin, fetched_at, confirmed_at, source, tag,
                             zone.serial, hashlib.sha256(data).hexdigest(),
                             hashlib.sha256(model).hexdigest() if model is not None else None)

    def touch_snapshot(self, origin: dns.name.Name, *, fetched_at: float, confirmed_at: float,
                       source: str, tag: str, serial: int) -> None:
        if self._writer is not None:
            self._writer.submit(self._logged, self._touch, origin, fetched_at, confirmed_at,
                                source, tag, serial)
        else:
            self._touch(origin, fetched_at, confirmed_at, source, tag, serial)

    def _touch(self, origin: dns.name.Name, fetched_at: float, confirmed_at: float,
               source: str, tag: str, serial: int) -> None:
        with self._snapshots_fd() as dfd:
            meta = _read_json(dfd, f"{safe_name(origin)}.json")
            if not isinstance(meta, dict) or meta.get("serial") != serial:
                return   # no snapshot of this version (yet): nothing to confirm
            model = meta.get("model_sha256")
            self._write_meta(dfd, origin, fetched_at, confirmed_at, source, tag, serial,
                             str(meta.get("sha256", "")),
                             model if isinstance(model, str) else None)

    @staticmethod
    def _write_meta(dfd: int, origin: dns.name.Name, fetched_at: float, confirmed_at: float,
                    source: str, tag: str, serial: int, digest: str,
                    model_digest: str | None = None) -> None:
        meta = {"format": SNAPSHOT_FORMAT, "zone": origin.to_text(), "serial": serial,
                "sha256": digest, "fetched_at": fetched_at, "confirmed_at": confirmed_at,
                "source": source, "tag": tag}
        if model_digest is not None:
            meta["model_sha256"] = model_digest
        write_atomic_at(dfd, f"{safe_name(origin)}.json", json.dumps(meta).encode())

    def load_snapshots(self) -> dict[dns.name.Name, Snapshot]:
        """Every snapshot whose checksum and serial match; the others go to ``ignored``."""
        out: dict[dns.name.Name, Snapshot] = {}
        self.ignored = []
        try:
            handle = self._snapshots_fd()
        except OSError as exc:
            self._ignore(str(self.snapshots), _why(exc))
            return out
        with handle as dfd:
            for entry in sorted(os.listdir(dfd)):
                if entry.endswith(".json") and not entry.startswith("."):
                    snap = self._load_one(dfd, entry)
                    if snap is not None:
                        out[snap.zone.origin] = snap
        return out

    def _load_one(self, dfd: int, meta_name: str) -> Snapshot | None:
        shown = str(self.snapshots / meta_name)
        try:
            meta = _read_json(dfd, meta_name)
            origin = dns.name.from_text(meta["zone"])
            if meta_name != f"{safe_name(origin)}.json":
                raise ValueError(f"names zone {origin}, which is not its file")
            if meta.get("format") != SNAPSHOT_FORMAT or "sha256" not in meta:
                raise ValueError("no checksum (an older format)")
        except (OSError, ValueError, KeyError, TypeError, dns.exception.DNSException) as exc:
            self._ignore(shown, _why(exc) if isinstance(exc, OSError) else str(exc))
            return None
        zone_name = f"{safe_name(origin)}.zone"
        try:
            fd = os.open(zone_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            with os.fdopen(fd, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            self._ignore(str(origin), f"{zone_name}: {_why(exc)}")
            return None
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            self._ignore(str(origin), f"{zone_name}: checksum mismatch (torn, truncated or "
                                      "edited)")
            return None
        zone = self._load_model(dfd, origin, meta)
        if zone is None:
            # Read again by name, confined to the snapshots directory (no link leads out).
            loaded = load_zone_file(self.snapshots / zone_name, origin, strict=False,
                                    include_root=self.snapshots)
            if not loaded.ok or loaded.zone is None:
                self._ignore(str(origin), "; ".join(map(str, loaded.errors)) or "cannot load")
                return None
            zone = loaded.zone
        if zone.serial != meta.get("serial"):
            self._ignore(str(origin), f"serial {zone.serial} is not the recorded "
                                      f"{meta.get('serial')}")
            return None
        return Snapshot(zone, float(meta.get("fetched_at", 0)),
                        float(meta.get("confirmed_at", 0)),
                        str(meta.get("source", "")), str(meta.get("tag", "")))

    def _load_model(self, dfd: int, origin: dns.name.Name, meta: dict) -> Zone | None:
        """The snapshot's zone model, if it checks out; else None (with a log line
        when there was one to read), and the caller reads the master file."""
        expected = meta.get("model_sha256")
        if not isinstance(expected, str):
            return None   # written by an older server, or not representable
        model_name = f"{safe_name(origin)}.model"
        try:
            fd = os.open(model_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            with os.fdopen(fd, "rb") as handle:
                data = handle.read()
            if hashlib.sha256(data).hexdigest() != expected:
                raise ValueError("checksum mismatch (torn, truncated or edited)")
            zone = load_zone(data, origin, source=str(self.snapshots / f"{safe_name(origin)}"
                                                                        ".zone"))
            if zone.serial != meta.get("serial"):
                raise ValueError(f"serial {zone.serial} is not the recorded {meta.get('serial')}")
        except (OSError, ValueError) as exc:
            why = _why(exc) if isinstance(exc, OSError) else str(exc)
            log.warning("snapshot model passed over: zone=%s file=%s reason=%s; reading "
                        "the master file", origin, model_name, why)
            return None
        return zone

    def _ignore(self, what: str, why: str) -> None:
        log.error("snapshot ignored: zone=%s reason=%s", what, why)
        self.ignored.append((what, why))

    def drop_snapshot(self, origin: dns.name.Name) -> None:
        if self._writer is not None:
            self._writer.submit(self._logged, self._drop, origin)
        else:
            self._drop(origin)

    def _drop(self, origin: dns.name.Name) -> None:
        with self._snapshots_fd() as dfd:
            for suffix in (".json", ".zone", ".model"):
                try:
                    os.unlink(f"{safe_name(origin)}{suffix}", dir_fd=dfd)
                except FileNotFoundError:
                    pass

    # ------------------------------------------------------------ overrides

    def load_overrides(self) -> dict[str, dict[str, Any]]:
        try:
            top = self._dir_fd()
        except OSError:
            return {}
        try:
            data = _read_json(top, "overrides.json")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("overrides ignored: file=%s reason=%s", self.overrides_path, exc)
            return {}
        finally:
            os.close(top)
        zones = data.get("zones", {}) if isinstance(data, dict) else {}
        return zones if isinstance(zones, dict) else {}

    def save_overrides(self, overrides: dict[str, dict[str, Any]]) -> None:
        top = self._dir_fd()
        try:
            write_atomic_at(top, "overrides.json",
                          json.dumps({"version": 1, "zones": overrides}, indent=1,
                                     sort_keys=True).encode())
        finally:
            os.close(top)

    # --------------------------------------------------------------- events

    def append_event(self, event: dict[str, Any]) -> None:
        """Append one event, durably, before the caller goes on: drills, ``history`` and
        the tests read the log right after a transition."""
        line = (json.dumps(event, sort_keys=True) + "\n").encode("utf-8")
        top = self._dir_fd()
        try:
            self._rotate_if_full(top)
            fd = os.open("events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=top)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            os.close(top)

    def _rotate_if_full(self, top: int) -> None:
        """Keep the event log bounded: events.jsonl.1 .. .N hold the older events."""
        try:
            if os.stat("events.jsonl", dir_fd=top, follow_symlinks=False).st_size \
                    < EVENTS_MAX_BYTES:
                return
        except FileNotFoundError:
            return
        for index in range(EVENTS_KEEP - 1, 0, -1):
            try:
                os.replace(f"events.jsonl.{index}", f"events.jsonl.{index + 1}",
                           src_dir_fd=top, dst_dir_fd=top)
            except FileNotFoundError:
                pass
        os.replace("events.jsonl", "events.jsonl.1", src_dir_fd=top, dst_dir_fd=top)

    def event_files(self) -> list[Path]:
        """The event log files, oldest first."""
        name = self.events_path.name
        rotated = [self.events_path.with_name(f"{name}.{i}") for i in range(EVENTS_KEEP, 0, -1)]
        return [p for p in rotated if p.exists()] + [self.events_path]

    def read_events(self, since: float | None = None,
                    zone: str | None = None) -> list[dict[str, Any]]:
        lines: list[str] = []
        for path in self.event_files():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as handle:
                lines += handle.read().splitlines()
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if since is not None and event.get("ts", 0) < since:
                continue
            if zone is not None and event.get("zone") != zone:
                continue
            events.append(event)
        return events

    # ---------------------------------------------------------- directories

    def _dir_fd(self) -> int:
        """The state directory itself (the operator's choice: a link to it is fine)."""
        return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _snapshots_fd(self) -> _Fd:
        top = self._dir_fd()
        try:
            return _Fd(os.open("snapshots", _DIR_FLAGS, dir_fd=top))
        except OSError as exc:
            raise OSError(exc.errno, f"{self.snapshots}: {_why(exc)}") from None
        finally:
            os.close(top)


class _Fd:
    """A directory descriptor closed at the end of a ``with`` block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _why(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "is a symbolic link or not a directory (refused: never followed)"
    return exc.strerror or str(exc)


def _read_json(dfd: int, name: str) -> Any:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_META_BYTES + 1)
    if len(data) > MAX_META_BYTES:
        raise ValueError(f"{name} is larger than {MAX_META_BYTES} bytes")
    return json.loads(data)


def now_iso(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
