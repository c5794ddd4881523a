"""The hot path: a query's bytes to a response's bytes, without a message object.

Every answer served here was made by the answer engine (``engine.resolve``)
and rendered by ``render.py``; this module only remembers answers and adapts
them, so the engine stays the single source of truth for behaviour. Two
mechanisms, both bounded in memory:

* **Answer cache.** Keyed by the query's bytes after the ID (flags, counts,
  the question with its name lowercased, the OPT record), valued by the
  response's bytes after the ID. A hit on a lowercase query is one dict
  lookup and one concatenation; a mixed-case query is looked up lowercased
  and gets its own letter case copied into the question (RFC 1035 §2.3.3,
  RFC 4343 §4: the case is echoed). Answers carry the question name only at
  offset 12; every other mention of it is a compression pointer to there.

* **Templates for names that do not exist.** A random-subdomain flood asks a
  new name every time, so a cache cannot help and must not be flushed by it.
  When the walk down a zone finds no node for the name (and no zone cut or
  DNAME on the way), the answer depends only on the zone (NXDOMAIN: the SOA,
  RFC 2308 §2.1) or on the closest encloser's wildcard (RFC 4592 §3.3.1), not
  on the name, except for the question itself and the compression pointers
  that follow it. A template is the engine's answer for a stand-in name
  ``\\x00.<anchor>`` (the anchor: the zone apex, or the closest encloser);
  for the real name, the question is copied in and every pointer past the
  stand-in label moves by the difference in name length.

  A template is only used when that is exact: it is rendered twice, for two
  stand-ins of different lengths, and the pointer arithmetic must turn one
  into the other; it must not be truncated and must hold every record the
  engine gave; the query's first label below the anchor must differ from
  those of every name in the answer (which would otherwise compress into the
  question); and the response must still fit the size limit. Otherwise the
  slow path answers. ``tests/dns/test_fastpath.py`` checks byte identity
  with the slow path on many names. Template answers are remembered in a
  small table of their own (half the cache's size, emptied when full), so a name asked
  again costs a lookup, and a flood churns that table instead of the cache.

* **Answer bodies.** What follows the question in a response does not depend
  on the query's shape (RD, EDNS payload, DO, transport) as long as every
  record fits: only the header bits and the OPT record do. The bodies of
  every name and type come from the answer tables (``answers.py``); a
  lowercase query with RD and no OPT is its own key there, and its entry is
  its whole response after the ID (a name asked for the first time costs
  what a cache hit does); the tables are built
  before a ZoneSet serves (by the supervisor, for its workers) or in small
  slices between I/O callbacks of the event loop (one process); each
  complete answer the engine makes at run time is kept there too, and
  serves every other shape of the same question. Bounded in number.

The fast path reads answers through a small interface, ``Answerer`` (the
responder implements it), so it knows nothing of the responder's policy.

Example::

    fast = FastPath(responder, entries=100_000, store=TableStore())
    response = fast.answer(wire, tcp=False)   # None: take the slow path
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Protocol

from ..zones.model import DNAME, WILDCARD
from ..zones.zoneset import ZoneSet
from .answers import PLAIN_COUNTS, Entry, TableStore, body_entry
from .engine import Answer, resolve
from .query import Query, parse_query
from .wire import Encoder

log = logging.getLogger("seawall.dns")
IN = 1
NOT_ANSWERED_BY_ENGINE = {251, 252, 253, 254}   # IXFR, AXFR, MAILB, MAILA
PLAIN_QUESTION = b"\x00\x01\x00\x00\x00\x00"   # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0
# Record types whose rdata names dnspython compresses (RFC 3597 §4: the RFC 1035 types).
NS, CNAME, SOA, PTR, MX = 2, 5, 6, 12, 15
COMPRESSED_RDATA = {NS: 0, CNAME: 0, PTR: 0, MX: 2, SOA: 0}
STAND_IN = (b"\x01\x00", b"\x03\x00\x00\x00")
"""Labels put in front of the anchor to render a template; never a real child."""
MAX_TEMPLATE = 0x3FFF - 256
"""Past offset 0x3FFF names are not compressed: keep templates well below it."""
EVICT_FRACTION = 8
"""When a table is full, its oldest 1/8 goes at once (amortised O(1) per insert)."""


class Answerer(Protocol):
    """What the fast path needs of whoever answers the queries it cannot."""

    @property
    def zoneset(self) -> ZoneSet: ...

    def answer_query(self, query: Query, tcp: bool) -> bytes | None:
        """The complete response to a parsed query (the slow path)."""

    def limit(self, query: Query, tcp: bool) -> int:
        """The largest response ``query`` may get."""


class _Template:
    """An answer for every name that has no node below one anchor."""

    __slots__ = ("head", "chunks", "targets", "stand_in_len", "max_name_len", "avoid",
                 "bodies")

    def __init__(self, head: bytes, chunks: list[bytes], targets: list[int],
                 stand_in_len: int, max_name_len: int, avoid: frozenset[bytes]) -> None:
        self.head = head                  # response octets 2..12: flags and counts
        self.chunks = chunks              # the records, split around the moving pointers
        self.targets = targets            # the pointers' targets for the stand-in name
        self.stand_in_len = stand_in_len  # wire length of the stand-in name
        self.max_name_len = max_name_len  # longest name that still fits the size limit
        self.avoid = avoid                # first labels below the anchor that need the slow path
        self.bodies: dict[int, bytes] = {}

    def body(self, name_len: int) -> bytes:
        """The records, with pointers moved for a name of ``name_len`` octets."""
        body = self.bodies.get(name_len)
        if body is None:
            delta = name_len - self.stand_in_len
            parts = [self.chunks[0]]
            for target, chunk in zip(self.targets, self.chunks[1:]):
                parts.append((0xC000 | (target + delta)).to_bytes(2, "big"))
                parts.append(chunk)
            body = b"".join(parts)
            self.bodies[name_len] = body
        return body


_UNUSABLE = object()
"""A template slot for an anchor whose answers cannot be templated."""


class FastPath:
    """The answer cache and the negative/wildcard templates of one ZoneSet."""

    def __init__(self, answerer: Answerer, entries: int = 100_000, templates: int = 4096,
                 *, udp_payload: int = 1232, store: TableStore | None = None) -> None:
        self.answerer = answerer
        self.entries = entries
        self.template_limit = templates
        self.udp: dict[bytes, bytes] = {}
        self.tcp: dict[bytes, bytes] = {}
        self.templates: dict[tuple, object] = {}
        self.recent: list[dict[bytes, bytes]] = [{}, {}]   # [udp, tcp]: template answers
        self.recent_limit = entries // 2
        self.zoneset = answerer.zoneset
        self.encoder = Encoder()
        self.body_limit = max(2 * entries, 0)
        # The answer tables of every version served here (one store per server).
        self.store = store if store is not None else TableStore(self.body_limit)
        self.bodies: dict[bytes, Entry] = {}
        self.udp_payload = udp_payload
        self._opt = {dnssec_ok: b"\x00\x00\x29" + self.udp_payload.to_bytes(2, "big")
                     + bytes((0, 0, dnssec_ok, 0, 0, 0)) for dnssec_ok in (0, 0x80)}
        self._warming: object = None
        # False: no table building on the event loop after a swap (a supervisor
        # builds its workers' tables in a thread, see seawall/workers.py).
        self.warm_in_background = True
        # Counters for benchmarks and tests: how queries were answered here.
        self.template_hits = 0
        self.body_hits = 0
        self.template_builds = 0

    def reset(self) -> None:
        """A new ZoneSet: forget every answer of the old one; take the answer tables
        already built for it (its zones' versions seen before), build the rest."""
        self.udp = {}
        self.tcp = {}
        self.templates = {}
        self.recent = [{}, {}]
        self.zoneset = self.answerer.zoneset
        self.encoder = Encoder()
        # A supervisor's workers get their tables with the fork (seawall/workers.py).
        self.bodies = (dict(self.store.partial(self.zoneset))
                       if self.body_limit > 0 and self.warm_in_background else {})
        self._start_warming()

    # ----------------------------------------------------------- answers

    def answer(self, wire: bytes, tcp: bool) -> bytes | None:
        """The response from the cache or a template, or None for the slow path."""
        rest = wire[2:]
        # The commonest shape (RD, no OPT, lower case) is its own table key, and
        # the table's entry its whole response: one lookup, as fast as the cache.
        # QR set: a response, never answered (and how a key says DO).
        hit = self.bodies.get(rest)
        if hit is not None and not wire[2] & 0x80 and (tcp or len(hit) <= 510):
            self.body_hits += 1
            return wire[:2] + hit
        cache = self.tcp if tcp else self.udp
        hit = cache.get(rest)
        if hit is not None:
            return wire[:2] + hit
        hit = self.recent[tcp].get(rest)
        if hit is not None:
            return wire[:2] + hit
        qend = _plain_question_end(wire)
        if qend < 0:
            return None
        name = wire[12:qend]
        lowered = name.lower()
        if lowered != name:
            hit = cache.get(wire[2:12] + lowered + wire[qend:])
            if hit is not None:
                return wire[:2] + hit[:10] + name + hit[qend - 2:]
        if wire[qend + 2:qend + 4] != b"\x00\x01" or \
                (wire[qend] == 0 and wire[qend + 1] in NOT_ANSWERED_BY_ENGINE):
            return None
        dnssec_ok = wire[qend + 11] & 0x80 if len(wire) > qend + 4 else 0
        # answers.body_key, inlined (DO is 0x80, the key's QR bit; the class is IN).
        entry = self.bodies.get(bytes((wire[2] | 0x01 | dnssec_ok, wire[3])) + PLAIN_COUNTS
                                + lowered + wire[qend:qend + 4])
        if entry is not None:
            return self._from_body(wire, tcp, qend, entry)
        return self._synthesize(wire, tcp, qend, lowered, dnssec_ok)

    # ------------------------------------------------------------- bodies

    def remember_body(self, query: Query, response: bytes) -> None:
        """Keep what follows the question of a complete answer (see module doc)."""
        if self.body_limit <= 0:
            return
        made = body_entry(query, response)
        if made is None:
            return
        if len(self.bodies) >= self.body_limit:
            self.bodies = dict(islice(self.bodies.items(),
                                      max(1, len(self.bodies) // EVICT_FRACTION), None))
        self.bodies[made[0]] = made[1]

    def _from_body(self, wire: bytes, tcp: bool, qend: int, entry: Entry) -> bytes | None:
        """render_answer's bytes for this query shape, from a kept body (the
        response to the RD, no-OPT query: see ``answers.Entry``)."""
        self.body_hits += 1
        body = entry[qend + 2:]      # past the question (the entry starts at the flags)
        if len(wire) > qend + 4:     # an OPT (the plain shape has no other record)
            payload = max(512, (wire[qend + 7] << 8) | wire[qend + 8])
            limit = 65535 if tcp else min(payload, self.udp_payload)
            opt = self._opt[wire[qend + 11] & 0x80]
            counts = entry[2:8] + (int.from_bytes(entry[8:10], "big") + 1).to_bytes(2, "big")
        else:
            limit = 65535 if tcp else 512
            opt = b""
            counts = entry[2:10]
        if qend + 4 + len(body) + len(opt) > limit:
            return None
        # RD is copied from the query (RFC 1035 §4.1.1); the entry has it set.
        response = (wire[:2] + bytes(((entry[0] & 0xFE) | (wire[2] & 0x01), entry[1]))
                    + counts + wire[12:qend + 4] + body + opt)
        self.remember(wire, tcp, response)
        return response

    def _start_warming(self) -> None:
        """Build the answer tables of this ZoneSet, then of the versions the store
        keeps ready (emergency), a slice per event-loop turn."""
        if not self.warm_in_background or self.body_limit <= 0:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (tests, tools): nothing runs in the background
        steps = self._warm_steps(self.zoneset)
        self._warming = steps
        loop.call_soon(self._warm_slice, loop, steps)

    def _warm_steps(self, zoneset: ZoneSet) -> Iterator[None]:
        stale = lambda: self.zoneset is not zoneset  # noqa: E731
        yield from self.store.prepare(zoneset, stop=stale)
        built = self.store.bodies_for(zoneset)
        if built is None or stale():
            return
        learned = self.bodies
        self.bodies = dict(built)
        self.bodies.update(islice(learned.items(), max(0, self.body_limit - len(built))))
        log.debug("warmed: bodies=%d", len(self.bodies))
        for zone in self.store.missing(zoneset):
            yield from self.store.prepare_zone(zone, zoneset, stop=stale)
        self.store.retain(zoneset)

    def _warm_slice(self, loop: asyncio.AbstractEventLoop, steps: Iterator[None]) -> None:
        if self._warming is not steps:
            return  # a newer ZoneSet took over
        try:
            next(steps)
        except StopIteration:
            self._warming = None
            return
        loop.call_soon(self._warm_slice, loop, steps)

    def warm_all(self, stop: Callable[[], bool] | None = None) -> int:
        """Build the whole answer table now (tools, tests); the questions built."""
        before = self.store.built
        for _ in self.store.prepare(self.zoneset, stop=stop):
            pass
        built = self.store.bodies_for(self.zoneset)
        if built is not None:
            self.bodies = dict(built)
        return self.store.built - before

    def remember(self, wire: bytes, tcp: bool, response: bytes) -> None:
        """Keep the slow path's ``response`` to ``wire`` (a plain QUERY of class IN)."""
        qend = _plain_question_end(wire)
        if qend < 0 or self.entries <= 0:
            return
        cache = self.tcp if tcp else self.udp
        if len(cache) >= self.entries:
            cache = self._evict(cache, tcp)
        lowered = wire[12:qend].lower()
        cache[wire[2:12] + lowered + wire[qend:]] = response[2:12] + lowered + response[qend:]

    def _evict(self, cache: dict[bytes, bytes], tcp: bool) -> dict[bytes, bytes]:
        """Drop the oldest entries in one go (dicts keep insertion order)."""
        kept = dict(islice(cache.items(), max(1, len(cache) // EVICT_FRACTION), None))
        if tcp:
            self.tcp = kept
        else:
            self.udp = kept
        return kept

    # --------------------------------------------------------- templates

    def _synthesize(self, wire: bytes, tcp: bool, qend: int, lowered: bytes,
                    dnssec_ok: int) -> bytes | None:
        """Answer from a template if the name has no node in its zone (see module doc).

        Not for DO queries to signed zones: their denial of existence (NSEC,
        NSEC3) and wildcard proofs depend on the name itself (RFC 4035 §3.1.3).
        """
        labels = []
        starts = []
        offset = 0
        while True:
            length = lowered[offset]
            if length == 0:
                break
            starts.append(offset)
            labels.append(lowered[offset + 1:offset + 1 + length])
            offset += length + 1
        labels.append(b"")
        zone = self.zoneset.zone_for_key(tuple(labels))
        if zone is None or (dnssec_ok and getattr(zone, "is_signed", True)):
            return None
        node = zone.apex
        for index in range(len(labels) - len(zone.origin_key) - 1, -1, -1):
            # As Zone.walk: a cut or a DNAME on the way is the slow path's business.
            if node.is_delegation or DNAME in node.rrsets:
                return None
            child = node.children.get(labels[index])
            if child is None:
                if WILDCARD in node.children or WILDCARD in zone.apex.children:
                    # Synthesis from this wildcard, or NXDOMAIN in a zone whose
                    # stand-in below the apex would meet the apex wildcard.
                    anchor: object = node
                    anchor_index = index + 1
                else:
                    anchor = zone
                    anchor_index = len(labels) - len(zone.origin_key)
                break
            node = child
        else:
            return None  # the name exists: the cache's business
        key = (anchor, tcp, wire[2:12], wire[qend:])
        template = self.templates.get(key)
        if template is None:
            anchor_wire = lowered[starts[anchor_index]:] if anchor_index < len(starts) else b"\x00"
            template = self._build(wire, tcp, qend, anchor_wire)
            if len(self.templates) >= self.template_limit:
                self.templates.clear()
            self.templates[key] = template
        if template is _UNUSABLE:
            return None
        assert isinstance(template, _Template)
        name_len = qend - 12
        if name_len > template.max_name_len or labels[anchor_index - 1] in template.avoid:
            return None
        self.template_hits += 1
        response = wire[:2] + template.head + wire[12:qend + 4] + template.body(name_len)
        # A small table of its own: a flood of new names churns it, not the cache.
        if self.recent_limit > 0:
            recent = self.recent[tcp]
            if len(recent) >= self.recent_limit:
                recent.clear()   # cheapest under a flood, where nothing in it is worth keeping
            recent[wire[2:]] = response[2:]
        return response

    def _build(self, wire: bytes, tcp: bool, qend: int, anchor_wire: bytes) -> object:
        """Render the template of one anchor and query shape, and prove it exact."""
        self.template_builds += 1
        renders = []
        for stand_in in STAND_IN:
            query_wire = wire[:12] + stand_in + anchor_wire + wire[qend:]
            rendered = self._render(query_wire, tcp)
            if rendered is None:
                return _UNUSABLE
            renders.append(rendered)
        (first, expected), (second, _) = renders
        anchor = _labels_of(anchor_wire)
        split = _split(first, 12 + len(STAND_IN[0]), anchor)
        if split is None or len(first) > MAX_TEMPLATE or _counts(first) != expected:
            return _UNUSABLE
        chunks, targets, avoid = split
        if STAND_IN[0][1:] in avoid or STAND_IN[1][1:] in avoid:
            return _UNUSABLE
        stand_in_len = len(STAND_IN[0]) + len(anchor_wire)
        room = self.answerer.limit(parse_query(wire), tcp) - len(first)
        template = _Template(first[2:12], chunks, targets, stand_in_len,
                             min(255, stand_in_len + room), frozenset(avoid))
        # The proof: the pointer arithmetic turns the first render into the second.
        second_name_len = len(STAND_IN[1]) + len(anchor_wire)
        question_end = 12 + second_name_len + 4
        if second[2:12] != template.head or \
                second[question_end:] != template.body(second_name_len):
            return _UNUSABLE
        return template

    def _render(self, query_wire: bytes, tcp: bool) -> tuple[bytes, tuple[int, int, int]] | None:
        """The slow path's response to a stand-in query, and the record counts it must hold."""
        query = parse_query(query_wire)
        response = self.answerer.answer_query(query, tcp)
        if response is None:
            return None
        answer: Answer = resolve(self.zoneset, query.qname, query.qtype,
                                 dnssec=query.dnssec_ok)
        extra = 1 if query.has_edns else 0
        return response, (sum(len(r) for r in answer.answer),
                          sum(len(r) for r in answer.authority),
                          sum(len(r) for r in answer.additional) + extra)


def _plain_question_end(wire: bytes) -> int:
    """Offset of the qtype in a plain QUERY (one question, at most a bare OPT), else -1.

    The shape the cache and templates serve: opcode QUERY, no answer or
    authority records, and either nothing after the question or exactly one
    OPT of version 0 without options.
    """
    n = len(wire)
    if n < 17 or wire[4:10] != PLAIN_QUESTION or wire[2] & 0xF8:
        return -1
    end = 12
    while True:
        if end >= n:
            return -1
        length = wire[end]
        if length == 0:
            break
        if length > 63:
            return -1
        end += length + 1
    end += 1
    rest = n - end - 4
    if rest == 0 and wire[10:12] == b"\x00\x00":
        return end
    if rest == 11 and wire[10:12] == b"\x00\x01" and wire[end + 4] == 0 \
            and wire[end + 5:end + 7] == b"\x00\x29" and wire[end + 10] == 0 \
            and wire[end + 13:end + 15] == b"\x00\x00":
        return end
    return -1


def _labels_of(name_wire: bytes) -> list[bytes]:
    labels = []
    offset = 0
    while name_wire[offset]:
        length = name_wire[offset]
        labels.append(name_wire[offset + 1:offset + 1 + length].lower())
        offset += length + 1
    return labels


def _counts(response: bytes) -> tuple[int, int, int]:
    if response[2] & 0x02:  # TC: something did not fit
        return (-1, -1, -1)
    return (int.from_bytes(response[6:8], "big"), int.from_bytes(response[8:10], "big"),
            int.from_bytes(response[10:12], "big"))


def _split(response: bytes, anchor_offset: int, anchor: list[bytes]
           ) -> tuple[list[bytes], list[int], set[bytes]] | None:
    """The records of a stand-in response split around pointers at or past the anchor.

    Also returns the first labels below the anchor of every name in the
    records (the stand-in's own, reached through offset 12, excepted).
    None if the message is not laid out as expected.
    """
    try:
        offset = 12
        while response[offset]:
            offset += response[offset] + 1
        offset += 5
        start = offset
        moving: list[tuple[int, int]] = []
        avoid: set[bytes] = set()
        count = sum(int.from_bytes(response[i:i + 2], "big") for i in (6, 8, 10))
        for _ in range(count):
            offset = _walk_name(response, offset, anchor_offset, anchor, moving, avoid)
            rdtype = int.from_bytes(response[offset:offset + 2], "big")
            rdlength = int.from_bytes(response[offset + 8:offset + 10], "big")
            offset += 10
            end = offset + rdlength
            skip = COMPRESSED_RDATA.get(rdtype)
            if skip is not None:
                position = _walk_name(response, offset + skip, anchor_offset, anchor,
                                      moving, avoid)
                if rdtype == SOA:
                    position = _walk_name(response, position, anchor_offset, anchor,
                                          moving, avoid)
            offset = end
        if offset != len(response):
            return None
    except IndexError:
        return None
    chunks, targets = [], []
    previous = start
    for position, target in moving:
        chunks.append(response[previous:position])
        targets.append(target)
        previous = position + 2
    chunks.append(response[previous:])
    return chunks, targets, avoid


def _walk_name(response: bytes, offset: int, anchor_offset: int, anchor: list[bytes],
               moving: list[tuple[int, int]], avoid: set[bytes]) -> int:
    """Skip one name; note its moving pointer and, if below the anchor, its first label there."""
    labels: list[bytes] = []
    position = offset
    end = -1
    via_question = False
    for _ in range(128):
        length = response[position]
        if length & 0xC0 == 0xC0:
            target = ((length & 0x3F) << 8) | response[position + 1]
            if end < 0:
                end = position + 2
                if target >= anchor_offset:
                    moving.append((position, target))
                elif target != 12:
                    raise IndexError("pointer into the stand-in label")
            if target == 12:
                via_question = True
                break
            position = target
            continue
        if length == 0:
            if end < 0:
                end = position + 1
            break
        labels.append(response[position + 1:position + 1 + length].lower())
        position += length + 1
    else:
        raise IndexError("pointer loop")
    if not via_question and len(labels) > len(anchor) and \
            (not anchor or labels[-len(anchor):] == anchor):
        avoid.add(labels[-len(anchor) - 1])
    return end


__all__ = ["Answerer", "FastPath"]
