"""Answer tables: the wire answers of a zone version, built before it serves.

An *answer body* is a complete answer to a plain query of class IN: what
follows the question depends on the name, the type, the DO bit and the
query's header bits but RD, not on the EDNS payload size or the transport.
A body is kept as the response (after the ID) to the plainest such query
(RD set, no OPT record), under a key that is that query's own bytes after
the ID (``body_key``): the commonest query finds its whole answer in one
lookup, and ``fastpath.py`` adapts the header, the question's letter case
and the OPT for every other shape. The bodies of every name and type of a
zone are its *answer table*.

Tables are made here, by the answer engine (``engine.resolve``) and the fast
encoder (``wire.Encoder``), the same code that answers a query the tables do
not hold, so the engine stays the single source of truth. They are built
per zone version and kept in a ``TableStore``: a ZoneSet's table is the
union of its zones' tables, so a new version of one zone rebuilds that
zone's table alone, and a version seen before (an emergency version, built
at start-up; the live version a release goes back to) costs nothing.

A new version of a zone that has a table (a reload that changed a few
records) is built *incrementally*: each body of the old table carries the
names the engine looked up to make it (every ``walk`` and ``find_node``)
and whether it read the SOA; the two versions' trees are compared (compact
leaves as octets, other nodes RRset by RRset, TTLs included), and a body is
made again only if one of its names, an ancestor of one, or the wildcard
below such an ancestor changed (so a walk down the tree could go another
way), or if it read a SOA that changed. The names that changed get their
questions built afresh. A change at the apex other than its SOA, or a
change of more than half the names, builds the whole table. Subtrees the
two versions share (a health view derived from its base zone,
``seawall.zones.derive``) are not compared, and a version a few names away
from one with a table is adapted before an image is even looked for.

An answer may read more than its own zone: a CNAME chain into another zone
we serve, DS at a child apex (the parent's). Such a body is *foreign*: it is
built again for each ZoneSet, against that set. Every other body depends on
its zone version and on which zones are served (a name belongs to the most
specific of them), so a zone's table is reused only while the set of zone
origins is the same.

Example::

    store = TableStore(limit=200_000)
    for _ in store.prepare(zoneset):   # in a background thread, or a slice at a time
        pass
    bodies = store.bodies_for(zoneset)  # dict: body key -> entry; None if not built
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dns.name
import dns.rrset

from ..zones.model import Node, Zone
from ..failover.store import safe_name
from .engine import Outcome, resolve
from .image import read_image, write_image, zone_digest
from .query import Query, parse_query
from .wire import Encoder, Unsupported

if TYPE_CHECKING:
    from ..zones.zoneset import ZoneSet

log = logging.getLogger("seawall.dns")

IN = 1
CNAME_TYPE = 5
SOA = 6
SKIP_TYPES = {46, 47, 50}       # RRSIG, NSEC, NSEC3: asked with DO, rarely on their own
STEP = 32                       # questions built between two yields of ``prepare``
BUILD_PAYLOAD = 1232            # any: the OPT is not part of a body
TCP_MAX = 65535
FEW_CHANGES = 64                # a version this many names away is adapted before all else

Entry = bytes
"""A body as served: the response after its ID to the plainest query of its key
(RD set, no OPT record): flags, the four counts, the question (name in lower
case), the records. For that query shape, the commonest, it is the answer as
it stands; ``fastpath.py`` adapts it to every other shape."""

PLAIN_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x00"   # QDCOUNT 1, nothing else
QR_DO = 0x80
"""Where a key says DO: the QR bit of its flags, which no query has (a message
with QR set is a response, never answered), so no query's bytes mean it."""


