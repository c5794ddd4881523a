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
    target-down      one target of the health-checked answers fails its checks
                     (``target``; seawall/failover/drill_target.py)

Before anything changes, the preflight of :mod:`.drill_plan` runs;
``dry_run`` returns the plan (zones, expected states, objectives, probes)
and changes nothing. While a drill runs (and until its recovery watch
ends) another one is refused. The record of a drill (its events from
events.jsonl, the first failed look at the backend, sampled every
``WATCH_EVERY``) is what ``drill-status`` returns and the report measures.
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
import dns.rdatatype

from ..backends.base import Fault
from .controller import ControlError, Mode
from .drill_plan import expected, make_plan, sources, timing
from .drill_target import (TARGET_DOWN, TargetDrill, make_target_plan, start_target_drill,
                           stop_target_drill, target_states, watch_target)
from .store import now_iso

log = logging.getLogger("seawall.failover.drill")

WATCH_EVERY = 0.05          # seconds between looks at the controller during a drill


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
    events_inode: int | None
    phase: str = "fault"                 # fault, recovering, done
    fault_removed_at: float | None = None
    recover_by: float | None = None
    ended_at: float | None = None
    stopped_by: str | None = None
    first_failure: dict[str, float] = field(default_factory=dict)
    first_failure_exact: dict[str, bool] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    recovered: dict[str, float] = field(default_factory=dict)
    # new live data during the drill: what each probe of the zone should answer from then on
    expect_changes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, events_from: int = 0) -> dict[str, Any]:
        return {"id": self.id, "scenario": self.plan["scenario"], "zones": self.plan["zones"],
                "by": self.by, "phase": self.phase, "started": self.started,
                "fault_until": self.fault_until, "fault_removed_at": self.fault_removed_at,
                "recover_by": self.recover_by, "ended_at": self.ended_at,
                "stopped_by": self.stopped_by, "first_failure": self.first_failure,
                "first_failure_exact": self.first_failure_exact,
                "recovered": self.recovered, "events": self.events[events_from:],
                "events_total": len(self.events), "expect_changes": self.expect_changes,
                "now": time.time()}


class DrillManager:
    """Runs at most one drill at a time for the control channel."""

    def __init__(self, service: Any, listen: Any, health: Any = None) -> None:
        self.service = service
        self.listen = listen
        self.health = health          # the health service, for target-down drills
        self.current: DrillRun | TargetDrill | None = None
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
        if request.get("scenario") == TARGET_DOWN:
            return self._start_target(request, who)
        if request.get("target"):
            raise ControlError(f"--target is for the target-down scenario, not "
                               f"{request.get('scenario')}")
        plan = make_plan(self.service, request)
        if request.get("dry_run"):
            return {"plan": plan, "dry_run": True, "listen": self.listen()}
        controller = self.service.controller
        t = timing(controller.settings)
        origins = frozenset(dns.name.from_text(z) for z in plan["zones"])
        started = time.time()
        fault = Fault(plan["scenario"], zones=origins, until=started + plan["duration"],
                      period=t.flap_period)
        inode, offset = _position(self.service.store.events_path)
        self.service.inject_fault(fault, reason=f"drill by {who}")
        run = DrillRun(secrets.token_hex(4), plan, who, started, fault.until or started,
                       fault, offset, inode)
        self.current = run
        self._task = asyncio.create_task(self._watch(run))
        log.info("drill started: id=%s scenario=%s zones=%s duration=%gs by=%s", run.id,
                 plan["scenario"], ",".join(plan["zones"]), plan["duration"], who)
        return {"plan": plan, "drill": run.to_json(), "listen": self.listen()}

    def _start_target(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        if request.get("dry_run"):
            plan = make_target_plan(self.health, self.service.controller, request)
            return {"plan": plan, "dry_run": True, "listen": self.listen()}
        run = start_target_drill(self.health, self.service.controller, request, who,
                                 _position(self.service.store.events_path))
        self.current = run
        self._task = asyncio.create_task(watch_target(self.health, run, self._read_events))
        return {"plan": run.plan, "drill": run.to_json(), "listen": self.listen()}

    def status(self, drill_id: Any = None, events_from: int = 0) -> dict[str, Any] | None:
        run = self.current
        if run is None or (drill_id and drill_id != run.id):
            raise ControlError(f"no drill {drill_id}" if drill_id else "no drill has run")
        data = run.to_json(events_from)
        data["states"] = target_states(self.health, run) if isinstance(run, TargetDrill) \
            else self._states(run)
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

    def _clear(self, run: DrillRun | TargetDrill, reason: str) -> None:
        """Remove the drill's fault now (only a drill injects faults, one at a time)."""
        if isinstance(run, TargetDrill):
            stop_target_drill(self.health, run, reason)
            return
        if any(b.faults.current is run.fault for b in self.service.backends):
            self.service.clear_faults(reason)

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
                seen = len(run.events)
                self._read_events(run, set(origins.values()))
                for event in run.events[seen:]:
                    if event.get("kind") == "updated":
                        self._new_expectations(run, event)
                for origin, name in origins.items():
                    st = controller.zones.get(origin)
                    if st is None:
                        continue
                    if name not in run.first_failure and st.failures >= 1 \
                            and run.phase == "fault":
                        exact = st.failures == 1 and st.last_report_at is not None
                        run.first_failure[name] = (controller.wall_of(st.last_report_at)
                                                   if exact else now)
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

    def _new_expectations(self, run: DrillRun, event: dict[str, Any]) -> None:
        """A zone took new live data during the drill: its probes' answers from now on."""
        controller = self.service.controller
        st = controller.zones.get(dns.name.from_text(event["zone"]))
        if st is None:
            return
        data = sources(controller, st)
        expect = {}
        for index, spec in enumerate(run.plan["probes"]):
            if spec["zone"] == event["zone"]:
                qname = dns.name.from_text(spec["name"])
                qtype = dns.rdatatype.from_text(spec["type"])
                expect[str(index)] = {source: expected(zone, qname, qtype)
                                      for source, zone in data.items()}
        run.expect_changes.append({"ts": event["ts"], "zone": event["zone"],
                                   "serial": event.get("serial_to"), "expect": expect})

    def _read_events(self, run: DrillRun, zones: set[str]) -> None:
        """New lines of events.jsonl since the last look, for the drilled zones.

        The log rotates (events.jsonl becomes events.jsonl.1, .1 becomes .2, ...):
        the rest of the file read so far is then read under its new name, the
        files rotated after it in full, and the new file from its start.
        """
        path = self.service.store.events_path
        try:
            inode = os.stat(path).st_ino
        except OSError:
            return
        data = b""
        if run.events_inode is not None and inode != run.events_inode:
            rotated = self.service.store.event_files()[:-1]     # oldest first
            for n, older in enumerate(rotated):
                try:
                    if os.stat(older).st_ino != run.events_inode:
                        continue
                except OSError:
                    continue
                data = _read_from(older, run.events_offset)
                for newer in rotated[n + 1:]:
                    data += _read_from(newer, 0)
                break
            run.events_offset = 0
        run.events_inode = inode
        fresh = _read_from(path, run.events_offset)
        end = fresh.rfind(b"\n") + 1
        run.events_offset += end
        for line in (data + fresh[:end]).splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("zone") in zones:
                run.events.append(event)


def _read_from(path: os.PathLike[str], offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return b""


def _position(path: os.PathLike[str]) -> tuple[int | None, int]:
    """The inode and size of the event log now (None, 0 when there is none yet)."""
    try:
        st = os.stat(path)
    except OSError:
        return None, 0
    return st.st_ino, st.st_size
