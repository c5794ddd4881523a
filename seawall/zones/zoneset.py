"""ZoneSet: the immutable set of served zones, found by longest match.

The server holds exactly one ZoneSet reference; reloads and failover build a
new one and swap the reference, so a query always sees one consistent set
(never half of an update).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import dns.name

from .model import Walk, Zone, name_key


class ZoneSet:
    """Zones keyed by their origin's lowercase labels."""

    __slots__ = ("_zones", "generation")

    def __init__(self, zones: Iterable[Zone] = (), generation: int = 0) -> None:
        self._zones: dict[tuple[bytes, ...], Zone] = {z.origin_key: z for z in zones}
        self.generation = generation

    def find_zone(self, qname: dns.name.Name) -> Zone | None:
        """The served zone that is the longest match for ``qname`` (RFC 1034 §4.3.2 step 2)."""
        key = name_key(qname)
        zones = self._zones
        for start in range(len(key)):
            zone = zones.get(key[start:])
            if zone is not None:
                return zone
        return None

    def zone_for_key(self, key: tuple[bytes, ...]) -> Zone | None:
        """``find_zone`` for a name already split into lowercase labels (root last)."""
        zones = self._zones
        for start in range(len(key)):
            zone = zones.get(key[start:])
            if zone is not None:
                return zone
        return None

    def lookup(self, qname: dns.name.Name) -> tuple[Zone, Walk] | None:
        """The zone that answers for ``qname`` and what a walk down it found."""
        zone = self.find_zone(qname)
        if zone is None:
            return None
        return zone, zone.walk(qname)

    def parent_zone(self, zone: Zone) -> Zone | None:
        """The served zone just above ``zone``, which holds its delegation and DS."""
        if zone.origin == dns.name.root:
            return None
        return self.find_zone(zone.origin.parent())

    def get(self, origin: dns.name.Name) -> Zone | None:
        return self._zones.get(name_key(origin))

    def replace(self, zones: Mapping[dns.name.Name, Zone | None]) -> ZoneSet:
        """A new ZoneSet with these zones replaced (None removes one)."""
        merged = dict(self._zones)
        for origin, zone in zones.items():
            if zone is None:
                merged.pop(name_key(origin), None)
            else:
                merged[name_key(origin)] = zone
        return ZoneSet(merged.values(), self.generation + 1)

    def __iter__(self) -> Iterator[Zone]:
        return iter(sorted(self._zones.values(), key=lambda z: z.origin))

    def __len__(self) -> int:
        return len(self._zones)

    def __contains__(self, origin: dns.name.Name) -> bool:
        return name_key(origin) in self._zones
