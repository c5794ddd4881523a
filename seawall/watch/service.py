"""The watch as a loop in the server: one round every ``interval``.

A round looks at every watched zone as it is served now (live, stale or
emergency: what the world gets), asks the parent's servers and the peers,
and updates the standing findings. A finding that appears or clears is an
event in events.jsonl (through the failover controller's ``note``); the
DS the parent publishes feeds :attr:`Controller.parent_ds` (kept within its
TTL, :mod:`.trust`), and when that set changes the emergency files are
compared again (an emergency file whose keys match none of it makes its
zone unprotected). Metrics and ``seawall failover status`` read
:meth:`WatchService.status`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import dns.name

from ..config import WatchConfig
from .deadlines import expiries, signature_findings
from .findings import KINDS, Book, Finding
from .round import Watcher, ZoneRound
from .served import served_from_zone
from .trust import DsMemory

log = logging.getLogger("seawall.watch")
CONCURRENCY = 8   # zones looked at together in a round


class WatchService:
    """Runs the watch next to the failover service and keeps what it found."""

    def __init__(self, settings: WatchConfig, failover: Any, wall=time.time) -> None:
        self.settings = settings
        self.failover = failover
        self.wall = wall
        self.watcher = Watcher(settings)
        self.book = Book()
        self.memory = DsMemory(wall)
        self.rounds: dict[str, ZoneRound] = {}
        self.round_count = 0
        self.last_round_at: float | None = None
        self.last_round_took: float | None = None
        self._task: asyncio.Task | None = None
        # One round at a time: an operator's round (``round_now``) waits for a
        # periodic one in progress rather than racing it over the same book.
        self._round_lock = asyncio.Lock()
        self._only = {dns.name.from_text(z) for z in settings.zones}
        # The DS sets the emergency files were last compared with, per zone.
        self._compared: dict[dns.name.Name, set | None] = {}

    @property
    def controller(self) -> Any:
        return self.failover.controller

    def parent_ds(self, origin: dns.name.Name) -> set[tuple[int, int, bytes]] | None:
        """The hook of Controller.parent_ds: the DS validators may hold now."""
        return self.memory.current(origin)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        interval = float(self.settings.interval)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                async with self._round_lock:
                    await self.run_round()
            except Exception:
                log.exception("watch round crashed; the next one runs on time")
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))

    async def round_now(self, timeout: float) -> list[Finding]:
        """A round on demand (``seawall failover status --watch-now``), after any in progress."""
        async with asyncio.timeout(timeout):
            async with self._round_lock:
                return await self.run_round()

    def watched(self) -> list[tuple[dns.name.Name, Any]]:
        return [(origin, st) for origin, st in sorted(self.controller.zones.items())
                if st.served is not None and (not self._only or origin in self._only)]

    async def run_round(self) -> list[Finding]:
        """Look at every watched zone once; the findings standing afterwards."""
        started = time.monotonic()
        zones = self.watched()
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(origin: dns.name.Name, st: Any) -> ZoneRound:
            async with limit:
                served = served_from_zone(st.served)
                found = await self.watcher.zone(served)
                found.findings += signature_findings(found.zone, st,
                                                     float(self.settings.signature_warning),
                                                     self.wall())
                return found

        results = await asyncio.gather(*(one(o, st) for o, st in zones))
        for (origin, _), found in zip(zones, results):
            self.rounds[found.zone] = found
            if found.ds is not None:
                self.memory.saw(origin, found.ds, found.ds_ttl)
        new, cleared = self.book.update([f for r in results for f in r.findings],
                                        [r.zone for r in results], self.wall())
        for finding in new:
            self.controller.note(dns.name.from_text(finding.zone), "watch",
                                 f"watch: {finding.text()}", kind=f"watch-{finding.kind}")
        for finding in cleared:
            self.controller.note(dns.name.from_text(finding.zone), "watch",
                                 f"watch: cleared: {finding.text()}", kind="watch-cleared")
        self.round_count += 1
        self.last_round_at = self.wall()
        self.last_round_took = time.monotonic() - started
        now_ds = {o: self.memory.current(o) for o, _ in zones}
        changed = [o for o, ds in now_ds.items() if ds != self._compared.get(o)]
        self._compared.update(now_ds)
        if changed:
            log.info("parent DS changed: zones=%s; comparing the emergency versions again",
                     ",".join(o.to_text() for o in changed))
            await self.failover.recheck_emergency()
        return [f for f, _ in self.book.standing.values()]

    def status(self) -> dict[str, Any]:
        """The watch's part of ``seawall failover status`` (and of the metrics)."""
        zones = {}
        now = self.wall()
        for origin, st in self.watched():
            name = origin.to_text()
            found = self.rounds.get(name)
            ds = self.memory.current(origin)
            zones[name] = {
                **(found.to_json() if found is not None else {}),
                "ds_kept": len(ds) if ds is not None else None,
                "signatures": {k: v for k, v in expiries(st).items()},
                "peers": self.watcher.peers.status(origin),
                "findings": [{**f.to_json(), "for": now - since}
                             for f, since in self.book.of_zone(name)]}
        return {"interval": float(self.settings.interval), "rounds": self.round_count,
                "last_round": self.last_round_at, "last_round_took": self.last_round_took,
                "kinds": list(KINDS), "zones": zones}
