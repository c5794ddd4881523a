"""The four states (live, held, stale, emergency) on ordinary and bad days, in the controller.

Each test is one case of the failover issue's list, driven by reports and
hand-turned clocks, and checks what a client would be served.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

from seawall.backends.base import Report, Version
from seawall.config import FailoverConfig
from seawall.failover.controller import Controller, Mode
from seawall.failover.store import StateStore
from seawall.failover.zonestate import EmergencyCheck
from seawall.zones.model import build_zone

from failover_zones import make_zone, records
from test_controller import ORIGIN, Harness


def expire_harness(tmp_path=None, **settings) -> Harness:
    """The shipped default: stale_for is the zone's SOA EXPIRE (14 days in these zones)."""
    settings.setdefault("stale_for", -1)
    return Harness(tmp_path, **settings)


def test_unbumped_serial_is_held_with_a_message_that_says_bump_it():
    h = expire_harness()
    h.new(hosts=20)
    served = h.st.served
    h.new(hosts=21, serial=h.serial)          # one record more, same serial
    assert h.mode == "held" and h.st.served is served
    assert "bump the serial" in h.st.held.reason
    assert h.st.failures == 0
    h.new(hosts=21)                           # bumped: taken at once
    assert h.mode == "live" and h.st.served.serial == h.serial


def test_content_hash_serials_are_not_ordered():
    """octoDNS YAML without a serial: a new hash may be 'lower'; it is still newer data."""
    h = expire_harness()
    h.new(serial=2_000_000_000)
    zone = make_zone(ORIGIN, 17, hosts=21)    # RFC 1982: 17 is before 2e9
    h.tag += 1
    version = Version(ORIGIN, zone, [], f"t{h.tag}", "test", serial_ordered=False)
    h.ctl.apply([Report(ORIGIN, True, version=version, tag=f"t{h.tag}")])
    assert h.mode == "live" and h.st.served is zone
    # the same hash-serial version, ordered, would have been held as older data
    h2 = expire_harness()
    h2.new(serial=2_000_000_000)
    h2.new(hosts=21, serial=17)
    assert h2.mode == "held" and h2.st.held.older


def test_additions_are_not_changes():
    """+40 RRsets on a 23-RRset zone is a zone growing, not a risky change."""
    h = expire_harness()
    h.new(hosts=20)
    h.new(hosts=60)
    assert h.mode == "live" and h.st.served.serial == h.serial


def test_deletions_still_have_their_own_ratio():
    h = expire_harness()
    h.new(hosts=20)
    h.new(hosts=10)                           # 10 of 23 RRsets deleted: 43% > 30%
    assert h.mode == "held"
    assert "would delete 10 of 23 RRsets" in h.st.held.reason


def test_apex_ns_can_never_be_removed():
    h = expire_harness()
    h.new()
    without_ns = [r for r in records(ORIGIN, h.serial + 1)
                  if r.rdata.rdtype != dns.rdatatype.NS]
    h.serial += 1
    zone = build_zone(ORIGIN, without_ns, source="test")
    h.new(zone=zone)
    assert h.mode == "held"
    assert "no NS RRset at the apex" in h.st.held.reason


def test_a_protected_rrset_cannot_be_emptied_even_within_the_ratios():
    h = expire_harness(protect=("www.example.org A",))
    h.new(hosts=200)
    gone = [r for r in records(ORIGIN, h.serial + 1, hosts=200)
            if r.name != dns.name.from_text("www", ORIGIN)]
    h.serial += 1
    h.new(zone=build_zone(ORIGIN, gone, source="test"))   # 1 of 203 RRsets: far within 30%
    assert h.mode == "held"
    assert "removes the protected RRset www.example.org. A" in h.st.held.reason
    assert h.served_address() == "192.0.2.80"


def test_a_three_second_blip_serves_last_good_not_emergency():
    h = expire_harness(fail_after=3)
    h.new()
    for _ in range(3):
        h.fail("connection refused")
        h.clock.now += 1
        h.ctl.tick()
    assert h.mode == "stale" and h.served_address() == "192.0.2.80"
    for _ in range(5):
        h.ok()
    assert h.mode == "live"


def test_stale_becomes_emergency_only_after_the_soa_expire():
    h = expire_harness(fail_after=1)
    h.new()
    h.fail()
    assert h.mode == "stale"
    h.clock.now += 1209600 - 10               # the zone's SOA EXPIRE is 14 days
    h.ctl.tick()
    assert h.mode == "stale"
    h.clock.now += 20
    h.ctl.tick()
    assert h.mode == "emergency" and h.served_address() == "192.0.2.99"


