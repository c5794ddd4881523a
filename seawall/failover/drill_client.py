"""Chaos drills, the operator's side: start, probe, watch, judge, report.

``seawall failover drill`` asks the server (control channel) to start the
drill, then sends probe queries over UDP (asyncio-dgram) at a bounded rate
until the server says the drill is over, polls the drill's record (state
changes from events.jsonl, the first failed backend look) and shows live
progress. Each probe is judged against the state the controller was in
while it was in flight: the answer must be the data of that state (see
:func:`seawall.failover.drill_plan.signature`); when a zone takes new live
data during the drill, the server sends the answers expected from then on.
The probes stop at the server's deadline plus the recovery window at the
latest, whatever the server says.

If the CLI is interrupted (Ctrl-C) it asks the server to stop the drill;
if it is killed, the server removes the fault at its deadline by itself.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import asyncio_dgram
import dns.exception
import dns.message
import dns.name

from ..errors import SeawallError
from .control_client import ControlClient, ControlRefused
from .drill_plan import signature
from .drill_report import build_report, format_plan, markdown, write_report
from .drill_target_report import build_target_report, judge_target, markdown_target

PROBE_TIMEOUT = 1.0     # an answer later than this is lost
POLL_EVERY = 0.2        # seconds between looks at the drill's record
TAIL = 1.0               # probing goes on this long after the drill's end (recovery seen)
SLACK = 0.1             # a state holds this long after its event (the swap follows the event)
TRANSITION_KINDS = ("transition", "override", "removed")


@dataclass
class Probe:
    """One query sent during the drill and what came of it (local wall-clock times)."""

    spec: int
    sent: float
    received: float | None = None
    sig: str | None = None
    verdict: str | None = None       # ok, wrong, lost
    source: str | None = None        # live, held, stale, emergency (what the answer was)


@dataclass
class Timeline:
    """The served state of each drilled zone over time, from the drill's events."""

    initial: dict[str, str]
    changes: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    # probe index -> (local time, expected answers per source) after new live data
    expects: dict[int, list[tuple[float, dict[str, str]]]] = field(default_factory=dict)

    def set_expectations(self, changes: list[dict[str, Any]], offset: float) -> None:
        self.expects = {}
        for change in changes:
            for index, expect in change["expect"].items():
                self.expects.setdefault(int(index), []).append(
                    (float(change["ts"]) - offset, expect))
        for versions in self.expects.values():
            versions.sort(key=lambda item: item[0])

    def expected_between(self, index: int, initial: dict[str, str], start: float,
                         end: float) -> list[dict[str, str]]:
        """Every answer set the probe could rightly get from data served during [start, end]."""
        versions = self.expects.get(index, [])
        times = [t for t, _ in versions]
        i = bisect.bisect_right(times, start)
        out = [versions[i - 1][1] if i else initial]
        out += [expect for _, expect in versions[i:bisect.bisect_right(times, end)]]
        return out

    def add(self, event: dict[str, Any], offset: float) -> None:
        if event.get("kind") not in TRANSITION_KINDS or event.get("from") == event.get("to"):
            return
        zone = event["zone"]
        self.changes.setdefault(zone, []).append((float(event["ts"]) - offset,
                                                  event.get("to") or "none"))
        self.changes[zone].sort()

    def states_between(self, zone: str, start: float, end: float) -> set[str]:
        """Every state the zone was in at some moment of [start, end]."""
        changes = self.changes.get(zone, [])
        times = [t for t, _ in changes]
        i = bisect.bisect_right(times, start)
        states = {changes[i - 1][1] if i else self.initial.get(zone, "live")}
        for _, state in changes[i:bisect.bisect_right(times, end)]:
            states.add(state)
        return states


def judge(probe: Probe, specs: list[dict[str, Any]], timeline: Timeline) -> None:
    spec = specs[probe.spec]
    if probe.received is None:
        probe.verdict, probe.source = "lost", None
        return
    allowed = timeline.states_between(spec["zone"], probe.sent - SLACK, probe.received)
    versions = timeline.expected_between(probe.spec, spec["expect"], probe.sent - SLACK,
                                         probe.received)
    matches = [s for s in ("live", "held", "stale", "emergency")
               if any(v.get(s) == probe.sig for v in versions)]
    good = [s for s in ("emergency", "stale", "held", "live") if s in allowed and s in matches]
    if good:
        probe.verdict, probe.source = "ok", good[0] if len(good) == 1 or not spec["distinct"] \
            else _latest(timeline, spec["zone"], probe.received, good)
    else:
        probe.verdict, probe.source = "wrong", matches[0] if matches else None


