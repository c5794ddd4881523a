"""The running server: configuration, zone data, listeners and signals.

Start-up loads every zone (a zone that fails validation is reported and not
served), opens the listeners and then keeps the data fresh: the zones
directory is checked every ``reload_interval`` and at once on SIGHUP. A new
version of a zone replaces the old one only if it loads cleanly; a broken
file leaves the last good version answering. SIGTERM and SIGINT stop the
server gracefully.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import dns.name

from .backends.files import FilesBackend
from .config import Config
from .dns.responder import Responder, ResponderSettings
from .dns.server import DnsServer
from .zones.model import Zone
from .zones.zoneset import ZoneSet

log = logging.getLogger("seawall.app")


@dataclass
class ReloadReport:
    """What one reload did, for logs and for the operator."""

    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)      # broken new file, old zone kept
    removed: list[str] = field(default_factory=list)
    error: str | None = None


class App:
    """One Seawall server process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.backend = FilesBackend(config.path(config.zones), strict=config.semantic_checks)
        settings = ResponderSettings(udp_payload=config.udp_payload,
                                     cache_entries=config.answer_cache,
                                     identity=config.identity.names())
        self.responder = Responder(ZoneSet(), settings)
        self.server = DnsServer(self.responder, config.listen,
                                idle_timeout=float(config.tcp_idle_timeout),
                                max_message=config.tcp_max_message)
        self._stopping: asyncio.Event | None = None
        self._reload_now: asyncio.Event | None = None

    @property
    def zoneset(self) -> ZoneSet:
        return self.responder.zoneset

    # ------------------------------------------------------------ reloads

    def reload(self, force: bool = False) -> ReloadReport:
        """Read what changed in the zones directory and swap in a new ZoneSet."""
        scan = self.backend.scan(force=force)
        report = ReloadReport(error=scan.error)
        if scan.error:
            log.error("reload failed: %s; serving the last good data", scan.error)
            return report
        changes: dict[dns.name.Name, Zone | None] = {}
        current = self.zoneset
        for loaded in scan.loaded:
            for problem in loaded.problems:
                (log.error if problem.is_error else log.warning)("zone problem: %s", problem)
            if loaded.ok and loaded.zone is not None:
                changes[loaded.zone.origin] = loaded.zone
                report.updated.append(f"{loaded.zone.origin} serial={loaded.zone.serial}")
            elif loaded.origin is not None and loaded.origin in current:
                report.kept.append(str(loaded.origin))
                log.error("reload rejected: zone=%s file=%s errors=%d; keeping serial=%d",
                          loaded.origin, loaded.path, len(loaded.errors),
                          current.get(loaded.origin).serial)  # type: ignore[union-attr]
        for origin in scan.removed:
            if origin not in changes:
                changes[origin] = None
                report.removed.append(str(origin))
        if changes:
            self.responder.zoneset = current.replace(changes)
            log.info("zones swapped: generation=%d zones=%d updated=%s removed=%s",
                     self.zoneset.generation, len(self.zoneset),
                     ",".join(report.updated) or "-", ",".join(report.removed) or "-")
        return report

    # ------------------------------------------------------------ serving

    async def run(self, ready_file: Path | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._reload_now = asyncio.Event()
        self.reload(force=True)
        await self.server.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_now.set)
        if ready_file is not None:
            _write_ready(ready_file, self)
        log.info("serving: zones=%d pid=%d", len(self.zoneset), os.getpid())
        watcher = asyncio.create_task(self._watch())
        await self._stopping.wait()
        watcher.cancel()
        log.info("stopping: draining connections")
        await self.server.stop(grace=1.5)

    async def _watch(self) -> None:
        assert self._reload_now is not None
        interval = float(self.config.reload_interval)
        while True:
            try:
                await asyncio.wait_for(self._reload_now.wait(), timeout=interval)
                forced = True
            except asyncio.TimeoutError:
                forced = False
            self._reload_now.clear()
            try:
                self.reload(force=forced)
            except Exception:
                log.exception("reload crashed; serving the last good data")

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()


def _write_ready(path: Path, app: App) -> None:
    """Tell a supervisor (or a test) where we listen, atomically."""
    info = {"pid": os.getpid(),
            "listen": [{"transport": b.transport, "host": b.host, "port": b.port}
                       for b in app.server.bound]}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)
