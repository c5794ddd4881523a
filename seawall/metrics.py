"""Prometheus metrics and health endpoints on a loopback HTTP port.

Counting must not slow the answer path, so nothing here runs per query but
a dict increment (``QueryStats.count``); everything else is read from the
objects that already keep it — the rate limiter's counters, the server's
connection table, the failover controller's status — when Prometheus
scrapes. Endpoints:

* ``/metrics`` — the Prometheus text format (prometheus-client),
* ``/healthz`` — 200 while the process runs,
* ``/readyz``  — 200 when every zone has data to serve, else 503 naming them.

With several workers (seawall/workers.py) each process counts its own
answers; a scrape first asks every worker for its counters and shows the sum
(``ServerCounters``), so the figures are those of the whole server.

The listener holds at most ``max_connections`` connections (half of them
from one client prefix), each for at most ``idle_timeout`` to send its
request and read the answer; a connection over the budget is closed at
once (seawall/budgets.py). Without that, idle connections took every
descriptor the process had, and the zones directory could not be listed.

Example configuration::

    metrics:
      listen: "127.0.0.1:9153"
      max_connections: 16
      idle_timeout: 5s
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dns.rcode
import dns.rdatatype
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .budgets import ConnectionBudget
from .dns.query import Drop, FormError, parse_query
from .zones.signatures import earliest_expiry

log = logging.getLogger("seawall.metrics")
querylog = logging.getLogger("seawall.querylog")

TRANSPORTS = ("udp", "tcp")
MAX_QUERY_KEYS = 4096
"""Distinct (transport, type, rcode) keys kept; the rest count as type OTHER."""


class QueryStats:
    """Responses sent, by transport, query type and rcode: one dict increment each.

    With ``sample_every`` N > 0, one response in N is also written to the
    ``seawall.querylog`` logger (the sampled query log); 0 writes none.
    """

    def __init__(self, sample_every: int = 0) -> None:
        self.counts: dict[tuple[int, bytes, int], int] = {}
        self.sample_every = sample_every
        self._until_sample = sample_every
        # Per zone and data source, only while metrics are served (it costs a
        # suffix lookup per response): origin in lowercase wire form -> the
        # controller's state of the zone, whose served_mode says live, stale
        # or emergency at the moment of the answer.
        self.zones: dict[bytes, Any] | None = None
        self.zone_counts: dict[tuple[Any, int], int] = {}

    def count(self, transport: int, request: bytes, response: bytes,
              client: object = None) -> None:
        # The question name ends at the first zero octet after the header in
        # every query the engine answers (names in questions are uncompressed).
        end = request.find(b"\x00", 12)
        if self.sample_every:
            self._until_sample -= 1
            if self._until_sample <= 0:
                self._until_sample = self.sample_every
                _log_query(transport, request, response, client)
        if self.zones is not None and end > 0:
            self._count_zone(request[12:end + 1].lower(), response[3] & 0x0F)
        key = (transport, request[end + 1:end + 3] if end > 0 else b"", response[3] & 0x0F)
        counts = self.counts
        if key in counts:
            counts[key] += 1
        elif len(counts) < MAX_QUERY_KEYS:
            counts[key] = 1
        else:
            other = (transport, b"", key[2])
            counts[other] = counts.get(other, 0) + 1

    def _count_zone(self, name: bytes, rcode: int) -> None:
        st = _find_zone(self.zones or {}, name)
        if st is None:
            return
        key = _zone_count_key(st, rcode)
        self.zone_counts[key] = self.zone_counts.get(key, 0) + 1


def _zone_count_key(st: Any, rcode: int) -> tuple[str, str, int]:
    mode = st.served_mode.value if st.served_mode is not None else "none"
    return (str(st.origin), mode, rcode)


def _log_query(transport: int, request: bytes, response: bytes, client: object) -> None:
    """One line of the sampled query log: who asked what, and the outcome."""
    try:
        query = parse_query(request)
        question = f"qname={query.qname} qtype={dns.rdatatype.to_text(query.qtype)}"
    except (Drop, FormError):
        question = "qname=- qtype=-"
    host = client[0] if isinstance(client, tuple) else client
    querylog.info("query: client=%s transport=%s %s rcode=%s size=%d", host,
                  TRANSPORTS[transport], question, dns.rcode.to_text(response[3] & 0x0F),
                  len(response))


def _find_zone(zones: dict[bytes, Any], name: bytes) -> Any:
    """The zone state for the longest served suffix of ``name`` (wire, lowercase)."""
    offset = 0
    while offset < len(name):
        st = zones.get(name[offset:])
        if st is not None:
            return st
        offset += name[offset] + 1
    return None


@dataclass
class ServerCounters:
    """What one process counted: answers, RRL verdicts and TCP connections."""

    counts: dict[tuple[int, bytes, int], int] = field(default_factory=dict)
    zone_counts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=lambda: [0, 0, 0])
    slipped: list[int] = field(default_factory=lambda: [0, 0, 0])
    connections: int = 0
    refused: int = 0
    handoff_dropped: int = 0   # datagrams a worker could not hand to the supervisor

    @classmethod
    def of(cls, stats: QueryStats | None, limiter: Any = None, connections: int = 0,
           refused: int = 0) -> ServerCounters:
        """A copy of what ``stats`` and ``limiter`` (either may be None) counted."""
        return cls(dict(stats.counts) if stats is not None else {},
                   dict(stats.zone_counts) if stats is not None else {},
                   list(limiter.counters.dropped) if limiter is not None else [0, 0, 0],
                   list(limiter.counters.slipped) if limiter is not None else [0, 0, 0],
                   connections, refused)

    @classmethod
    def of_server(cls, stats: QueryStats, server: Any) -> ServerCounters:
        """What a DnsServer and its QueryStats counted, its TCP connections included."""
        return cls.of(stats, server.rate_limiter, len(server.connections),
                      server.refused_connections)

    def add(self, other: ServerCounters) -> None:
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        for zkey, value in other.zone_counts.items():
            self.zone_counts[zkey] = self.zone_counts.get(zkey, 0) + value
        self.dropped = [a + b for a, b in zip(self.dropped, other.dropped)]
        self.slipped = [a + b for a, b in zip(self.slipped, other.slipped)]
        self.connections += other.connections
        self.refused += other.refused
        self.handoff_dropped += other.handoff_dropped


class SeawallCollector(Collector):
    """Reads the server's own counters and state at scrape time."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterable[Any]:
        counters = self.app.counters()
        yield from self._queries(counters)
        yield from self._rrl(counters)
        yield from self._server(counters)
        yield from self._zones()
        yield from self._watch()
        yield from self._health()

    def _queries(self, counters: ServerCounters) -> Iterable[Any]:
        family = CounterMetricFamily("seawall_responses", "Responses sent",
                                     labels=["transport", "qtype", "rcode"])
        merged: dict[tuple[str, str, str], int] = {}
        for (transport, qtype, rcode), value in counters.counts.items():
            labels = (TRANSPORTS[transport],
                      dns.rdatatype.to_text(int.from_bytes(qtype, "big")) if len(qtype) == 2
                      else "OTHER", dns.rcode.to_text(rcode))
            merged[labels] = merged.get(labels, 0) + value
        for labels, value in merged.items():
            family.add_metric(list(labels), value)
        yield family
        answers = CounterMetricFamily("seawall_answers",
                                      "Responses per zone and the data source that answered",
                                      labels=["zone", "source", "rcode"])
        for (zone, source, rcode), value in counters.zone_counts.items():
            answers.add_metric([zone, source, dns.rcode.to_text(rcode)], value)
        yield answers

    def _rrl(self, counters: ServerCounters) -> Iterable[Any]:
        dropped = CounterMetricFamily("seawall_rrl_dropped", "Responses dropped by RRL",
                                      labels=["kind"])
        slipped = CounterMetricFamily("seawall_rrl_slipped",
                                      "Responses sent truncated by RRL (slip)", labels=["kind"])
        if self.app.server.rate_limiter is not None:
            for index, kind in enumerate(("answer", "nxdomain", "error")):
                dropped.add_metric([kind], counters.dropped[index])
                slipped.add_metric([kind], counters.slipped[index])
        yield dropped
        yield slipped

    def _server(self, counters: ServerCounters) -> Iterable[Any]:
        yield GaugeMetricFamily("seawall_tcp_connections", "Open TCP connections",
                                value=counters.connections)
        yield CounterMetricFamily("seawall_tcp_refused", "TCP connections refused by the caps",
                                  value=counters.refused)
        yield CounterMetricFamily("seawall_handoff_dropped",
                                  "NOTIFY/transfer datagrams dropped: the supervisor's channel "
                                  "was full", value=counters.handoff_dropped)
        yield GaugeMetricFamily("seawall_zones", "Zones being served",
                                value=len(self.app.zoneset))

    def _zones(self) -> Iterable[Any]:
        status = self.app.failover_status()
        state = GaugeMetricFamily("seawall_zone_state",
                                  "1 for the state each zone is served from",
                                  labels=["zone", "state"])
        forced = GaugeMetricFamily("seawall_zone_forced", "1 if an operator forced the state",
                                   labels=["zone"])
        serial = GaugeMetricFamily("seawall_zone_serial", "SOA serial served", labels=["zone"])
        failures = GaugeMetricFamily("seawall_backend_consecutive_failures",
                                     "Consecutive failed backend probes", labels=["zone"])
        healthy = GaugeMetricFamily("seawall_backend_healthy", "1 if the backend is healthy",
                                    labels=["zone"])
        good_age = GaugeMetricFamily("seawall_zone_last_good_age_seconds",
                                     "Age of the last good backend data", labels=["zone"])
        rejected = GaugeMetricFamily("seawall_guard_rejected",
                                     "1 while a backend version is held back by the guard",
                                     labels=["zone"])
        expiry = GaugeMetricFamily("seawall_zone_signature_expiry_seconds",
                                   "Seconds until the first RRSIG of the served data expires",
                                   labels=["zone"])
        unprotected = GaugeMetricFamily(
            "seawall_zone_unprotected", "1 when the zone has no trustworthy emergency version",
            labels=["zone"])
        switches = CounterMetricFamily("seawall_zone_switches",
                                       "Changes of the state a zone is served from",
                                       labels=["zone"])
        damping = GaugeMetricFamily("seawall_zone_flap_damping_factor",
                                    "recover_after is multiplied by this (flap damping)",
                                    labels=["zone"])
        held_for = GaugeMetricFamily("seawall_zone_held_seconds",
                                     "How long the backend's newest version has been held back",
                                     labels=["zone"])
        drift = GaugeMetricFamily("seawall_emergency_drift_ratio",
                                  "Share of live RRsets missing or different in the emergency "
                                  "version", labels=["zone"])
        store_error = GaugeMetricFamily("seawall_state_dir_error",
                                        "1 while the state directory cannot be written",
                                        value=1.0 if status.get("state_dir_error") else 0.0)
        now = time.time()
        for zone in status.get("zones", []):
            name = zone["zone"]
            for mode in ("live", "held", "stale", "emergency"):
                state.add_metric([name, mode], 1.0 if zone.get("state") == mode else 0.0)
            unprotected.add_metric([name], 0.0 if zone.get("protected", True) else 1.0)
            switches.add_metric([name], zone.get("switches") or 0)
            damping.add_metric([name], (zone.get("damping") or {}).get("factor", 1))
            held = zone.get("held")
            held_for.add_metric([name], held["for"] if held else 0.0)
            check = zone.get("emergency_check") or {}
            if check.get("drift") is not None:
                drift.add_metric([name], check["drift"])
            forced.add_metric([name], 1.0 if zone.get("forced") else 0.0)
            if zone.get("serial") is not None:
                serial.add_metric([name], zone["serial"])
            failures.add_metric([name], zone.get("failures") or 0)
            healthy.add_metric([name], 1.0 if zone.get("healthy") else 0.0)
            if zone.get("good_age") is not None:
                good_age.add_metric([name], zone["good_age"])
            rejected.add_metric([name], 1.0 if zone.get("rejected") else 0.0)
        for zone in self.app.zoneset:
            first = earliest_expiry(zone) if zone.is_signed else None
            if first is not None:
                expiry.add_metric([zone.origin.to_text()], first - now)
        events = CounterMetricFamily("seawall_failover_events",
                                     "Failover events (transitions, rejections, drills)",
                                     labels=["kind", "cause"])
        for (kind, cause), value in self.app.event_counts().items():
            events.add_metric([kind, cause], value)
        yield from (state, forced, serial, failures, healthy, good_age, rejected, expiry, events,
                    unprotected, switches, damping, held_for, drift, store_error)


    def _watch(self) -> Iterable[Any]:
        """Protection, signature deadlines and the domain security watch's findings."""
        from .watch.deadlines import DATA, expiries
        from .watch.findings import KINDS
        controller = getattr(getattr(self.app, "failover", None), "controller", None)
        states = sorted(controller.zones.items()) if controller is not None else []
        unprotected = GaugeMetricFamily("seawall_zone_unprotected",
                                        "1 while a zone has no emergency version it can trust",
                                        labels=["zone"])
        expiry = GaugeMetricFamily("seawall_signature_expiry_timestamp_seconds",
                                   "When the first RRSIG expires (seconds since the epoch), "
                                   "by data: live (the backend's newest), last_good, emergency",
                                   labels=["zone", "data"])
        for origin, st in states:
            unprotected.add_metric([origin.to_text()], 1.0 if st.unprotected else 0.0)
            for data, when in expiries(st).items():
                if when is not None and data in DATA:
                    expiry.add_metric([origin.to_text(), data], float(when))
        yield unprotected
        yield expiry
        watch = getattr(self.app, "watch", None)
        if watch is None:
            return
        findings = GaugeMetricFamily("seawall_watch_findings",
                                     "Findings of the domain security watch standing now",
                                     labels=["zone", "kind"])
        counts = watch.book.counts()
        for origin, _ in watch.watched():
            for kind in KINDS:
                findings.add_metric([origin.to_text(), kind],
                                    counts.get((origin.to_text(), kind), 0))
        yield findings
        yield CounterMetricFamily("seawall_watch_rounds", "Rounds of the watch since start",
                                  value=watch.round_count)
        if watch.last_round_at is not None:
            yield GaugeMetricFamily("seawall_watch_last_round_timestamp_seconds",
                                    "When the last round of the watch ended",
                                    value=watch.last_round_at)
            yield GaugeMetricFamily("seawall_watch_round_duration_seconds",
                                    "How long the last round of the watch took",
                                    value=watch.last_round_took or 0.0)
        yield GaugeMetricFamily("seawall_watch_interval_seconds",
                                "Configured time between rounds of the watch",
                                value=float(watch.settings.interval))


    def _health(self) -> Iterable[Any]:
        """Health-checked answers (seawall.health): each target's state, since when."""
        health = getattr(self.app, "health", None)
        if health is None or not health.targets:
            return
        status = health.status()
        up = GaugeMetricFamily("seawall_health_target_up", "1 while a checked target is up",
                               labels=["target", "check"])
        since = GaugeMetricFamily("seawall_health_target_since_timestamp_seconds",
                                  "When the target last went up or down (or the start)",
                                  labels=["target", "check"])
        changes = CounterMetricFamily("seawall_health_target_changes",
                                      "Times the target went up or down", labels=["target", "check"])
        stalled = GaugeMetricFamily("seawall_health_target_stalled",
                                    "1 while the target's checker is stalled (its state frozen)",
                                    labels=["target", "check"])
        now = time.time()
        for target in status["targets"]:
            labels = [target["address"], target["check"]]
            up.add_metric(labels, 1.0 if target["up"] else 0.0)
            since.add_metric(labels, now - target["for"])
            changes.add_metric(labels, target["changes"])
            stalled.add_metric(labels, 1.0 if target["stalled"] else 0.0)
        fail_static = GaugeMetricFamily("seawall_health_fail_static",
                                        "1 while every target of an RRset is down and its last "
                                        "healthy answer is served", labels=["zone", "name", "type"])
        for rrset in status["rrsets"]:
            fail_static.add_metric([rrset["zone"], rrset["name"], rrset["type"]],
                                   1.0 if rrset["fail_static"] else 0.0)
        yield from (up, since, changes, stalled, fail_static)


