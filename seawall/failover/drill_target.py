"""The ``target-down`` drill, the server's side: preflight, plan, the fault, the record.

``seawall failover drill --scenario target-down --target ADDR`` marks one
target of the health-checked answers (seawall/health) down through the path
a failed check takes: the health service makes every check of ADDR fail
("drill: target-down"), so the fall count, the hold-down, fail static and
the re-publish run as in a real outage. The health service holds the
deadline (its watchdog removes the fault at it, whoever started the drill
and whatever happened to them since); a stop removes it at once. Then the
drill watches until the target is back in its checks' good books (or the
recovery window passed) and ends.

The preflight refuses, listing every reason: no health-checked RRset (of
the named zones) uses the target; the target is down already; a checker is
stalled; a fault is injected already (another drill, or the health-fault
file); a duration shorter than the target needs to leave the answers.

The record has, besides the drill's events, every change of the target
with the answers then published for the RRsets using it (``changes``), from
the health service's listener: the exact moments it left the answers and
came back, as the server published them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdatatype

from .controller import ControlError

log = logging.getLogger("seawall.failover.drill")

TARGET_DOWN = "target-down"
WATCH_EVERY = 0.05       # seconds between looks at the health service during a drill
MARGIN = 1.0             # the allowance beyond fall x interval (publishing, a look late)
MAX_DURATION = 3600.0


# ----------------------------------------------------------------- the plan

@dataclass
class TargetTiming:
    """What the checks of a target let a drill expect (the slowest of its checks)."""

    detect_within: float     # fault injected -> the target leaves the answers
    recover_within: float   # fault removed -> the target is back


def target_timing(checks: list[Any], hold_left: float, duration: float) -> TargetTiming:
    """fall x the check's cycle (+ a hold-down still running) + MARGIN; back after rise.

    A drilled check fails at once, but the one in flight when the fault
    starts may take ``timeout``, and a check starts every ``interval``: one
    cycle is the longer of the two. Coming back, the up change waits for the
    end of the hold-down that began when the target went down.
    """
    detect = recover = 0.0
    for check in checks:
        cycle = max(check.interval, check.timeout)
        down = check.fall * cycle + hold_left + MARGIN
        up = max(check.rise * cycle + check.timeout, down + check.hold_down - duration) + MARGIN
        detect, recover = max(detect, down), max(recover, up)
    return TargetTiming(detect, recover)


def _label(name: dns.name.Name, rdtype: int) -> str:
    return f"{name} {dns.rdatatype.to_text(rdtype)}"


def make_target_plan(health: Any, controller: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Preflight and plan of a target-down drill; ControlError lists every reason to refuse."""
    text = str(request.get("target") or "").strip()
    if not text:
        raise ControlError("target-down needs the target to mark down (--target ADDR)")
    try:
        target = str(ipaddress.ip_address(text))
    except ValueError:
        raise ControlError(f"--target {text!r} is not an IP address") from None
    duration = float(request.get("duration") or 30)
    if not 0 < duration <= MAX_DURATION:
        raise ControlError(f"duration {duration:g}s must be within 0..{MAX_DURATION:g}s")
    if health is None or not health.settings.enabled:
        raise ControlError("health-checked answers are off on this server (health.enabled)")
    names = request.get("zones")
    wanted = None if names is None else {dns.name.from_text(str(n)) for n in names}
    users = [(origin, decl) for origin, decls in sorted(health.filter.declared.items())
             for decl in decls if target in decl.addresses()
             and (wanted is None or origin in wanted)]
    if not users:
        known = sorted({a for decls in health.filter.declared.values() for d in decls
                        for a in d.addresses()})
        where = "" if wanted is None else " in " + ", ".join(sorted(map(str, wanted)))
        raise ControlError(f"preflight refused the drill: no health-checked RRset{where} uses "
                           f"target {target} (health-checked targets: "
                           f"{', '.join(known) or 'none'})")
    problems: list[str] = []
    if health.faults.drill is not None:
        problems.append(f"target {health.faults.drill.address} is drilled down already")
    if health.faults.hang or health.faults.down:
        problems.append("the health-fault file of the state directory injects a fault "
                        "already; remove it first")
    if health.stalled_since is not None:
        problems.append("a health checker is stalled: the answers are frozen, a drill would "
                        "show nothing")
    now = health.clock()
    checks, hold_left = [], 0.0
    for (address, check), state in sorted(health.targets.items(),
                                          key=lambda item: item[0][1].describe()):
        if address != target or not any(d.check == check for _, d in users):
            continue
        checks.append(check)
        if not state.up:
            problems.append(f"target {state.describe()} is down already ({state.why}); a drill "
                            "starts from up")
        if check.hold_down and state.last_change is not None:
            hold_left = max(hold_left, check.hold_down - (now - state.last_change))
    timing = target_timing(checks, hold_left, duration)
    if duration < timing.detect_within:
        problems.append(f"--duration {duration:g}s is shorter than the target needs to leave "
                        f"the answers ({timing.detect_within:.1f}s: fall × interval + "
                        f"{MARGIN:g}s)")
    for origin in sorted({o for o, _ in users}):
        if origin not in controller.zones:
            problems.append(f"{origin}: not served")
    if problems:
        raise ControlError("preflight refused the drill: " + "; ".join(problems))
    rrsets, probes = [], []
    for origin, decl in users:
        key = (origin, decl.key)
        before = list(health.filter.answers.get(key, ()))
        during = list(health.answer_without(origin, decl, target))
        # The target leaves an answer it is in, unless it is the last one up (fail static).
        leaves = target in before and target not in during
        rrsets.append({"zone": str(origin), "rrset": decl.label(), "before": before,
                       "during": during, "leaves": leaves, "holds": target in before})
        probes.append({"zone": str(origin), "name": str(decl.name),
                       "type": dns.rdatatype.to_text(decl.rdtype), "target": target,
                       "rrset": decl.label(), "expect": {}, "distinct": leaves,
                       "holds": target in before})
    objectives = ["no probe lost (no answer within the probe timeout)",
                  "no empty answer and no SERVFAIL (every answer holds addresses)"]
    for item in rrsets:
        if item["leaves"]:
            objectives.append(f"{target} leaves {item['rrset']} within "
                              f"{timing.detect_within:.1f}s of the fault")
            objectives.append(f"{target} is back in {item['rrset']} within "
                              f"{timing.recover_within:.1f}s of the fault's removal")
        elif item["holds"]:
            objectives.append(f"{item['rrset']} keeps {target} (fail static: no other target "
                              "is up)")
        else:
            objectives.append(f"{item['rrset']} keeps its answer (without {target})")
    return {"scenario": TARGET_DOWN, "target": target,
            "zones": sorted({str(o) for o, _ in users}, key=dns.name.from_text),
            "duration": duration, "rrsets": rrsets,
            "thresholds": {c.describe(): {"interval": c.interval, "timeout": c.timeout,
                                          "rise": c.rise, "fall": c.fall,
                                          "hold_down": c.hold_down} for c in checks},
            "expected_states": {item["rrset"]: _path(target, item) for item in rrsets},
            "detect_within": timing.detect_within, "recover_within": timing.recover_within,
            "objectives": objectives, "probes": probes, "backends": []}