def body_key(name_lower: bytes, qtype: int, dnssec_ok: int, flags: bytes) -> bytes:
    """The table key: the bytes after the ID of the query with these header
    ``flags`` and RD set, this question (class IN) and no OPT record; with
    ``dnssec_ok`` (0x80) the QR bit set besides (see ``QR_DO``).

    A lowercase query of that shape (DO unset) *is* its key: one lookup."""
    return (bytes((flags[0] | 0x01 | (QR_DO if dnssec_ok else 0), flags[1])) + PLAIN_COUNTS
            + name_lower + qtype.to_bytes(2, "big") + b"\x00\x01")


def key_question(key: bytes) -> tuple[bytes, int]:
    """The lowercased wire name and the type a body key is for."""
    return key[10:-4], int.from_bytes(key[-4:-2], "big")


def body_entry(query: Query, response: bytes) -> tuple[bytes, Entry] | None:
    """The key and body of a complete answer to ``query`` (class IN), else None."""
    if query.qclass != IN:
        return None
    end = len(response) - 11 if query.has_edns else len(response)
    arcount = int.from_bytes(response[10:12], "big") - (1 if query.has_edns else 0)
    # RFC 3225: with DO a signed zone's answers carry signatures; another key.
    # The query's header bits but RD are in the key too: whatever the
    # responder makes of them (AD, CD...), a body only serves its like. RD is
    # only copied into the response (RFC 1035 §4.1.1): the body has it set.
    name = query.qname_wire.lower()
    key = body_key(name, query.qtype, 0x80 if query.dnssec_ok else 0,
                   bytes(((query.flags >> 8) & 0xFF, query.flags & 0xFF)))
    question_end = 12 + len(name) + 4
    return key, (bytes((response[2] | 0x01, response[3])) + response[4:10]
                 + arcount.to_bytes(2, "big") + key[10:] + response[question_end:end])


def questions(zone: Zone) -> Iterator[tuple[bytes, int]]:
    """Every (lowercased wire name, type) a zone's table holds."""
    for node in zone.nodes():
        yield from _questions_of(node, _wire(node.name))


def _questions_of(node: Node, name: bytes) -> list[tuple[bytes, int]]:
    if node.is_occluded or not node.rrsets:
        return []
    types = [t for t in node.rrsets if t not in SKIP_TYPES]
    if CNAME_TYPE in node.rrsets:
        types += [1, 28]     # A and AAAA are what gets asked of an alias
    return [(name, qtype) for qtype in types]


class _Traced:
    """A zone as the engine sees it while a body is made: notes what it reads."""

    __slots__ = ("_zone", "names", "soa_read")

    def __init__(self, zone: Zone) -> None:
        self._zone = zone
        self.names: list[dns.name.Name] = []
        self.soa_read = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._zone, name)

    def walk(self, qname: dns.name.Name) -> object:
        self.names.append(qname)
        return self._zone.walk(qname)

    def find_node(self, name: dns.name.Name) -> object:
        self.names.append(name)
        return self._zone.find_node(name)

    @property
    def soa(self) -> object:
        self.soa_read = True
        return self._zone.soa

    @property
    def negative_ttl(self) -> int:
        self.soa_read = True
        return self._zone.negative_ttl

    def trace(self, own: bytes) -> Trace | None:
        """What was read; None for the common case, only ``own`` name and no SOA."""
        names = {_wire(name) for name in self.names}
        if not self.soa_read and names == {own}:
            return None
        return (tuple(names), self.soa_read)


Trace = tuple[tuple[bytes, ...], bool]
"""What a body read of its zone: the names looked up (lowercased wire form), the SOA."""


def _wire(name: dns.name.Name) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in name.labels).lower()


