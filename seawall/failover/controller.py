"""The failover controller: one explicit state machine per zone.

States (:mod:`.zonestate`; DESIGN.md, "The controller")::

              rejected / older version            fail_after failures
      live ◀──────────────────────────▶ held ───────────────────────▶ stale
       │  ▲   a version passes, accept            (last good usable)    │
       │  └───────── recover_after × damping good probes ───────────────┤
       │                                                                │ too old (stale_for),
       └── no usable last good ──▶ emergency ◀──────────────────────────┘ signatures expiring

Transitions, one place each:

* A **failure** (probe or transfer errs or times out): ``fail_after``
  consecutive ones leave live or held for stale, or for emergency when the
  last good version is not usable.
* A **rejection** is not a failure: the backend answered, with data the
  guard refused or older than the last good version. The zone is held: the
  last good version keeps serving; only a version that passes, or
  ``accept``, ends it. A rejection never leads to emergency by itself.
* A **good probe** in stale or emergency counts towards recovery; the zone
  goes back after ``recover_after`` consecutive ones, multiplied by the flap
  damping factor (:class:`.zonestate.Damping`).
* **Time** (``tick``): stale data older than ``stale_for`` (default: the
  zone's SOA EXPIRE, measured from the backend's last confirmation) and
  signed data whose first RRSIG expires within ``signature_margin`` go to
  emergency, if the emergency version can be trusted; overrides expire.

Durations run on the monotonic clock ``clock``; the wall clock ``wall`` is
only for DNSSEC validity, display and what survives a restart. The
controller is synchronous, driven by reports and clocks, so every
transition can be tested without a network; the asyncio side lives in
:mod:`seawall.failover.service`. Every change of what is served is handed to
``publish`` as one mapping, which the application turns into one swap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import dns.exception
import dns.name

from ..backends.base import Report, Version
from ..config import FailoverConfig, parse_protected
from ..errors import SeawallError
from ..zones.model import Zone
from ..zones.signatures import ds_digests
from .emergency import cap_ttls
from .guard import Limits, Verdict, judge
from .store import Snapshot, StateStore, now_iso
from .zonestate import EmergencyCheck, Good, Held, Mode, Override, ZoneState

__all__ = ["Controller", "ControlError", "Good", "Mode", "Override", "ZoneState"]

log = logging.getLogger("seawall.failover")

Publish = Callable[[Mapping[dns.name.Name, Zone | None]], None]

CONFIRM_PERSIST_EVERY = 10.0   # seconds between writes of a snapshot's confirmation time
CAUSES = ("probe", "guard", "operator", "drill", "startup", "backend", "signatures")


class ControlError(SeawallError):
    """An operator request the controller cannot carry out; the message says why."""


def stale_seconds(stale_for: float, soa_expire: int | None) -> float:
    """``stale_for`` in seconds for one zone: a negative value means its SOA EXPIRE."""
    if stale_for < 0:
        return float(soa_expire or 0)
    return float(stale_for)


class Controller:
    """Per-zone state machines, the guard, and what is served because of them."""

    def __init__(self, settings: FailoverConfig, publish: Publish,
                 store: StateStore | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.publish = publish
        # True while ``publish`` runs for a change that switches a zone between
        # live, stale and emergency (or to or from a forced state): the workers
        # serve such a change promptly, even before its answer tables are built.
        self.switching = False
        # Called when a zone's served mode changes but not its data (live to
        # stale without a TTL cap): the workers' per-zone counts follow modes.
        self.on_mode_change: Callable[[], None] | None = None
        self.store = store
        self.clock = clock
        self.wall = wall
        self.limits = Limits.of(settings.max_delete_ratio, settings.max_change_ratio,
                                [parse_protected(p) for p in settings.protect])
        self.zones: dict[dns.name.Name, ZoneState] = {}
        self._dirty: set[dns.name.Name] = set()
        self.event_counts: dict[tuple[str, str], int] = {}   # (kind, cause) -> events
        self.store_error: str | None = None   # the state directory cannot be written
        self.started = False
        # The DS set the parent publishes now, as ds_digests() tuples, when something
        # watches the parent (None: not known). A signed version whose KSKs match none
        # of it would be bogus for validators: it is held (RFC 4035 §5).
        self.parent_ds: Callable[[dns.name.Name], set[tuple[int, int, bytes]] | None] | None \
            = None
        # A fleet (seawall.fleet) may veto an automatic switch to emergency caused by
        # backend failures (quorum: the others must see the backend failing too), and
        # a version older than the fleet's newest (fencing). None: this server decides.
        self.emergency_vote: Callable[[dns.name.Name], str | None] | None = None
        self.version_fence: Callable[[dns.name.Name, Version], str | None] | None = None
        # Health-checked answers (seawall.health): the zone as served, given the zone
        # chosen by the state machine; returns the same object when nothing changes.
        # ``refilter`` re-publishes zones after the health view changed.
        self.answer_filter: Callable[[dns.name.Name, Zone], Zone] | None = None

    # ------------------------------------------------------------- clocks

    def wall_of(self, monotonic: float) -> float:
        """A monotonic time as wall-clock seconds (for display and persistence)."""
        return self.wall() - (self.clock() - monotonic)

    def deadline_of(self, wall: float) -> float:
        """A persisted wall-clock deadline on the monotonic clock (it may lie ahead)."""
        return self.clock() + (wall - self.wall())

    def monotonic_of(self, wall: float) -> float:
        """A persisted wall-clock time on the monotonic clock; never in the future."""
        return self.clock() - max(0.0, self.wall() - wall)

    # ------------------------------------------------------------ set-up

    def state(self, origin: dns.name.Name) -> ZoneState:
        st = self.zones.get(origin)
        if st is None:
            st = self.zones[origin] = ZoneState(origin)
            if self.started:
                st.unprotected = "no emergency version"
                log.warning("new zone without an emergency version: zone=%s", origin)
        return st

    def add_emergency(self, zones: Mapping[dns.name.Name, Zone],
                      checks: Mapping[dns.name.Name, EmergencyCheck] | None = None) -> None:
        """Emergency versions (TTLs capped) and how far each can be trusted."""
        cap = self.settings.emergency_ttl_max
        for origin, zone in zones.items():
            st = self.state(origin)
            st.emergency = cap_ttls(zone, cap)
            st.unprotected = None
            self._dirty.add(origin)
        for origin, check in (checks or {}).items():
            self.set_emergency_check(origin, check)

    def set_emergency_check(self, origin: dns.name.Name, check: EmergencyCheck) -> None:
        """Record an emergency file's check; its problems make the zone unprotected."""
        st = self.state(origin)
        before = st.unprotected
        st.emergency_check = check
        if check.problems:
            st.unprotected = "; ".join(check.problems)
        elif st.emergency is not None:
            st.unprotected = None
        else:
            st.unprotected = "no emergency version"
        if st.unprotected != before and (self.started or check.problems):
            if st.unprotected is not None:
                self._event(st, st.effective, st.effective, "startup" if not self.started
                            else "backend", f"UNPROTECTED: {st.unprotected}", self.clock(),
                            kind="unprotected", level=logging.ERROR)
            elif before is not None:
                self._event(st, st.effective, st.effective, "backend",
                            "protected again: the emergency version checks out",
                            self.clock(), kind="protected")

    def remove_emergency(self, origin: dns.name.Name, why: str) -> None:
        """The emergency file is gone or broken: keep serving, report the zone unprotected."""
        st = self.zones.get(origin)
        if st is None:
            return
        st.emergency = None
        self.set_emergency_check(origin, EmergencyCheck(problems=[why]))
        if st.effective is Mode.EMERGENCY and st.override is None:
            self._go(st, self._fallback(st, self.clock()), "backend", why, self.clock())
        self.flush()

    def restore(self, snapshots: Mapping[dns.name.Name, Snapshot],
                overrides: Mapping[str, Mapping[str, Any]]) -> None:
        """Last good data and forced states from the state directory (cold start)."""
        for origin, snap in snapshots.items():
            self.state(origin).good = Good(snap.zone, snap.tag, snap.source, snap.fetched_at,
                                           self.monotonic_of(snap.confirmed_at),
                                           snap.zone.soa[0].expire)
        for name, data in overrides.items():
            try:
                origin = dns.name.from_text(name)
                self.state(origin).override = Override.from_json(data, self.deadline_of)
            except (ValueError, KeyError, TypeError, dns.exception.DNSException) as exc:
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
                    self._store("snapshot not dropped", self.store.drop_snapshot, origin)
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

    def serve_restored(self) -> bool:
        """Cold start, before any backend is asked: serve the restored data at once.

        A zone the backend has not answered for yet serves what it would
        serve if the backend did not answer (DESIGN principle 1): its last
        good version while that is fresh (as stale serves it), or what an
        operator forced. Its state stays unknown (``None``) until the first
        report or ``finish_startup`` decides it, and no event is written:
        nothing has been judged yet. Emergency data is never served this
        way unless forced, since the backend may well be fine. Publishes only when every
        zone known now has such a version, and returns whether it did; else
        nothing is served until the backends have been asked.
        """
        now = self.clock()
        changes: dict[dns.name.Name, Zone | None] = {}
        for origin, st in sorted(self.zones.items()):
            if st.mode is not None:
                continue
            if st.override is not None:
                zone, _ = self.served_zone(st)
            elif self._fresh(st, now):
                zone, _ = self._served_as(st, Mode.STALE)
            else:
                zone = None
            if zone is None:
                return False
            if self.answer_filter is not None:
                zone = self.answer_filter(origin, zone)
            changes[origin] = zone
        if not changes:
            return False
        for origin, zone in changes.items():
            # What flush compares with: the same version later is no swap.
            self.zones[origin].served = zone
        self.publish(changes)
        return True

    def check_protected(self, require: bool) -> list[str]:
        """Served zones without an emergency file (an error when ``require``)."""
        missing = [str(o) for o, st in sorted(self.zones.items())
                   if st.emergency is None and st.emergency_check is None]
        for name in missing:
            (log.error if require else log.warning)("no emergency zone: zone=%s", name)
        for origin, st in sorted(self.zones.items()):
            if st.emergency is None and not st.unprotected:
                st.unprotected = "no emergency version"
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
        cause = "drill" if report.drill else "probe"
        if report.removed:
            self._removed(st, now, "the backend no longer has the zone")
        elif not report.ok:
            self._failure(st, report.error or "backend failed", cause, now)
        elif report.version is not None:
            self._judge(st, report.version, now, "drill" if report.drill else "guard",
                        report.verdict)
        elif st.held is not None and report.tag == st.held.version.tag:
            self._healthy(st, now, cause)   # still offering the held version: still held
        elif st.good is not None:
            if st.held is not None and report.tag == st.good.tag:
                st.held = None              # back to the version served: nothing held now
            self._confirm(st, now)
            self._healthy(st, now, cause)

    def unseen_version(self, report: Report) -> bool:
        """Does the backend hold a version that was neither taken nor rejected here?"""
        st = self.zones.get(report.origin)
        if st is None or not report.ok or report.version is not None or report.tag is None:
            return False
        if st.held is not None and st.held.version.tag == report.tag:
            return False
        return st.good is None or st.good.tag != report.tag

    def prejudge(self, report: Report) -> tuple[Zone | None, Verdict] | None:
        """The guard's verdict on a report's version against the data held now.

        Safe to call from a thread: it only reads immutable zones. ``_judge``
        uses it only if the last good data is still the same when the report
        lands (another version may have been taken meanwhile).
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
        if verdict.accepted and not verdict.unchanged:
            verdict = self._against_parent(st.origin, version, verdict)
        if verdict.accepted and not verdict.unchanged and self.version_fence is not None:
            why = self.version_fence(st.origin, version)
            if why is not None:
                verdict = Verdict(False, verdict.reasons + [why], verdict.diff, older=True)
        if verdict.unchanged and st.good is not None:
            st.good.tag = version.tag
            st.held = None
            self._confirm(st, now)
        elif not verdict.accepted:
            self._hold(st, version, verdict, cause, now)
        else:
            assert version.zone is not None
            self._take(st, version, now)
        self._healthy(st, now, cause)

    def _against_parent(self, origin: dns.name.Name, version: Version,
                        verdict: Verdict) -> Verdict:
        """Hold a signed version that the parent's DS set does not lead to."""
        zone = version.zone
        if self.parent_ds is None or zone is None or not zone.is_signed:
            return verdict
        published = self.parent_ds(origin)
        if not published or published & ds_digests(zone):
            return verdict
        return Verdict(False, verdict.reasons + [
            f"none of its KSKs matches the {len(published)} DS record(s) the parent "
            "publishes now (validators would see it as bogus)"], verdict.diff)

    def _hold(self, st: ZoneState, version: Version, verdict: Verdict, cause: str,
              now: float) -> None:
        """The backend answered with a version the guard refuses: keep the last good one."""
        first = st.held is None or st.held.version.tag != version.tag
        since = now if st.held is None else st.held.since
        st.held = Held(version, verdict.reason, since, verdict.older)
        if first:
            what = "older data" if verdict.older else "rejected"
            self._event(st, st.effective, st.effective, cause, f"{what}: {verdict.reason}",
                        now, serial_to=version.serial, kind="rejected")

    def _take(self, st: ZoneState, version: Version, now: float, cause: str = "probe",
              reason: str | None = None) -> None:
        """Make ``version`` the last good data (served at once if live or held)."""
        assert version.zone is not None
        before = st.good.zone.serial if st.good is not None else None
        st.good = Good(version.zone, version.tag, version.source, version.fetched_at, now,
                       version.soa_expire if version.soa_expire is not None
                       else version.zone.soa[0].expire)
        st.held = None
        st.expired = False
        st.persisted_at = now
        if self.store is not None:
            self._store("snapshot not written", self.store.save_snapshot, version.zone,
                        fetched_at=version.fetched_at, confirmed_at=self.wall(),
                        source=version.source, tag=version.tag)
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
            self._store("snapshot not touched", self.store.touch_snapshot, st.origin,
                        fetched_at=good.fetched_at, confirmed_at=self.wall(),
                        source=good.source, tag=good.tag, serial=good.zone.serial)

    def _removed(self, st: ZoneState, now: float, reason: str, cause: str = "backend") -> None:
        """The zone is gone from its backend for good: drop its last good data."""
        st.good = None
        st.held = None
        if self.store is not None:
            self._store("snapshot not dropped", self.store.drop_snapshot, st.origin)
        if st.emergency is not None:
            self._go(st, Mode.EMERGENCY, cause, reason, now)
        else:
            self._event(st, st.effective, None, cause, reason, now, kind="removed")
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
        elif st.mode.healthy and st.failures >= self.settings.fail_after:
            self._go(st, self._fallback(st, now), cause,
                     f"{st.failures} consecutive failures (fail_after="
                     f"{self.settings.fail_after}); last: {reason}", now)

    def _healthy(self, st: ZoneState, now: float, cause: str) -> None:
        """The backend answered (with new, the same, or held-back data)."""
        st.failures = 0
        st.successes += 1
        st.last_error = None
        target = Mode.HELD if st.held is not None else Mode.LIVE
        if st.good is None or self._expiring(st.good.zone):
            # Nothing good to serve as live: stay where we are (or start on the fallback).
            if st.mode is None:
                self._go(st, self._fallback(st, now), "startup",
                         self._why_no_good(st), now)
            return
        if st.mode is None:
            self._go(st, target, "startup", "the backend answered", now)
        elif st.mode.healthy:
            if st.mode is not target:
                why = (f"held: {st.held.reason}" if st.held is not None
                       else "a version passed the guard")
                self._go(st, target, "guard" if cause == "probe" else cause, why, now)
        elif st.served is None:
            # Nothing was served at all: no hysteresis protects an empty answer.
            self._go(st, target, cause, "first data from the backend", now)
        else:
            needed = self.recover_needed(st, now)
            if st.successes >= needed:
                damped = "" if needed == self.settings.recover_after else \
                    f" × flap damping {needed // self.settings.recover_after}"
                self._go(st, target, cause, f"{st.successes} consecutive successes "
                                            f"(recover_after={self.settings.recover_after}"
                                            f"{damped})", now)

    def recover_needed(self, st: ZoneState, now: float) -> int:
        """Good probes a zone in stale or emergency needs to go back (with damping)."""
        factor = st.damping.factor(now, float(self.settings.flap_half_life),
                                   self.settings.flap_max_factor)
        return self.settings.recover_after * factor

    def _expiring(self, zone: Zone | None) -> bool:
        """Signed data whose first RRSIG expires within the margin (wall clock: RFC 4034)."""
        if zone is None or not zone.is_signed:
            return False
        first = zone.signature_expiry
        return first is not None and first - self.wall() < float(self.settings.signature_margin)

    def _fresh(self, st: ZoneState, now: float) -> bool:
        """The last good data is young enough to serve while the backend fails."""
        good = st.good
        if good is None or self._expiring(good.zone):
            return False
        return now - good.confirmed_at < stale_seconds(self.settings.stale_for, good.soa_expire)

    def _emergency_usable(self, st: ZoneState) -> bool:
        return st.protected and not self._expiring(st.emergency)

    def _fallback(self, st: ZoneState, now: float) -> Mode:
        """Where a failing zone goes: stale while its last good data is usable."""
        if self._fresh(st, now):
            return Mode.STALE
        if self._emergency_usable(st) and self._fleet_agrees(st):
            return Mode.EMERGENCY
        if st.good is not None:
            return Mode.STALE      # fail static: old data beats untrustworthy data
        return Mode.EMERGENCY      # nothing else: whatever emergency version there is

    def _fleet_agrees(self, st: ZoneState) -> bool:
        """May this zone leave good data for emergency? A fleet's quorum may say no.

        Only the automatic way there is voted on, and only while there is good
        data to keep serving; without good data, emergency is all there is.
        """
        if self.emergency_vote is None or st.good is None:
            return True
        why = self.emergency_vote(st.origin)
        if why is not None and st.last_error != why:
            log.info("emergency held back: zone=%s reason=%s", st.origin, why)
        return why is None

    def _why_no_good(self, st: ZoneState) -> str:
        if st.good is None:
            return "no last good version"
        return (f"the last good version's signatures expire at "
                f"{now_iso(st.good.zone.signature_expiry)}")

    # ------------------------------------------------------------- timers

    def tick(self) -> None:
        """Time-driven transitions: data too old, signatures running out, overrides expiring."""
        now = self.clock()
        for st in list(self.zones.values()):
            override = st.override
            if override is not None and override.until is not None and now >= override.until:
                self._set_override(st, None, override.by, f"override expired ({override.reason})",
                                   now)
            self._tick_signatures(st, now)
            if st.mode is Mode.STALE and not self._fresh(st, now) \
                    and self._emergency_usable(st) and self._fleet_agrees(st):
                good = st.good
                age = now - good.confirmed_at if good else 0.0
                horizon = stale_seconds(self.settings.stale_for, good.soa_expire if good else 0)
                self._go(st, Mode.EMERGENCY, "probe",
                         f"last good data is {age:.0f}s old (stale_for={horizon:.0f}s)", now)
            good = st.good
            if good is not None and good.soa_expire and not st.expired \
                    and st.mode is not None and not st.mode.healthy \
                    and now - good.confirmed_at > good.soa_expire:
                st.expired = True
                self._event(st, st.effective, st.effective, "probe",
                            f"EXPIRED: the backend has not confirmed serial {good.zone.serial} "
                            f"for {now - good.confirmed_at:.0f}s (SOA EXPIRE "
                            f"{good.soa_expire}s)", now, kind="expired", level=logging.ERROR)
        self.flush()

    def _tick_signatures(self, st: ZoneState, now: float) -> None:
        """A stopped signer: leave for emergency before resolvers see bogus data (RFC 4035 §5.3)."""
        good = st.good
        expiring = good is not None and self._expiring(good.zone)
        if expiring and not st.signatures_expiring:
            assert good is not None
            first = good.zone.signature_expiry or 0
            st.signatures_expiring = True
            self._event(st, st.effective, st.effective, "signatures",
                        f"the first RRSIG of serial {good.zone.serial} expires at "
                        f"{now_iso(first)} (in {first - self.wall():.0f}s, signature_margin="
                        f"{float(self.settings.signature_margin):g}s) and the backend offers "
                        "nothing newer and valid", now, kind="signatures", level=logging.ERROR)
        elif not expiring:
            st.signatures_expiring = False
        if expiring and st.mode is not None and st.mode is not Mode.EMERGENCY:
            if self._emergency_usable(st):
                self._go(st, Mode.EMERGENCY, "signatures",
                         f"the last good version's signatures expire at "
                         f"{now_iso(good.zone.signature_expiry)}; the emergency version's "
                         "are valid", now)

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
        """Force zones (None: all) to live or emergency until released or ``until`` (wall)."""
        mode = Mode(mode)
        if mode not in (Mode.LIVE, Mode.EMERGENCY):
            raise ControlError(f"a zone can be forced to live or emergency, not {mode.value}")
        targets = self.targets(zones)
        for st in targets:
            if mode is Mode.EMERGENCY and st.emergency is None:
                raise ControlError(f"zone {st.origin} has no emergency zone"
                                   + (f" ({st.unprotected})" if st.unprotected else ""))
            if mode is Mode.LIVE and st.good is None:
                raise ControlError(f"zone {st.origin} has no live data to serve")
        now = self.clock()
        # The deadline moves to the monotonic clock now: a later wall-clock step cannot move it.
        deadline = now + max(0.0, until - self.wall()) if until is not None else None
        for st in targets:
            self._set_override(st, Override(mode, reason, by, self.wall(), deadline), by,
                               reason, now)
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
        """Serve the version the guard held back, on an operator's word; its serial."""
        st = self.targets([zone])[0]
        version = st.rejected
        if version is None:
            raise ControlError(f"zone {st.origin} has no held version to accept")
        if version.zone is None:
            raise ControlError(f"zone {st.origin}: the held version fails validation and "
                               f"cannot be served ({st.rejected_reason})")
        now = self.clock()
        reason = f"accepted by {by}: {st.rejected_reason}"
        self._take(st, version, now, cause="operator", reason=reason)
        st.failures, st.successes = 0, self.recover_needed(st, now)
        if st.mode is not Mode.LIVE:
            self._go(st, Mode.LIVE, "operator", reason, now)
        self.flush()
        return version.zone.serial

    def remove(self, zone: str, *, by: str = "operator") -> str:
        """Drop a zone's live data now (its backend no longer has it), on an operator's word."""
        st = self.targets([zone])[0]
        self._removed(st, self.clock(), f"removed by {by}", cause="operator")
        self.flush()
        return str(st.origin)

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
        until = override.until if override is not None else None
        self._event(st, before, st.effective, cause, f"{what}: {reason}", now,
                    kind="override", until=self.wall_of(until) if until is not None else None)
        self._save_overrides()
        self._dirty.add(st.origin)

    def _save_overrides(self) -> None:
        if self.store is None:
            return
        data = {str(o): st.override.to_json(self.wall_of) for o, st in self.zones.items()
                if st.override is not None}
        self._store("overrides not saved", self.store.save_overrides, data)

    def _store(self, what: str, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Write to the state directory; a full or read-only one never stops serving."""
        try:
            write(*args, **kwargs)
        except OSError as exc:
            if self.store_error is None:
                log.error("state directory: %s: reason=%s", what, exc)
            self.store_error = f"{what}: {exc.strerror or exc}"
        else:
            self.store_error = None

    # ------------------------------------------------------ transitions

    def _go(self, st: ZoneState, mode: Mode, cause: str, reason: str, now: float) -> None:
        before = st.effective
        previous = st.mode
        if mode is Mode.EMERGENCY and st.emergency is None:
            mode = Mode.STALE
            reason += "; no emergency zone, serving the last good data"
        st.mode = mode
        if mode.healthy:
            st.successes = 0
        if previous is not None and previous.healthy and not mode.healthy:
            st.damping.bounce(now, float(self.settings.flap_half_life))
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
        wall = self.wall_of(now)
        event = {"time": now_iso(wall), "ts": wall, "zone": str(st.origin), "kind": kind,
                 "from": before.value if before else None, "to": after.value if after else None,
                 "cause": cause, "reason": reason,
                 "serial_from": serial_from if serial_from is not None
                 else (served.serial if served is not None else None),
                 "serial_to": serial_to, "forced": st.override is not None, **extra}
        st.last_event = event
        self.event_counts[(kind, cause)] = self.event_counts.get((kind, cause), 0) + 1
        if self.store is not None:
            self._store("event not written", self.store.append_event, event)
        log.log(level if kind != "rejected" else logging.WARNING,
                "%s: zone=%s from=%s to=%s cause=%s reason=%s", kind, st.origin,
                event["from"], event["to"], cause, reason)

    # ----------------------------------------------------------- serving

    def served_zone(self, st: ZoneState) -> tuple[Zone | None, Mode | None]:
        """What a zone in its state serves: data and the mode it really comes from."""
        return self._served_as(st, st.effective)

    def _served_as(self, st: ZoneState, mode: Mode | None) -> tuple[Zone | None, Mode | None]:
        """What a zone serves in ``mode`` (its caps applied)."""
        if mode is None:
            return None, None
        good = st.good
        if mode is Mode.EMERGENCY and st.emergency is not None:
            return st.emergency, Mode.EMERGENCY
        if good is None:
            return (st.emergency, Mode.EMERGENCY) if st.emergency is not None else (None, None)
        if mode.healthy:
            return good.zone, mode
        cap = self.settings.stale_ttl_max
        if cap is None:
            return good.zone, Mode.STALE
        if st._capped is None or st._capped[0] != id(good.zone):
            st._capped = (id(good.zone), cap_ttls(good.zone, cap))
        return st._capped[1], Mode.STALE

    def refilter(self, origins: Iterable[dns.name.Name]) -> None:
        """The answer filter's view changed for these zones: publish what they serve now."""
        self._dirty.update(o for o in origins if o in self.zones)
        self.flush()

    def flush(self) -> None:
        """Publish every zone whose served data changed, as one mapping (one swap)."""
        changes: dict[dns.name.Name, Zone | None] = {}
        modes_changed = urgent = False
        for origin in sorted(self._dirty):
            st = self.zones.get(origin)
            if st is None:
                continue
            zone, mode = self.served_zone(st)
            if zone is not None and self.answer_filter is not None:
                zone = self.answer_filter(origin, zone)
            before = st.served_mode
            if before is not mode:
                modes_changed = True
                if before is not None:
                    st.switches += 1
            st.served_mode = mode
            if zone is not st.served:
                st.served = zone
                changes[origin] = zone
                urgent = urgent or (before is not None and before is not mode)
        self._dirty.clear()
        if changes:
            self.switching = urgent
            try:
                self.publish(changes)
            finally:
                self.switching = False
        elif modes_changed and self.on_mode_change is not None:
            self.on_mode_change()

    # ------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        now = self.clock()
        half_life = float(self.settings.flap_half_life)
        zones = []
        for origin, st in sorted(self.zones.items()):
            good = st.good
            held = st.held
            horizon = stale_seconds(self.settings.stale_for, good.soa_expire) if good else None
            check = st.emergency_check
            zones.append({
                "zone": str(origin),
                "state": st.served_mode.value if st.served_mode else None,
                "auto": st.mode.value if st.mode else None,
                "forced": st.override.to_json(self.wall_of) if st.override else None,
                "serial": st.served.serial if st.served is not None else None,
                "backend": st.backend,
                "healthy": st.mode is not None and st.mode.healthy,
                "failures": st.failures,
                "successes": st.successes,
                "recover_needed": self.recover_needed(st, now),
                "last_report_age": now - st.last_report_at if st.last_report_at else None,
                "last_error": st.last_error,
                "good_serial": good.zone.serial if good else None,
                "good_age": now - good.confirmed_at if good else None,
                "stale_for": horizon,
                "expire_in": (good.confirmed_at + good.soa_expire - now)
                if good and good.soa_expire else None,
                "expired": st.expired,
                "emergency_serial": st.emergency.serial if st.emergency is not None else None,
                "protected": st.protected,
                "unprotected": st.unprotected,
                "emergency_check": check.to_json() if check is not None else None,
                # DNSSEC: when the first signature of the data served now expires.
                "signature_expiry": st.served.signature_expiry if st.served is not None
                else None,
                "signatures_expiring": st.signatures_expiring,
                "held": {"serial": held.version.serial, "reason": held.reason,
                         "for": now - held.since, "older": held.older}
                if held is not None else None,
                "rejected": {"serial": held.version.serial, "reason": held.reason}
                if held is not None else None,
                "damping": {"points": round(st.damping.now(now, half_life), 3),
                            "episodes": st.damping.episodes,
                            "factor": self.recover_needed(st, now)
                            // self.settings.recover_after},
                "switches": st.switches,
                "why": st.last_event,
            })
        stale_for = self.settings.stale_for
        return {"version": 1, "time": now_iso(self.wall()), "zones": zones,
                "state_dir_error": self.store_error,
                "thresholds": {"fail_after": self.settings.fail_after,
                               "recover_after": self.settings.recover_after,
                               "probe_interval": self.settings.probe_interval,
                               "probe_timeout": self.settings.probe_timeout,
                               "stale_for": "expire" if stale_for < 0 else float(stale_for),
                               "signature_margin": float(self.settings.signature_margin),
                               "flap_half_life": half_life}}