def _latest(timeline: Timeline, zone: str, at: float, candidates: list[str]) -> str:
    changes = [s for t, s in timeline.changes.get(zone, []) if t <= at]
    current = changes[-1] if changes else timeline.initial.get(zone, "live")
    return current if current in candidates else candidates[0]


class Prober:
    """Sends the probes round-robin at ``qps`` and matches the answers by ID."""

    def __init__(self, addr: tuple[str, int], specs: list[dict[str, Any]], qps: int) -> None:
        self.addr = addr
        self.specs = specs
        self.qps = qps
        self.probes: list[Probe] = []
        self.pending: dict[int, Probe] = {}
        self._next_id = random.randrange(65536)
        self._origins = [dns.name.from_text(s["zone"]) for s in specs]
        self._wires = []
        for spec in specs:
            query = dns.message.make_query(spec["name"], spec["type"], use_edns=0,
                                           payload=1232)
            self._wires.append(bytearray(query.to_wire()))
        self.stopping = False
        self.stop_at = 0.0

    async def run(self, stop_at: float) -> None:
        self.stop_at = stop_at
        stream = await asyncio_dgram.connect(self.addr)
        receiver = asyncio.create_task(self._receive(stream))
        try:
            await self._send(stream)
            end = time.time() + PROBE_TIMEOUT
            while self.pending and time.time() < end:
                await asyncio.sleep(0.02)
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            stream.close()
            self.expire(force=True)

    async def _send(self, stream: Any) -> None:
        gap = 1.0 / self.qps
        next_at = time.monotonic()
        n = 0
        while not self.stopping and time.time() < self.stop_at:
            index = n % len(self.specs)
            n += 1
            query_id = self._next_id = (self._next_id + 1) % 65536
            wire = self._wires[index]
            wire[0:2] = query_id.to_bytes(2, "big")
            probe = Probe(index, time.time())
            stale = self.pending.pop(query_id, None)
            if stale is not None:
                stale.received = None
            self.pending[query_id] = probe
            self.probes.append(probe)
            try:
                await stream.send(bytes(wire))
            except OSError:
                pass   # counted as lost
            self.expire()
            next_at += gap
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                next_at = time.monotonic()   # fell behind: do not burst to catch up

    async def _receive(self, stream: Any) -> None:
        while True:
            try:
                data, _ = await stream.recv()
            except asyncio.CancelledError:
                raise
            except Exception:   # asyncio-dgram raises on ICMP errors; keep listening
                await asyncio.sleep(0.01)
                continue
            now = time.time()
            if len(data) < 12:
                continue
            probe = self.pending.pop(int.from_bytes(data[:2], "big"), None)
            if probe is None:
                continue
            try:
                message = dns.message.from_wire(data)
            except dns.exception.DNSException:
                probe.received, probe.sig = now, "unparsable"
                continue
            probe.received = now
            probe.sig = signature(self._origins[probe.spec], message.rcode(),
                                  list(message.answer), list(message.authority))

    def expire(self, force: bool = False) -> None:
        """Probes without an answer after PROBE_TIMEOUT are lost."""
        limit = time.time() - PROBE_TIMEOUT
        for query_id, probe in list(self.pending.items()):
            if force or probe.sent < limit:
                del self.pending[query_id]


def _target(listen: list[dict[str, Any]]) -> tuple[str, int]:
    for item in listen:
        if item["transport"] == "udp":
            host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(item["host"], item["host"])
            return host, int(item["port"])
    raise SeawallError("the server listens on no UDP address to probe")


async def run_drill_cli(client: ControlClient, args: Any) -> int:
    """``seawall failover drill``: the exit code (0 pass, 1 an objective missed)."""
    try:
        answer = await client.request("drill-start", **drill_request(args))
        plan = answer["plan"]
        if args.dry_run:
            print(format_plan(plan))
            print("dry run: nothing was changed")
            return 0
        try:
            report = await drive(client, args, answer, Progress(args, plan))
            text = write_report(report, args.report, renderer(report))
            print(text)
            if args.report is not None:
                print(f"report written: {args.report}", file=sys.stderr)
            return 0 if report["verdict"] == "pass" else 1
        except asyncio.CancelledError:
            try:
                await asyncio.wait_for(client.request("drill-stop", id=answer["drill"]["id"]),
                                       5)
                print("drill interrupted: the server removed the fault", file=sys.stderr)
            except (SeawallError, asyncio.TimeoutError):
                print("drill interrupted: the server removes the fault at its deadline",
                      file=sys.stderr)
            raise
    finally:
        await client.close()


