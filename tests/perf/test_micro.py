"""Microbenchmarks of the answer path and of zone loading (pytest-benchmark).

Each benchmark names one step: parsing a question, a cache hit, an NXDOMAIN
from a template, a wildcard from a template, an engine lookup, encoding an
answer (fast encoder and dnspython's renderer), reading and building a zone.
They time, they never assert a time (comparisons with NSD and Knot live in
``bench/``). In ``make test`` each runs once, untimed (tests/conftest.py
turns on ``--benchmark-disable``), which checks that it works; timings are
taken only when asked for::

    SEAWALL_PERF=1 .venv/bin/python -m pytest tests/perf --benchmark-sort=name
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import dns.message
import dns.name
import pytest

from seawall.dns.engine import resolve
from seawall.dns.query import parse_query
from seawall.dns.render import render_answer
from seawall.dns.responder import UDP, Responder, ResponderSettings
from seawall.dns.wire import Encoder
from seawall.zones.fastreader import read_master_file_fast
from seawall.zones.loader import load_zone_file
from seawall.zones.model import build_zone
from seawall.zones.reader import read_master_file
from seawall.zones.zoneset import ZoneSet

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from zonegen import ORIGIN, write_zone  # noqa: E402

RECORDS = 10_000


@pytest.fixture(scope="module")
def zone_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("perf") / f"{ORIGIN}zone"
    write_zone(path, RECORDS)
    return path


@pytest.fixture(scope="module")
def zoneset(zone_file: Path) -> ZoneSet:
    loaded = load_zone_file(zone_file)
    assert loaded.zone is not None
    return ZoneSet([loaded.zone])


def wire(qname: str, qtype: str = "A", edns: bool = False) -> bytes:
    query = dns.message.make_query(qname, qtype, use_edns=0 if edns else False)
    query.id = 4242
    return query.to_wire()


HIT = wire(f"h17.{ORIGIN}")


def test_parse_query(benchmark) -> None:
    benchmark(parse_query, wire(f"h17.{ORIGIN}", edns=True))


def test_cache_hit(benchmark, zoneset: ZoneSet) -> None:
    responder = Responder(zoneset)
    expected = responder.respond(HIT, UDP)
    assert benchmark(responder.respond, HIT, UDP) == expected


def test_table_answer_plain_shape(benchmark, zoneset: ZoneSet) -> None:
    """A name never asked before, RD and no OPT: its table entry is its answer."""
    responder = Responder(zoneset)
    responder.fast.warm_all()
    query = wire(f"h18.{ORIGIN}")
    expected = Responder(zoneset, ResponderSettings(fast_path=False)).respond(query, UDP)
    assert benchmark(responder.respond, query, UDP) == expected
    assert not responder.fast.udp     # served from the table, not from the cache


def test_table_answer_with_edns(benchmark, zoneset: ZoneSet) -> None:
    """The same from the table with an OPT record (adapted, then cached)."""
    responder = Responder(zoneset)
    responder.fast.warm_all()
    query = wire(f"h19.{ORIGIN}", edns=True)

    def first_time() -> bytes | None:
        responder.fast.udp.clear()
        return responder.respond(query, UDP)

    expected = Responder(zoneset, ResponderSettings(fast_path=False)).respond(query, UDP)
    assert benchmark(first_time) == expected


def test_cache_hit_mixed_case(benchmark, zoneset: ZoneSet) -> None:
    responder = Responder(zoneset)
    responder.respond(HIT, UDP)
    benchmark(responder.respond, wire(f"H17.{ORIGIN}"), UDP)


def test_nxdomain_template(benchmark, zoneset: ZoneSet) -> None:
    responder = Responder(zoneset)
    rng = random.Random(1)
    queries = [wire(f"x{rng.getrandbits(64):016x}.{ORIGIN}") for _ in range(1000)]
    responder.respond(queries[0], UDP)
    cycle = iter(queries * 1000)
    benchmark(lambda: responder.respond(next(cycle), UDP))
    assert responder.fast.template_hits > 0


def test_wildcard_template(benchmark, zoneset: ZoneSet) -> None:
    responder = Responder(zoneset)
    rng = random.Random(2)
    queries = [wire(f"x{rng.getrandbits(64):016x}.w.{ORIGIN}") for _ in range(1000)]
    responder.respond(queries[0], UDP)
    cycle = iter(queries * 1000)
    benchmark(lambda: responder.respond(next(cycle), UDP))


def test_cache_miss_fast_encoder(benchmark, zoneset: ZoneSet) -> None:
    """A name seen for the first time: engine + fast encoder (cache off)."""
    responder = Responder(zoneset, ResponderSettings(cache_entries=0))
    benchmark(responder.respond, HIT, UDP)


def test_cache_miss_dnspython(benchmark, zoneset: ZoneSet) -> None:
    """The reference slow path: engine + dnspython's renderer."""
    responder = Responder(zoneset, ResponderSettings(fast_path=False))
    benchmark(responder.respond, HIT, UDP)


def test_engine_lookup(benchmark, zoneset: ZoneSet) -> None:
    qname = dns.name.from_text(f"c5.{ORIGIN}")
    benchmark(resolve, zoneset, qname, 1)


def test_encode_fast(benchmark, zoneset: ZoneSet) -> None:
    query = parse_query(wire(f"c5.{ORIGIN}", edns=True))
    answer = resolve(zoneset, query.qname, query.qtype)
    encoder = Encoder()
    out = benchmark(encoder.encode, query, query.qname, answer, 1232, 1232)
    assert out == render_answer(query, query.qname, answer, 1232, 1232)


def test_encode_dnspython(benchmark, zoneset: ZoneSet) -> None:
    query = parse_query(wire(f"c5.{ORIGIN}", edns=True))
    answer = resolve(zoneset, query.qname, query.qtype)
    benchmark(render_answer, query, query.qname, answer, 1232, 1232)


def test_read_zone_fast(benchmark, zone_file: Path) -> None:
    records, problems = benchmark.pedantic(read_master_file_fast,
                                           (zone_file, dns.name.from_text(ORIGIN)), rounds=3)
    assert len(records) >= RECORDS and not problems


def test_read_zone_reference(benchmark, zone_file: Path) -> None:
    benchmark.pedantic(read_master_file, (zone_file, dns.name.from_text(ORIGIN)), rounds=3)


def test_build_zone(benchmark, zone_file: Path) -> None:
    origin = dns.name.from_text(ORIGIN)
    records, _ = read_master_file_fast(zone_file, origin)
    benchmark.pedantic(build_zone, (origin, records), rounds=3)


def test_load_zone_file(benchmark, zone_file: Path) -> None:
    """Read, check and build: what a reload of one zone costs."""
    benchmark.pedantic(load_zone_file, (zone_file,), rounds=3)




def test_leaf_lookup(benchmark, zoneset: ZoneSet) -> None:
    """A compact leaf handed out as a Node: what a slow-path walk to it costs."""
    zone = zoneset.get(dns.name.from_text(ORIGIN))
    assert zone is not None
    name = dns.name.from_text(f"h5.{ORIGIN}")
    benchmark(zone.walk, name)


def test_check_zone(benchmark, zone_file: Path) -> None:
    """The checks that need the tree: they skip the compact leaves."""
    from seawall.zones.validate import check_zone
    loaded = load_zone_file(zone_file)
    benchmark(check_zone, loaded.zone, loaded.records)
