"""Drill plans: the preflight, the expected states and objectives, the probes and their answers.

:func:`make_plan` refuses a drill whose zones are not all served live,
have no emergency version, have an emergency version whose DNSSEC
signatures expire before the drill ends, or whose duration is shorter than
detection needs; the refusal lists every reason. The plan names the zones,
the states each should pass through, the objectives the report is judged
against, and the probes: for each, the answer the answer engine gives from
each data source the zone can be served from (live, stale, emergency), as
a :func:`signature` of the rcode and the answer and authority sections
without TTLs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from ..backends.base import FAULTS
from ..dns.engine import resolve
from ..zones.model import Zone
from ..zones.signatures import earliest_expiry
from ..zones.zoneset import ZoneSet
from .controller import ControlError, Mode, stale_seconds
from .drill_target import TARGET_DOWN
from .emergency import cap_ttls
from .store import now_iso

SCENARIOS = FAULTS            # backend faults; target-down is planned in drill_target.py
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
    """The data each state of a zone serves: live, held (the same), stale (TTL cap), emergency."""
    out: dict[str, Zone] = {}
    if st.good is not None:
        out["live"] = st.good.zone
        out["held"] = st.good.zone
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
    stale_for: float          # seconds (the zone's SOA EXPIRE when configured as `expire`)
    damping: int = 1          # flap damping multiplies recover_after by this much at most

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
        return (self.recover_after * self.damping * self.interval + self.timeout + self.cycle
                + self.margin)

    @property
    def flap_period(self) -> float:
        return self.fail_after * self.cycle + self.cycle / 2


def detect_limit(t: Timing, scenario: str) -> float:
    """The detection objective for a scenario.

    A flap's first down phase may start between two looks and hold fewer than
    ``fail_after`` failures; the failures that count may then come only in the
    next down phase, one up phase later: allow one whole flap cycle more.
    """
    return t.detect_within + (2 * t.flap_period if scenario == "flap" else 0.0)


def timing(settings: Any, stale_for: float | None = None, damping: int = 1) -> Timing:
    return Timing(float(settings.probe_interval), float(settings.probe_timeout),
                  int(settings.fail_after), int(settings.recover_after),
                  float(settings.stale_for) if stale_for is None else stale_for, damping)


def zone_timing(controller: Any, st: Any, scenario: str, duration: float) -> Timing:
    """The timing one zone can expect: its own stale_for, and the damping a drill adds.

    A drill runs the real path, flap damping included: each bounce it causes
    counts, so the recovery objective allows for the factor after them.
    """
    settings = controller.settings
    expire = st.good.soa_expire if st.good is not None else None
    stale = stale_seconds(settings.stale_for, expire)
    t = timing(settings, stale)
    bounces = 1
    if scenario == "flap" and not flap_holds(t):
        bounces = max(1, math.ceil(duration / (2 * t.flap_period)))
    now = controller.clock()
    half_life = float(settings.flap_half_life)
    points = st.damping.now(now, half_life) + bounces
    exponent = max(0, math.floor(points + 0.5) - 1)
    return timing(settings, stale, min(settings.flap_max_factor, 2 ** min(exponent, 30)))


def expected_states(t: Timing, scenario: str, duration: float) -> list[str]:
    """The states a drilled zone should pass through."""
    if scenario in ("backend-corrupt", "backend-wipe"):
        return ["live", "held", "live"]      # bad data is held, never a switch
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
        raise ControlError(f"unknown scenario {scenario!r} (known: "
                           f"{', '.join(SCENARIOS + (TARGET_DOWN,))})")
    duration = float(request.get("duration") or 30)
    if not 0 < duration <= MAX_DURATION:
        raise ControlError(f"duration {duration:g}s must be within 0..{MAX_DURATION:g}s")
    names = request.get("zones")
    if names is None and not request.get("all"):
        raise ControlError("name the zones to drill, or say all")
    states = controller.targets(None if names is None else [str(n) for n in names])
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
    timings = {str(st.origin): zone_timing(controller, st, scenario, duration) for st in zones}
    paths = {name: expected_states(zt, scenario, duration) for name, zt in timings.items()}
    t = max(timings.values(), key=lambda zt: zt.recover_within)
    goals = sorted({path[-2] for path in paths.values()})
    detect = detect_limit(t, scenario)
    objectives = [
        "no probe lost (no answer within the probe timeout)",
        "no wrong answer (each answer is the data of the state in force when it was sent)",
        f"detection (leaving live) within {detect:.1f}s of the fault "
        f"(fail_after × interval + timeout + margin"
        f"{', plus one flap cycle' if scenario == 'flap' else ''})",
        f"every zone reaches {' or '.join(goals)} while the fault lasts",
        f"recovery to live within {t.recover_within:.1f}s of the fault's removal",
    ]
    if scenario == "flap" and flap_holds(t):
        objectives.append("no flapping: at most one switch away from live per zone")
    return {"scenario": scenario, "zones": [str(st.origin) for st in zones],
            "duration": duration, "thresholds": controller.status()["thresholds"],
            "expected_states": paths,
            "detect_within": detect, "recover_within": t.recover_within,
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
