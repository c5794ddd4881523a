"""The state directory: last good snapshots, forced overrides, the event log.

Layout of ``state_dir`` (default ``.seawall``)::

    snapshots/NAME.zone       the last good version of each zone (master file)
    snapshots/NAME.json       when it was fetched and last confirmed, from where
    overrides.json            forced states, which survive a restart
    events.jsonl              one JSON object per transition, with its reason
    events.jsonl.1 .. .5      older events (rotated at 10 MiB: the log is bounded)

Every file is replaced atomically (write, fsync, rename), so a crash leaves
the old version or the new one, never half of either.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.name

from ..zones.loader import load_zone_file
from ..zones.model import Zone

log = logging.getLogger("seawall.failover")
EVENTS_MAX_BYTES = 10 << 20
"""events.jsonl is rotated past this size; EVENTS_KEEP older files are kept."""
EVENTS_KEEP = 5


@dataclass
class Snapshot:
    """A persisted last good version of a zone."""

    zone: Zone
    fetched_at: float
    confirmed_at: float
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

    def prepare(self) -> None:
        self.snapshots.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ snapshots

    def _zone_path(self, origin: dns.name.Name) -> Path:
        name = origin.to_text(omit_final_dot=True) or "root"
        return self.snapshots / f"{name}.zone"

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

    @staticmethod
    def _logged(fn, *args) -> None:
        try:
            fn(*args)
        except OSError as exc:
            log.error("snapshot not written: reason=%s", exc)

    def _save_snapshot(self, zone: Zone, fetched_at: float, confirmed_at: float,
                       source: str, tag: str) -> None:
        path = self._zone_path(zone.origin)
        lines = [f"; last good version of {zone.origin} serial {zone.serial} from {source}",
                 f"$ORIGIN {zone.origin.to_text()}"]
        for rrset in zone.rrsets():
            lines.append(rrset.to_text(origin=None, relativize=False))
        _write_atomic(path, "\n".join(lines) + "\n")
        self._touch(zone.origin, fetched_at, confirmed_at, source, tag, zone.serial)

    def touch_snapshot(self, origin: dns.name.Name, *, fetched_at: float, confirmed_at: float,
                       source: str, tag: str, serial: int) -> None:
        if self._writer is not None:
            self._writer.submit(self._logged, self._touch, origin, fetched_at, confirmed_at,
                                source, tag, serial)
        else:
            self._touch(origin, fetched_at, confirmed_at, source, tag, serial)

    def _touch(self, origin: dns.name.Name, fetched_at: float, confirmed_at: float,
               source: str, tag: str, serial: int) -> None:
        meta = {"zone": origin.to_text(), "serial": serial, "fetched_at": fetched_at,
                "confirmed_at": confirmed_at, "source": source, "tag": tag}
        _write_atomic(self._zone_path(origin).with_suffix(".json"), json.dumps(meta))

    def load_snapshots(self) -> dict[dns.name.Name, Snapshot]:
        out: dict[dns.name.Name, Snapshot] = {}
        if not self.snapshots.is_dir():
            return out
        for meta_path in sorted(self.snapshots.glob("*.json")):
            zone_path = meta_path.with_suffix(".zone")
            try:
                meta = json.loads(meta_path.read_text())
                origin = dns.name.from_text(meta["zone"])
            except (OSError, ValueError, KeyError, dns.exception.DNSException) as exc:
                log.error("snapshot skipped: file=%s reason=%s", meta_path, exc)
                continue
            loaded = load_zone_file(zone_path, origin, strict=False)
            if not loaded.ok or loaded.zone is None:
                log.error("snapshot skipped: file=%s reason=%s", zone_path,
                          "; ".join(map(str, loaded.errors)) or "cannot load")
                continue
            out[origin] = Snapshot(loaded.zone, float(meta.get("fetched_at", 0)),
                                   float(meta.get("confirmed_at", 0)),
                                   str(meta.get("source", "")), str(meta.get("tag", "")))
        return out

    def drop_snapshot(self, origin: dns.name.Name) -> None:
        if self._writer is not None:
            self._writer.submit(self._logged, self._drop, origin)
        else:
            self._drop(origin)

    def _drop(self, origin: dns.name.Name) -> None:
        for suffix in (".zone", ".json"):
            try:
                self._zone_path(origin).with_suffix(suffix).unlink()
            except FileNotFoundError:
                pass

    # ------------------------------------------------------------ overrides

    def load_overrides(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.overrides_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("overrides ignored: file=%s reason=%s", self.overrides_path, exc)
            return {}
        return data.get("zones", {}) if isinstance(data, dict) else {}

    def save_overrides(self, overrides: dict[str, dict[str, Any]]) -> None:
        _write_atomic(self.overrides_path, json.dumps({"version": 1, "zones": overrides},
                                                      indent=1, sort_keys=True))

    # --------------------------------------------------------------- events

    def append_event(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, sort_keys=True) + "\n"
        self._rotate_if_full()
        with open(self.events_path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _rotate_if_full(self) -> None:
        """Keep the event log bounded: events.jsonl.1 .. .N hold the older events."""
        try:
            if self.events_path.stat().st_size < EVENTS_MAX_BYTES:
                return
        except FileNotFoundError:
            return
        def numbered(index: int) -> Path:
            return self.events_path.with_name(f"{self.events_path.name}.{index}")

        for index in range(EVENTS_KEEP - 1, 0, -1):
            if numbered(index).exists():
                os.replace(numbered(index), numbered(index + 1))
        os.replace(self.events_path, numbered(1))

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
                lines += path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                continue
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if since is not None and event.get("ts", 0) < since:
                continue
            if zone is not None and event.get("zone") != zone:
                continue
            events.append(event)
        return events


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def now_iso(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