class _Recording:
    """A ZoneSet as the engine sees it, noting whether an answer left ``zone``
    and what it read of ``zone``."""

    __slots__ = ("zoneset", "zone", "foreign", "traced")

    def __init__(self, zoneset: ZoneSet, zone: Zone | None) -> None:
        self.zoneset = zoneset
        self.zone = zone
        self.foreign = False
        self.traced = _Traced(zone) if zone is not None else None

    def find_zone(self, qname: dns.name.Name) -> Zone | None:
        found = self.zoneset.find_zone(qname)
        if found is not None and found is not self.zone:
            self.foreign = True
        elif found is not None and self.traced is not None:
            return self.traced   # type: ignore[return-value]
        return found

    def parent_zone(self, zone: Zone) -> Zone | None:
        found = self.zoneset.parent_zone(zone)
        if found is not None and found is not self.zone:
            self.foreign = True
        elif found is not None and self.traced is not None:
            return self.traced   # type: ignore[return-value]
        return found


class Builder:
    """Makes bodies with the engine and the fast encoder (one per thread)."""

    def __init__(self) -> None:
        self.encoder = Encoder()

    def body(self, zoneset: ZoneSet, zone: Zone | None, name: bytes, qtype: int
             ) -> tuple[bytes, Entry, bool, Trace | None] | None:
        """The key and body of ``name``/``qtype``, whether the answer left ``zone``,
        and what it read of ``zone``.

        Exactly what ``Responder`` makes of a plain query for them: ``resolve``
        then ``Encoder.encode``; None where it keeps no body (NXDOMAIN,
        truncated, or an answer only dnspython's renderer can encode).
        """
        wire = (b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name
                + qtype.to_bytes(2, "big") + b"\x00\x01")
        query = parse_query(wire)
        qname = query.qname
        seen = _Recording(zoneset, zone)
        answer = resolve(seen, qname, qtype, dnssec=False)   # type: ignore[arg-type]
        if answer.outcome is Outcome.NXDOMAIN:
            return None
        try:
            response = self.encoder.encode(query, qname, answer, TCP_MAX, BUILD_PAYLOAD)
        except Unsupported:
            return None
        if not self.encoder.complete:
            return None
        made = body_entry(query, response)
        if made is None:
            return None
        return made[0], made[1], seen.foreign, \
            seen.traced.trace(name) if seen.traced is not None else None


class _ZoneTable:
    """The bodies of one zone version that only it decides, and the questions that
    read other zones too (built again for each ZoneSet)."""

    __slots__ = ("zone", "origins", "bodies", "foreign", "traces")

    def __init__(self, zone: Zone, origins: frozenset, bodies: dict[bytes, Entry],
                 foreign: list[tuple[bytes, int]], traces: dict[bytes, Trace]) -> None:
        self.zone = zone
        self.origins = origins
        self.bodies = bodies
        self.foreign = foreign
        # body key -> what it read, for the next version; a body that read only
        # its own name (and no SOA), most of them, has no entry.
        self.traces = traces


