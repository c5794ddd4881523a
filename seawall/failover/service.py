"""The asyncio side of failover: start-up, probe loops, timers, NOTIFY routing.

Start-up (cold start, DESIGN principle 1): the state directory is locked
(a second server on it refuses to start, naming the first); emergency zones
are loaded and checked (a broken one makes its zone unprotected, it does not
stop the start); the last good snapshots whose checksums match and the
forced states are read; every backend is asked once, remote ones for at
most ``startup_wait``; zones that got no answer start on their last good
data if it is younger than ``stale_for``, else on their emergency version.
When every zone has such fresh last good data (or a forced state) it is
served before the backends are asked (``restore``, then ``first_look``): a
restart answers as soon as its snapshots are read, and the backends'
answers follow as ordinary switches; the states are decided as before.
Then each backend is probed every ``probe_interval``, the controller ticks
twice a second, and every ``RECHECK_EVERY`` the emergency versions are
compared with live again. SIGHUP (``reload``) re-reads the emergency files too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import dns.exception
import dns.name

from ..backends.base import Backend, Fault, Report
from ..config import Config
from ..errors import SeawallError
from ..zones.model import Zone
from .controller import ControlError, Controller, Publish
from .emergency import EmergencySet, compare, load_emergency
from .store import StateDirBusy, StateStore

RECHECK_EVERY = 60.0     # seconds between comparisons of emergency and live versions

log = logging.getLogger("seawall.failover")


class FailoverService:
    """Owns the backends and drives the controller."""

    def __init__(self, config: Config, backends: Sequence[Backend], publish: Publish) -> None:
        self.config = config
        self.settings = config.failover
        self.backends = list(backends)
        self.store = StateStore(config.path(config.state_dir), background=True)
        self.controller = Controller(self.settings, publish, self.store)
        self._tasks: list[asyncio.Task] = []
        self._wake: dict[str, asyncio.Event] = {}
        # Each zone belongs to one backend: declared zones (axfr) first, then the first
        # backend that reports a zone; another backend's reports for it are ignored.
        self._owner: dict[dns.name.Name, str] = {}
        self._warned: set[tuple[dns.name.Name, str]] = set()
        # The emergency versions as loaded (before TTL caps), to compare with live data.
        self._emergency = EmergencySet()
        self._emergency_reload: asyncio.Task | None = None
        for backend in self.backends:
            for origin in backend.declared_zones():
                self._owner.setdefault(origin, backend.describe())

    async def start(self) -> None:
        """Everything up to serving: lock, emergency, snapshots, first look at every backend."""
        await self.restore()
        await self.first_look()

    async def restore(self) -> bool:
        """Lock, emergency versions, last good snapshots, forced states: what the
        state directory alone says. True when every zone known now serves its
        restored data already (``Controller.serve_restored``): the listeners may
        open before the backends are asked, whose answers then arrive as
        ordinary switches. False when something is missing (a zone with no fresh
        last good data, or one ``require_emergency`` would refuse): nothing is
        served until ``first_look`` has decided every zone, as before."""
        store = self.store
        try:
            store.prepare()
            store.lock()
        except StateDirBusy:
            raise
        except OSError as exc:
            # Serving matters more than remembering: run, and say what is lost.
            log.error("state directory unusable: dir=%s reason=%s; serving without "
                      "snapshots, overrides or events", store.directory, exc)
            self.controller.store_error = f"unusable: {exc}"
        controller = self.controller
        self._emergency = await asyncio.to_thread(self._load_emergency)
        controller.add_emergency(self._emergency.zones)
        snapshots = store.load_snapshots()
        controller.restore(snapshots, store.load_overrides())
        restored = [(origin, snap.zone, snap.source, snap.tag) for origin, snap in snapshots.items()]
        for backend in self.backends:
            backend.restored(restored)
        for backend in self.backends:
            for origin in backend.declared_zones():
                controller.state(origin).backend = backend.describe()
        if self.settings.require_emergency and any(
                st.emergency is None and origin not in self._emergency.broken
                for origin, st in controller.zones.items()):
            return False   # first_look stops the start: serve nothing before it
        return controller.serve_restored()

    async def first_look(self) -> None:
        """Ask every backend once, decide every zone's state, start the probes.

        Raises SeawallError when a zone has no emergency file and
        ``require_emergency`` is set."""
        controller = self.controller
        store = self.store
        results = await asyncio.gather(*(self._first_check(b) for b in self.backends))
        for backend, reports in zip(self.backends, results):
            await self.apply(backend, reports)
        if all(b.remote or getattr(b, "listed", False) for b in self.backends):
            # Every directory was read: a snapshot of a zone in none of them was removed.
            owned = {origin for b in self.backends for origin in b.declared_zones()}
            owned |= {r.origin for reports in results for r in reports}
            controller.drop_orphans(owned)
        for what, why in store.ignored:
            self._note_ignored(what, why)
        await self.recheck_emergency()
        missing = controller.check_protected(self.settings.require_emergency)
        if missing and self.settings.require_emergency:
            raise SeawallError(f"no emergency zone in {self.config.emergency_dir} for: "
                               f"{', '.join(missing)} (add NAME.zone there, or set "
                               "failover.require_emergency: false)")
        controller.finish_startup(f"no live data at start-up (no answer from the backend "
                                  f"within startup_wait={self.settings.startup_wait:g}s, "
                                  f"or no backend has the zone)")
        for backend in self.backends:
            await backend.start(self._sink(backend))
            self._wake[backend.name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._probe_loop(backend)))
        self._tasks.append(asyncio.create_task(self._tick_loop()))
        self._tasks.append(asyncio.create_task(self._recheck_loop()))

    def _load_emergency(self, previous: EmergencySet | None = None) -> EmergencySet:
        return load_emergency(self.config.path(self.config.emergency_dir),
                              strict=self.config.semantic_checks, previous=previous)

    def _note_ignored(self, what: str, why: str) -> None:
        """A snapshot not used at start-up: an event on its zone (or a log line)."""
        try:
            origin = dns.name.from_text(what)
        except dns.exception.DNSException:
            origin = None
        if origin is not None and origin in self.controller.zones:
            self.controller.note(origin, "startup", f"last good snapshot ignored: {why}",
                                 kind="snapshot-ignored")
        else:
            log.error("snapshot ignored: %s: %s", what, why)

    async def recheck_emergency(self) -> None:
        """Compare every emergency version with its live zone (unprotected if it fails)."""
        controller = self.controller
        margin = float(self.settings.signature_margin)
        emergency = self._emergency
        parent = controller.parent_ds
        pairs: list[tuple[dns.name.Name, Zone | None, Zone | None, set | None]] = []
        for origin, st in controller.zones.items():
            if origin in emergency.zones or origin in emergency.broken:
                pairs.append((origin, emergency.zones.get(origin),
                              st.good.zone if st.good is not None else None,
                              parent(origin) if parent is not None else None))

        def check_all() -> list:
            return [(origin, compare(zone, live, mtime=emergency.mtimes.get(origin),
                                     margin=margin, broken=emergency.broken.get(origin)
                                     if zone is None else None, parent_ds=ds))
                    for origin, zone, live, ds in pairs]

        for origin, check in await asyncio.to_thread(check_all):
            controller.set_emergency_check(origin, check)

    async def reload_emergency(self) -> None:
        """Read the emergency directory again: new, changed and removed files take effect.

        A file that turned broken does not replace the version loaded before it
        (bad data never replaces good data): the event says so, and the zone
        stays protected by the earlier version.
        """
        previous = self._emergency
        fresh = await asyncio.to_thread(self._load_emergency, previous)
        controller = self.controller
        for origin, why in fresh.broken.items():
            if origin in previous.zones:
                fresh.zones[origin] = previous.zones[origin]
                fresh.mtimes[origin] = previous.mtimes.get(origin, 0.0)
                controller.note(origin, "backend", f"{why}; keeping the emergency version "
                                                   "loaded before", kind="unprotected")
        changed = {o: z for o, z in fresh.zones.items() if previous.zones.get(o) is not z}
        log.info("emergency files looked at again: zones=%d unchanged=%d changed=%d "
                 "broken=%d", len(fresh.zones), fresh.unchanged, len(changed), len(fresh.broken))
        self._emergency = fresh
        if changed:
            controller.add_emergency(changed)
            controller.flush()
        for origin in set(previous.zones) - set(fresh.zones) - set(fresh.broken):
            controller.remove_emergency(origin, "the emergency file was removed")
        await self.recheck_emergency()

    async def _first_check(self, backend: Backend) -> list[Report]:
        try:
            if backend.remote:
                return await asyncio.wait_for(backend.check(force=True),
                                              self.settings.startup_wait)
            return await backend.check(force=True)
        except asyncio.TimeoutError:
            log.error("start-up: backend=%s did not answer within %gs", backend.describe(),
                      self.settings.startup_wait)
        except Exception:
            log.exception("start-up: backend=%s failed", backend.describe())
        return []

    async def apply(self, backend: Backend, reports: list[Report]) -> None:
        """Hand a backend's reports to the controller, dropping zones another backend owns.

        The guard compares every RRset of two versions, which takes a while for
        a big zone: it runs in a thread first, so the event loop keeps answering.
        """
        name = backend.describe()
        mine = []
        for report in reports:
            owner = self._owner.setdefault(report.origin, name)
            if owner == name:
                mine.append(report)
            elif (report.origin, name) not in self._warned:
                self._warned.add((report.origin, name))
                log.warning("zone ignored: zone=%s backend=%s reason=served by %s",
                            report.origin, name, owner)
        for report in mine:
            if report.version is not None and report.version.zone is not None:
                report.verdict = await asyncio.to_thread(self.controller.prejudge, report)
        self.controller.apply(mine, name)
        for report in mine:
            if self.controller.unseen_version(report):
                # The backend holds a version the controller never judged (e.g. a
                # transfer that finished after start-up gave up on it): fetch it again.
                log.info("refetch: zone=%s backend=%s tag=%s", report.origin, name, report.tag)
                backend.forget(report.origin)

    def _sink(self, backend: Backend):
        async def sink(report: Report) -> None:
            await self.apply(backend, [report])
        return sink

    async def _probe_loop(self, backend: Backend) -> None:
        interval = float(self.settings.probe_interval)
        wake = self._wake[backend.name]
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            force = wake.is_set()
            wake.clear()
            try:
                reports = await backend.check(force=force)
                await self.apply(backend, reports)
            except Exception:
                log.exception("probe crashed: backend=%s; serving the last good data",
                              backend.describe())
            delay = max(0.0, interval - (loop.time() - started))
            try:
                await asyncio.wait_for(wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_EVERY)
            try:
                await self.recheck_emergency()
            except Exception:
                log.exception("emergency check crashed")

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(min(0.5, float(self.settings.probe_interval)))
            try:
                self._expire_faults()
                self.controller.tick()
            except Exception:
                log.exception("controller tick crashed")

    # ------------------------------------------------------------ drills

    def inject_fault(self, fault: Fault, reason: str = "drill") -> list[str]:
        """Inject ``fault`` into the client of every backend serving its zones (all: None).

        The server keeps the deadline (``fault.until``) itself, so the fault
        is removed on time even if whoever injected it has gone away.
        """
        zones = fault.zones
        targets = [b for b in self.backends
                   if zones is None or any(self._owner.get(o) == b.describe() for o in zones)]
        if not targets:
            raise ControlError("no backend serves the drilled zone(s)")
        busy = [b.describe() for b in targets if b.faults.current is not None]
        if busy:
            raise ControlError(f"a fault is already injected into {', '.join(busy)}")
        if fault.until is not None:
            # The deadline runs on the monotonic clock: a wall-clock step cannot stretch it.
            fault.deadline = time.monotonic() + max(0.0, fault.until - time.time())
        for backend in targets:
            backend.faults.inject(fault)
            self._note_fault(backend, fault, f"fault injected: {fault.kind} ({reason})")
        return [b.describe() for b in targets]

    def clear_faults(self, reason: str = "drill ended") -> list[str]:
        cleared = []
        for backend in self.backends:
            fault = backend.faults.current
            if fault is not None:
                backend.faults.clear()
                self._note_fault(backend, fault, f"fault removed: {fault.kind} ({reason})")
                cleared.append(backend.describe())
        return cleared

    def _expire_faults(self) -> None:
        now = time.monotonic()
        for backend in self.backends:
            fault = backend.faults.current
            if fault is not None and fault.deadline is not None and now >= fault.deadline:
                backend.faults.clear()
                self._note_fault(backend, fault, f"fault removed at its deadline: {fault.kind}")

    def _note_fault(self, backend: Backend, fault: Fault, reason: str) -> None:
        for origin, st in self.controller.zones.items():
            if (fault.zones is None or origin in fault.zones) \
                    and self._owner.get(origin) == backend.describe():
                self.controller.note(origin, "drill", reason, kind="fault")

    def reload(self) -> None:
        """Look at every backend and the emergency files now (SIGHUP, ``seawall reload``)."""
        for event in self._wake.values():
            event.set()
        if self._emergency_reload is None or self._emergency_reload.done():
            self._emergency_reload = asyncio.get_running_loop().create_task(
                self._reload_emergency_logged())

    async def _reload_emergency_logged(self) -> None:
        try:
            await self.reload_emergency()
        except Exception:
            log.exception("emergency reload crashed; the versions loaded before stay")

    def remove_zone(self, zone: str, *, by: str = "operator") -> str:
        """An operator's removal: drop the zone's live data now, and its backend forgets it."""
        removed = self.controller.remove(zone, by=by)
        backend = self.backend_for(dns.name.from_text(removed))
        if backend is not None and hasattr(backend, "remove"):
            backend.remove(dns.name.from_text(removed))
        return removed

    def backend_for(self, origin: dns.name.Name) -> Backend | None:
        owner = self._owner.get(origin)
        for backend in self.backends:
            if backend.describe() == owner:
                return backend
        return None

    def status(self) -> dict[str, Any]:
        status = self.controller.status()
        status["backends"] = [{"name": b.describe(), "kind": b.kind,
                               "fault": b.faults.current.kind if b.faults.current else None}
                              for b in self.backends]
        return status

    async def stop(self) -> None:
        if self._emergency_reload is not None:
            self._tasks.append(self._emergency_reload)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for backend in self.backends:
            await backend.stop()
        await asyncio.to_thread(self.store.flush)
        self.store.unlock()
