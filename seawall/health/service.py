"""The health service: runs the checks once, in the supervisor, and publishes the view.

Started and stopped with the failover service (seawall/app.py). One task per
target checks it every ``interval``; each result goes through the target's
rise/fall/hold-down state (:mod:`.target`). When a target changes, the
answers of the RRsets that use it are picked again (:func:`.answers.select`)
and the zones whose answers changed are re-published through the
controller (``refilter``): one swap, whose answer tables the supervisor
builds before the workers serve them. Workers never check anything.

A stalled checker (a target whose checker produced nothing for
``interval + timeout + stall_after``) changes nothing: its target keeps its
last state, so the answers freeze, and status, events and metrics say so.

Drills (:mod:`.faults`): a drill's target-down, or the file
``state_dir/health-fault``, makes a target's checks fail ("drill:
target-down"), the same path a real failed check takes (fall, hold-down,
fail static), or hangs every checker; the watchdog ends a drill's fault at
its deadline. Listeners (``listeners``) hear every change of a target with
the answers it left, which is how a drill times the target leaving and
coming back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype

from ..config import Config
from ..failover.store import now_iso
from .answers import AnswerFilter, select
from .checks import run_check
from .declaration import Check, HealthDeclarationError, HealthRRset, read_side_file, side_files
from .faults import DRILL_FAILURE, FAULT_FILE, HealthFaults
from .target import TargetState

log = logging.getLogger("seawall.health")

WATCH_EVERY = 0.25      # seconds between looks of the watchdog (stalls, hold-down ends)
RESCAN_EVERY = 1.0      # seconds between looks at the side files and the fault file
# A listener hears each change of a target: the target, and the answer now
# published for every RRset that uses it ((zone, (name, rdtype)) -> addresses).
Listener = Callable[[TargetState, dict[tuple[dns.name.Name, tuple[dns.name.Name, int]],
                                       tuple[str, ...]]], None]


class HealthService:
    """Checks the declared targets and keeps the controller's answer filter current."""

    def __init__(self, config: Config, controller: Any,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.settings = config.health
        self.controller = controller
        self.clock = clock
        self.filter = AnswerFilter()
        self.filter.on_refused = self._refused
        self.targets: dict[tuple[str, Check], TargetState] = {}
        self.pools: dict[tuple[dns.name.Name, tuple[dns.name.Name, int]], str | None] = {}
        self.errors: dict[str, list[str]] = {}      # side file -> its problems
        self.files: dict[Path, float] = {}          # side file -> mtime read
        self.faults = HealthFaults(config.path(config.state_dir) / FAULT_FILE, clock,
                                   self._note_fault)
        self.listeners: list[Listener] = []
        self.stalled_since: float | None = None
        self.started_at = clock()
        self._tasks: dict[tuple[str, Check], asyncio.Task] = {}
        self._watchdog: asyncio.Task | None = None
        self.load()

    # ------------------------------------------------------------ declarations

    def directories(self) -> list[Path]:
        dirs = [self.config.path(self.config.zones)]
        for backend in self.config.backend_configs():
            if backend.type == "files" and backend.path:
                dirs.append(self.config.path(backend.path))
        out: list[Path] = []
        for d in dirs:
            if d.resolve() not in [o.resolve() for o in out]:
                out.append(d)
        return out

    def _scan(self) -> dict[Path, float]:
        found = {}
        if not self.settings.enabled:
            return found
        for directory in self.directories():
            for path in side_files(directory):
                try:
                    found[path] = path.stat().st_mtime
                except OSError:
                    continue
        return found

    def load(self) -> set[dns.name.Name]:
        """Read the side files; a broken one keeps what it declared before. The zones whose
        declarations changed."""
        found = self._scan()
        declared: dict[dns.name.Name, list[HealthRRset]] = {}
        previous = self.filter.declared
        for path in sorted(found):
            try:
                origin, rrsets = read_side_file(path, self.settings)
            except HealthDeclarationError as exc:
                if self.errors.get(str(path)) != exc.problems:
                    for problem in exc.problems:
                        log.error("health file refused: %s", problem)
                self.errors[str(path)] = exc.problems
                stem = path.name[:-len(".health.conf")]
                try:
                    origin = dns.name.from_text(stem)
                except dns.exception.DNSException:
                    continue
                if origin in previous:
                    declared[origin] = previous[origin]   # keep what it declared before
                continue
            self.errors.pop(str(path), None)
            if origin in declared:
                log.error("health file ignored: %s: zone %s is declared by another file",
                          path, origin)
                continue
            declared[origin] = rrsets
        for gone in set(self.errors) - {str(p) for p in found}:
            del self.errors[gone]
        changed = {o for o in set(declared) | set(previous)
                   if declared.get(o) != previous.get(o)}
        self.files = found
        self.filter.set_declarations(declared)
        self._sync_targets()
        self._pick(changed)
        if changed:
            log.info("health declarations: zones=%s rrsets=%d targets=%d",
                     ",".join(map(str, sorted(changed))),
                     sum(len(v) for v in declared.values()), len(self.targets))
        return changed

    def _sync_targets(self) -> None:
        wanted = {(address, decl.check) for decls in self.filter.declared.values()
                  for decl in decls for address in decl.addresses()}
        now = self.clock()
        for key in wanted - set(self.targets):
            self.targets[key] = TargetState(key[0], key[1], up=self.settings.assume_up, now=now)
        for key in set(self.targets) - wanted:
            del self.targets[key]
            task = self._tasks.pop(key, None)
            if task is not None:
                task.cancel()
        if self._watchdog is not None:   # running: check the new targets too
            for key in wanted:
                if key not in self._tasks:
                    self._tasks[key] = asyncio.get_running_loop().create_task(
                        self._check_loop(self.targets[key]))

    # ------------------------------------------------------------------ answers

    def _is_up(self, check: Check) -> Callable[[str], bool]:
        def is_up(address: str) -> bool:
            target = self.targets.get((address, check))
            return target is not None and target.up
        return is_up

    def _pick(self, origins: set[dns.name.Name]) -> set[dns.name.Name]:
        """Pick the answers of these zones' RRsets again; the zones whose answers changed."""
        changed = set()
        answers = self.filter.answers
        for origin in origins:
            for key in [k for k in answers if k[0] == origin]:
                if not any(d.key == key[1] for d in self.filter.declared.get(origin, ())):
                    del answers[key]
                    self.pools.pop(key, None)
                    changed.add(origin)
            for decl in self.filter.declared.get(origin, ()):
                key = (origin, decl.key)
                picked = select(decl, self._is_up(decl.check))
                if picked is not None:
                    answer, pool = picked
                elif key in answers:
                    answer, pool = answers[key], None   # every target down: the last answer
                else:
                    answer, pool = tuple(v.address for v in decl.pools[0].values), None
                if answers.get(key) != answer:
                    answers[key] = answer
                    changed.add(origin)
                self.pools[key] = pool
        return changed

    def _using(self, target: TargetState) -> set[dns.name.Name]:
        return {origin for origin, decls in self.filter.declared.items()
                for d in decls if d.check == target.check and target.address in d.addresses()}

    def _changed(self, target: TargetState) -> None:
        """A target went up or down: events, new answers, one re-publish."""
        origins = self._using(target)
        state = "up" if target.up else "down"
        log.warning("target %s: target=%s reason=%s", state, target.describe(), target.why)
        changed = self._pick(origins)
        for origin in sorted(origins):
            answers = [f"{decl.label()} -> {' '.join(self.filter.answers[(origin, decl.key)])}"
                       + (" (fail static: every target down)"
                          if self.pools.get((origin, decl.key)) is None else "")
                       for decl in self.filter.declared.get(origin, ())
                       if target.address in decl.addresses()]
            self._note(origin, f"target {target.describe()} {state}: {target.why}; "
                               f"answer {'; '.join(answers)}")
        if changed:
            self.controller.refilter(changed)
        self._tell(target)

    def _tell(self, target: TargetState) -> None:
        """Tell the listeners (a drill) the answers now published for the target's RRsets."""
        if not self.listeners:
            return
        answers = {key: self.filter.answers.get(key, ()) for key in self.rrsets_using(
            target.address, target.check)}
        for listener in list(self.listeners):
            try:
                listener(target, answers)
            except Exception:
                log.exception("health: a listener failed: target=%s", target.describe())

    def rrsets_using(self, address: str, check: Check | None = None
                     ) -> list[tuple[dns.name.Name, tuple[dns.name.Name, int]]]:
        """The RRsets (zone, (name, rdtype)) whose pools hold ``address`` (with ``check``)."""
        return [(origin, d.key) for origin, decls in sorted(self.filter.declared.items())
                for d in decls if address in d.addresses()
                and (check is None or d.check == check)]

    def answer_without(self, origin: dns.name.Name, decl: HealthRRset,
                       address: str) -> tuple[str, ...]:
        """The answer ``decl`` would get were ``address`` down (a drill's expectation)."""
        is_up = self._is_up(decl.check)
        picked = select(decl, lambda a: a != address and is_up(a))
        if picked is not None:
            return picked[0]
        return self.filter.answers.get((origin, decl.key), ())   # fail static: the last one

    def _note_fault(self, address: str, reason: str) -> None:
        """A drill's fault began or ended: an event in each zone that uses the target."""
        for origin in sorted({origin for origin, _ in self.rrsets_using(address)}):
            if origin in self.controller.zones:
                self.controller.note(origin, "drill", reason, kind="fault")

    def _note(self, origin: dns.name.Name, reason: str) -> None:
        if origin in self.controller.zones:
            self.controller.note(origin, "probe", reason, kind="health")
        else:
            log.info("health: zone=%s %s", origin, reason)

    def _refused(self, origin: dns.name.Name, why: str) -> None:
        self._note(origin, f"REFUSED: {why}")

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.faults.read_file()
        self._watchdog = loop.create_task(self._watch())
        for key, target in self.targets.items():
            self._tasks[key] = loop.create_task(self._check_loop(target))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        if self._watchdog is not None:
            tasks.append(self._watchdog)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._watchdog = None

    async def _check_loop(self, target: TargetState) -> None:
        loop = asyncio.get_running_loop()
        check = target.check
        while True:
            await self.faults.resume.wait()   # an injected hang stops the checker here
            started = loop.time()
            target.busy_since = self.clock()
            if self.faults.failing(target.address):
                ok, why = False, DRILL_FAILURE
            else:
                ok, why = await run_check(check, target.address)
            if self.faults.hang:
                continue   # the result of a check that was running when the hang began is lost
            try:
                if target.record(ok, why, self.clock()):
                    self._changed(target)
            except Exception:
                log.exception("health: applying a check result failed: target=%s",
                              target.describe())
            await asyncio.sleep(max(0.0, check.interval - (loop.time() - started)))

    async def _watch(self) -> None:
        last_scan = self.clock()
        while True:
            await asyncio.sleep(WATCH_EVERY)
            try:
                now = self.clock()
                if now - last_scan >= RESCAN_EVERY:
                    last_scan = now
                    self.faults.read_file()
                    if self._scan() != self.files:
                        changed = self.load()
                        if changed:
                            self.controller.refilter(changed)
                self.faults.expire(now)
                self._look_for_stalls(now)
                for target in self.targets.values():
                    if target.pending is not None and not target.stalled \
                            and target.settle(now):
                        self._changed(target)
            except Exception:
                log.exception("health watchdog crashed; the last view stays")

    def _look_for_stalls(self, now: float) -> None:
        stall_after = float(self.settings.stall_after)
        stalled = []
        for target in self.targets.values():
            was = target.stalled
            target.stalled = now > target.stall_deadline(stall_after)
            if target.stalled:
                stalled.append(target)
            if target.stalled != was:
                what = ("checker stalled: no result for "
                        f"{now - target.busy_since:.1f}s; its last view ({'up' if target.up else 'down'}) "
                        "stays" if target.stalled else "checker running again")
                log.log(logging.ERROR if target.stalled else logging.WARNING,
                        "health %s: target=%s", what, target.describe())
                for origin in sorted(self._using(target)):
                    self._note(origin, f"target {target.describe()}: {what}")
        if stalled and self.stalled_since is None:
            self.stalled_since = now
        elif not stalled:
            self.stalled_since = None

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        now = self.clock()
        wall = time.time()
        targets = []
        for target in sorted(self.targets.values(), key=lambda t: (t.address, t.check.describe())):
            targets.append({
                "address": target.address, "check": target.check.describe(),
                "up": target.up, "since": now_iso(wall - (now - target.since)),
                "for": now - target.since, "why": target.why,
                "checked": target.last_result_at is not None,
                "last_check_age": now - target.last_result_at
                if target.last_result_at is not None else None,
                "last_error": target.last_error, "oks": target.oks, "fails": target.fails,
                "checks": target.checks, "changes": target.changes,
                "pending": None if target.pending is None
                else ("up" if target.pending else "down"),
                "stalled": target.stalled,
                "rise": target.check.rise, "fall": target.check.fall,
                "interval": target.check.interval, "hold_down": target.check.hold_down})
        rrsets = []
        for origin, decls in sorted(self.filter.declared.items()):
            for decl in decls:
                key = (origin, decl.key)
                rrsets.append({
                    "zone": str(origin), "name": str(decl.name),
                    "type": dns.rdatatype.to_text(decl.rdtype),
                    "answer": list(self.filter.answers.get(key, ())),
                    "pool": self.pools.get(key),
                    "fail_static": self.pools.get(key) is None,
                    "refused": self.filter.refused.get(origin),
                    "missing": decl.label() in self.filter.missing.get(origin, [])})
        stalled = self.stalled_since is not None
        return {"enabled": self.settings.enabled, "files": [str(p) for p in sorted(self.files)],
                "errors": self.errors, "stalled": stalled,
                "stalled_for": now - self.stalled_since if stalled else None,
                "view": "frozen: a checker is stalled, its targets keep their last state"
                if stalled else "live",
                "fault": self.faults.status(),
                "targets": targets, "rrsets": rrsets}