def test_backend_back_with_older_data_is_held_not_emergency():
    h = expire_harness(fail_after=3)
    h.new()
    newest = h.st.served
    for _ in range(3):
        h.fail()
    assert h.mode == "stale"
    for _ in range(1000):                      # it comes back, with an older version
        h.new(serial=newest.serial - 1)
    assert h.mode == "held" and h.st.served is newest
    assert h.st.held.older and "older than the served serial" in h.st.held.reason


def test_flapping_backend_makes_a_handful_of_swaps():
    """4 s down, 6 s up, for 10 minutes, probed every second: damped, not 120 swaps."""
    h = expire_harness(fail_after=3, recover_after=5, stale_for=0)
    h.new()
    for second in range(600):
        if second % 10 < 4:
            h.fail()
        else:
            h.ok()
        h.clock.now += 1
        h.ctl.tick()
    status = h.ctl.status()["zones"][0]
    assert status["switches"] <= 6, status
    assert status["damping"]["episodes"] >= 2
    for _ in range(5 * status["damping"]["factor"]):   # calm again: back to live, in time
        h.ok()
        h.clock.now += 1
    assert h.mode == "live"


def test_unprotected_zone_never_falls_back_to_its_emergency_file():
    h = expire_harness(fail_after=1, stale_for=0)
    h.new()
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck(problems=["its signatures expire soon"]))
    h.fail()
    assert h.mode == "stale" and h.served_address() == "192.0.2.80"
    assert h.ctl.status()["zones"][0]["protected"] is False


def test_prejudged_verdict_is_used_only_against_the_data_it_was_judged_on():
    """A verdict computed in a thread before another version landed must be recomputed."""
    h = expire_harness()
    h.new(hosts=20)
    candidate = h.version(hosts=21)             # serial n+1, judged against serial n
    report = Report(ORIGIN, True, version=candidate, tag=candidate.tag)
    report.verdict = h.ctl.prejudge(report)
    assert report.verdict[1].accepted
    h.new(hosts=21, serial=candidate.serial + 5)   # meanwhile a newer version was taken
    newer = h.st.served
    h.ctl.apply([report])                       # the old verdict would take an older serial
    assert h.st.served is newer
    assert h.mode == "held" and h.st.held.older


def test_cold_start_with_the_backend_down_serves_a_fresh_snapshot(tmp_path):
    h = expire_harness(tmp_path)
    h.new()
    served = h.st.served.serial
    h2 = expire_harness(tmp_path)
    h2.clock.now = h.clock.now + 3600
    h2.clock.start_wall = h.clock.start_wall       # the same wall clock, an hour later
    h2.ctl.restore(h2.store.load_snapshots(), h2.store.load_overrides())
    h2.fail("connection refused")
    h2.ctl.finish_startup("no answer")
    assert h2.mode == "stale" and h2.st.served.serial == served


def test_override_for_30_minutes_ignores_a_wall_clock_step_back():
    h = expire_harness()
    h.new()
    h.ctl.force(Mode.EMERGENCY, None, "rehearsal", until=h.clock.wall() + 1800)
    h.clock.step = -3600                         # the wall clock jumps an hour back
    h.clock.now += 1801
    h.ctl.tick()
    assert h.mode == "live"


def test_a_wall_clock_step_forward_does_not_age_stale_data():
    h = expire_harness(fail_after=1, stale_for=600)
    h.new()
    h.fail()
    assert h.mode == "stale"
    h.clock.step = 3600                          # +1 h on the wall clock only
    h.clock.now += 10
    h.ctl.tick()
    assert h.mode == "stale"


def test_status_shows_the_overrides_deadline_on_the_wall_clock():
    h = expire_harness()
    h.new()
    deadline = h.clock.wall() + 600
    h.ctl.force(Mode.EMERGENCY, None, "x", until=deadline)
    assert h.ctl.status()["zones"][0]["forced"]["until"] == pytest.approx(deadline, abs=0.01)


def test_full_state_directory_is_reported_and_serving_goes_on(tmp_path):
    """A store that fails every write (ENOSPC): reported in status, answers unchanged."""
    class FullStore(StateStore):
        def append_event(self, event):
            raise OSError(28, "No space left on device")

        def save_snapshot(self, *args, **kwargs):
            raise OSError(28, "No space left on device")

    store = FullStore(tmp_path / "state")
    store.prepare()
    published: list = []
    ctl = Controller(FailoverConfig(), published.append, store)
    zone = make_zone(ORIGIN, 5)
    ctl.apply([Report(ORIGIN, True, version=Version(ORIGIN, zone, [], "t", "test"), tag="t")])
    assert ctl.zones[ORIGIN].served is zone and published
    assert "No space left on device" in ctl.status()["state_dir_error"]

