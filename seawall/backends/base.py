"""The one interface every backend implements, and the fault hook drills use.

A backend is where the live data of some zones comes from. The failover
controller asks it, every ``probe_interval``, to look at its zones
(``check``); a backend may also push reports on its own (the axfr backend
does on its refresh timers and on NOTIFY). Each look at a zone ends in a
:class:`Report`: the backend answered or it did not (and precisely why),
the tag of the version it holds now, and new data when there is some.

Faults for chaos drills are injected here, inside the backend client, so a
drill runs the same detection, guard and switch as a real failure::

    backend.faults.inject(Fault("backend-down"))        # every call fails
    backend.faults.inject(Fault("backend-hang", every=2))  # 1 call in 2 hangs
    backend.faults.clear()
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdatatype

from ..zones.model import Zone, build_zone
from ..zones.problems import Location, Problem
from ..zones.reader import Record

FAULTS = ("backend-down", "backend-hang", "backend-corrupt", "backend-wipe", "flap")


class BackendFailure(Exception):
    """The backend did not answer: refused, timed out, unreadable. The message says which."""

    def __init__(self, message: str, *, drill: bool = False) -> None:
        super().__init__(message)
        self.drill = drill   # caused by a fault a drill injected


@dataclass
class Version:
    """One version of a zone as a backend delivered it, before the guard judged it.

    ``zone`` is None when the data did not validate; ``problems`` says why.
    ``tag`` identifies the version at the backend (the SOA serial for a
    primary, the file signatures for files) so that a version the guard
    rejected is recognised when the backend keeps offering it.
    """

    origin: dns.name.Name
    zone: Zone | None
    problems: list[Problem]
    tag: str
    source: str
    fetched_at: float = field(default_factory=time.time)
    soa_expire: int | None = None   # seconds; the axfr backend's EXPIRE horizon
    # False when the serial is a hash of the content (octoDNS YAML without a
    # serial): it names a version but says nothing of order (RFC 1982 n/a).
    serial_ordered: bool = True

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def serial(self) -> int | None:
        return self.zone.serial if self.zone is not None else None


@dataclass
class Report:
    """The outcome of one look at one zone."""

    origin: dns.name.Name
    ok: bool                          # the backend answered
    error: str | None = None          # why it did not
    tag: str | None = None            # the version it holds now
    version: Version | None = None    # new data to judge, if any
    removed: bool = False             # the backend no longer has the zone
    kind: str = "probe"               # probe | transfer | notify | scan
    drill: bool = False               # the outcome of a fault a drill injected
    verdict: Any = None               # the guard's verdict, judged off the event loop


ReportSink = Callable[[Report], Awaitable[None]]


@dataclass
class Fault:
    """A drill's fault: ``kind`` is one of FAULTS; it hits 1 call in ``every``."""

    kind: str
    every: int = 1
    period: float = 1.0     # flap: seconds down, then as many up
    zones: frozenset[dns.name.Name] | None = None   # None: every zone of the backend
    until: float | None = None   # wall-clock deadline, as shown; the service removes the fault then
    deadline: float | None = None   # the same deadline on the monotonic clock (set at injection)
    calls: int = 0
    started: float = field(default_factory=time.monotonic)

    def covers(self, origin: dns.name.Name | None) -> bool:
        """Does the fault hit this zone (None: the backend as a whole)?"""
        if self.zones is None:
            return True
        return origin is not None and origin in self.zones

    def hits(self) -> bool:
        self.calls += 1
        if self.kind == "flap":
            return int((time.monotonic() - self.started) / self.period) % 2 == 0
        return self.every <= 1 or self.calls % self.every == 0