def _path(target: str, rrset: dict[str, Any]) -> list[str]:
    """The answers an RRset should pass through: with the target, without, with again."""
    if rrset["leaves"]:
        return [f"with {target}", f"without {target}", f"with {target}"]
    return [("with " if rrset["holds"] else "without ") + target]


# ------------------------------------------------------------------ the run

@dataclass
class TargetDrill:
    """One target-down drill as the server records it; times are wall-clock seconds."""

    id: str
    plan: dict[str, Any]
    by: str
    started: float
    fault_until: float
    events_offset: int
    events_inode: int | None
    phase: str = "fault"                 # fault, recovering, done
    fault_removed_at: float | None = None
    recover_by: float | None = None
    ended_at: float | None = None
    stopped_by: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def target(self) -> str:
        return str(self.plan["target"])

    def heard(self, target: Any, answers: dict[Any, tuple[str, ...]]) -> None:
        """The health service's listener: a change of the drilled target, and its answers."""
        if target.address != self.target or self.phase == "done":
            return
        self.changes.append({"ts": time.time(), "up": target.up, "why": target.why,
                             "check": target.check.describe(),
                             "answers": {_label(*key[1]): list(answer)
                                         for key, answer in answers.items()}})

    def to_json(self, events_from: int = 0) -> dict[str, Any]:
        return {"id": self.id, "scenario": TARGET_DOWN, "target": self.target,
                "zones": self.plan["zones"], "by": self.by, "phase": self.phase,
                "started": self.started, "fault_until": self.fault_until,
                "fault_removed_at": self.fault_removed_at, "recover_by": self.recover_by,
                "ended_at": self.ended_at, "stopped_by": self.stopped_by,
                "first_failure": {}, "first_failure_exact": {}, "recovered": {},
                "changes": self.changes, "events": self.events[events_from:],
                "events_total": len(self.events), "expect_changes": [], "now": time.time()}