def drill_request(args: Any) -> dict[str, Any]:
    """The drill-start request of the command line's arguments."""
    request = {"scenario": args.scenario, "duration": args.duration,
               "probes": args.probe or [], "dry_run": bool(args.dry_run)}
    if getattr(args, "target", None):
        request["target"] = args.target
    request.update({"zones": args.zone} if args.zone else {"zones": None, "all": True})
    return request


def renderer(report: dict[str, Any]) -> Any:
    """The Markdown renderer of a report (a target-down drill has its own)."""
    return markdown_target if report["drill"]["scenario"] == "target-down" else markdown


async def drive(client: ControlClient, args: Any, answer: dict[str, Any],
                progress: Progress) -> dict[str, Any]:
    """Probe the started drill until the server says it is over; the report."""
    plan, drill = answer["plan"], answer["drill"]
    specs = plan["probes"]
    prober = Prober(_target(answer["listen"]), specs, args.qps)
    timeline = Timeline({z: "live" for z in plan["zones"]})
    if plan["scenario"] == "target-down":
        def judging(probe: Probe) -> None:
            judge_target(probe, specs[probe.spec])
    else:
        def judging(probe: Probe) -> None:
            judge(probe, specs, timeline)
    progress.judging = judging
    hard_stop = time.time() + plan["duration"] + plan["recover_within"] + 10.0
    probing = asyncio.create_task(prober.run(hard_stop))
    record: dict[str, Any] = dict(drill)
    events: list[dict[str, Any]] = []
    offset, best_rtt = 0.0, float("inf")
    try:
        while time.time() < hard_stop:
            await asyncio.sleep(POLL_EVERY)
            sent = time.time()
            try:
                status = (await client.request("drill-status", id=drill["id"],
                                               events_from=len(events)))["drill"]
            except ControlRefused as exc:
                raise SeawallError(f"the drill's record is gone: {exc}") from None
            rtt = time.time() - sent
            if rtt < best_rtt:
                best_rtt, offset = rtt, status["now"] - (sent + rtt / 2)
            events += status["events"]
            record = status
            for event in status["events"]:
                timeline.add(event, offset)
            timeline.set_expectations(status.get("expect_changes", []), offset)
            progress.show(record, prober, timeline, specs)
            if record["phase"] == "done":
                break
        prober.stop_at = min(prober.stop_at, time.time() + TAIL)
    finally:
        if prober.stop_at > time.time() + TAIL:
            prober.stopping = True
        await probing
        progress.done()
    record["events"] = events
    for probe in prober.probes:
        judging(probe)
    build = build_target_report if plan["scenario"] == "target-down" else build_report
    return build(plan, record, prober.probes, specs, offset)


class Progress:
    """One line of live progress: elapsed, phase, states, probes ok/wrong/lost."""

    def __init__(self, args: Any, plan: dict[str, Any]) -> None:
        self.quiet = bool(getattr(args, "quiet", False))
        self.tty = sys.stderr.isatty()
        self.start = time.time()
        self.last = 0.0
        self.judged = 0
        self.judging: Any = None      # judges one probe (set by drive)

    def show(self, record: dict[str, Any], prober: Prober, timeline: Timeline,
             specs: list[dict[str, Any]]) -> None:
        if self.quiet:
            return
        now = time.time()
        if not self.tty and now - self.last < 1.0:
            return
        self.last = now
        settled = now - PROBE_TIMEOUT
        counts = {"ok": 0, "wrong": 0, "lost": 0}
        for probe in prober.probes:
            if probe.received is None and probe.sent > settled:
                continue
            if probe.received is not None and probe.received > now - 2 * POLL_EVERY:
                continue
            if self.judging is not None:
                self.judging(probe)
            else:
                judge(probe, specs, timeline)
            counts[probe.verdict or "lost"] += 1
        states = " ".join(f"{z}={s['state']}" for z, s in record.get("states", {}).items())
        line = (f"{now - self.start:6.1f}s  {record['phase']:<10}  {states}  "
                f"probes {len(prober.probes)}: ok {counts['ok']} wrong {counts['wrong']} "
                f"lost {counts['lost']}")
        if self.tty:
            sys.stderr.write("\r" + line[:160].ljust(100))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\n")
