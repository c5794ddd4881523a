"""The parts alone: the side file reader, target hysteresis, answer selection, the filter."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from conftest import zone_from_text
from harness import ZONE
from seawall.config import HealthConfig
from seawall.health.answers import AnswerFilter, select
from seawall.health.declaration import (Check, HealthDeclarationError, read_side_file)
from seawall.health.target import TargetState
from seawall.zones.loader import is_zone_file

ORIGIN = dns.name.from_text("hc.example.")
GOOD = """www:
  type: A
  dynamic:
    pools:
      main: {values: [{value: 127.0.0.2}, {value: 127.0.0.3, weight: 2}], fallback: backup}
      backup: {values: [127.0.0.4]}
    rules: [{pool: main, geos: [EU]}, {pool: main}]
  octodns:
    healthcheck: {protocol: TCP, port: 8080}
"""


def side(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hc.example.health.conf"
    path.write_text(text)
    return path


def test_side_file_is_not_a_zone_and_reads_octodns_schema(tmp_path):
    path = side(tmp_path, GOOD)
    assert not is_zone_file(path)
    origin, (rrset,) = read_side_file(path, HealthConfig(interval=5, fall=4))
    assert origin == ORIGIN and rrset.label() == "www.hc.example. A"
    assert [p.name for p in rrset.pools] == ["main", "backup"]
    assert rrset.addresses() == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert rrset.check.protocol == "TCP" and rrset.check.port == 8080
    assert rrset.check.interval == 5 and rrset.check.fall == 4 and rrset.check.rise == 2


@pytest.mark.parametrize("text, message", [
    ("www: {type: MX, dynamic: {pools: {a: {values: [1.2.3.4]}}}}", "only A and AAAA"),
    ("www: {type: A}", "needs dynamic.pools"),
    ("www: {type: A, dynamic: {pools: {a: {values: ['::1']}}}}", "is not an A address"),
    ("www: {type: A, dynamic: {pools: {a: {values: [1.2.3.4], fallback: b}}}}",
     "pool 'b' is not declared"),
    ("www: {type: A, dynamic: {pools: {a: {values: [1.2.3.4], fallback: a}}}}", "loop"),
    ("www: {type: A, dynamic: {pools: {a: {values: [1.2.3.4]}}}, healthcheck: {protocol: ICMP}}",
     "protocol 'ICMP'"),
    ("\n\nwww: {type: A, bogus: 1, dynamic: {pools: {a: {values: [1.2.3.4]}}}}",
     ":3: www: unknown key(s) bogus"),
    ("www: {type: A, dynamic: {pools: {a: {values: [1.2.3.4]}}, rules: [{pool: a, geos: [EU]}]}}",
     "geo rules are not served"),
])
def test_bad_side_files_name_the_line(tmp_path, text, message):
    with pytest.raises(HealthDeclarationError) as caught:
        read_side_file(side(tmp_path, text), HealthConfig())
    assert message in str(caught.value)
    assert str(tmp_path / "hc.example.health.conf") in str(caught.value)


CHECK = Check("TCP", 80, rise=2, fall=3, hold_down=0)


@pytest.mark.parametrize("results, up_after", [
    ("ff", [True, True]),                 # fall=3: two failures are not enough
    ("fff", [True, True, False]),
    ("fffo", [True, True, False, False]),  # rise=2: one good check is not enough
    ("fffoo", [True, True, False, False, True]),
    ("ffoff", [True] * 5),                # a good check resets the failures
])
def test_rise_and_fall(results, up_after):
    target = TargetState("127.0.0.2", CHECK, up=True, now=0.0)
    seen = []
    for i, r in enumerate(results):
        target.record(r == "o", "refused", float(i))
        seen.append(target.up)
    assert seen == up_after


def test_hold_down_defers_and_drops_stale_changes():
    check = Check("TCP", 80, rise=1, fall=1, hold_down=3.0)
    target = TargetState("127.0.0.2", check, up=True, now=0.0)
    assert target.record(False, "refused", 1.0) is True and not target.up
    assert target.record(True, "", 2.0) is False and target.pending is True
    assert target.settle(3.5) is False                  # still inside the window
    assert target.settle(4.0) is True and target.up     # at its end, still called for
    assert target.record(False, "refused", 4.5) is False and target.pending is False
    assert target.record(True, "", 5.0) is False and target.pending is None   # flapped back
    assert target.settle(8.0) is False and target.up and target.changes == 2


def test_select_walks_pools_and_status_overrides(tmp_path):
    _, (rrset,) = read_side_file(side(tmp_path, GOOD), HealthConfig())
    assert select(rrset, lambda a: True) == (("127.0.0.2", "127.0.0.3"), "main")
    assert select(rrset, lambda a: a == "127.0.0.3") == (("127.0.0.3",), "main")
    assert select(rrset, lambda a: a == "127.0.0.4") == (("127.0.0.4",), "backup")
    assert select(rrset, lambda a: False) is None


def test_filter_returns_the_same_object_for_the_same_view(tmp_path):
    _, rrsets = read_side_file(side(tmp_path, GOOD), HealthConfig())
    zone = zone_from_text("hc.example.", ZONE)
    flt = AnswerFilter()
    flt.set_declarations({ORIGIN: rrsets})
    key = (ORIGIN, rrsets[0].key)
    flt.answers[key] = ("127.0.0.2", "127.0.0.3")
    assert flt(ORIGIN, zone) is zone            # the zone already says so: no rebuild
    flt.answers[key] = ("127.0.0.3",)
    one = flt(ORIGIN, zone)
    assert one is not zone and flt(ORIGIN, zone) is one and flt.builds == 1
    www = one.find_node(dns.name.from_text("www.hc.example."))
    assert [r.to_text() for r in www.get(1)] == ["127.0.0.3"] and www.get(1).ttl == 60
    assert one.find_node(dns.name.from_text("plain.hc.example.")).get(1) is not None
    assert one.serial == zone.serial and one.rrset_count == zone.rrset_count
    flt.answers[key] = ("127.0.0.4",)
    other = flt(ORIGIN, zone)
    flt.answers[key] = ("127.0.0.3",)
    assert flt(ORIGIN, zone) is one and flt.builds == 2   # flipping back costs nothing
    assert other is not one


def test_signed_zone_is_refused_and_served_as_signed(tmp_path):
    _, rrsets = read_side_file(side(tmp_path, GOOD), HealthConfig())
    signed = zone_from_text("hc.example.", ZONE + "@ DNSKEY 257 3 13 "
                            "mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==\n",
                            strict=False)
    assert signed.is_signed
    refusals = []
    flt = AnswerFilter()
    flt.on_refused = lambda origin, why: refusals.append(why)
    flt.set_declarations({ORIGIN: rrsets})
    flt.answers[(ORIGIN, rrsets[0].key)] = ("127.0.0.4",)
    assert flt(ORIGIN, signed) is signed and flt(ORIGIN, signed) is signed
    assert len(refusals) == 1 and "DNSSEC-signed" in refusals[0]
    assert "online signing" in flt.refused[ORIGIN]


def test_missing_rrset_is_reported_not_invented(tmp_path):
    _, rrsets = read_side_file(side(tmp_path, GOOD.replace("www:", "api:")), HealthConfig())
    zone = zone_from_text("hc.example.", ZONE)
    flt = AnswerFilter()
    flt.set_declarations({ORIGIN: rrsets})
    flt.answers[(ORIGIN, rrsets[0].key)] = ("127.0.0.4",)
    assert flt(ORIGIN, zone) is zone
    assert flt.missing[ORIGIN] == ["api.hc.example. A"]


def test_a_failed_build_serves_the_zone_as_it_is(tmp_path, monkeypatch):
    import seawall.health.answers as answers
    _, rrsets = read_side_file(side(tmp_path, GOOD), HealthConfig())
    zone = zone_from_text("hc.example.", ZONE)
    flt = AnswerFilter()
    flt.set_declarations({ORIGIN: rrsets})
    flt.answers[(ORIGIN, rrsets[0].key)] = ("127.0.0.4",)

    def broken(*args, **kwargs):
        raise ValueError("boom")
    monkeypatch.setattr(answers, "replace_rrsets", broken)
    assert flt(ORIGIN, zone) is zone and flt(ORIGIN, zone) is zone