def start_target_drill(health: Any, controller: Any, request: dict[str, Any], who: str,
                       position: tuple[int | None, int]) -> TargetDrill:
    """Preflight, then mark the target down; the run (its watch is :func:`watch_target`)."""
    plan = make_target_plan(health, controller, request)
    started = time.time()
    inode, offset = position
    run = TargetDrill(secrets.token_hex(4), plan, who, started, started + plan["duration"],
                      offset, inode)
    health.listeners.append(run.heard)
    try:
        health.faults.inject_down(run.target, run.fault_until, f"drill {run.id} by {who}")
    except ValueError as exc:
        health.listeners.remove(run.heard)
        raise ControlError(str(exc)) from None
    log.info("drill started: id=%s scenario=target-down target=%s zones=%s duration=%gs by=%s",
             run.id, run.target, ",".join(plan["zones"]), plan["duration"], who)
    return run


def stop_target_drill(health: Any, run: TargetDrill, reason: str) -> None:
    """Remove the drill's fault now (if it is still this drill's)."""
    if run.phase == "fault" and _drilled(health, run):
        health.faults.clear_down(reason)


def _drilled(health: Any, run: TargetDrill) -> bool:
    """Is the health service's drill fault this drill's?"""
    fault = health.faults.drill
    return fault is not None and fault.address == run.target


def target_states(health: Any, run: TargetDrill) -> dict[str, Any]:
    """The drilled target's checks now, for drill-status."""
    out = {}
    for (address, check), state in health.targets.items():
        if address == run.target:
            out[f"{address} {check.describe()}"] = {
                "state": "up" if state.up else "down", "fails": state.fails,
                "oks": state.oks,
                "pending": None if state.pending is None else ("up" if state.pending
                                                               else "down")}
    return out


async def watch_target(health: Any, run: TargetDrill, read_events: Any) -> None:
    """Record the drill until the target is back up (or the recovery window passed)."""
    zones = set(run.plan["zones"])
    recover_within = float(run.plan["recover_within"])
    hard_stop = run.fault_until + recover_within + 5.0
    try:
        while run.phase != "done":
            now = time.time()
            read_events(run, zones)
            if run.phase == "fault" and not _drilled(health, run):
                removed = [e["ts"] for e in run.events
                           if e.get("kind") == "fault" and "removed" in e.get("reason", "")]
                run.fault_removed_at = min(removed) if removed else now
                run.recover_by = run.fault_removed_at + recover_within
                run.phase = "recovering"
                continue
            if run.phase == "recovering":
                mine = [s for (a, _), s in health.targets.items() if a == run.target]
                back = all(s.up and s.pending is None for s in mine)
                if back or now >= (run.recover_by or now):
                    read_events(run, zones)
                    run.phase, run.ended_at = "done", now
                    log.info("drill ended: id=%s target=%s back=%s", run.id, run.target, back)
                    break
            if now > hard_stop:   # the fault outlived its deadline: remove it ourselves
                stop_target_drill(health, run, "drill watch ended")
            await asyncio.sleep(WATCH_EVERY)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("drill watch crashed: id=%s", run.id)
        stop_target_drill(health, run, "drill watch crashed")
        run.phase, run.ended_at = "done", time.time()
    finally:
        if run.phase == "done" and run.heard in health.listeners:
            health.listeners.remove(run.heard)
