"""The guard: validation, RFC 1982 serials, delete and change ratios, with the numbers."""

from __future__ import annotations

import dns.name
import pytest

from seawall.backends.base import Version, wiped
from seawall.failover.guard import Limits, diff, judge, serial_gt
from seawall.zones.problems import Location, Problem

from failover_zones import make_zone

ORIGIN = dns.name.from_text("example.org.")
LIMITS = Limits(max_delete_ratio=0.3, max_change_ratio=0.5)


def version(zone) -> Version:
    return Version(ORIGIN, zone, [], "tag", "test")


@pytest.mark.parametrize("a, b, after", [
    (2, 1, True), (1, 2, False), (1, 1, False),
    (0, 2**32 - 1, True),              # wraps around (RFC 1982 §3.2)
    (2**31 - 1, 0, True), (2**31, 0, False),   # exactly half way is undefined: not after
    (5, 2**32 - 5, True), (2**32 - 5, 5, False),
])
def test_serial_arithmetic(a, b, after):
    assert serial_gt(a, b) is after


def test_first_version_is_accepted():
    assert judge(None, version(make_zone(ORIGIN, 1)), LIMITS).accepted


def test_normal_update_is_accepted():
    verdict = judge(make_zone(ORIGIN, 1), version(make_zone(ORIGIN, 2, hosts=21)), LIMITS)
    assert verdict.accepted and verdict.diff.added == 1


def test_serial_backwards_is_rejected():
    verdict = judge(make_zone(ORIGIN, 5), version(make_zone(ORIGIN, 4, hosts=21)), LIMITS)
    assert not verdict.accepted
    assert "serial 4 is older than the served serial 5" in verdict.reason
    assert verdict.older


def test_same_serial_different_data_is_rejected():
    verdict = judge(make_zone(ORIGIN, 5), version(make_zone(ORIGIN, 5, hosts=21)), LIMITS)
    assert not verdict.accepted and "bump the serial" in verdict.reason


def test_same_serial_same_data_is_unchanged():
    verdict = judge(make_zone(ORIGIN, 5), version(make_zone(ORIGIN, 5)), LIMITS)
    assert verdict.accepted and verdict.unchanged


def test_wipe_is_rejected_naming_the_numbers():
    old = make_zone(ORIGIN, 1, hosts=10_000)
    verdict = judge(old, version(wiped(old)), LIMITS)
    assert not verdict.accepted
    assert "would delete 9002 of 10003 RRsets (90% > 30%)" in verdict.reason


def test_too_many_changes_are_rejected():
    old = make_zone(ORIGIN, 1, hosts=10)
    new = make_zone(ORIGIN, 2, hosts=10, ttl=60)   # every RRset's TTL changes
    verdict = judge(old, version(new), LIMITS)
    assert not verdict.accepted
    assert "would change 13 of 13 RRsets (-0 ~13: 100% > 50%)" in verdict.reason


def test_invalid_data_is_rejected_with_its_problems():
    bad = Version(ORIGIN, None, [Problem(Location("zones/example.org.zone", 7),
                                         "CNAME at www beside other data")], "t", "test")
    verdict = judge(make_zone(ORIGIN, 1), bad, LIMITS)
    assert not verdict.accepted
    assert "zones/example.org.zone:7: CNAME at www" in verdict.reason


def test_diff_counts():
    change = diff(make_zone(ORIGIN, 1, hosts=10), make_zone(ORIGIN, 2, hosts=8))
    assert (change.before, change.after, change.deleted, change.added) == (13, 11, 2, 0)

