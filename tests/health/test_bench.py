"""The per-query cost of a health-checked name next to a plain one (pytest-benchmark).

A health-checked RRset is served from a derived zone version, an ordinary
zone with prebuilt answers: nothing is looked up per query. These time the
same responder answering ``www`` (health-checked, reduced to one healthy
target) and ``plain`` (not checked), from the answer cache and through the
encoder. They never assert a time; run them timed with::

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
