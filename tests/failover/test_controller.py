"""The controller's state machine, driven by reports and a hand-turned clock."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dns.name
import pytest

from seawall.backends.base import Report, Version, wiped
from seawall.config import FailoverConfig
from seawall.failover.controller import ControlError, Controller, Mode
from seawall.failover.store import StateStore

from failover_zones import make_zone

ORIGIN = dns.name.from_text("example.org.")


class Clock:
    """A monotonic clock turned by hand, and a wall clock that moves with it (or is stepped)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.start_wall = time.time()
        self.step = 0.0          # a wall-clock step (NTP, an operator) the monotonic one ignores

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.start_wall + (self.now - 1_000_000.0) + self.step


class Harness:
    """A controller with an emergency zone, recording every publish."""

    def __init__(self, tmp_path: Path | None = None, **settings) -> None:
        self.clock = Clock()
        # These tests are about the way to emergency: no stale period unless asked for.
        settings.setdefault("stale_for", 0)
        self.published: list[dict] = []
        self.store = StateStore(tmp_path / "state") if tmp_path else None
        if self.store:
            self.store.prepare()
        self.ctl = Controller(FailoverConfig(**settings), self.published.append, self.store,
                              clock=self.clock, wall=self.clock.wall)
        self.emergency = make_zone(ORIGIN, 1, hosts=3, address="192.0.2.99")
        self.ctl.add_emergency({ORIGIN: self.emergency})
        self.serial = 10
        self.tag = 0

    def version(self, hosts: int = 20, serial: int | None = None, zone=None) -> Version:
        self.tag += 1
        if serial is None:
            self.serial += 1
            serial = self.serial
        zone = zone or make_zone(ORIGIN, serial, hosts=hosts)
        return Version(ORIGIN, zone, [], f"t{self.tag}", "test", fetched_at=self.clock.now)

    def new(self, **kw) -> None:
        self.ctl.apply([Report(ORIGIN, True, version=self.version(**kw), tag=f"t{self.tag}")])

    def ok(self) -> None:
        self.ctl.apply([Report(ORIGIN, True, tag=f"t{self.tag}")])

    def fail(self, why: str = "timed out") -> None:
        self.ctl.apply([Report(ORIGIN, False, error=why)])

    @property
    def st(self):
        return self.ctl.zones[ORIGIN]

    @property
    def mode(self) -> str | None:
        return self.st.served_mode.value if self.st.served_mode else None

    def served_address(self) -> str:
        zone = self.st.served
        node = zone.find_node(dns.name.from_text("www", zone.origin))
        return node.get(1)[0].address


def test_first_good_report_goes_live_and_publishes_once():
    h = Harness()
    h.new()
    assert h.mode == "live"
    assert len(h.published) == 1 and h.published[0][ORIGIN].serial == 11


def test_fail_after_consecutive_failures_switch_to_emergency():
    h = Harness(fail_after=3)
    h.new()
    h.fail()
    h.fail()
    assert h.mode == "live"
    h.fail()
    assert h.mode == "emergency"
    assert h.served_address() == "192.0.2.99"


def test_a_success_resets_the_failure_count():
    h = Harness(fail_after=3)
    h.new()
    for _ in range(5):
        h.fail()
        h.fail()
        h.ok()
    assert h.mode == "live"


def test_recover_after_consecutive_successes():
    h = Harness(fail_after=2, recover_after=3)
    h.new()
    h.fail()
    h.fail()
    assert h.mode == "emergency"
    h.ok()
    h.ok()
    assert h.mode == "emergency"
    h.ok()
    assert h.mode == "live"
    assert h.served_address() == "192.0.2.80"


def test_flapping_backend_does_not_flap_the_zone():
    """Up one probe, down one probe, for a long time: one switch, no way back."""
    h = Harness(fail_after=3, recover_after=5)
    h.new()
    for _ in range(3):
        h.fail()
    switches_before = len(h.published)
    for _ in range(200):
        h.ok()
        h.ok()
        h.fail()
    assert h.mode == "emergency"
    assert len(h.published) == switches_before


def test_flapping_within_fail_after_never_leaves_live():
    h = Harness(fail_after=3, recover_after=5)
    h.new()
    published = len(h.published)
    for _ in range(200):
        h.fail()
        h.fail()
        h.ok()
    assert h.mode == "live"
    assert len(h.published) == published


def test_stale_first_then_emergency_when_stale_for_is_spent():
    h = Harness(fail_after=1, stale_for=60)
    h.new()
    h.clock.now += 10
    h.fail()
    assert h.mode == "stale"
    assert h.served_address() == "192.0.2.80"
    h.clock.now += 30
    h.ctl.tick()
    assert h.mode == "stale"
    h.clock.now += 30
    h.ctl.tick()
    assert h.mode == "emergency"


