"""What the failover controller knows about one zone: its states and their memory.

The four states (DESIGN.md, "The controller")::

    state      served                  entered when
    live       the backend's version   a version passes the guard (or `accept`)
    held       the last good version   the backend answers, but its newest version
                                       was rejected by the guard or is older
    stale      the last good version   fail_after consecutive backend failures
    emergency  the emergency file      no usable last good version (none; older than
                                       stale_for; signatures about to expire), an
                                       operator's order, a drill

Times kept here are on the controller's monotonic clock (so a step of the
wall clock moves no deadline); wall time is used only to show them and to
persist them across a restart.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.name

from ..backends.base import Version
from ..zones.model import Zone


class Mode(str, enum.Enum):
    LIVE = "live"
    HELD = "held"
    STALE = "stale"
    EMERGENCY = "emergency"

    @property
    def healthy(self) -> bool:
        """The backend answers in this state (live or held)."""
        return self in (Mode.LIVE, Mode.HELD)


@dataclass
class Good:
    """A version the guard (or an operator) accepted: the last good data."""

    zone: Zone
    tag: str
    source: str
    fetched_at: float            # wall clock, when the backend delivered it
    confirmed_at: float          # monotonic: the backend last said this is current
    soa_expire: int | None = None


@dataclass
class Override:
    """A forced state; ``until`` (monotonic) None means until released."""

    mode: Mode
    reason: str
    by: str = "operator"
    at: float = 0.0              # wall clock, for display
    until: float | None = None   # monotonic deadline

    def to_json(self, wall_of: Callable[[float], float]) -> dict[str, Any]:
        """The override as persisted and shown: ``until`` in wall-clock seconds."""
        return {"mode": self.mode.value, "reason": self.reason, "by": self.by,
                "at": self.at, "until": wall_of(self.until) if self.until is not None else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any],
                  monotonic_of: Callable[[float], float]) -> Override:
        until = data.get("until")
        return cls(Mode(data["mode"]), str(data.get("reason", "")),
                   str(data.get("by", "operator")), float(data.get("at", 0)),
                   monotonic_of(float(until)) if until is not None else None)


@dataclass
class Held:
    """Why the backend's newest version is not served: the guard's reason, with numbers."""

    version: Version
    reason: str
    since: float                 # monotonic
    older: bool = False          # behind the last good serial (RFC 1982), not bad data


@dataclass
class Damping:
    """Flap damping in the spirit of RFC 2439: each bounce adds a penalty that decays.

    A zone that left live for a fallback state gets 1 point; points halve
    every ``half_life`` seconds. Getting back to live then needs
    ``recover_after × 2^(round(points) − 1)`` consecutive good probes (at most
    ``max_factor`` times ``recover_after``): a zone that keeps bouncing stays in
    its fallback state longer each time, and a calm one is soon forgiven.
    """

    points: float = 0.0
    at: float = 0.0              # monotonic time of the last update
    episodes: int = 0            # bounces since start

    def now(self, now: float, half_life: float) -> float:
        return self.points * 0.5 ** ((now - self.at) / half_life) if self.points else 0.0

    def bounce(self, now: float, half_life: float) -> None:
        self.points = self.now(now, half_life) + 1.0
        self.at = now
        self.episodes += 1

    def factor(self, now: float, half_life: float, max_factor: int) -> int:
        exponent = max(0, math.floor(self.now(now, half_life) + 0.5) - 1)
        return min(max_factor, 2 ** min(exponent, 30))


@dataclass
class EmergencyCheck:
    """How far an emergency file can be trusted, against its live zone (see emergency.py)."""

    problems: list[str] = field(default_factory=list)   # each makes the zone unprotected
    drift: float | None = None       # share of live RRsets missing or different in emergency
    age: float | None = None         # seconds since the file was last written
    signature_expiry: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"problems": self.problems, "drift": self.drift, "age": self.age,
                "signature_expiry": self.signature_expiry}


@dataclass
class ZoneState:
    """Everything the controller knows about one zone."""

    origin: dns.name.Name
    mode: Mode | None = None        # the automatic state; None before the first report
    failures: int = 0               # consecutive
    successes: int = 0              # consecutive
    good: Good | None = None
    emergency: Zone | None = None
    # Why there is no usable emergency version (broken file, expired signatures,
    # wrong NS...): the zone is unprotected. None when it is protected.
    unprotected: str | None = None
    emergency_check: EmergencyCheck | None = None
    held: Held | None = None
    override: Override | None = None
    backend: str | None = None
    last_report_at: float | None = None
    last_error: str | None = None
    last_event: dict[str, Any] | None = None
    expired: bool = False
    signatures_expiring: bool = False   # the last good data's RRSIGs run out within the margin
    damping: Damping = field(default_factory=Damping)
    switches: int = 0               # changes of the served source since start
    served: Zone | None = None      # what was last published
    served_mode: Mode | None = None
    persisted_at: float = 0.0       # when the snapshot's confirmation time was last written
    _capped: tuple[int, Zone] | None = field(default=None, repr=False)

    @property
    def effective(self) -> Mode | None:
        return self.override.mode if self.override is not None else self.mode

    @property
    def rejected(self) -> Version | None:
        """The version held back by the guard, if any."""
        return self.held.version if self.held is not None else None

    @property
    def rejected_reason(self) -> str | None:
        return self.held.reason if self.held is not None else None

    @property
    def protected(self) -> bool:
        """An emergency version is there to fall back to, and it can be trusted."""
        return self.emergency is not None and self.unprotected is None
