"""The DS set a zone's validators may hold now: what the parent publishes, plus
what it published within the DS TTL (RFC 7583 §3.3: during a KSK roll, a
resolver keeps the old DS until its TTL runs out).

This is what :attr:`seawall.failover.controller.Controller.parent_ds` gets:
a signed version whose KSKs match none of it is held, an emergency file
whose KSKs match none of it makes its zone unprotected.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.name

from .served import DsTuple


class DsMemory:
    """Per zone: DS tuples seen at the parent, each until its TTL has run out."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self._until: dict[dns.name.Name, dict[DsTuple, float]] = {}
        self._known: set[dns.name.Name] = set()   # zones whose parent answered at least once

    def saw(self, origin: dns.name.Name, published: set[DsTuple], ttl: int) -> None:
        """The parent publishes ``published`` now (an empty set: no DS, or no delegation)."""
        now = self.wall()
        kept = self._until.setdefault(origin, {})
        for ds in published:
            kept[ds] = max(kept.get(ds, 0.0), now + ttl)
        self._known.add(origin)

    def current(self, origin: dns.name.Name) -> set[DsTuple] | None:
        """Every DS published now or within its TTL; None when the parent was never seen.

        An empty set means the parent publishes no DS (and none is cached):
        the controller then has nothing to hold a version against.
        """
        if origin not in self._known:
            return None
        now = self.wall()
        kept = self._until.get(origin, {})
        for ds in [d for d, until in kept.items() if until < now]:
            del kept[ds]
        return set(kept)

    def forget(self, origin: dns.name.Name) -> None:
        self._until.pop(origin, None)
        self._known.discard(origin)