def test_stale_for_already_spent_goes_straight_to_emergency():
    h = Harness(fail_after=1, stale_for=60)
    h.new()
    h.clock.now += 120
    h.fail()
    assert h.mode == "emergency"


def test_stale_ttl_cap_applies_in_stale_state():
    h = Harness(fail_after=1, stale_for=60, stale_ttl_max=30)
    h.new()
    h.fail()
    assert h.mode == "stale"
    assert max(r.ttl for r in h.st.served.rrsets()) == 30
    assert h.st.served.soa[0].minimum == 30


def test_emergency_ttl_cap_and_soa_minimum():
    h = Harness(fail_after=1, emergency_ttl_max=120)
    h.new()
    h.fail()
    assert max(r.ttl for r in h.st.served.rrsets()) == 120
    assert h.st.served.soa[0].minimum <= 120


def test_no_emergency_zone_keeps_the_last_good_data():
    h = Harness(fail_after=1)
    h.ctl.zones[ORIGIN].emergency = None
    h.new()
    h.fail()
    assert h.mode == "stale"
    assert h.served_address() == "192.0.2.80"


def test_guard_rejection_holds_the_last_good_and_is_no_failure():
    h = Harness(fail_after=3, stale_for=0)
    h.new(hosts=100)
    zone = h.st.good.zone
    h.ctl.apply([Report(ORIGIN, True, version=Version(ORIGIN, wiped(zone), [], "wipe", "t"),
                        tag="wipe")])
    assert h.st.served is zone
    assert h.mode == "held"
    assert "would delete" in h.st.rejected_reason
    assert h.st.failures == 0
    # the backend keeps offering it, many times over fail_after: still held, never emergency
    for _ in range(50):
        h.ctl.apply([Report(ORIGIN, True, tag="wipe")])
        h.clock.now += 1
        h.ctl.tick()
    assert h.mode == "held" and h.st.served is zone
    assert h.ctl.status()["zones"][0]["held"]["serial"] == zone.serial + 1


def test_accept_serves_the_rejected_version_and_goes_live():
    h = Harness(fail_after=1, stale_for=600)
    h.new(hosts=100)
    wipe = wiped(h.st.good.zone)
    h.ctl.apply([Report(ORIGIN, True, version=Version(ORIGIN, wipe, [], "wipe", "t"),
                        tag="wipe")])
    assert h.mode == "held"
    assert h.ctl.accept("example.org") == wipe.serial
    assert h.mode == "live"
    assert h.st.served is wipe
    h.ctl.apply([Report(ORIGIN, True, tag="wipe")])
    assert h.mode == "live" and h.st.failures == 0


def test_accept_without_a_rejected_version_is_refused():
    h = Harness()
    h.new()
    with pytest.raises(ControlError, match="no held version"):
        h.ctl.accept("example.org")


def test_force_emergency_and_release():
    h = Harness()
    h.new()
    h.ctl.force("emergency", ["example.org"], "drill on a calm day")
    assert h.mode == "emergency"
    h.ok()
    assert h.mode == "emergency"
    h.ctl.release(None)
    assert h.mode == "live"


def test_force_with_expiry_reverts_by_itself():
    h = Harness()
    h.new()
    h.ctl.force(Mode.EMERGENCY, None, "ten seconds", until=h.clock.wall() + 10)
    h.clock.now += 9
    h.ctl.tick()
    assert h.mode == "emergency"
    h.clock.now += 2
    h.ctl.tick()
    assert h.mode == "live"


def test_force_live_while_backend_is_down():
    h = Harness(fail_after=1)
    h.new()
    h.fail()
    assert h.mode == "emergency"
    h.ctl.force("live", None, "the operator trusts the old data")
    assert h.mode == "live"
    assert h.served_address() == "192.0.2.80"


def test_force_refusals():
    h = Harness()
    h.new()
    with pytest.raises(ControlError, match="not served"):
        h.ctl.force("emergency", ["nope.example"], "x")
    with pytest.raises(ControlError, match="not stale"):
        h.ctl.force("stale", None, "x")


def test_first_report_is_a_failure_at_start_up(tmp_path):
    h = Harness()
    h.fail("connection refused")
    assert h.mode == "emergency"
    assert h.st.last_event["cause"] == "startup"


def test_cold_start_from_snapshot(tmp_path):
    h = Harness(tmp_path, stale_for=600)
    h.new()
    served = h.st.served
    # a new process, the backend down
    h2 = Harness(tmp_path, stale_for=600)
    h2.clock.now = h.clock.now + 100
    h2.ctl.restore(h2.store.load_snapshots(), h2.store.load_overrides())
    h2.ctl.finish_startup("no answer")
    assert h2.mode == "stale"
    assert h2.st.served.serial == served.serial
    # too old for stale_for: emergency
    h3 = Harness(tmp_path, stale_for=600)
    h3.clock.now = h.clock.now + 1000
    h3.ctl.restore(h3.store.load_snapshots(), h3.store.load_overrides())
    h3.ctl.finish_startup("no answer")
    assert h3.mode == "emergency"


