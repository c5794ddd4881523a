"""Faults for health drills: a target's checks made to fail, or every checker hung.

Two ways in, one effect on the checks (seawall/health/service.py asks
:meth:`HealthFaults.failing` before each check and waits on ``resume``):

* a drill (``seawall failover drill --scenario target-down --target ADDR``,
  seawall/failover/drill_target.py): :meth:`HealthFaults.inject_down` with a
  wall-clock ``until``; the deadline runs on the health service's monotonic
  clock and its watchdog calls :meth:`HealthFaults.expire`, so the fault
  ends on time whoever injected it and whatever happened to them since;
* the file ``state_dir/health-fault``, read once a second, for tests and by
  hand: a line ``down ADDR`` fails ADDR's checks, a line ``hang`` stops
  every checker before its next check, as a stuck checker would. Removing
  the file (or the line) ends it.

A failed check reads ``drill: target-down``; from there the fall count,
the hold-down and fail static run exactly as in a real outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..failover.store import now_iso

log = logging.getLogger("seawall.health")

FAULT_FILE = "health-fault"
DRILL_FAILURE = "drill: target-down"


@dataclass
class DownFault:
    """A drill's order: every check of ``address`` fails until ``deadline`` (monotonic)."""

    address: str
    deadline: float
    until: float          # the same moment on the wall clock, for status and reports
    reason: str


class HealthFaults:
    """The faults in force; ``note(address, reason)`` records a drill's start and end."""

    def __init__(self, path: Path, clock: Callable[[], float],
                 note: Callable[[str, str], None]) -> None:
        self.path = path
        self.clock = clock
        self.note = note
        self.hang = False                       # from the file
        self.down: set[str] = set()             # from the file
        self.drill: DownFault | None = None     # a drill's target-down
        self.resume = asyncio.Event()           # cleared while the checkers hang
        self.resume.set()
        self._mtime: float | None = None

    def failing(self, address: str) -> bool:
        """Must every check of ``address`` fail now (a drill, or the fault file)?"""
        return address in self.down or (self.drill is not None
                                         and self.drill.address == address)

    def active(self) -> bool:
        return self.hang or bool(self.down) or self.drill is not None

    # ------------------------------------------------------------------ drills

    def inject_down(self, address: str, until: float, reason: str) -> None:
        """Fail every check of ``address`` until the wall-clock time ``until``."""
        if self.drill is not None:
            raise ValueError(f"target {self.drill.address} is drilled down already")
        deadline = self.clock() + max(0.0, until - time.time())
        self.drill = DownFault(address, deadline, until, reason)
        log.warning("health drill: target-down target=%s until=%s (%s)", address,
                    now_iso(until), reason)
        self.note(address, f"fault injected: target-down {address} ({reason})")

    def clear_down(self, reason: str) -> bool:
        """End a drill's target-down now; False when there was none."""
        fault, self.drill = self.drill, None
        if fault is None:
            return False
        log.warning("health drill ended: target=%s (%s)", fault.address, reason)
        self.note(fault.address, f"fault removed: target-down {fault.address} ({reason})")
        return True

    def expire(self, now: float) -> None:
        """The watchdog's look: end a drill's fault whose deadline has passed."""
        if self.drill is not None and now >= self.drill.deadline:
            fault, self.drill = self.drill, None
            log.warning("health drill ended at its deadline: target=%s", fault.address)
            self.note(fault.address, f"fault removed at its deadline: target-down "
                                     f"{fault.address}")

    # -------------------------------------------------------------------- file

    def read_file(self) -> None:
        """Read the fault file again if it changed (or went away)."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        hang, down = False, set()
        if mtime is not None:
            try:
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    words = line.split()
                    if words[:1] == ["hang"]:
                        hang = True
                    elif len(words) == 2 and words[0] == "down":
                        down.add(words[1])
            except (OSError, UnicodeDecodeError) as exc:
                log.error("health fault file unreadable: %s", exc)
        if (hang, down) != (self.hang, self.down):
            log.warning("health drill: hang=%s down=%s", hang, ",".join(sorted(down)) or "-")
        self.hang, self.down = hang, down
        if hang:
            self.resume.clear()
        else:
            self.resume.set()

    def status(self) -> dict[str, Any] | None:
        if not self.active():
            return None
        drill = self.drill
        return {"hang": self.hang, "down": sorted(self.down),
                "drill": {"target": drill.address, "until": drill.until, "reason": drill.reason}
                if drill is not None else None}