class Faults:
    """The fault currently injected into one backend client, if any."""

    def __init__(self) -> None:
        self.current: Fault | None = None
        self.injected = 0

    def inject(self, fault: Fault) -> None:
        if fault.kind not in FAULTS:
            raise ValueError(f"unknown fault {fault.kind!r} (known: {', '.join(FAULTS)})")
        self.current = fault

    def clear(self) -> None:
        self.current = None

    def active(self) -> Fault | None:
        fault = self.current
        if fault is not None and fault.hits():
            self.injected += 1
            return fault
        return None

    async def before_call(self, timeout: float, origin: dns.name.Name | None = None) -> None:
        """Raise (or hang, then raise) when a down/hang/flap fault hits this call."""
        fault = self.current
        if fault is None or fault.kind not in ("backend-down", "backend-hang", "flap"):
            return
        if not fault.covers(origin) or not self.active():
            return
        if fault.kind == "backend-hang":
            await asyncio.sleep(timeout)
            raise BackendFailure(f"timed out after {timeout:g}s (drill: backend-hang)",
                                 drill=True)
        raise BackendFailure(f"connection refused (drill: {fault.kind})", drill=True)

    def mangle(self, version: Version | None) -> Version | None:
        """Under a corrupt or wipe fault, a bad version of the data the backend holds.

        It is offered on every call the fault hits, whether or not the real
        data changed, so a drill exercises the guard at once.
        """
        fault = self.current
        if fault is None or fault.kind not in ("backend-corrupt", "backend-wipe"):
            return None
        if version is None or version.zone is None or not fault.covers(version.origin) \
                or not self.active():
            return None
        if fault.kind == "backend-corrupt":
            return Version(version.origin, None,
                           [Problem(Location(version.source, 0),
                                    "drill: backend-corrupt: the zone has no SOA record")],
                           version.tag + "+corrupt", version.source)
        return Version(version.origin, wiped(version.zone), [], version.tag + "+wipe",
                       version.source)


    async def after_scan(self, reports: list[Report], timeout: float) -> list[Report]:
        """A down/hang/flap fault on some zones of a backend that is looked at as a whole."""
        fault = self.current
        if fault is None or fault.zones is None \
                or fault.kind not in ("backend-down", "backend-hang", "flap"):
            return reports
        hit = [r for r in reports if fault.covers(r.origin)]
        if not hit or not self.active():
            return reports
        if fault.kind == "backend-hang":
            await asyncio.sleep(timeout)
            error = f"timed out after {timeout:g}s (drill: backend-hang)"
        else:
            error = f"connection refused (drill: {fault.kind})"
        return [Report(r.origin, False, error=error, kind=r.kind, drill=True)
                if fault.covers(r.origin) else r for r in reports]


def wiped(zone: Zone, keep: float = 0.1) -> Zone:
    """The zone with all but ``keep`` of its non-apex RRsets deleted and the serial moved on."""
    records: list[Record] = []
    location = Location(zone.source, 0)
    others = [r for r in zone.rrsets() if r.name != zone.origin]
    kept = others[:int(len(others) * keep)]
    for rrset in [r for r in zone.rrsets() if r.name == zone.origin] + kept:
        for rdata in rrset:
            if rdata.rdtype == dns.rdatatype.SOA:
                rdata = rdata.replace(serial=(rdata.serial + 1) % 2**32)
            records.append(Record(rrset.name, rrset.ttl, rdata, location))
    return build_zone(zone.origin, records, source=zone.source)


class Backend(abc.ABC):
    """A source of live zone data."""

    kind = "backend"
    remote = False   # a network backend: start-up waits at most ``startup_wait`` for it

    def __init__(self, name: str) -> None:
        self.name = name
        self.faults = Faults()
        self.sink: ReportSink | None = None

    @abc.abstractmethod
    def declared_zones(self) -> Iterable[dns.name.Name]:
        """The zones this backend is configured for (files: none, it discovers them)."""

    @abc.abstractmethod
    async def check(self, force: bool = False) -> list[Report]:
        """Look at every zone once: health, and new data if there is some."""

    def owns(self, origin: dns.name.Name) -> bool:
        return origin in set(self.declared_zones())

    async def start(self, sink: ReportSink) -> None:
        """Begin pushing reports of its own (timers, NOTIFY) to ``sink``."""
        self.sink = sink

    async def stop(self) -> None:
        self.sink = None

    def forget(self, origin: dns.name.Name) -> None:
        """The controller served no version of ``origin`` yet: fetch it in full next time."""

    def restored(self, versions: Iterable[tuple[dns.name.Name, Zone, str, str]]) -> None:
        """The last good versions read from the state directory at start-up, as
        (origin, zone, source, tag). A backend that can tell, cheaply, that what
        it holds is one of them may report that zone instead of reading its own
        data again (the files backend, for unchanged files)."""

    def describe(self) -> str:
        return f"{self.kind}:{self.name}"
