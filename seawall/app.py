"""The running server: configuration, backends, failover, listeners and signals.

Start-up runs the failover service first (emergency zones checked, last
good snapshots read, every backend asked once), so the listeners open with
the best data there is: live, last good, or emergency. A restart whose
zones all have fresh last good data opens them before the backends are
asked, serving that data; the backends' answers are then ordinary switches
(``FailoverService.restore``). From then on every
change of what is served — a new version, a switch to stale or emergency
and back — is one assignment of a new ZoneSet to the responder: a query
sees the old set or the new one, and no query waits for, or is lost in, a
switch. SIGHUP looks at every backend at once; SIGTERM and SIGINT stop
the server gracefully.

With ``workers`` above 1 this process is the supervisor: it binds the
sockets and keeps all the state, and forked workers answer the queries, a
new generation of them for each new ZoneSet (seawall/workers.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.name

from .backends import make_backends
from .config import Config, parse_listen
from .dns.answers import TableStore
from .dns.primary import Primary
from .dns.responder import Responder, ResponderSettings
from .dns.rrl import RateLimiter
from .dns.server import DnsServer
from .failover.control import ControlServer
from .failover.expiry import ExpireTimers
from .failover.service import FailoverService
from .fleet import FleetService
from .health import HealthService
from .metrics import MetricsServer, QueryStats, ServerCounters
from .privileges import drop_privileges, restrict_umask
from .workers import WorkerPool
from .watch import WatchService
from .zones.model import Zone
from .zones.zoneset import ZoneSet

log = logging.getLogger("seawall.app")


class App:
    """One Seawall server process."""

    def __init__(self, config: Config) -> None:
        restrict_umask()   # what we create (state directory, snapshots) is ours alone
        self.config = config
        settings = ResponderSettings(udp_payload=config.udp_payload,
                                     cache_entries=config.answer_cache,
                                     identity=config.identity.names())
        # Answer tables per zone version, built before a version serves (answers.py);
        # the emergency versions are built ahead and the last good ones kept, so a
        # switch to emergency and back costs nothing.
        self.tables = TableStore(limit=2 * config.answer_cache)
        self.tables.keep = self._standby_versions
        # Each table is also written as a zone image, which a restart reads (image.py).
        self.tables.images = config.path(config.state_dir) / "images"
        self.tables.write_in_background = config.workers == 1   # tables built on the loop
        self.responder = Responder(ZoneSet(), settings, store=self.tables)
        self.query_stats = QueryStats(sample_every=config.query_log_sample)
        self.backends = make_backends(config)
        self.failover = FailoverService(config, self.backends, self.publish)
        # Health-checked answers (seawall/health): checked here, once; served as zone versions.
        self.health = HealthService(config, self.failover.controller)
        self.failover.controller.answer_filter = self.health.filter
        self.responder.notify_handler = self._notify
        # Seawall as a primary (transfers out, NOTIFY, served serials): seawall/dns/primary.py
        self.primary = Primary(config, lambda: self.responder.zoneset)
        if self.primary.enabled:
            self.responder.transfer_handler = self.primary.handle
        # EDNS EXPIRE (RFC 7314): the time left on each served copy (seawall/failover/expiry.py).
        self.responder.expire_of = self.primary.server.expire_of = ExpireTimers(self.failover)
        # Signed queries are answered signed, or NOTAUTH/BADKEY when no key fits (RFC 8945 §5.2).
        self.responder.tsig_handler = self.primary.sign_answer
        self.server = DnsServer(self.responder, config.listen,
                                idle_timeout=float(config.tcp_idle_timeout),
                                max_message=config.tcp_max_message,
                                max_connections=config.tcp_max_connections,
                                max_per_client=config.tcp_max_per_client,
                                max_per_listener=config.tcp_max_per_listener,
                                ipv4_prefix=config.tcp_client_ipv4_prefix,
                                ipv6_prefix=config.tcp_client_ipv6_prefix,
                                rate_limiter=(RateLimiter(config.rrl)
                                              if config.rrl.enabled else None),
                                # Counting costs ~0.6 µs an answer: only when read.
                                stats=(self.query_stats
                                       if config.metrics.listen or config.query_log_sample
                                       else None))
        # workers: 1 is this process alone; otherwise (one per core by default,
        # even if that is one) forked workers answer (seawall/workers.py).
        self.pool: WorkerPool | None = (WorkerPool(self, config.worker_count())
                                        if config.workers != 1 else None)
        if self.pool is not None:
            self.primary.before_notify = self.settled   # NOTIFY once the workers serve it
            # The workers answer; tables built here would serve nobody.
            self.responder.fast.warm_in_background = False
        if self.pool is not None and config.metrics.listen:
            # Per-zone answer counts carry the zone's mode, which workers learn
            # by being forked anew (a switch to stale may keep the same data).
            self.failover.controller.on_mode_change = self.pool.refresh
        self.metrics = (MetricsServer(self, self.unready_zones,
                                      refresh=self.pool.gather_counters if self.pool else None)
                        if config.metrics.listen else None)
        self.control = ControlServer(self)   # seawall failover, seawall reload
        # The domain security watch (seawall/watch): the parent's DS feeds the guard.
        self.watch = (WatchService(config.watch, self.failover)
                      if config.watch.enabled else None)
        if self.watch is not None:
            self.controller.parent_ds = self.watch.parent_ds
        # A fleet (seawall/fleet): shared intent, quorum for emergency, epochs, through etcd.
        self.fleet = FleetService(self, config.fleet) if config.fleet.enabled else None
        self._stopping: asyncio.Event | None = None

    @property
    def zoneset(self) -> ZoneSet:
        return self.responder.zoneset

    @property
    def controller(self):
        return self.failover.controller

    def publish(self, changes: Mapping[dns.name.Name, Zone | None]) -> None:
        """Serve these zones (None: stop serving one): one ZoneSet swap."""
        changes = self.primary.prepare(changes, self.zoneset)
        self.responder.zoneset = self.zoneset.replace(changes)
        if self.metrics is not None:
            # Per-zone answer counts follow the served zones (see QueryStats).
            self.query_stats.zones = {st.origin.canonicalize().to_wire(): st
                                      for st in self.failover.controller.zones.values()}
        log.info("zones swapped: generation=%d zones=%d changed=%s", self.zoneset.generation,
                 len(self.zoneset), ",".join(f"{o}={z.serial if z else '-'}"
                                             for o, z in changes.items()))
        if self.pool is not None:
            self.pool.refresh(urgent=self.failover.controller.switching)

    def _standby_versions(self) -> list[Zone]:
        """The versions a switch may serve next, whose answer tables are kept ready:
        each zone's emergency version, and its last good one (a release goes back)."""
        out = []
        for st in self.failover.controller.zones.values():
            out += [zone for zone in (st.emergency, st.good.zone if st.good else None)
                    if zone is not None]
        return out

    def _notify(self, query, client, wire: bytes | None = None) -> int | bytes:
        """RFC 1996: route a NOTIFY to the backend of its zone; REFUSED if none."""
        backend = self.failover.backend_for(query.qname)
        handler = getattr(backend, "on_notify", None)
        if handler is None:
            log.info("notify refused: zone=%s client=%s reason=no axfr backend for the zone",
                     query.qname, client)
            return 5  # REFUSED
        return handler(query, client, wire)

    def reload(self) -> None:
        self.failover.reload()

    def failover_status(self) -> dict:
        """Every zone's state, for the control channel and metrics (see Controller.status)."""
        return self.failover.status()

    def unready_zones(self) -> list[str]:
        """Zones with nothing to serve yet (for /readyz)."""
        return [z["zone"] for z in self.failover_status().get("zones", [])
                if z.get("state") is None]

    def unprotected_zones(self) -> list[str]:
        """Zones without a trustworthy emergency version, each with the reason (/readyz)."""
        return [f"{z['zone']} ({z['unprotected']})"
                for z in self.failover_status().get("zones", []) if z.get("unprotected")]

    async def settled(self, timeout: float | None = None) -> bool:
        """Return once what was just published is what answers queries (at once with
        one process; with workers, once the generation forked for it serves); False
        when the workers did not serve it within ``timeout``."""
        if self.pool is not None:
            if timeout is None:
                return await self.pool.settled()
            return await self.pool.settled(timeout)
        return True

    def counters(self) -> ServerCounters:
        """Answers, RRL verdicts and TCP connections of the whole server."""
        total = ServerCounters.of_server(self.query_stats, self.server)
        if self.pool is not None:
            total.add(self.pool.counters())
        return total

    def event_counts(self) -> dict[tuple[str, str], int]:
        """Failover events since start, by (kind, cause)."""
        return dict(self.failover.controller.event_counts)

    # ------------------------------------------------------------ serving

    async def run(self, ready_file: Path | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self.pool is not None:
            # Loading and checking zones is background work next to the workers'
            # answers: it runs in the default executor's threads, at a lower priority.
            loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="background",
                                                         initializer=_lower_priority))
        else:
            # One process: zone loads in threads share the GIL with the answers;
            # a shorter switch interval hands it back to the event loop sooner.
            sys.setswitchinterval(SWITCH_INTERVAL)
        # A restart with fresh last good data answers from it at once; the
        # backends' first answers then arrive as ordinary switches (build, then
        # swap). Otherwise nothing answers before every zone is decided.
        early = await self.failover.restore()
        await self.health.start()
        if early:
            await self._listen()
            if self.pool is not None:
                await self.pool.start()   # warm from the zone images, if there are any
            log.info("serving the last good data: zones=%d; asking the backends",
                     len(self.zoneset))
        await self.failover.first_look()
        if self.fleet is not None:
            # After the first look: what a member publishes (its zones' states) is
            # decided by then, so a member starting up never shows the fleet a zone
            # without a state. etcd need not answer: serving never waits for it.
            await self.fleet.start()
        if not early:
            await self._listen()
        self.primary.check_emergency((st.good.zone if st.good else None, st.emergency)
                                     for st in self.controller.zones.values())
        self.primary.start()
        if self.metrics is not None:
            host, port = parse_listen(self.config.metrics.listen)
            await self.metrics.start(host, port)
        await self.control.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        if self.pool is not None and not self.pool.generation:   # not forked early
            await self.pool.start()   # each worker gives up root first thing
        if self.watch is not None:
            await self.watch.start()   # once we answer: we are one of the servers it asks
        if ready_file is not None:
            _write_ready(ready_file, self)
        # Every privileged socket is open: give up root if configured to.
        drop_privileges(self.config.user, self.config.group,
                        self.config.path(self.config.state_dir))
        log.info("serving: zones=%d pid=%d workers=%d", len(self.zoneset), os.getpid(),
                 self.pool.count if self.pool is not None else 1)
        await self._stopping.wait()
        log.info("stopping: draining connections")
        await self.control.stop()
        if self.watch is not None:
            await self.watch.stop()
        if self.fleet is not None:
            await self.fleet.stop()
        await self.health.stop()
        await self.failover.stop()
        await self.primary.stop()
        if self.pool is not None:
            await self.pool.stop()
        await self.server.stop(grace=1.5)
        if self.metrics is not None:
            await self.metrics.stop()

    async def _listen(self) -> None:
        """Open the listeners: served here (one process), or bound for the workers."""
        if self.pool is None:
            await self.server.start()
        else:
            self.server.bind()   # the workers serve these sockets

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()


BACKGROUND_NICE = 10
SWITCH_INTERVAL = 0.0005   # seconds; CPython's default is 0.005


def _lower_priority() -> None:
    """Give this thread a lower CPU priority (Linux: a thread's own nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):
        pass   # not Linux, or not allowed: the priority stays


def _write_ready(path: Path, app: App) -> None:
    """Tell a supervisor (or a test) where we listen, atomically."""
    info = {"pid": os.getpid(),
            "listen": [{"transport": b.transport, "host": b.host, "port": b.port}
                       for b in app.server.bound],
            "state_dir": str(app.config.path(app.config.state_dir).resolve()),
            "metrics_port": app.metrics.port if app.metrics is not None else None}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)
