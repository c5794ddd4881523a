"""The failover controller: one small state machine per zone.

States (DESIGN.md, "The controller")::

    live ──fail_after failures──▶ stale ──stale_for spent──▶ emergency
      ▲                             │                          │
      └──────recover_after successes (data the guard accepts)──┘

* **live**: the newest version the guard accepted is served.
* **stale**: the backend is failing; the last good data is served while it
  is younger than ``stale_for`` (time since the backend last confirmed it).
* **emergency**: the static zone from ``emergency_dir`` is served.

A failure is a probe or transfer that errs or times out, or data the guard
rejects (also while the backend keeps offering a rejected version). Only
``fail_after`` consecutive failures leave live, and only ``recover_after``
consecutive successes return to it, so a flapping backend does not make the
zone flap. An operator (or a drill) can force a zone to live or emergency
until released or until the override's expiry; overrides are persisted.

The controller is plain, synchronous code driven by reports and a clock
(``now``), so every transition can be tested without a network; the asyncio
side lives in :mod:`seawall.failover.service`. Every change of what is
served is handed to ``publish`` as one mapping, which the application turns
into one ZoneSet swap.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name

from ..backends.base import Report, Version
from ..config import FailoverConfig
from ..errors import SeawallError
from ..zones.model import Zone
from .emergency import cap_ttls
from .guard import Limits, Verdict, judge
from .store import Snapshot, StateStore, now_iso

log = logging.getLogger("seawall.failover")

Publish = Callable[[Mapping[dns.name.Name, Zone | None]], None]


class Mode(str, enum.Enum):
    LIVE = "live"
    STALE = "stale"
    EMERGENCY = "emergency"


CONFIRM_PERSIST_EVERY = 10.0   # seconds between writes of a snapshot's confirmation time
CAUSES = ("probe", "guard", "operator", "drill", "startup", "backend")


class ControlError(SeawallError):
    """An operator request the controller cannot carry out; the message says why."""


@dataclass
class Good:
    """A version the guard (or an operator) accepted: the last good data."""

    zone: Zone
    tag: str
    source: str
    fetched_at: float
    confirmed_at: float          # the backend last said this is current
    soa_expire: int | None = None


@dataclass
class Override:
    """A forced state; ``until`` None means until released."""

    mode: Mode
    reason: str
    by: str = "operator"
    at: float = 0.0
    until: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "reason": self.reason, "by": self.by,
                "at": self.at, "until": self.until}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Override:
        return cls(Mode(data["mode"]), str(data.get("reason", "")), str(data.get("by", "operator")),
                   float(data.get("at", 0)), data.get("until"))


@dataclass
class ZoneState:
    """Everything the controller knows about one zone."""

    origin: dns.name.Name
    mode: Mode | None = None        # the automatic state; None before the first report
    failures: int = 0               # consecutive
    successes: int = 0              # consecutive
    good: Good | None = None
    emergency: Zone | None = None
    rejected: Version | None = None
    rejected_reason: str | None = None
    override: Override | None = None
    backend: str | None = None
    last_report_at: float | None = None
    last_error: str | None = None
    last_event: dict[str, Any] | None = None
    expired: bool = False
    served: Zone | None = None      # what was last published
    served_mode: Mode | None = None
    persisted_at: float = 0.0       # when the snapshot's confirmation time was last written
    _capped: tuple[int, Zone] | None = field(default=None, repr=False)

    @property
    def effective(self) -> Mode | None:
        return self.override.mode if self.override is not None else self.mode


class Controller:
    """Per-zone state machines, the guard, and what is served because of them."""

    def __init__(self, settings: FailoverConfig, publish: Publish,
                 store: StateStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.publish = publish
        # Called when a zone's served mode changes but not its data (live to
        # stale without a TTL cap): the workers' per-zone counts follow modes.
        self.on_mode_change: Callable[[], None] | None = None
        self.store = store
        self.clock = clock
        self.limits = Limits(settings.max_delete_ratio, settings.max_change_ratio)
        self.zones: dict[dns.name.Name, ZoneState] = {}
        self._dirty: set[dns.name.Name] = set()
        self.event_counts: dict[tuple[str, str], int] = {}   # (kind, cause) -> events
        self.started = False

    # ------------------------------------------------------------ set-up

    def state(self, origin: dns.name.Name) -> ZoneState:
        st = self.zones.get(origin)
        if st is None:
            st = self.zones[origin] = ZoneState(origin)
            if self.started:
                log.warning("new zone without an emergency version: zone=%s", origin)
        return st

    def add_emergency(self, zones: Mapping[dns.name.Name, Zone]) -> None:
        cap = self.settings.emergency_ttl_max
        for origin, zone in zones.items():
            self.state(origin).emergency = cap_ttls(zone, cap)

    def restore(self, snapshots: Mapping[dns.name.Name, Snapshot],
                overrides: Mapping[str, Mapping[str, Any]]) -> None:
        """Last good data and forced states from the state directory (cold start)."""
        for origin, snap in snapshots.items():
            self.state(origin).good = Good(snap.zone, snap.tag, snap.source, snap.fetched_at,
                                           snap.confirmed_at, snap.zone.soa[0].expire)
        for name, data in overrides.items():
            try:
                origin = dns.name.from_text(name)
                self.state(origin).override = Override.from_json(data)
            except (ValueError, KeyError, dns.exception.DNSException) as exc:
                log.error("override ignored: zone=%s reason=%s", name, exc)

    def drop_orphans(self, owned: set[dns.name.Name]) -> list[dns.name.Name]:
        """Forget snapshot-only zones no backend has any more (their file was removed).

        Called at start-up once every files backend has listed its directory:
        a last good snapshot of a zone that is neither there, nor declared by
        a remote backend, nor protected by an emergency file is a zone the
        operator removed (or one from another zones directory), not an outage.
        """
        now = self.clock()
        dropped = []
        for origin, st in list(self.zones.items()):
            if st.mode is None and st.emergency is None and origin not in owned:
                self._event(st, None, None, "startup", "no backend has the zone any more; "
                            "its last good snapshot is dropped", now, kind="removed")
                if self.store is not None:
                    self.store.drop_snapshot(origin)
                del self.zones[origin]
                dropped.append(origin)
        return dropped

    def finish_startup(self, reason: str) -> None:
        """Zones that got no report at start-up: last good if fresh enough, else emergency."""
        now = self.clock()
        for st in self.zones.values():
            if st.mode is None:
                st.failures = self.settings.fail_after
                self._go(st, self._fallback(st, now), "startup", reason, now)
        self.started = True
        self.flush()

    def check_protected(self, require: bool) -> list[str]:
        """Served zones without an emergency version (an error when ``require``)."""
        missing = [str(o) for o, st in sorted(self.zones.items()) if st.emergency is None]
        for name in missing:
            (log.error if require else log.warning)("no emergency zone: zone=%s", name)
        return missing

    # ---------------------------------------------------------- reports

    def apply(self, reports: Iterable[Report], backend: str | None = None) -> None:
        """Take in reports from a backend and publish what changed, in one swap."""
        for report in reports:
            self._handle(report, backend)
        self.flush()

    def _handle(self, report: Report, backend: str | None) -> None:
        now = self.clock()
        st = self.state(report.origin)
        if backend is not None:
            st.backend = backend
        st.last_report_at = now
        if report.removed:
            self._removed(st, now)
            return
        if not report.ok:
            self._failure(st, report.error or "backend failed",
                          "drill" if report.drill else "probe", now)
            return
        version = report.version
        if version is not None:
            self._judge(st, version, now, "drill" if report.drill else "guard", report.verdict)
            return
        if st.rejected is not None and report.tag == st.rejected.tag:
            self._failure(st, f"the backend still offers the rejected version "
                              f"({st.rejected_reason})", "guard", now)
        elif st.good is not None:
            self._confirm(st, now)
            self._success(st, now)

    def unseen_version(self, report: Report) -> bool:
        """Does the backend hold a version that was neither taken nor rejected here?"""
        st = self.zones.get(report.origin)
        if st is None or not report.ok or report.version is not None or report.tag is None:
            return False
        if st.rejected is not None and st.rejected.tag == report.tag:
            return False
        return st.good is None or st.good.tag != report.tag

    def prejudge(self, report: Report) -> tuple[Zone | None, Verdict] | None:
        """The guard's verdict on a report's version against the data held now.

        Safe to call from a thread: it only reads immutable zones. ``_judge``
        uses it if the last good data is still the same when the report lands.
        """
        st = self.zones.get(report.origin)
        version = report.version
        if version is None:
            return None
        current = st.good.zone if st is not None and st.good is not None else None
        return current, judge(current, version, self.limits)

    def _judge(self, st: ZoneState, version: Version, now: float, cause: str = "guard",
               prejudged: tuple[Zone | None, Verdict] | None = None) -> None:
        current = st.good.zone if st.good is not None else None
        if prejudged is not None and prejudged[0] is current:
            verdict = prejudged[1]
        else:
            verdict = judge(current, version, self.limits)
        if verdict.unchanged and st.good is not None:
            st.good.tag = version.tag
            self._confirm(st, now)
            st.rejected = None
            self._success(st, now)
            return
        if not verdict.accepted:
            first = st.rejected is None or st.rejected.tag != version.tag
            st.rejected, st.rejected_reason = version, verdict.reason
            if first:
                self._event(st, st.effective, st.effective, cause, f"rejected: {verdict.reason}",
                            now, serial_to=version.serial, kind="rejected")
            self._failure(st, f"guard rejected serial {version.serial}: {verdict.reason}",
                          cause, now)
            return
        assert version.zone is not None
        self._take(st, version, now)
        self._success(st, now)

    def _take(self, st: ZoneState, version: Version, now: float, cause: str = "probe",
              reason: str | None = None) -> None:
        """Make ``version`` the last good data (and serve it if live)."""
        assert version.zone is not None
        before = st.good.zone.serial if st.good is not None else None
        st.good = Good(version.zone, version.tag, version.source, version.fetched_at, now,
                       version.soa_expire if version.soa_expire is not None
                       else version.zone.soa[0].expire)
        st.rejected = st.rejected_reason = None
        st.expired = False
        st.persisted_at = now
        if self.store is not None:
            try:
                self.store.save_snapshot(version.zone, fetched_at=version.fetched_at,
                                         confirmed_at=now, source=version.source, tag=version.tag)
            except OSError as exc:
                log.error("snapshot not written: zone=%s reason=%s", st.origin, exc)
        if st.mode is not None:
            self._event(st, st.effective, st.effective, cause,
                        reason or f"new version from {version.source}", now,
                        serial_from=before, serial_to=version.zone.serial, kind="updated")
        self._dirty.add(st.origin)

    def _confirm(self, st: ZoneState, now: float) -> None:
        """The backend says the last good data is current: it is fresh again."""
        good = st.good
        assert good is not None
        good.confirmed_at = now
        st.expired = False
        if self.store is not None and now - st.persisted_at >= CONFIRM_PERSIST_EVERY:
            st.persisted_at = now
            try:
                self.store.touch_snapshot(st.origin, fetched_at=good.fetched_at,
                                          confirmed_at=now, source=good.source, tag=good.tag,
                                          serial=good.zone.serial)
            except OSError as exc:
                log.error("snapshot not touched: zone=%s reason=%s", st.origin, exc)

    def _removed(self, st: ZoneState, now: float) -> None:
        st.good = None
        st.rejected = None
        if self.store is not None:
            self.store.drop_snapshot(st.origin)
        if st.emergency is not None:
            self._go(st, Mode.EMERGENCY, "backend", "the backend no longer has the zone", now)
        else:
            self._event(st, st.effective, None, "backend", "the backend no longer has the zone",
                        now, kind="removed")
            st.mode = None
            del self.zones[st.origin]
            self.publish({st.origin: None})

    # ------------------------------------------------------- hysteresis

    def _failure(self, st: ZoneState, reason: str, cause: str, now: float) -> None:
        st.successes = 0
        st.failures += 1
        st.last_error = reason
        log.debug("failure: zone=%s count=%d reason=%s", st.origin, st.failures, reason)
        if st.mode is None:
            # The first word about a zone is a failure (start-up): serve the best we have.
            st.failures = max(st.failures, self.settings.fail_after)
            self._go(st, self._fallback(st, now), "startup", reason, now)
        elif st.mode is Mode.LIVE and st.failures >= self.settings.fail_after:
            target = self._fallback(st, now)
            self._go(st, target, cause, f"{st.failures} consecutive failures "
                                        f"(fail_after={self.settings.fail_after}); last: {reason}",
                     now)

    def _success(self, st: ZoneState, now: float) -> None:
        st.failures = 0
        st.successes += 1
        st.last_error = None
        if st.mode is None:
            self._go(st, Mode.LIVE, "startup", "the backend answered", now)
        elif st.mode is not Mode.LIVE and st.served is None and st.good is not None:
            # Nothing was served at all: no hysteresis protects an empty answer.
            self._go(st, Mode.LIVE, "probe", "first data from the backend", now)
        elif st.mode is not Mode.LIVE and st.good is not None \
                and st.successes >= self.settings.recover_after:
            self._go(st, Mode.LIVE, "probe", f"{st.successes} consecutive successes "
                                             f"(recover_after={self.settings.recover_after})", now)

    def _fallback(self, st: ZoneState, now: float) -> Mode:
        """Where a failing zone goes: stale while its last good data is fresh enough."""
        stale_for = self.settings.stale_for
        if st.good is not None and stale_for > 0 and now - st.good.confirmed_at < stale_for:
            return Mode.STALE
        if st.emergency is not None:
            return Mode.EMERGENCY
        return Mode.STALE   # fail static: old data beats no data

    # ------------------------------------------------------------- timers

    def tick(self) -> None:
        """Time-driven transitions: stale data too old, overrides expiring, SOA EXPIRE."""
        now = self.clock()
        for st in list(self.zones.values()):
            override = st.override
            if override is not None and override.until is not None and now >= override.until:
                self._set_override(st, None, override.by, f"override expired ({override.reason})",
                                   now)
            if st.mode is Mode.STALE and st.emergency is not None \
                    and self._fallback(st, now) is Mode.EMERGENCY:
                age = now - st.good.confirmed_at if st.good else 0.0
                self._go(st, Mode.EMERGENCY, "probe",
                         f"last good data is {age:.0f}s old (stale_for="
                         f"{self.settings.stale_for:g}s)", now)
            good = st.good
            if good is not None and good.soa_expire and not st.expired \
                    and now - good.confirmed_at > good.soa_expire:
                st.expired = True
                self._event(st, st.effective, st.effective, "probe",
                            f"EXPIRED: the backend has not confirmed serial {good.zone.serial} "
                            f"for {now - good.confirmed_at:.0f}s (SOA EXPIRE "
                            f"{good.soa_expire}s); still serving it (fail static)", now,
                            kind="expired", level=logging.ERROR)
        self.flush()

    # ---------------------------------------------------------- operator

    def targets(self, zones: Iterable[str] | None) -> list[ZoneState]:
        """The states of the named zones (None: every zone, in name order); errors say why."""
        if zones is None:
            return [st for _, st in sorted(self.zones.items())]
        out = []
        for name in zones:
            try:
                origin = dns.name.from_text(name)
            except dns.exception.DNSException as exc:
                raise ControlError(f"bad zone name {name!r}: {exc}") from None
            if origin not in self.zones:
                raise ControlError(f"zone {origin} is not served")
            out.append(self.zones[origin])
        return out

    def force(self, mode: Mode | str, zones: Iterable[str] | None, reason: str, *,
              until: float | None = None, by: str = "operator") -> list[str]:
        """Force zones (None: all) to live or emergency until released or ``until``."""
        mode = Mode(mode)
        if mode is Mode.STALE:
            raise ControlError("a zone can be forced to live or emergency, not stale")
        targets = self.targets(zones)
        for st in targets:
            if mode is Mode.EMERGENCY and st.emergency is None:
                raise ControlError(f"zone {st.origin} has no emergency zone")
            if mode is Mode.LIVE and st.good is None:
                raise ControlError(f"zone {st.origin} has no live data to serve")
        now = self.clock()
        for st in targets:
            self._set_override(st, Override(mode, reason, by, now, until), by, reason, now)
        self.flush()
        return [str(st.origin) for st in targets]

    def release(self, zones: Iterable[str] | None, *, by: str = "operator",
                reason: str = "released") -> list[str]:
        targets = [st for st in self.targets(zones) if st.override is not None]
        now = self.clock()
        for st in targets:
            self._set_override(st, None, by, reason, now)
        self.flush()
        return [str(st.origin) for st in targets]

    def accept(self, zone: str, *, by: str = "operator") -> int:
        """Serve the version the guard rejected, on an operator's word; its serial."""
        st = self.targets([zone])[0]
        version = st.rejected
        if version is None:
            raise ControlError(f"zone {st.origin} has no rejected version to accept")
        if version.zone is None:
            raise ControlError(f"zone {st.origin}: the rejected version fails validation and "
                               f"cannot be served ({st.rejected_reason})")
        now = self.clock()
        reason = f"accepted by {by}: {st.rejected_reason}"
        self._take(st, version, now, cause="operator", reason=reason)
        st.failures, st.successes = 0, self.settings.recover_after
        if st.mode is not Mode.LIVE:
            self._go(st, Mode.LIVE, "operator", reason, now)
        self.flush()
        return version.zone.serial

    def note(self, origin: dns.name.Name, cause: str, reason: str, *, kind: str = "note") -> None:
        """An event about a zone that is not a transition (e.g. a drill's fault)."""
        st = self.zones.get(origin)
        if st is not None:
            self._event(st, st.effective, st.effective, cause, reason, self.clock(), kind=kind)

    def _set_override(self, st: ZoneState, override: Override | None, by: str, reason: str,
                      now: float) -> None:
        before = st.effective
        st.override = override
        cause = "drill" if by == "drill" else "operator"
        what = f"forced {override.mode.value}" if override else "released to automatic"
        self._event(st, before, st.effective, cause, f"{what}: {reason}", now,
                    kind="override", until=override.until if override else None)
        self._save_overrides()
        self._dirty.add(st.origin)

    def _save_overrides(self) -> None:
        if self.store is None:
            return
        data = {str(o): st.override.to_json() for o, st in self.zones.items()
                if st.override is not None}
        try:
            self.store.save_overrides(data)
        except OSError as exc:
            log.error("overrides not saved: reason=%s", exc)

    # ------------------------------------------------------ transitions

    def _go(self, st: ZoneState, mode: Mode, cause: str, reason: str, now: float) -> None:
        before = st.effective
        previous = st.mode
        if mode is Mode.EMERGENCY and st.emergency is None:
            mode = Mode.STALE
            reason += "; no emergency zone, serving the last good data"
        st.mode = mode
        if mode is Mode.LIVE:
            st.successes = 0
        if previous is not mode:
            zone, _ = self.served_zone(st)
            self._event(st, before if previous is not None else None, st.effective, cause,
                        reason, now, kind="transition",
                        serial_to=zone.serial if zone is not None else None,
                        auto_from=previous.value if previous else None, auto_to=mode.value)
        self._dirty.add(st.origin)

    def _event(self, st: ZoneState, before: Mode | None, after: Mode | None, cause: str,
               reason: str, now: float, *, kind: str, serial_from: int | None = None,
               serial_to: int | None = None, level: int = logging.INFO,
               **extra: Any) -> None:
        served = st.served
        event = {"time": now_iso(now), "ts": now, "zone": str(st.origin), "kind": kind,
                 "from": before.value if before else None, "to": after.value if after else None,
                 "cause": cause, "reason": reason,
                 "serial_from": serial_from if serial_from is not None
                 else (served.serial if served is not None else None),
                 "serial_to": serial_to, "forced": st.override is not None, **extra}
        st.last_event = event
        self.event_counts[(kind, cause)] = self.event_counts.get((kind, cause), 0) + 1
        if self.store is not None:
            try:
                self.store.append_event(event)
            except OSError as exc:
                log.error("event not written: reason=%s", exc)
        log.log(level if kind != "rejected" else logging.WARNING,
                "%s: zone=%s from=%s to=%s cause=%s reason=%s", kind, st.origin,
                event["from"], event["to"], cause, reason)

    # ----------------------------------------------------------- serving

    def served_zone(self, st: ZoneState) -> tuple[Zone | None, Mode | None]:
        """What a zone in its state serves: data and the mode it really comes from."""
        mode = st.effective
        if mode is None:
            return None, None
        good = st.good
        if mode is Mode.EMERGENCY and st.emergency is not None:
            return st.emergency, Mode.EMERGENCY
        if good is None:
            return (st.emergency, Mode.EMERGENCY) if st.emergency is not None else (None, None)
        if mode is Mode.LIVE:
            return good.zone, Mode.LIVE
        cap = self.settings.stale_ttl_max
        if cap is None:
            return good.zone, Mode.STALE
        if st._capped is None or st._capped[0] != id(good.zone):
            st._capped = (id(good.zone), cap_ttls(good.zone, cap))
        return st._capped[1], Mode.STALE

    def flush(self) -> None:
        """Publish every zone whose served data changed, as one mapping (one swap)."""
        changes: dict[dns.name.Name, Zone | None] = {}
        modes_changed = False
        for origin in sorted(self._dirty):
            st = self.zones.get(origin)
            if st is None:
                continue
            zone, mode = self.served_zone(st)
            modes_changed |= st.served_mode is not mode
            st.served_mode = mode
            if zone is not st.served:
                st.served = zone
                changes[origin] = zone
        self._dirty.clear()
        if changes:
            self.publish(changes)
        elif modes_changed and self.on_mode_change is not None:
            self.on_mode_change()

    # ------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        now = self.clock()
        zones = []
        for origin, st in sorted(self.zones.items()):
            good = st.good
            zones.append({
                "zone": str(origin),
                "state": st.served_mode.value if st.served_mode else None,
                "auto": st.mode.value if st.mode else None,
                "forced": st.override.to_json() if st.override else None,
                "serial": st.served.serial if st.served is not None else None,
                "backend": st.backend,
                "healthy": st.mode is Mode.LIVE,
                "failures": st.failures,
                "successes": st.successes,
                "last_report_age": now - st.last_report_at if st.last_report_at else None,
                "last_error": st.last_error,
                "good_serial": good.zone.serial if good else None,
                "good_age": now - good.confirmed_at if good else None,
                "expire_in": (good.confirmed_at + good.soa_expire - now)
                if good and good.soa_expire else None,
                "expired": st.expired,
                "emergency_serial": st.emergency.serial if st.emergency is not None else None,
                # DNSSEC: when the first signature of the data served now expires.
                "signature_expiry": st.served.signature_expiry if st.served is not None
                else None,
                "rejected": {"serial": st.rejected.serial, "reason": st.rejected_reason}
                if st.rejected is not None else None,
                "why": st.last_event,
            })
        return {"version": 1, "time": now_iso(now), "zones": zones,
                "thresholds": {"fail_after": self.settings.fail_after,
                               "recover_after": self.settings.recover_after,
                               "probe_interval": self.settings.probe_interval,
                               "probe_timeout": self.settings.probe_timeout,
                               "stale_for": self.settings.stale_for}}
