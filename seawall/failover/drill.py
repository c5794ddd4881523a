"""Chaos drills, the server's side: preflight, plan, the fault with its deadline, the record.

A drill injects one of the backend faults (``seawall.backends.base.FAULTS``)
into the client of the backend that serves the drilled zones, so the
detection, the guard and the switch run the same code as a real failure
(DESIGN principle 4). The server holds the deadline: the fault carries its
wall-clock ``until`` and the failover service removes it when it passes,
whoever started the drill and whatever happened to them since. Then the
drill watches the recovery for a bounded time and ends.

Scenarios::

    backend-down     every look at the backend is refused
    backend-hang     every look hangs until probe_timeout
    backend-corrupt  the backend offers data that fails validation (the guard rejects it)
    backend-wipe     the backend offers the zone with most records deleted (the guard rejects it)
    flap             the backend alternates down and up, each phase
                     fail_after × max(probe_interval, probe_timeout) + half of that long

Before anything changes, a preflight refuses a drill whose zones are not
all served live, have no emergency version, have an emergency version whose
DNSSEC signatures expire before the drill ends, or whose duration is
shorter than detection needs; ``dry_run`` returns the plan (zones, expected
states, objectives, probes) and changes nothing. While a drill runs (and
until its recovery watch ends) another one is refused.

Every probe the CLI sends is judged against ``expect``: for each data
source a zone can be served from (live, stale, emergency) the answer the
answer engine gives from that data, as a signature of the rcode and the
answer and authority sections without TTLs (:func:`signature`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from ..backends.base import FAULTS, Fault
from ..dns.engine import resolve
from ..zones.model import Zone
from ..zones.signatures import earliest_expiry
from ..zones.zoneset import ZoneSet
from .controller import ControlError, Mode
from .emergency import cap_ttls
from .store import now_iso

log = logging.getLogger("seawall.failover.drill")

SCENARIOS = FAULTS
WATCH_EVERY = 0.05          # seconds between looks at the controller during a drill
PROBES_PER_ZONE = 3
MAX_PROBES = 50
PROBE_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "SOA")
MAX_DURATION = 3600.0


# --------------------------------------------------------------- expectations

def signature(zone_origin: dns.name.Name, rcode: int, answer: list[dns.rrset.RRset],
              authority: list[dns.rrset.RRset]) -> str:
    """What a probe's answer is compared on: rcode, answer and authority RRs, without TTLs.

    Only records owned inside the drilled zone count (a CNAME chain into
    another served zone depends on that zone's state, not this one's).
    """
    def lines(section: list[dns.rrset.RRset]) -> list[str]:
        out = []
        for rrset in section:
            if not rrset.name.is_subdomain(zone_origin):
                continue
            for rdata in rrset:
                out.append(f"{rrset.name.to_text().lower()} "
                           f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text().lower()}")
        return sorted(out)

    return " | ".join([dns.rcode.to_text(rcode), "; ".join(lines(answer)),
                       "; ".join(lines(authority))])


def expected(zone: Zone, qname: dns.name.Name, qtype: int) -> str:
    answer = resolve(ZoneSet([zone]), qname, qtype)
    return signature(zone.origin, answer.rcode, answer.answer, answer.authority)


def sources(controller: Any, st: Any) -> dict[str, Zone]:
    """The data each state of a zone serves: live, stale (TTL cap) and emergency."""
    out: dict[str, Zone] = {}
    if st.good is not None:
        out["live"] = st.good.zone
        out["stale"] = cap_ttls(st.good.zone, controller.settings.stale_ttl_max)
    if st.emergency is not None:
        out["emergency"] = st.emergency
    return out


def choose_probes(controller: Any, st: Any, count: int = PROBES_PER_ZONE) -> list[tuple[str, str]]:
    """A few names of the zone, those whose live and emergency answers differ first."""
    data = sources(controller, st)
    live, emergency = data.get("live"), data.get("emergency")
    if live is None or emergency is None:
        return [(st.origin.to_text(), "SOA")]
    candidates: list[tuple[str, str]] = []
    for rrset in list(emergency.rrsets())[:500]:
        type_text = dns.rdatatype.to_text(rrset.rdtype)
        if type_text in PROBE_TYPES:
            candidates.append((rrset.name.to_text(), type_text))
    differing, same = [], []
    for name, type_text in candidates:
        qname, qtype = dns.name.from_text(name), dns.rdatatype.from_text(type_text)
        if expected(live, qname, qtype) != expected(emergency, qname, qtype):
            differing.append((name, type_text))
        else:
            same.append((name, type_text))
    apex_soa = (st.origin.to_text(), "SOA")
    chosen = differing[:count]
    for pick in [apex_soa] + same:
        if len(chosen) >= count:
            break
        if pick not in chosen:
            chosen.append(pick)
    return chosen


# ----------------------------------------------------------------- the plan

@dataclass
class Timing:
    """What the thresholds in force let a drill expect."""

    interval: float
    timeout: float
    fail_after: int
    recover_after: int
    stale_for: float

    @property
    def cycle(self) -> float:
        """How long one failed look at the backend takes at most."""
        return max(self.interval, self.timeout)

    @property
    def margin(self) -> float:
        return 0.5 + 0.25 * self.interval

    @property
    def detect_within(self) -> float:
        """fail_after × interval + timeout, plus a margin (the issue's objective)."""
        return self.fail_after * self.cycle + self.timeout + self.margin

    @property
    def recover_within(self) -> float:
        """After the fault is gone: an in-flight hang, then recover_after good looks."""
        return self.recover_after * self.interval + self.timeout + self.cycle + self.margin

    @property
    def flap_period(self) -> float:
        return self.fail_after * self.cycle + self.cycle / 2


def timing(settings: Any) -> Timing:
    return Timing(float(settings.probe_interval), float(settings.probe_timeout),
                  int(settings.fail_after), int(settings.recover_after),
                  float(settings.stale_for))


def expected_states(t: Timing, scenario: str, duration: float) -> list[str]:
    """The states a drilled zone should pass through."""
    if t.stale_for <= 0:
        path = ["live", "emergency"]
    elif t.stale_for < duration - t.detect_within:
        path = ["live", "stale", "emergency"]
    else:
        path = ["live", "stale"]
    return path + ["live"]


def flap_holds(t: Timing) -> bool:
    """Does an up phase of a flap stay shorter than recover_after good looks?"""
    return t.recover_after * t.interval > t.flap_period + t.interval


def make_plan(service: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Preflight and plan of a drill; ControlError lists every reason to refuse."""
    controller = service.controller
    scenario = str(request.get("scenario", ""))
    if scenario not in SCENARIOS:
        raise ControlError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    duration = float(request.get("duration") or 30)
    if not 0 < duration <= MAX_DURATION:
        raise ControlError(f"duration {duration:g}s must be within 0..{MAX_DURATION:g}s")
    names = request.get("zones")
    if names is None and not request.get("all"):
        raise ControlError("name the zones to drill, or say all")
    states = controller._targets(None if names is None else [str(n) for n in names])
    if not states:
        raise ControlError("no zone is served")
    t = timing(controller.settings)
    now = time.time()
    fault_until = now + duration
    ends_by = fault_until + t.recover_within
    problems: list[str] = []
    if duration < t.detect_within:
        problems.append(f"--duration {duration:g}s is shorter than detection may take "
                        f"({t.detect_within:.1f}s: fail_after={t.fail_after} × "
                        f"{t.cycle:g}s + timeout {t.timeout:g}s + margin)")
    if any(b.faults.current is not None for b in service.backends):
        problems.append("a fault is already injected into a backend")
    zones = []
    for st in states:
        name = str(st.origin)
        if st.emergency is None:
            problems.append(f"{name}: no valid emergency zone (add it to the emergency "
                            "directory; the drill would leave the zone on stale data)")
        else:
            expiry = earliest_expiry(st.emergency)
            if expiry is not None and expiry < ends_by:
                problems.append(f"{name}: the emergency zone's signatures expire at "
                                f"{now_iso(expiry)}, before the drill ends ({now_iso(ends_by)})")
        if st.override is not None:
            problems.append(f"{name}: forced {st.override.mode.value} by {st.override.by} "
                            f"({st.override.reason}); release it first")
        elif st.served_mode is not Mode.LIVE:
            state = st.served_mode.value if st.served_mode else "nothing"
            problems.append(f"{name}: serving {state}, not live; a drill starts from live")
        if st.good is None:
            problems.append(f"{name}: no live data")
        zones.append(st)
    if problems:
        raise ControlError("preflight refused the drill: " + "; ".join(problems))
    probes = _probes(controller, zones, request.get("probes") or [])
    path = expected_states(t, scenario, duration)
    objectives = [
        "no probe lost (no answer within the probe timeout)",
        "no wrong answer (each answer is the data of the state in force when it was sent)",
        f"detection (leaving live) within {t.detect_within:.1f}s of the fault "
        f"(fail_after × interval + timeout + margin)",
        f"every zone reaches {path[-2]} while the fault lasts",
        f"recovery to live within {t.recover_within:.1f}s of the fault's removal",
    ]
    if scenario == "flap" and flap_holds(t):
        objectives.append("no flapping: at most one switch away from live per zone")
    return {"scenario": scenario, "zones": [str(st.origin) for st in zones],
            "duration": duration, "thresholds": controller.status()["thresholds"],
            "expected_states": {str(st.origin): path for st in zones},
            "detect_within": t.detect_within, "recover_within": t.recover_within,
            "flap_period": t.flap_period if scenario == "flap" else None,
            "flap_holds": flap_holds(t) if scenario == "flap" else None,
            "objectives": objectives, "probes": probes,
            "backends": sorted({st.backend for st in zones if st.backend})}


def _probes(controller: Any, zones: list[Any], given: list[Any]) -> list[dict[str, Any]]:
    picks: list[tuple[Any, str, str]] = []
    for item in given:
        text = str(item)
        name, _, type_text = text.partition("/")
        type_text = (type_text or "A").upper()
        try:
            qname = dns.name.from_text(name)
            dns.rdatatype.from_text(type_text)
        except Exception as exc:   # dnspython raises several kinds for bad text
            raise ControlError(f"bad probe {text!r} (NAME/TYPE): {exc}") from None
        owners = [st for st in zones if qname.is_subdomain(st.origin)]
        if not owners:
            raise ControlError(f"probe {text!r} is in none of the drilled zones")
        owner = max(owners, key=lambda st: len(st.origin))
        picks.append((owner, qname.to_text(), type_text))
    if not picks:
        for st in zones:
            picks += [(st, n, ty) for n, ty in choose_probes(controller, st)]
    out = []
    for st, name, type_text in picks[:MAX_PROBES]:
        qname, qtype = dns.name.from_text(name), dns.rdatatype.from_text(type_text)
        expect = {source: expected(zone, qname, qtype)
                  for source, zone in sources(controller, st).items()}
        out.append({"zone": str(st.origin), "name": name, "type": type_text, "expect": expect,
                    "distinct": expect.get("live") != expect.get("emergency")})
    return out


# ------------------------------------------------------------------ the run

@dataclass
class DrillRun:
    """One drill as the server records it; times are wall-clock seconds."""

    id: str
    plan: dict[str, Any]
    by: str
    started: float
    fault_until: float
    fault: Fault
    events_offset: int
    phase: str = "fault"                 # fault, recovering, done
    fault_removed_at: float | None = None
    recover_by: float | None = None
    ended_at: float | None = None
    stopped_by: str | None = None
    first_failure: dict[str, float] = field(default_factory=dict)
    first_failure_exact: dict[str, bool] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    recovered: dict[str, float] = field(default_factory=dict)

    def to_json(self, events_from: int = 0) -> dict[str, Any]:
        return {"id": self.id, "scenario": self.plan["scenario"], "zones": self.plan["zones"],
                "by": self.by, "phase": self.phase, "started": self.started,
                "fault_until": self.fault_until, "fault_removed_at": self.fault_removed_at,
                "recover_by": self.recover_by, "ended_at": self.ended_at,
                "stopped_by": self.stopped_by, "first_failure": self.first_failure,
                "first_failure_exact": self.first_failure_exact,
                "recovered": self.recovered, "events": self.events[events_from:],
                "events_total": len(self.events), "now": time.time()}


class DrillManager:
    """Runs at most one drill at a time for the control channel."""

    def __init__(self, service: Any, listen: Any) -> None:
        self.service = service
        self.listen = listen
        self.current: DrillRun | None = None
        self._task: asyncio.Task | None = None

    def summary(self) -> dict[str, Any] | None:
        run = self.current
        if run is None:
            return None
        return {k: v for k, v in run.to_json().items() if k != "events"}

    def start(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        run = self.current
        if run is not None and run.phase != "done":
            raise ControlError(f"a drill is already running: {run.id} ({run.plan['scenario']} "
                               f"on {', '.join(run.plan['zones'])}, by {run.by}, fault until "
                               f"{now_iso(run.fault_until)}); stop it with drill-stop")
        plan = make_plan(self.service, request)
        if request.get("dry_run"):
            return {"plan": plan, "dry_run": True, "listen": self.listen()}
        controller = self.service.controller
        t = timing(controller.settings)
        origins = frozenset(dns.name.from_text(z) for z in plan["zones"])
        started = time.time()
        fault = Fault(plan["scenario"], zones=origins, until=started + plan["duration"],
                      period=t.flap_period)
        offset = _size(self.service.store.events_path)
        self.service.inject_fault(fault, reason=f"drill by {who}")
        run = DrillRun(secrets.token_hex(4), plan, who, started, fault.until or started,
                       fault, offset)
        self.current = run
        self._task = asyncio.create_task(self._watch(run))
        log.info("drill started: id=%s scenario=%s zones=%s duration=%gs by=%s", run.id,
                 plan["scenario"], ",".join(plan["zones"]), plan["duration"], who)
        return {"plan": plan, "drill": run.to_json(), "listen": self.listen()}

    def status(self, drill_id: Any = None, events_from: int = 0) -> dict[str, Any] | None:
        run = self.current
        if run is None or (drill_id and drill_id != run.id):
            raise ControlError(f"no drill {drill_id}" if drill_id else "no drill has run")
        data = run.to_json(events_from)
        data["states"] = self._states(run)
        return data

    async def stop_drill(self, drill_id: Any, who: str) -> dict[str, Any] | None:
        run = self.current
        if run is None or run.phase == "done" or (drill_id and drill_id != run.id):
            raise ControlError("no drill is running")
        if run.phase == "fault":
            run.stopped_by = who
            self._clear(run, f"drill stopped by {who}")
        return self.status(run.id)

    async def stop(self) -> None:
        """Server shutdown: remove the fault now, stop watching."""
        run = self.current
        if run is not None and run.phase == "fault":
            self._clear(run, "server stopping")
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _clear(self, run: DrillRun, reason: str) -> None:
        for backend in self.service.backends:
            if backend.faults.current is run.fault:
                backend.faults.clear()
                self.service._note_fault(backend, run.fault,
                                         f"fault removed: {run.fault.kind} ({reason})")

    def _states(self, run: DrillRun) -> dict[str, Any]:
        out = {}
        for name in run.plan["zones"]:
            st = self.service.controller.zones.get(dns.name.from_text(name))
            if st is None:
                continue
            out[name] = {"state": st.served_mode.value if st.served_mode else None,
                         "forced": st.override is not None, "failures": st.failures,
                         "successes": st.successes}
        return out

    async def _watch(self, run: DrillRun) -> None:
        """Record the drill until the zones are back (or the recovery window passed)."""
        controller = self.service.controller
        origins = {dns.name.from_text(z): z for z in run.plan["zones"]}
        recover_within = float(run.plan["recover_within"])
        hard_stop = run.fault_until + recover_within + 5.0
        try:
            while run.phase != "done":
                now = time.time()
                self._read_events(run, set(origins.values()))
                for origin, name in origins.items():
                    st = controller.zones.get(origin)
                    if st is None:
                        continue
                    if name not in run.first_failure and st.failures >= 1 \
                            and run.phase == "fault":
                        exact = st.failures == 1 and st.last_report_at is not None
                        run.first_failure[name] = st.last_report_at if exact else now
                        run.first_failure_exact[name] = exact
                    if run.phase == "recovering" and name not in run.recovered \
                            and st.served_mode is Mode.LIVE and st.override is None:
                        run.recovered[name] = now
                if run.phase == "fault" and not any(b.faults.current is run.fault
                                                    for b in self.service.backends):
                    removed = [e["ts"] for e in run.events
                               if e.get("kind") == "fault" and "removed" in e.get("reason", "")]
                    run.fault_removed_at = min(removed) if removed else now
                    run.recover_by = run.fault_removed_at + recover_within
                    run.phase = "recovering"
                    continue
                if run.phase == "recovering" and (len(run.recovered) == len(origins)
                                                  or now >= (run.recover_by or now)):
                    self._read_events(run, set(origins.values()))
                    run.phase, run.ended_at = "done", now
                    log.info("drill ended: id=%s recovered=%d/%d", run.id, len(run.recovered),
                             len(origins))
                    break
                if now > hard_stop:   # the fault outlived its deadline: remove it ourselves
                    self._clear(run, "drill watch ended")
                await asyncio.sleep(WATCH_EVERY)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("drill watch crashed: id=%s", run.id)
            self._clear(run, "drill watch crashed")
            run.phase, run.ended_at = "done", time.time()

    def _read_events(self, run: DrillRun, zones: set[str]) -> None:
        """New lines of events.jsonl since the last look, for the drilled zones."""
        path = self.service.store.events_path
        try:
            with open(path, "rb") as handle:
                handle.seek(run.events_offset)
                data = handle.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        run.events_offset += end
        for line in data[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("zone") in zones:
                run.events.append(event)


def _size(path: os.PathLike[str]) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
