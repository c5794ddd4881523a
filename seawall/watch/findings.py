"""Findings: what the watch saw that is wrong, and since when.

A finding names its zone, its kind, and the server it concerns (the parent
server, nameserver or peer; empty for the zone as a whole), and says what
the world sees next to what Seawall serves. The :class:`Book` keeps the
findings of the last round with the time each was first seen, so an event
is written when a finding appears and when it clears, not every round.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Kinds, each an alert of its own (contrib/prometheus/seawall-alerts.yml).
DELEGATION_MISSING = "delegation-missing"   # NXDOMAIN or NODATA at the parent
NS_MISMATCH = "ns-mismatch"                 # the parent's NS set is not the served one
GLUE_MISMATCH = "glue-mismatch"             # in-zone nameserver addresses differ
PARENT_DISAGREE = "parent-disagree"         # the parent's servers answer differently
PARENT_UNREACHABLE = "parent-unreachable"   # a parent server (or all) did not answer
DS_MISMATCH = "ds-mismatch"                 # the parent's DS matches no served KSK
DS_MISSING = "ds-missing"                   # signed here, no DS at the parent (insecure)
LAME = "lame"                               # a listed nameserver does not answer with authority
DRIFT = "drift"                             # a peer serves another serial
PEER_DIFFERS = "peer-differs"               # a peer serves other data under the same serial
PEER_UNREACHABLE = "peer-unreachable"       # a peer did not answer with authority
SIGNATURES = "signatures-expiring"          # live, last good or emergency RRSIGs expire soon

KINDS = (DELEGATION_MISSING, NS_MISMATCH, GLUE_MISMATCH, PARENT_DISAGREE, PARENT_UNREACHABLE,
         DS_MISMATCH, DS_MISSING, LAME, DRIFT, PEER_DIFFERS, PEER_UNREACHABLE, SIGNATURES)
SEVERITY = {DELEGATION_MISSING: "critical", DS_MISMATCH: "critical", NS_MISMATCH: "critical",
            GLUE_MISMATCH: "warning", PARENT_DISAGREE: "warning", PARENT_UNREACHABLE: "warning",
            DS_MISSING: "warning", LAME: "warning", DRIFT: "warning", PEER_DIFFERS: "warning",
            PEER_UNREACHABLE: "warning", SIGNATURES: "warning"}


@dataclass(frozen=True)
class Finding:
    """One problem of one zone, as seen by one round of the watch."""

    zone: str
    kind: str
    server: str = ""          # the parent server, nameserver or peer concerned ("": the zone)
    detail: str = ""          # what is wrong, with the numbers
    world: str = ""           # what the parent or peer says
    served: str = ""          # what Seawall serves

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.zone, self.kind, self.server)

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.kind, "warning")

    def text(self) -> str:
        where = f" [{self.server}]" if self.server else ""
        said = ""
        if self.world or self.served:
            said = f" (world: {self.world or '-'}; Seawall: {self.served or '-'})"
        return f"{self.kind}{where}: {self.detail}{said}"

    def to_json(self) -> dict[str, Any]:
        return {"zone": self.zone, "kind": self.kind, "severity": self.severity,
                "server": self.server, "detail": self.detail, "world": self.world,
                "served": self.served}


@dataclass
class Book:
    """The findings standing now, each with the wall-clock time it was first seen."""

    standing: dict[tuple[str, str, str], tuple[Finding, float]] = field(default_factory=dict)

    def update(self, findings: Iterable[Finding], zones: Iterable[str] | None = None,
               now: float | None = None) -> tuple[list[Finding], list[Finding]]:
        """Replace the findings of ``zones`` (None: all) by a round's; (new, cleared)."""
        now = time.time() if now is None else now
        scope = None if zones is None else set(zones)
        fresh = {f.key: f for f in findings}
        new = [f for k, f in fresh.items() if k not in self.standing]
        cleared = [f for k, (f, _) in self.standing.items()
                   if k not in fresh and (scope is None or k[0] in scope)]
        for finding in cleared:
            del self.standing[finding.key]
        for key, finding in fresh.items():
            since = self.standing[key][1] if key in self.standing else now
            self.standing[key] = (finding, since)
        return new, cleared

    def of_zone(self, zone: str) -> list[tuple[Finding, float]]:
        return sorted((v for k, v in self.standing.items() if k[0] == zone),
                      key=lambda v: (v[0].kind, v[0].server))

    def counts(self) -> dict[tuple[str, str], int]:
        """Findings standing now, by (zone, kind)."""
        out: dict[tuple[str, str], int] = {}
        for zone, kind, _ in self.standing:
            out[(zone, kind)] = out.get((zone, kind), 0) + 1
        return out