class MetricsServer:
    """A tiny HTTP/1.1 server for /metrics, /healthz and /readyz (GET only)."""

    def __init__(self, app: Any, ready: Callable[[], list[str]],
                 refresh: Callable[[], Awaitable[None]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SeawallCollector(app))
        self.ready = ready
        # Zones without a trustworthy emergency version, for /readyz's detail.
        self.unprotected: Callable[[], list[str]] | None = getattr(app, "unprotected_zones",
                                                                    None)
        self.refresh = refresh    # gathers the workers' counters before a scrape
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        settings = getattr(getattr(app, "config", None), "metrics", None)
        total = int(getattr(settings, "max_connections", 16))
        self.idle_timeout = float(getattr(settings, "idle_timeout", 5.0))
        self.budget = ConnectionBudget("metrics", total=total, per_prefix=max(1, total // 2),
                                       logger=log)

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("metrics: listening=%s:%d", host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else None
        if self.budget.take(host) is not None:
            writer.transport.abort()
            return
        try:
            await asyncio.wait_for(self._serve(reader, writer), self.idle_timeout)
        except (asyncio.TimeoutError, ConnectionError):
            writer.transport.abort()
        finally:
            self.budget.give_back(host)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request, one answer, within the idle timeout the caller sets."""
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if path == "/metrics" and self.refresh is not None:
                await self.refresh()
            status, body, ctype = self._route(method, path)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()

    def _route(self, method: str, path: str) -> tuple[str, bytes, str]:
        if method != "GET":
            return "405 Method Not Allowed", b"GET only\n", "text/plain"
        if path == "/metrics":
            return "200 OK", generate_latest(self.registry), "text/plain; version=0.0.4"
        if path == "/healthz":
            return "200 OK", b"ok\n", "text/plain"
        if path == "/readyz":
            missing = self.ready()
            if missing:
                return ("503 Service Unavailable",
                        ("no data to serve: " + ", ".join(missing) + "\n").encode(), "text/plain")
            # Ready to serve; zones without a trustworthy emergency version are named.
            unprotected = self.unprotected() if self.unprotected is not None else []
            detail = "".join(f"unprotected: {line}\n" for line in unprotected)
            return "200 OK", ("ready\n" + detail).encode(), "text/plain"
        return "404 Not Found", b"not found\n", "text/plain"