def test_overrides_survive_a_restart(tmp_path):
    h = Harness(tmp_path)
    h.new()
    h.ctl.force("emergency", None, "maintenance")
    h2 = Harness(tmp_path)
    h2.ctl.restore(h2.store.load_snapshots(), h2.store.load_overrides())
    h2.ctl.finish_startup("no answer")
    assert h2.mode == "emergency"
    assert h2.st.override.reason == "maintenance"


def test_events_name_every_transition_and_its_reason(tmp_path):
    h = Harness(tmp_path, fail_after=2, recover_after=2)
    h.new()
    h.fail("timed out after 1s")
    h.fail("timed out after 1s")
    h.ok()
    h.ok()
    events = [json.loads(line) for line in
              (tmp_path / "state" / "events.jsonl").read_text().splitlines()]
    moves = [(e["from"], e["to"], e["cause"]) for e in events if e["kind"] == "transition"]
    assert moves == [(None, "live", "startup"), ("live", "emergency", "probe"),
                     ("emergency", "live", "probe")]
    assert "2 consecutive failures" in events[1]["reason"]
    assert "timed out" in events[1]["reason"]
    assert events[1]["serial_from"] == 11 and events[1]["serial_to"] == 1
    assert h.ctl.event_counts == {("transition", "startup"): 1, ("transition", "probe"): 2}


def test_expired_is_reported_but_data_still_served():
    h = Harness(fail_after=1, stale_for=10**9)
    h.new()
    h.fail()
    h.clock.now += 2_000_000   # past the SOA EXPIRE of make_zone (1209600)
    h.ctl.tick()
    assert h.st.expired
    assert h.st.last_event["kind"] == "expired"
    assert h.mode == "stale"


def test_removed_zone_falls_back_to_emergency():
    h = Harness()
    h.new()
    h.ctl.apply([Report(ORIGIN, True, removed=True)])
    assert h.mode == "emergency"


def test_a_version_never_judged_is_noticed():
    h = Harness()
    h.new()
    tag = h.st.good.tag
    assert not h.ctl.unseen_version(Report(ORIGIN, True, tag=tag))
    assert h.ctl.unseen_version(Report(ORIGIN, True, tag="something else"))
    assert not h.ctl.unseen_version(Report(ORIGIN, False, error="down"))


def test_zone_only_in_emergency_dir_is_served_at_start_up():
    h = Harness()
    h.ctl.finish_startup("no live data")
    assert h.mode == "emergency"
    assert h.published and h.published[0][ORIGIN] is h.st.emergency


def test_guard_verdict_prejudged_in_a_thread_is_used_only_if_still_valid():
    h = Harness(stale_for=600)
    h.new(hosts=100)
    version = Version(ORIGIN, wiped(h.st.good.zone), [], "wipe", "t")
    report = Report(ORIGIN, True, version=version, tag="wipe")
    report.verdict = h.ctl.prejudge(report)
    assert not report.verdict[1].accepted
    h.ctl.apply([report])
    assert h.st.rejected is version
    # a verdict computed against data that has since been replaced is judged again
    h2 = Harness()
    h2.new(hosts=100)
    stale_verdict = h2.ctl.prejudge(Report(ORIGIN, True, version=h2.version(hosts=100)))
    h2.new(hosts=100)
    newer = h2.version(hosts=101)
    h2.ctl.apply([Report(ORIGIN, True, version=newer, tag=newer.tag, verdict=stale_verdict)])
    assert h2.st.good.zone is newer.zone


def test_a_switch_is_published_as_one_and_a_new_version_is_not():
    """``switching`` is true while a change of state is published (live, stale,
    emergency, forced), so the workers serve it without waiting for tables."""
    h = Harness(fail_after=1)
    seen: list[tuple[int, bool]] = []
    h.ctl.publish = lambda changes: seen.append((changes[ORIGIN].serial, h.ctl.switching))
    h.new()                                   # the first version: nothing to switch from
    h.new()                                   # a new live version
    h.fail()                                  # backend down: emergency
    h.new()                                   # back, then healthy until it recovers
    for _ in range(10):
        h.ok()
        h.clock.now += 5
    h.ctl.force("emergency", None, "drill")
    h.ctl.flush()
    h.ctl.release(None)
    h.ctl.flush()
    # new, new, down -> emergency, recovered -> live, forced, released
    assert seen == [(11, False), (12, False), (1, True), (13, True), (1, True), (13, True)]
    assert not h.ctl.switching, seen
