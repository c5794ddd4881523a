"""The filter: a zone as served, with each health-checked RRset reduced to its answer.

The controller passes every zone version it chooses to serve through
:class:`AnswerFilter` before publishing it. For a zone with declarations the
filter returns a derived zone (:func:`seawall.zones.derive.replace_rrsets`:
the declared RRsets holding the answer the health view picks, every other
node shared with the input zone, so a change of view costs the few names
that change, not the whole zone) and returns the very same object for the
same input zone and the same answers, so an unchanged view publishes
nothing. The answer path is not
touched: a derived zone is an ordinary zone whose answer tables are built
before it serves, so a health-checked name costs what a plain one costs.

Which answer (see :func:`select`): the healthy values of the first pool
that has one, following the rule's pool and its fallbacks; when no value of
any pool is up, the answer stays the last one served while some were
(fail static), and before any was up, the rule's whole pool. Never empty.

DNSSEC-signed zones are refused: an answer set picked at run time would
need signing per set, which needs the zone's private key online. A signed
zone with declarations is served exactly as signed, and the refusal is an
error in the log, the events and the status.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping

import dns.name
import dns.rdata
import dns.rdataclass

from ..zones.derive import replace_rrsets
from ..zones.model import Zone
from .declaration import HealthRRset

log = logging.getLogger("seawall.health")

CACHED_PER_ZONE = 8   # derived zones kept per zone (views flip back and forth)

Answer = tuple[str, ...]
View = tuple[tuple[tuple[dns.name.Name, int], Answer | None], ...]


def select(rrset: HealthRRset, is_up: Callable[[str], bool]) -> tuple[Answer, str] | None:
    """The healthy values of the first pool that has one, and that pool; None: all down."""
    for pool in rrset.pools:
        up = tuple(v.address for v in pool.values
                   if v.status == "up" or (v.status == "obey" and is_up(v.address)))
        if up:
            return up, pool.name
    return None


class AnswerFilter:
    """The controller's ``answer_filter``: declared RRsets replaced by their answers."""

    def __init__(self) -> None:
        self.declared: dict[dns.name.Name, list[HealthRRset]] = {}
        self.answers: dict[tuple[dns.name.Name, tuple[dns.name.Name, int]], Answer] = {}
        self.refused: dict[dns.name.Name, str] = {}      # signed zones with declarations
        self.missing: dict[dns.name.Name, list[str]] = {}  # declared RRsets the zone lacks
        self.on_refused: Callable[[dns.name.Name, str], None] | None = None
        self.builds = 0
        self._cache: dict[dns.name.Name, OrderedDict[tuple[int, View], tuple[Zone, Zone]]] = {}

    def set_declarations(self, declared: Mapping[dns.name.Name, list[HealthRRset]]) -> None:
        self.declared = dict(declared)
        for origin in list(self._cache):
            if origin not in self.declared:
                del self._cache[origin]

    def view(self, origin: dns.name.Name) -> View:
        return tuple((r.key, self.answers.get((origin, r.key)))
                     for r in self.declared.get(origin, ()))

    def __call__(self, origin: dns.name.Name, zone: Zone) -> Zone:
        declared = self.declared.get(origin)
        if not declared:
            return zone
        if zone.is_signed:
            why = (f"zone {origin} is DNSSEC-signed: its health-checked RRsets "
                   f"({', '.join(r.label() for r in declared)}) are served as signed, "
                   "without health checks (answer sets would need online signing)")
            if self.refused.get(origin) != why:
                self.refused[origin] = why
                log.error("health refused: zone=%s reason=%s", origin, why)
                if self.on_refused is not None:
                    self.on_refused(origin, why)
            return zone
        self.refused.pop(origin, None)
        view = self.view(origin)
        cache = self._cache.setdefault(origin, OrderedDict())
        key = (id(zone), view)
        hit = cache.get(key)
        if hit is not None and hit[0] is zone:
            cache.move_to_end(key)
            return hit[1]
        try:
            derived = self._derive(origin, zone, declared)
        except Exception:   # never a reason to stop serving the zone: serve it as it is
            log.exception("health: building the zone as served failed: zone=%s serial=%d; "
                          "serving it without health checks", origin, zone.serial)
            derived = zone
        cache[key] = (zone, derived)
        while len(cache) > CACHED_PER_ZONE:
            cache.popitem(last=False)
        return derived

    def _derive(self, origin: dns.name.Name, zone: Zone, declared: list[HealthRRset]) -> Zone:
        """The zone with each declared RRset holding its answer (the zone itself if none
        differs)."""
        replace: dict[tuple[dns.name.Name, int], tuple[int, Answer]] = {}
        missing = []
        for decl in declared:
            node = zone.find_node(decl.name)
            rrset = node.get(decl.rdtype) if node is not None else None
            answer = self.answers.get((origin, decl.key))
            if rrset is None:
                missing.append(decl.label())
                continue
            if answer is None or {r.to_text() for r in rrset} == set(answer):
                continue
            replace[decl.key] = (rrset.ttl, answer)
        if missing:
            if self.missing.get(origin) != missing:
                log.warning("health: zone=%s serial=%d has no %s; declared but not served",
                            origin, zone.serial, ", ".join(missing))
            self.missing[origin] = missing
        else:
            self.missing.pop(origin, None)
        if not replace:
            return zone
        self.builds += 1
        # Only the declared RRsets are new; every other node is the base zone's
        # own (a view change costs the path to each RRset, not the whole zone,
        # and the answer tables see only those names change).
        return replace_rrsets(zone, {
            key: (ttl, [dns.rdata.from_text(dns.rdataclass.IN, key[1], value)
                        for value in answer])
            for key, (ttl, answer) in replace.items()})