class TableStore:
    """Answer tables per zone version, shared by every ZoneSet that serves it.

    Thread-safe: ``prepare`` may run in a background thread while the event
    loop asks ``bodies_for``. Tables of versions that are neither served nor
    ``keep()`` (the emergency versions) are forgotten by ``retain``.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.keep: Callable[[], Iterable[Zone]] = tuple
        self._zones: dict[int, _ZoneTable] = {}      # id(zone) -> its table
        self._sets: dict[int, tuple[object, dict[bytes, Entry]]] = {}   # id(set) -> bodies
        self._lock = threading.Lock()
        self.images: Path | None = None   # where zone images are kept (image.py), if anywhere
        # True: images are written by a thread of their own (a table built on an
        # event loop, one process, must not wait for the disk).
        self.write_in_background = False
        self.built = 0       # questions built (tests, logs)
        self.loaded = 0      # zone tables read from images
        self.reused = 0      # bodies taken from an older version's table

    # ------------------------------------------------------------- reading

    def bodies_for(self, zoneset: ZoneSet) -> dict[bytes, Entry] | None:
        """The whole table of ``zoneset``, if ``prepare`` has built it."""
        with self._lock:
            made = self._sets.get(id(zoneset))
        if made is None or made[0] is not zoneset:
            return None
        return made[1]

    def partial(self, zoneset: ZoneSet) -> dict[bytes, Entry]:
        """What is built already of ``zoneset``'s table (its zones' own bodies)."""
        whole = self.bodies_for(zoneset)
        if whole is not None:
            return whole
        origins = _origins(zoneset)
        merged: dict[bytes, Entry] = {}
        for zone in zoneset:
            table = self._table(zone, origins)
            if table is not None:
                merged.update(table.bodies)
        return merged

    def has(self, zone: Zone, zoneset: ZoneSet) -> bool:
        """Is ``zone``'s own table built for a set with the origins of ``zoneset``?"""
        return self._table(zone, _origins(zoneset)) is not None

    def _table(self, zone: Zone, origins: frozenset) -> _ZoneTable | None:
        with self._lock:
            table = self._zones.get(id(zone))
        if table is None or table.zone is not zone or table.origins != origins:
            return None
        return table

    # ------------------------------------------------------------ building

    def prepare(self, zoneset: ZoneSet, stop: Callable[[], bool] | None = None
                ) -> Iterator[None]:
        """Build ``zoneset``'s table, yielding every few questions (a caller on an
        event loop runs one step per turn); ``bodies_for`` has it at the end.
        Stops early, leaving no table for the set, when ``stop()`` says so."""
        if self.bodies_for(zoneset) is not None:
            return
        origins = _origins(zoneset)
        builder = Builder()
        for zone in list(zoneset):
            if self._table(zone, origins) is None:
                done = yield from self._build_zone(builder, zoneset, zone, origins, stop)
                if not done:
                    return
        merged: dict[bytes, Entry] = {}
        foreign: list[tuple[bytes, int]] = []
        for zone in zoneset:
            table = self._table(zone, origins)
            if table is None:      # forgotten meanwhile: build it next time
                return
            merged.update(table.bodies)
            foreign += table.foreign
        for count, (name, qtype) in enumerate(foreign):
            if len(merged) >= self.limit:
                break
            if count % STEP == 0:
                if stop is not None and stop():
                    return
                yield
            made = self._one(builder, zoneset, None, name, qtype)
            if made is not None:
                merged[made[0]] = made[1]
        if len(merged) > self.limit:
            merged = dict(_first(merged, self.limit))
        with self._lock:
            self._sets[id(zoneset)] = (zoneset, merged)
        log.debug("answer tables: zone set %d bodies=%d foreign=%d", zoneset.generation,
                  len(merged), len(foreign))

    def prepare_zone(self, zone: Zone, zoneset: ZoneSet,
                     stop: Callable[[], bool] | None = None) -> Iterator[None]:
        """Build the table of a version not served yet (an emergency version), as it
        would serve in ``zoneset`` with ``zone`` swapped in."""
        candidate = zoneset.replace({zone.origin: zone})
        origins = _origins(candidate)
        if self._table(zone, origins) is None:
            yield from self._build_zone(Builder(), candidate, zone, origins, stop)

    def _build_zone(self, builder: Builder, zoneset: ZoneSet, zone: Zone,
                    origins: frozenset, stop: Callable[[], bool] | None
                    ) -> Iterator[None]:
        """Build ``zone``'s own table: from its image if it has one, from an older
        version's table when there is one (see the module doc), else every question.

        A version a few names away from one with a table (a health view, a small
        reload) is adapted first: that is quicker than digesting the zone and
        reading its image, and its image, which serves restarts only, is written
        by a thread of its own."""
        digest = None
        found = self._older(zone, origins, limit=FEW_CHANGES)
        image_later = found is not None
        if self.images is not None and found is None:
            digest = zone_digest(zone)
            loaded = read_image(self.images, zone, digest, origins)
            if loaded is not None:
                with self._lock:
                    self._zones[id(zone)] = _ZoneTable(zone, origins, loaded[0], loaded[2],
                                                       loaded[1])
                self.loaded += 1
                log.info("zone image read: zone=%s serial=%d bodies=%d", zone.origin,
                         zone.serial, len(loaded[0]))
                return True
        bodies: dict[bytes, Entry] = {}
        traces: dict[bytes, Trace] = {}
        foreign: list[tuple[bytes, int]] = []
        todo: Iterable[tuple[bytes, int]] = questions(zone)
        if found is None:
            found = self._older(zone, origins)
        if found is not None:
            older, delta = found
            todo = delta.apply(older, zone, bodies, traces, foreign)
            self.reused += len(bodies)
        for count, (name, qtype) in enumerate(todo):
            if len(bodies) >= self.limit:
                break
            if count % STEP == 0:
                if stop is not None and stop():
                    return False
                yield
            made = self._one(builder, zoneset, zone, name, qtype)
            if made is None:
                continue
            key, entry, left, trace = made
            if left:
                foreign.append((name, qtype))
            else:
                bodies[key] = entry
                if trace is not None:
                    traces[key] = trace
        with self._lock:
            self._zones[id(zone)] = _ZoneTable(zone, origins, bodies, foreign, traces)
        if self.images is not None and image_later:
            threading.Thread(target=_digest_and_write,
                             args=(self.images, zone, origins, bodies, traces, foreign),
                             name="zone-image", daemon=True).start()
        elif self.images is not None and digest is not None:
            args = (self.images, zone, digest, origins, bodies, traces, foreign)
            if self.write_in_background:
                threading.Thread(target=_write, args=args, name="zone-image",
                                 daemon=True).start()
            else:
                _write(*args)
        return True

    def has_images(self, zoneset: ZoneSet) -> bool:
        """Are there images of (some version of) every zone of ``zoneset``? (cheap)"""
        if self.images is None or not len(zoneset):
            return False
        try:
            names = os.listdir(self.images)
        except OSError:
            return False
        prefixes = {safe_name(zone.origin) + "." for zone in zoneset}
        return all(any(n.startswith(p) for n in names) for p in prefixes)

    def _older(self, zone: Zone, origins: frozenset, limit: int | None = None
               ) -> tuple[_ZoneTable, _Delta] | None:
        """The table of another version of ``zone``'s origin (served with the same
        origins) that differs least from it, if it differs little enough (by at
        most ``limit`` names, if given)."""
        with self._lock:
            # Newest first: the version served last is most often the closest, and
            # once one is found the others are compared only while they could win.
            tables = [t for t in reversed(self._zones.values()) if t.zone is not zone
                      and t.zone.origin == zone.origin and t.origins == origins]
        best: tuple[_ZoneTable, _Delta] | None = None
        for table in tables:
            most = max(16, len(table.bodies) // 2)
            if limit is not None:
                most = min(most, limit)
            if best is not None:
                most = min(most, len(best[1].changed) - 1)
            if most < 0:
                break
            delta = _Delta.of(table.zone, zone, limit=most)
            if delta is None:
                continue
            best = (table, delta)
        return best

    def _one(self, builder: Builder, zoneset: ZoneSet, zone: Zone | None, name: bytes,
             qtype: int) -> tuple[bytes, Entry, bool, Trace | None] | None:
        self.built += 1
        try:
            return builder.body(zoneset, zone, name, qtype)
        except Exception:
            log.debug("answer table: failed: name=%r type=%d", name, qtype, exc_info=True)
            return None

    # ----------------------------------------------------------- retaining

    def retain(self, *zonesets: ZoneSet) -> None:
        """Forget every table but those of these sets' zones and of ``keep()``."""
        wanted = {id(zone) for zoneset in zonesets for zone in zoneset}
        wanted |= {id(zone) for zone in self.keep() if zone is not None}
        sets = {id(zoneset) for zoneset in zonesets}
        with self._lock:
            self._zones = {k: v for k, v in self._zones.items() if k in wanted}
            self._sets = {k: v for k, v in self._sets.items() if k in sets}

    def missing(self, zoneset: ZoneSet) -> list[Zone]:
        """The ``keep()`` versions whose tables are not built for ``zoneset``'s origins."""
        out = []
        for zone in self.keep():
            if zone is None:
                continue
            origins = _origins(zoneset.replace({zone.origin: zone}))
            if self._table(zone, origins) is None:
                out.append(zone)
        return out


class _Delta:
    """The names that differ between two versions of a zone (see the module doc)."""

    __slots__ = ("changed", "soa_changed", "origin")

    def __init__(self, changed: set[bytes], soa_changed: bool, origin: bytes) -> None:
        self.changed = changed
        self.soa_changed = soa_changed
        self.origin = origin

    @classmethod
    def of(cls, old: Zone, new: Zone, limit: int | None = None) -> _Delta | None:
        """None when the apex differs in more than its SOA (every body may change),
        or when more than ``limit`` names differ.

        A node or a table of children the two versions share (the same object: a
        version derived from the other, seawall.zones.derive) is the same below."""
        if not _same_node(old.apex, new.apex, skip=SOA):
            return None
        origin = _wire(new.origin)
        changed: set[bytes] = set()
        stack = [(origin, old.apex.children, new.apex.children)]
        while stack:
            suffix, before, after = stack.pop()
            was, now = before.entries, after.entries
            if was is now:
                continue
            differ = [key for key, x in was.items() if now.get(key) is not x]
            differ += now.keys() - was.keys()
            for key in differ:
                name = bytes((len(key),)) + key + suffix
                x, y = was.get(key), now.get(key)
                if x is None or y is None:
                    changed.add(name)   # added or removed, and so is all below it
                elif type(x) is tuple or type(y) is tuple:
                    if x != y:
                        changed.add(name)
                elif not _same_node(x, y):       # type: ignore[arg-type]
                    changed.add(name)
                elif x.children.entries or y.children.entries:   # type: ignore[union-attr]
                    stack.append((name, x.children, y.children))  # type: ignore[union-attr]
                if limit is not None and len(changed) > limit:
                    return None
        soa_changed = not _same_rrset(old.apex.rrsets.get(SOA), new.apex.rrsets.get(SOA))
        return cls(changed, soa_changed, origin)

    def affects(self, trace: Trace) -> bool:
        """Could a body that read this have changed? (A walk to each name goes
        through its ancestors and may end at the wildcard below one of them.)"""
        names, soa_read = trace
        if soa_read and self.soa_changed:
            return True
        changed = self.changed
        origin_len = len(self.origin)
        for name in names:
            if name == self.origin:
                if self.soa_changed:
                    return True      # the apex's own answers may hold the SOA
                continue
            offset = 0
            while len(name) - offset > origin_len:
                suffix = name[offset:]
                if suffix in changed or b"\x01*" + suffix in changed:
                    return True
                offset += name[offset] + 1
            if b"\x01*" + self.origin in changed:
                return True
        return False

    def roots(self) -> tuple[bytes, ...] | None:
        """The names at or below which a body that read only its own name may have
        changed: each changed name, and the parent of each changed wildcard; None
        when that is every name (the apex's wildcard changed)."""
        if b"\x01*" + self.origin in self.changed:
            return None
        return tuple(self.changed) + tuple(name[2:] for name in self.changed
                                           if name.startswith(b"\x01*"))

    def apply(self, older: _ZoneTable, zone: Zone, bodies: dict[bytes, Entry],
              traces: dict[bytes, Trace], foreign: list[tuple[bytes, int]]
              ) -> list[tuple[bytes, int]]:
        """Keep the bodies of ``older`` nothing changed for; the questions to build."""
        todo: dict[tuple[bytes, int], None] = {}
        # Every body is kept but those that may have changed. Suspects first, by
        # what they read: a body whose names have no changed name (or the parent
        # of a changed wildcard) as a suffix, and that read no changed SOA or
        # the apex, cannot have changed; the suspects are checked exactly.
        bodies.update(older.bodies)
        traced = older.traces
        traces.update(traced)
        roots = self.roots()
        origin = self.origin
        if roots is None:
            suspects = list(older.bodies)
        else:
            suspects = [key for key in older.bodies
                        if (name := key[10:-4]).endswith(roots) or name == origin]
            suspects += [key for key, (names, soa_read) in traced.items()
                         if (soa_read and self.soa_changed)
                         or any(name.endswith(roots) or name == origin for name in names)]
        for key in dict.fromkeys(suspects):
            trace = traced.get(key)
            if self.affects(trace if trace is not None else ((key[10:-4],), False)):
                del bodies[key]
                traces.pop(key, None)
                todo[key_question(key)] = None
        for question in older.foreign:
            if question[0] not in self.changed:
                foreign.append(question)   # made again for each set anyway
        for name in self.changed:
            # A changed name's own questions, and those of every name below it
            # (below an added or changed node the trees were not compared).
            node = zone.find_node(_name(name))
            if node is not None:
                for below, below_name in _subtree(node, name):
                    for question in _questions_of(below, below_name):
                        todo[question] = None
        return list(todo)


def _subtree(node: Node, name: bytes) -> Iterator[tuple[Node, bytes]]:
    """``node`` and every node below it, with their lowercased wire names."""
    stack = [(node, name)]
    while stack:
        node, name = stack.pop()
        yield node, name
        for key, child in node.children.items():
            stack.append((child, bytes((len(key),)) + key + name))


def _same_node(a: Node, b: Node, skip: int = -1) -> bool:
    if (a.is_delegation, a.is_occluded, a.is_apex) != (b.is_delegation, b.is_occluded, b.is_apex):
        return False
    if a.rrsets.keys() != b.rrsets.keys() or a.rrsigs.keys() != b.rrsigs.keys():
        return False
    for rdtype, rrset in a.rrsets.items():
        if rdtype != skip and not _same_rrset(rrset, b.rrsets[rdtype]):
            return False
    return all(_same_rrset(sigs, b.rrsigs[covered]) for covered, sigs in a.rrsigs.items())


def _same_rrset(a: dns.rrset.RRset | None, b: dns.rrset.RRset | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.ttl == b.ttl and a == b


def _name(wire: bytes) -> dns.name.Name:
    labels = []
    offset = 0
    while wire[offset]:
        labels.append(wire[offset + 1:offset + 1 + wire[offset]])
        offset += wire[offset] + 1
    return dns.name.Name(labels + [b""])


_ONE_IMAGE = threading.Lock()
"""Images of adapted versions are written one at a time (a flapping view makes many)."""
IMAGE_NICE = 10   # as the supervisor's background threads (seawall/app.py)


def _digest_and_write(directory: Path, zone: Zone, *rest: object) -> None:
    """Write the image of an adapted version from a thread of its own, at a lower
    priority: it serves a restart, not the switch that made it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IMAGE_NICE)
    except (AttributeError, OSError):
        pass   # not Linux, or not allowed: the priority stays
    with _ONE_IMAGE:
        _write(directory, zone, zone_digest(zone), *rest)


def _write(directory: Path, zone: Zone, *rest: object) -> None:
    try:
        write_image(directory, zone, *rest)   # type: ignore[arg-type]
    except (OSError, ValueError) as exc:
        log.warning("zone image not written: zone=%s reason=%s", zone.origin, exc)


def _origins(zoneset: ZoneSet) -> frozenset:
    return frozenset(zone.origin for zone in zoneset)


def _first(bodies: dict[bytes, Entry], count: int) -> Iterator[tuple[bytes, Entry]]:
    for index, item in enumerate(bodies.items()):
        if index >= count:
            return
        yield item


__all__ = ["Builder", "Entry", "TableStore", "body_entry", "body_key", "key_question",
           "questions"]
