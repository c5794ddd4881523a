"""The per-query cost of a health-checked name next to a plain one (pytest-benchmark).

A health-checked RRset is served from a derived zone version, an ordinary
zone with prebuilt answers: nothing is looked up per query. These time the
same responder answering ``www`` (health-checked, reduced to one healthy
target) and ``plain`` (not checked), from the answer cache and through the
encoder, and what a change of view costs on a 20k-record zone: the filter
(on the supervisor's event loop) and the answer tables adapted from the
last view's (in a background thread, before the workers fork). They never
assert a time; run them timed with::

    SEAWALL_PERF=1 .venv/bin/python -m pytest tests/health/test_bench.py --benchmark-sort=name
"""

from __future__ import annotations

import dns.message
import dns.name
import pytest

from conftest import zone_from_text
from harness import SIDE, ZONE
from seawall.config import HealthConfig
from seawall.dns.responder import UDP, Responder, ResponderSettings
from seawall.health.answers import AnswerFilter
from seawall.health.declaration import read_side_file
from seawall.zones.zoneset import ZoneSet

ORIGIN = dns.name.from_text("hc.example.")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> ZoneSet:
    path = tmp_path_factory.mktemp("bench") / "hc.example.health.conf"
    path.write_text(SIDE.format(protocol="HTTP", port=80, interval=1, timeout=1, rise=1,
                                fall=1, hold_down=0))
    _, rrsets = read_side_file(path, HealthConfig())
    flt = AnswerFilter()
    flt.set_declarations({ORIGIN: rrsets})
    flt.answers[(ORIGIN, rrsets[0].key)] = ("127.0.0.3",)   # 127.0.0.2 is down
    zone = flt(ORIGIN, zone_from_text("hc.example.", ZONE))
    return ZoneSet([zone])


def wire(name: str) -> bytes:
    query = dns.message.make_query(f"{name}.hc.example.", "A", use_edns=False)
    query.id = 4242
    return query.to_wire()


@pytest.mark.parametrize("name", ["www", "plain"])
def test_answer_from_cache(benchmark, served, name):
    responder = Responder(served)
    expected = responder.respond(wire(name), UDP)
    assert benchmark(responder.respond, wire(name), UDP) == expected
    answer = dns.message.from_wire(expected).answer[0]
    assert len(answer) == 1   # www: the one healthy target; plain: its one address


@pytest.mark.parametrize("name", ["www", "plain"])
def test_answer_encoded(benchmark, served, name):
    responder = Responder(served, ResponderSettings(cache_entries=0))
    benchmark(responder.respond, wire(name), UDP)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 20k-record zone with www health-checked, its filter and its base tables."""
    from seawall.dns.answers import TableStore
    lines = "".join(f"h{i} A 10.0.{i >> 8 & 255}.{i & 255}\n" for i in range(20_000))
    zone = zone_from_text("hc.example.", ZONE + lines)
    path = tmp_path_factory.mktemp("big") / "hc.example.health.conf"
    path.write_text(SIDE.format(protocol="HTTP", port=80, interval=1, timeout=1, rise=1,
                                fall=1, hold_down=0))
    _, rrsets = read_side_file(path, HealthConfig())
    flt = AnswerFilter()
    flt.set_declarations({ORIGIN: rrsets})
    store = TableStore(limit=100_000)
    base = ZoneSet([zone])
    for _ in store.prepare(base):
        pass
    return zone, flt, (ORIGIN, rrsets[0].key), store, base


def test_view_change_filter(benchmark, big):
    zone, flt, key, _, _ = big
    views = iter(range(10**9))

    def change():
        flt.answers[key] = (f"127.0.0.{next(views) % 200 + 2}",)   # a view not seen yet
        return flt(ORIGIN, zone)
    assert benchmark(change) is not zone


def test_view_change_tables(benchmark, big):
    zone, flt, key, store, base = big
    views = iter(range(10**9))

    def change():
        flt.answers[key] = (f"127.0.0.{next(views) % 200 + 2}",)
        served = base.replace({ORIGIN: flt(ORIGIN, zone)})
        built = store.built
        for _ in store.prepare(served):
            pass
        store.retain(base, served)
        return store.built - built
    assert benchmark(change) <= 2
