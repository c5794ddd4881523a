"""The controller at its edges: what status, events and reasons tell an operator.

These pin down the numbers and words an operator reads (status fields, event
reasons, log levels), the state directory writes, and the less travelled
transitions: signatures running out, the parent's DS, a fleet's veto,
removed zones, emergency files that come and go, forced states.
"""

from __future__ import annotations

import logging
import time

import dns.name
import dns.rdata
import dns.rdatatype
import pytest

from seawall.backends.base import Report, Version, wiped
from seawall.failover.controller import ControlError, Mode, stale_seconds
from seawall.failover.store import StateStore, now_iso
from seawall.failover.zonestate import EmergencyCheck
from seawall.zones.model import build_zone
from seawall.zones.problems import Location, Problem
from seawall.zones.reader import Record
from seawall.zones.signatures import ds_digests

from failover_zones import HERE, make_zone, records
from test_controller import ORIGIN, Harness

OTHER = dns.name.from_text("other.test.")
KSK_A = "257 3 13 " + "A" * 86 + "=="
KSK_B = "257 3 13 " + "B" * 86 + "=="
SIG = "A" * 86 + "=="


def signed_zone(serial: int, expires: float, key: str = KSK_A, hosts: int = 20,
                address: str = "192.0.2.80"):
    """A zone with a KSK and RRSIGs whose first expiration is ``expires`` (wall clock)."""
    out = records(ORIGIN, serial, hosts=hosts, address=address)

    def rr(rdtype: str, text: str) -> Record:
        return Record(ORIGIN, 3600, dns.rdata.from_text(1, dns.rdatatype.from_text(rdtype),
                                                         text, origin=ORIGIN), HERE)

    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(expires))
    later = time.strftime("%Y%m%d%H%M%S", time.gmtime(expires + 86400))
    out += [rr("DNSKEY", key),
            rr("RRSIG", f"SOA 13 2 3600 {stamp} 20200101000000 1038 example.org. {SIG}"),
            rr("RRSIG", f"NS 13 2 3600 {later} 20200101000000 1038 example.org. {SIG}")]
    return build_zone(ORIGIN, out, source="test")


class RecordingStore:
    """A state directory that remembers what the controller asked it to write."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
        return record

    def named(self, name: str) -> list[tuple[tuple, dict]]:
        return [(a, k) for n, a, k in self.calls if n == name]

    @property
    def events(self) -> list[dict]:
        return [a[0] for a, _ in self.named("append_event")]


def recording(**settings) -> tuple[Harness, RecordingStore]:
    h = Harness(**settings)
    store = RecordingStore()
    h.ctl.store = store
    return h, store


def zone_status(h: Harness) -> dict:
    return h.ctl.status()["zones"][0]


def transitions(store: RecordingStore) -> list[tuple]:
    return [(e["from"], e["to"], e["cause"], e["reason"]) for e in store.events
            if e["kind"] == "transition"]


# ------------------------------------------------------------------ status


def test_status_of_a_live_zone_field_by_field():
    h = Harness(stale_for=-1)
    h.ctl.apply([Report(ORIGIN, True, version=h.version(), tag="t1")], backend="files")
    h.clock.now += 7
    status = h.ctl.status()
    assert status["version"] == 1
    assert status["time"] == now_iso(h.clock.wall())
    assert status["state_dir_error"] is None
    assert status["thresholds"] == {"fail_after": 3, "recover_after": 5, "probe_interval": 1.0,
                                    "probe_timeout": 1.0, "stale_for": "expire",
                                    "signature_margin": 3600.0, "flap_half_life": 600.0}
    zone = status["zones"][0]
    assert zone["zone"] == "example.org."
    assert (zone["state"], zone["auto"], zone["forced"]) == ("live", "live", None)
    assert (zone["serial"], zone["good_serial"], zone["emergency_serial"]) == (11, 11, 1)
    assert zone["backend"] == "files"
    assert zone["healthy"] is True
    assert (zone["failures"], zone["successes"], zone["recover_needed"]) == (0, 0, 5)
    assert zone["last_report_age"] == 7.0 and zone["good_age"] == 7.0
    assert zone["last_error"] is None
    assert zone["stale_for"] == 1209600.0
    assert zone["expire_in"] == 1209600 - 7
    assert zone["expired"] is False
    assert zone["protected"] is True and zone["unprotected"] is None
    assert zone["emergency_check"] is None
    assert zone["signature_expiry"] is None and zone["signatures_expiring"] is False
    assert zone["held"] is None and zone["rejected"] is None
    assert zone["damping"] == {"points": 0.0, "episodes": 0, "factor": 1}
    assert zone["switches"] == 0
    assert zone["why"]["kind"] == "transition" and zone["why"]["to"] == "live"


def test_status_of_a_fixed_stale_for_and_a_zone_never_reported():
    h = Harness(stale_for=600)
    h.ctl.finish_startup("no answer")
    zone = zone_status(h)
    assert zone["stale_for"] is None and zone["good_serial"] is None
    assert zone["good_age"] is None and zone["expire_in"] is None
    assert zone["last_report_age"] is None
    assert zone["healthy"] is False and zone["state"] == "emergency"
    assert h.ctl.status()["thresholds"]["stale_for"] == 600.0
    h.new()
    assert zone_status(h)["stale_for"] == 600.0


def test_status_of_a_failing_zone_counts_and_damping():
    h = Harness(fail_after=2, recover_after=3, stale_for=600)
    h.new()
    h.fail("connection refused")
    zone = zone_status(h)
    assert (zone["failures"], zone["successes"], zone["state"]) == (1, 0, "live")
    assert zone["last_error"] == "connection refused"
    h.fail("timed out")
    zone = zone_status(h)
    assert (zone["state"], zone["auto"], zone["healthy"]) == ("stale", "stale", False)
    assert zone["failures"] == 2 and zone["last_error"] == "timed out"
    assert zone["damping"] == {"points": 1.0, "episodes": 1, "factor": 1}
    assert zone["switches"] == 1
    h.ok()
    zone = zone_status(h)
    assert (zone["successes"], zone["failures"], zone["last_error"]) == (1, 0, None)
    h.clock.now += 100
    assert zone_status(h)["damping"]["points"] == 0.891     # 0.5 ** (100 / 600), 3 places
    h.clock.now += 500                      # one half-life: the point counts half
    assert zone_status(h)["damping"]["points"] == 0.5


def test_status_shows_the_damping_factor_after_two_bounces():
    h = Harness(fail_after=1, recover_after=3, stale_for=600)
    h.new()
    h.fail()
    for _ in range(3):
        h.ok()
    assert h.mode == "live"
    h.fail()
    zone = zone_status(h)
    assert zone["damping"]["episodes"] == 2 and zone["damping"]["factor"] == 2
    assert type(zone["damping"]["factor"]) is int      # shown as "2", not "2.0"
    assert zone["recover_needed"] == 6 and zone["switches"] == 3
    for _ in range(5):
        h.ok()
    assert h.mode == "stale"
    h.ok()
    assert h.mode == "live"
    assert h.st.last_event["reason"] == \
        "6 consecutive successes (recover_after=3 × flap damping 2)"


def test_status_of_a_held_zone_says_how_long_and_why():
    h = Harness(stale_for=600)
    h.new(hosts=100)
    wipe = Version(ORIGIN, wiped(h.st.good.zone), [], "wipe", "t")
    h.ctl.apply([Report(ORIGIN, True, version=wipe, tag="wipe")])
    h.clock.now += 42
    h.ctl.apply([Report(ORIGIN, True, tag="wipe")])
    zone = zone_status(h)
    assert zone["state"] == "held" and zone["healthy"] is True
    assert zone["serial"] == 11 and zone["good_serial"] == 11
    reason = h.st.held.reason
    assert zone["held"] == {"serial": 12, "reason": reason, "for": 42.0, "older": False}
    assert zone["rejected"] == {"serial": 12, "reason": reason}
    assert reason.startswith("would delete 92 of 103 RRsets (89% > 30%)")


def test_status_shows_a_forced_state_and_the_emergency_check():
    h = Harness()
    h.new()
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck(drift=0.25, age=30.0,
                                                     signature_expiry=1234))
    h.ctl.force("emergency", None, "maintenance", by="alice")
    zone = zone_status(h)
    assert (zone["state"], zone["auto"]) == ("emergency", "live")
    assert zone["forced"] == {"mode": "emergency", "reason": "maintenance", "by": "alice",
                              "at": h.clock.wall(), "until": None}
    assert zone["serial"] == 1
    assert zone["emergency_check"] == {"problems": [], "drift": 0.25, "age": 30.0,
                                       "signature_expiry": 1234}
    assert zone["why"]["forced"] is True


def test_status_reports_a_state_directory_error_until_a_write_succeeds():
    class Flaky(RecordingStore):
        broken = True

        def append_event(self, event):
            if self.broken:
                raise OSError(28, "No space left on device")

    h = Harness(fail_after=1)
    h.ctl.store = store = Flaky()
    h.new()
    assert h.ctl.status()["state_dir_error"] == "event not written: No space left on device"
    store.broken = False
    h.fail()
    assert h.ctl.status()["state_dir_error"] is None


# ----------------------------------------------------------- events


def test_events_written_for_updates_rejections_and_transitions():
    h, store = recording(fail_after=1, stale_for=600)
    h.ctl.apply([Report(ORIGIN, True, version=h.version(), tag="t1")], backend="axfr")
    h.new(hosts=21)
    first, update = store.events
    assert first["kind"] == "transition" and first["from"] is None and first["to"] == "live"
    assert first["cause"] == "startup" and first["reason"] == "the backend answered"
    assert first["serial_from"] is None and first["serial_to"] == 11   # nothing served before
    assert first["auto_from"] is None and first["auto_to"] == "live"
    assert first["zone"] == "example.org." and first["forced"] is False
    assert first["ts"] == h.clock.wall() and first["time"] == now_iso(h.clock.wall())
    assert update["kind"] == "updated" and update["cause"] == "probe"
    assert update["reason"] == "new version from test"
    assert (update["from"], update["to"]) == ("live", "live")
    assert (update["serial_from"], update["serial_to"]) == (11, 12)
    assert h.ctl.event_counts == {("transition", "startup"): 1, ("updated", "probe"): 1}
    h.new(serial=5)
    rejected = store.events[-2]
    assert rejected["kind"] == "rejected" and rejected["cause"] == "guard"
    assert rejected["reason"] == "older data: serial 5 is older than the served serial 12 " \
                                 "(RFC 1982)"
    assert rejected["serial_to"] == 5 and rejected["serial_from"] == 12
    assert (rejected["from"], rejected["to"]) == ("live", "live")
    held = store.events[-1]
    assert (held["from"], held["to"], held["cause"]) == ("live", "held", "guard")
    assert held["reason"] == "held: serial 5 is older than the served serial 12 (RFC 1982)"
    assert held["auto_from"] == "live" and held["auto_to"] == "held"


def test_a_held_version_offered_again_is_one_event_and_keeps_its_age():
    h, store = recording()
    h.new(hosts=100)
    wipe = Version(ORIGIN, wiped(h.st.good.zone), [], "wipe", "t")
    h.ctl.apply([Report(ORIGIN, True, version=wipe, tag="wipe")])
    h.clock.now += 5
    again = Version(ORIGIN, wipe.zone, [], "wipe", "t")
    h.ctl.apply([Report(ORIGIN, True, version=again, tag="wipe")])
    assert [e["kind"] for e in store.events].count("rejected") == 1
    assert zone_status(h)["held"]["for"] == 5.0
    assert store.events[-2]["reason"].startswith("rejected: would delete")
    other = Version(ORIGIN, wiped(h.st.good.zone, keep=0.2), [], "wipe2", "t")
    h.ctl.apply([Report(ORIGIN, True, version=other, tag="wipe2")])
    assert [e["kind"] for e in store.events].count("rejected") == 2
    assert zone_status(h)["held"]["for"] == 5.0   # held since the first rejection


def test_a_held_zone_goes_live_when_a_version_passes():
    h, store = recording()
    h.new()
    h.new(serial=3)
    assert h.mode == "held"
    h.new(hosts=21)
    assert h.mode == "live" and h.st.held is None
    assert transitions(store)[-1] == ("held", "live", "guard", "a version passed the guard")


def test_a_held_zone_goes_live_when_the_backend_offers_the_served_version_again():
    h = Harness()
    h.new()
    good_tag = h.st.good.tag
    h.new(serial=3)
    assert h.mode == "held"
    h.ctl.apply([Report(ORIGIN, True, tag=good_tag)])
    assert h.mode == "live" and h.st.held is None
    assert zone_status(h)["held"] is None
    assert (h.st.last_event["cause"], h.st.last_event["to"]) == ("guard", "live")


def test_a_new_tag_announced_without_its_data_keeps_the_zone_held():
    h = Harness()
    h.new()
    h.new(serial=3)
    h.ctl.apply([Report(ORIGIN, True, tag="not fetched yet")])
    assert h.mode == "held" and h.st.held is not None


def test_drill_reports_are_drill_events():
    h, store = recording(fail_after=1, stale_for=600)
    h.new()
    h.ctl.apply([Report(ORIGIN, False, error="injected timeout", drill=True)])
    assert transitions(store)[-1][:3] == ("live", "stale", "drill")
    assert h.ctl.event_counts[("transition", "drill")] == 1
    h.ctl.apply([Report(ORIGIN, True, version=h.version(serial=2), tag="x", drill=True)])
    rejected = [e for e in store.events if e["kind"] == "rejected"][0]
    assert rejected["cause"] == "drill"


def test_drill_rejection_moves_live_to_held_as_a_drill():
    h, store = recording()
    h.new()
    h.ctl.apply([Report(ORIGIN, True, version=h.version(serial=2), tag="x", drill=True)])
    assert h.mode == "held"
    assert transitions(store)[-1][:3] == ("live", "held", "drill")


def test_a_failure_without_words_is_a_backend_failure():
    h = Harness(fail_after=1)
    h.new()
    h.ctl.apply([Report(ORIGIN, False)])
    assert zone_status(h)["last_error"] == "backend failed"
    assert h.st.last_event["reason"] == \
        "1 consecutive failures (fail_after=1); last: backend failed"


def test_the_failure_reason_names_the_count_and_the_threshold():
    h, store = recording(fail_after=3, stale_for=600)
    h.new()
    for why in ("refused", "refused", "timed out after 1s"):
        h.fail(why)
    assert transitions(store)[-1] == (
        "live", "stale", "probe", "3 consecutive failures (fail_after=3); last: timed out after 1s")
    h.fail()
    h.fail()
    assert len(transitions(store)) == 2        # already stale: no new transition
    assert zone_status(h)["failures"] == 5


def test_a_held_zone_fails_over_like_a_live_one():
    h = Harness(fail_after=2, stale_for=600)
    h.new()
    h.new(serial=3)
    assert h.mode == "held"
    h.fail()
    assert h.mode == "held"
    h.fail()
    assert h.mode == "stale" and h.served_address() == "192.0.2.80"


def test_a_first_report_that_fails_counts_as_fail_after_failures():
    h = Harness(fail_after=4)
    h.fail("refused")
    zone = zone_status(h)
    assert zone["failures"] == 4 and zone["state"] == "emergency"
    assert h.st.last_event["reason"] == "refused" and h.st.last_event["cause"] == "startup"


def test_first_data_after_nothing_at_all_is_served_at_once():
    """No emergency zone, no last good data: the first version needs no recovery count."""
    h, store = recording(recover_after=5)
    h.st.emergency = None
    h.fail("refused")
    assert h.st.served is None and h.st.mode is Mode.STALE
    assert zone_status(h)["state"] is None and zone_status(h)["serial"] is None
    assert transitions(store)[0][3] == \
        "refused; no emergency zone, serving the last good data"
    h.new()
    assert h.mode == "live" and h.served_address() == "192.0.2.80"
    assert transitions(store)[-1] == ("stale", "live", "guard", "first data from the backend")


def test_recovery_reason_without_damping_and_the_count_of_successes():
    h, store = recording(fail_after=1, recover_after=2)
    h.new()
    h.fail()
    h.ok()
    assert zone_status(h)["successes"] == 1 and h.mode == "emergency"
    h.ok()
    assert transitions(store)[-1] == ("emergency", "live", "probe",
                                      "2 consecutive successes (recover_after=2)")
    assert zone_status(h)["successes"] == 0      # counting starts again once live


# ----------------------------------------------------------- persistence


def test_snapshot_written_with_what_a_restart_needs(tmp_path):
    h = Harness(tmp_path, stale_for=-1)
    version = Version(ORIGIN, make_zone(ORIGIN, 7), [], "tag-7", "axfr 192.0.2.10",
                      fetched_at=1234.5, soa_expire=900)
    h.ctl.apply([Report(ORIGIN, True, version=version, tag="tag-7")])
    assert zone_status(h)["stale_for"] == 900.0            # the backend's EXPIRE horizon
    assert zone_status(h)["expire_in"] == 900.0
    snap = h.store.load_snapshots()[ORIGIN]
    assert (snap.tag, snap.source, snap.fetched_at) == ("tag-7", "axfr 192.0.2.10", 1234.5)
    assert snap.confirmed_at == pytest.approx(h.clock.wall(), abs=0.01)
    h2 = Harness(tmp_path)
    h2.clock.now = h.clock.now + 30
    h2.clock.start_wall = h.clock.start_wall
    h2.ctl.restore(h2.store.load_snapshots(), {})
    good = h2.st.good
    assert (good.tag, good.source, good.fetched_at) == ("tag-7", "axfr 192.0.2.10", 1234.5)
    assert good.soa_expire == 1209600
    assert good.confirmed_at == pytest.approx(h.clock.now, abs=0.01)
    # the backend still holds tag-7: nothing new, and nothing held
    assert not h2.ctl.unseen_version(Report(ORIGIN, True, tag="tag-7"))


@pytest.mark.parametrize("confirm_after, alive", [(10, True), (9, False)])
def test_a_confirmation_is_persisted_at_most_every_ten_seconds(tmp_path, confirm_after, alive):
    """The backend confirmed the data at t+10 (written) or t+9 (not yet written)."""
    h = Harness(tmp_path, stale_for=600)
    h.new()
    h.clock.now += confirm_after
    h.ok()
    h2 = Harness(tmp_path, stale_for=600)
    h2.clock.start_wall = h.clock.start_wall
    h2.clock.now = h.clock.now - confirm_after + 605   # 605 s after the first confirmation
    h2.ctl.restore(h2.store.load_snapshots(), {})
    h2.ctl.finish_startup("no answer")
    assert h2.mode == ("stale" if alive else "emergency")


def test_confirmations_touch_the_snapshot_with_the_served_version():
    h, store = recording()
    h.ctl.apply([Report(ORIGIN, True, version=h.version(), tag="t1")])
    h.clock.now += 10
    h.ok()
    h.clock.now += 5
    h.ok()
    touches = store.named("touch_snapshot")
    assert len(touches) == 1
    args, kwargs = touches[0]
    assert args == (ORIGIN,)
    assert kwargs == {"fetched_at": h.st.good.fetched_at, "confirmed_at": h.clock.wall() - 5,
                      "source": "test", "tag": "t1", "serial": 11}
    h.clock.now += 5
    h.ok()
    assert len(store.named("touch_snapshot")) == 2


def test_an_unchanged_version_confirms_and_ends_a_hold():
    h = Harness(stale_for=600, fail_after=1)
    h.new()
    h.new(serial=3)
    assert h.mode == "held"
    h.clock.now += 500
    served, published = h.st.served, len(h.published)
    h.ctl.store = store = RecordingStore()
    same = Version(ORIGIN, make_zone(ORIGIN, 11), [], "touched", "test")
    h.ctl.apply([Report(ORIGIN, True, version=same, tag="touched")])
    assert h.mode == "live" and h.st.held is None
    assert h.st.served is served and len(h.published) == published   # nothing new to publish
    assert [e["kind"] for e in store.events] == ["transition"]
    assert store.named("save_snapshot") == []
    assert h.st.good.tag == "touched" and zone_status(h)["good_age"] == 0.0
    h.clock.now += 500
    h.fail()
    assert h.mode == "stale"            # confirmed 500 s ago: still fresh


def test_state_directory_failure_is_logged_once(caplog):
    class Full(RecordingStore):
        def append_event(self, event):
            raise OSError(28, "No space left on device")

    h = Harness(fail_after=1)
    h.ctl.store = Full()
    with caplog.at_level(logging.ERROR, logger="seawall.failover"):
        h.new()
        assert len([r for r in caplog.records if "state directory" in r.getMessage()]) == 1
        h.fail()
    errors = [r for r in caplog.records if "state directory" in r.getMessage()]
    assert len(errors) == 1
    assert errors[0].getMessage() == \
        "state directory: event not written: reason=[Errno 28] No space left on device"


def test_a_write_error_without_strerror_is_reported_by_its_text():
    class Odd(RecordingStore):
        def save_snapshot(self, *args, **kwargs):
            raise OSError("quota")

        def append_event(self, event):
            raise OSError("quota")

    h = Harness()
    h.ctl.store = Odd()
    h.new()
    assert h.ctl.status()["state_dir_error"] == "event not written: quota"


# ------------------------------------------------------ signatures


def test_signatures_running_out_switch_to_emergency_with_the_expiry(caplog):
    h, store = recording(stale_for=-1)
    expiry = int(h.clock.wall()) + 7200
    h.new(zone=signed_zone(11, expiry))
    assert h.mode == "live"
    assert zone_status(h)["signature_expiry"] == expiry
    h.clock.now += 3000
    h.ctl.tick()
    assert h.mode == "live" and not zone_status(h)["signatures_expiring"]
    h.clock.now += 700                    # 3500 s left: within the hour's margin
    with caplog.at_level(logging.ERROR, logger="seawall.failover"):
        h.ctl.tick()
    assert h.mode == "emergency" and h.served_address() == "192.0.2.99"
    assert zone_status(h)["signatures_expiring"] is True
    warning = [e for e in store.events if e["kind"] == "signatures"]
    assert len(warning) == 1
    assert warning[0]["cause"] == "signatures"
    assert (warning[0]["from"], warning[0]["to"]) == ("live", "live")
    left = expiry - h.clock.wall()
    assert warning[0]["reason"] == (
        f"the first RRSIG of serial 11 expires at {now_iso(expiry)} (in {left:.0f}s, "
        "signature_margin=3600s) and the backend offers nothing newer and valid")
    assert any(r.levelno == logging.ERROR and "signatures:" in r.getMessage()
               for r in caplog.records)
    assert transitions(store)[-1] == (
        "live", "emergency", "signatures",
        f"the last good version's signatures expire at {now_iso(expiry)}; "
        "the emergency version's are valid")
    h.ctl.tick()
    assert len([e for e in store.events if e["kind"] == "signatures"]) == 1


def test_a_re_signed_version_clears_the_warning():
    h, store = recording(stale_for=-1)
    wall = h.clock.wall()
    h.new(zone=signed_zone(11, int(wall) + 1800))
    assert h.mode == "emergency"                # expiring from the start: never live
    assert transitions(store)[0][3] == \
        f"the last good version's signatures expire at {now_iso(int(wall) + 1800)}"
    h.ctl.tick()
    assert zone_status(h)["signatures_expiring"] is True
    h.new(zone=signed_zone(12, int(wall) + 86400 * 10))
    h.ctl.tick()
    assert zone_status(h)["signatures_expiring"] is False
    h.clock.now += 86400 * 10 - 1000            # running out again: a second warning
    h.ctl.tick()
    assert len([e for e in store.events if e["kind"] == "signatures"]) == 2


def test_signatures_running_out_without_a_trusted_emergency_stay_live():
    h, store = recording(stale_for=-1)
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck(problems=["wrong NS"]))
    h.new(zone=signed_zone(11, int(h.clock.wall()) + 7200))
    h.clock.now += 3700
    h.ctl.tick()
    assert h.mode == "live"
    assert [e["kind"] for e in store.events].count("signatures") == 1


def test_signatures_running_out_while_forced_live_warn_but_do_not_switch():
    h, store = recording(stale_for=-1)
    h.new(zone=signed_zone(11, int(h.clock.wall()) + 7200))
    h.ctl.force("live", None, "trust me")
    h.clock.now += 3700
    h.ctl.tick()
    assert h.mode == "live" and h.st.mode is Mode.EMERGENCY


def test_a_signed_version_the_parent_ds_does_not_lead_to_is_held():
    h = Harness(stale_for=-1)
    far = int(h.clock.wall()) + 86400 * 30
    h.new(zone=signed_zone(11, far))
    ds_a = ds_digests(signed_zone(1, far, key=KSK_A))
    ds_b = ds_digests(signed_zone(1, far, key=KSK_B))
    h.ctl.parent_ds = lambda origin: ds_a | {(1, 13, b"x")}
    h.new(zone=signed_zone(12, far, key=KSK_A))
    assert h.mode == "live" and h.st.served.serial == 12
    h.ctl.parent_ds = lambda origin: ds_b | {(1, 13, b"x")}   # the parent moved on alone
    h.new(zone=signed_zone(13, far, key=KSK_A))
    assert h.mode == "held" and h.st.served.serial == 12
    assert h.st.held.reason == "none of its KSKs matches the 2 DS record(s) the parent " \
                               "publishes now (validators would see it as bogus)"
    h.new(zone=signed_zone(14, far, key=KSK_B))    # keys the served version's DS never saw
    assert h.mode == "held"
    assert h.st.held.reason == \
        "its DNSKEY set no longer matches the DS of the served version's KSKs"


def test_a_parent_that_publishes_nothing_known_does_not_hold():
    h = Harness(stale_for=-1)
    far = int(h.clock.wall()) + 86400 * 30
    h.new(zone=signed_zone(11, far))
    asked = []
    h.ctl.parent_ds = lambda origin: asked.append(origin) or set()
    h.new(zone=signed_zone(12, far))
    assert h.mode == "live" and h.st.served.serial == 12 and asked == [ORIGIN]
    h.ctl.parent_ds = lambda origin: None
    h.new(zone=signed_zone(13, far))
    assert h.mode == "live" and h.st.served.serial == 13


def test_an_unsigned_version_is_not_checked_against_the_parent():
    h = Harness()
    h.new()
    h.ctl.parent_ds = lambda origin: {(1, 13, b"x")}
    h.new(hosts=21)
    assert h.mode == "live" and h.st.served.serial == 12


# ------------------------------------------------------------- fleet


def test_a_fleet_veto_keeps_stale_data_instead_of_emergency(caplog):
    h, store = recording(fail_after=1, stale_for=0)
    h.ctl.emergency_vote = lambda origin: f"2 of 3 servers see the backend of {origin}"
    h.new()
    with caplog.at_level(logging.INFO, logger="seawall.failover"):
        h.fail("refused")
    assert h.mode == "stale" and h.served_address() == "192.0.2.80"
    assert any(r.getMessage() == "emergency held back: zone=example.org. "
               "reason=2 of 3 servers see the backend of example.org." for r in caplog.records)
    h.clock.now += 10
    h.ctl.tick()
    assert h.mode == "stale"
    h.ctl.emergency_vote = lambda origin: None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seawall.failover"):
        h.ctl.tick()
    assert h.mode == "emergency"
    assert not any("held back" in r.getMessage() for r in caplog.records)
    assert transitions(store)[-1] == ("stale", "emergency", "probe",
                                      "last good data is 10s old (stale_for=0s)")


def test_without_good_data_the_fleet_is_not_asked():
    h = Harness()
    h.ctl.emergency_vote = lambda origin: "no"
    h.fail()
    assert h.mode == "emergency"


def test_a_version_fence_holds_a_version_as_older_data():
    h, store = recording()
    h.new()
    h.ctl.version_fence = lambda origin, version: (
        f"the fleet serves {origin} serial 40" if version.serial < 40 else None)
    h.new()
    assert h.mode == "held" and h.st.held.older
    assert h.st.held.reason == "the fleet serves example.org. serial 40"
    assert [e for e in store.events if e["kind"] == "rejected"][0]["reason"] == \
        "older data: the fleet serves example.org. serial 40"
    h.new(serial=40)
    assert h.mode == "live" and h.st.served.serial == 40


# ------------------------------------------------------------ stale, expired


def test_stale_to_emergency_reason_names_the_age_and_the_horizon():
    h, store = recording(fail_after=1, stale_for=60)
    h.new()
    h.fail()
    h.clock.now += 61
    h.ctl.tick()
    assert transitions(store)[-1] == ("stale", "emergency", "probe",
                                      "last good data is 61s old (stale_for=60s)")


def test_expired_is_an_error_event_once_and_ends_with_new_data(caplog):
    h, store = recording(fail_after=1, stale_for=10**9)
    h.new()
    h.fail()
    h.clock.now += 1209600
    h.ctl.tick()
    assert not h.st.expired                    # exactly the SOA EXPIRE: not past it
    h.clock.now += 1
    with caplog.at_level(logging.ERROR, logger="seawall.failover"):
        h.ctl.tick()
        h.ctl.tick()
    expired = [e for e in store.events if e["kind"] == "expired"]
    assert len(expired) == 1
    assert expired[0]["reason"] == ("EXPIRED: the backend has not confirmed serial 11 for "
                                    "1209601s (SOA EXPIRE 1209600s)")
    assert expired[0]["cause"] == "probe"
    assert (expired[0]["from"], expired[0]["to"]) == ("stale", "stale")
    assert [r.levelno for r in caplog.records if r.getMessage().startswith("expired:")] \
        == [logging.ERROR]
    assert zone_status(h)["expired"] is True
    h.new()
    assert zone_status(h)["expired"] is False


def test_a_confirmation_ends_expired():
    h = Harness(fail_after=1, stale_for=10**9)
    h.new()
    h.fail()
    h.clock.now += 1209601
    h.ctl.tick()
    assert h.st.expired
    h.ok()
    assert zone_status(h)["expired"] is False


def test_a_healthy_zone_never_expires():
    h = Harness(stale_for=10**9)
    h.new()
    h.clock.now += 2_000_000
    h.ctl.tick()
    assert not h.st.expired and h.mode == "live"


def test_stale_seconds_of_expire_without_an_soa_expire_is_zero():
    assert stale_seconds(-1, None) == 0.0
    assert stale_seconds(-1, 86400) == 86400.0
    assert stale_seconds(30, 86400) == 30.0


# ------------------------------------------------------------ removed zones


def test_a_removed_zone_without_emergency_is_unpublished_and_forgotten():
    h, store = recording()
    h.st.emergency = None
    h.new()
    h.ctl.apply([Report(ORIGIN, True, removed=True)])
    assert ORIGIN not in h.ctl.zones
    assert h.published[-1] == {ORIGIN: None}
    event = store.events[-1]
    assert event["kind"] == "removed" and event["to"] is None and event["from"] == "live"
    assert event["reason"] == "the backend no longer has the zone"
    assert event["cause"] == "backend"
    assert store.named("drop_snapshot") == [((ORIGIN,), {})]


def test_a_removed_zone_with_emergency_forgets_its_last_good_data():
    h, store = recording()
    h.new()
    h.new(serial=3)
    h.ctl.apply([Report(ORIGIN, True, removed=True)])
    assert h.mode == "emergency" and h.st.good is None and h.st.held is None
    assert transitions(store)[-1] == ("held", "emergency", "backend",
                                      "the backend no longer has the zone")


def test_operator_remove():
    h, store = recording()
    h.st.emergency = None
    h.new()
    assert h.ctl.remove("example.org", by="alice") == "example.org."
    assert ORIGIN not in h.ctl.zones and h.published[-1] == {ORIGIN: None}
    assert store.events[-1]["reason"] == "removed by alice"
    assert store.events[-1]["cause"] == "operator"
    h2 = Harness()
    h2.new()
    h2.ctl.remove("example.org")
    assert h2.mode == "emergency"
    assert h2.st.last_event["reason"] == "removed by operator"
    assert h2.st.last_event["cause"] == "operator"


def test_drop_orphans_forgets_snapshot_only_zones(tmp_path):
    h = Harness(tmp_path)
    other = make_zone(OTHER, 3)
    h.store.save_snapshot(other, fetched_at=1.0, confirmed_at=time.time(), source="files",
                          tag="o", )
    h.store.save_snapshot(make_zone(ORIGIN, 4), fetched_at=1.0, confirmed_at=time.time(),
                          source="files", tag="e")
    h.ctl.restore(h.store.load_snapshots(), {})
    assert h.ctl.drop_orphans(set()) == [OTHER]
    assert OTHER not in h.ctl.zones and ORIGIN in h.ctl.zones     # it has an emergency file
    assert OTHER not in h.store.load_snapshots()
    events = h.store.read_events() if hasattr(h.store, "read_events") else []
    removed = [e for e in events if e["kind"] == "removed"]
    assert removed and removed[0]["zone"] == "other.test."
    assert removed[0]["cause"] == "startup"
    assert removed[0]["reason"] == "no backend has the zone any more; its last good " \
                                   "snapshot is dropped"
    assert (removed[0]["from"], removed[0]["to"]) == (None, None)


def test_drop_orphans_keeps_owned_and_reported_zones():
    h = Harness()
    h.ctl.restore({}, {})
    owned = make_zone(OTHER, 3)
    h.ctl.state(OTHER).good = h.st.good   # None: a zone known only by name
    h.ctl.apply([Report(OTHER, True, version=Version(OTHER, owned, [], "o", "t"), tag="o")])
    third = dns.name.from_text("third.test.")
    h.ctl.state(third)
    assert h.ctl.drop_orphans({third}) == []
    assert set(h.ctl.zones) == {ORIGIN, OTHER, third}


# ------------------------------------------------------ emergency files


def test_an_emergency_file_with_problems_before_start_is_an_unprotected_event(caplog):
    h, store = recording()
    with caplog.at_level(logging.ERROR, logger="seawall.failover"):
        h.ctl.set_emergency_check(ORIGIN, EmergencyCheck(problems=["wrong NS", "expired"]))
    assert h.st.unprotected == "wrong NS; expired" and not h.st.protected
    event = store.events[-1]
    assert event["kind"] == "unprotected" and event["cause"] == "startup"
    assert event["reason"] == "UNPROTECTED: wrong NS; expired"
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert zone_status(h)["unprotected"] == "wrong NS; expired"
    assert zone_status(h)["protected"] is False


def test_a_clean_check_before_start_says_nothing():
    h, store = recording()
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck(drift=0.1))
    assert store.events == [] and h.st.protected


def test_emergency_file_broken_and_mended_while_serving():
    h, store = recording()
    h.new()
    h.ctl.finish_startup("done")
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck(problems=["no DNSKEY"]))
    event = store.events[-1]
    assert (event["kind"], event["cause"], event["reason"]) == \
        ("unprotected", "backend", "UNPROTECTED: no DNSKEY")
    assert (event["from"], event["to"]) == ("live", "live")
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck(problems=["no DNSKEY"]))
    assert len(store.events) == 2              # nothing new: no second event
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck())
    event = store.events[-1]
    assert (event["kind"], event["cause"], event["reason"]) == \
        ("protected", "backend", "protected again: the emergency version checks out")
    assert (event["from"], event["to"]) == ("live", "live")
    assert h.st.protected
    assert h.ctl.event_counts[("unprotected", "backend")] == 1
    assert h.ctl.event_counts[("protected", "backend")] == 1


def test_a_clean_check_without_an_emergency_version_is_still_unprotected():
    h, store = recording()
    h.st.emergency = None
    h.new()
    h.ctl.finish_startup("done")
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck())
    assert h.st.unprotected == "no emergency version"
    assert store.events[-1]["reason"] == "UNPROTECTED: no emergency version"


def test_a_removed_emergency_file_leaves_emergency_for_the_last_good_data():
    h, store = recording(fail_after=1)
    h.new()
    h.fail()
    assert h.mode == "emergency"
    published = len(h.published)
    h.ctl.remove_emergency(ORIGIN, "zones/emergency/example.org.zone: no such file")
    assert h.mode == "stale" and h.served_address() == "192.0.2.80"
    assert len(h.published) == published + 1
    assert h.st.unprotected == "zones/emergency/example.org.zone: no such file"
    assert zone_status(h)["emergency_serial"] is None
    assert transitions(store)[-1] == ("emergency", "stale", "backend",
                                      "zones/emergency/example.org.zone: no such file")
    h.ctl.remove_emergency(OTHER, "unknown zone")        # not served: nothing happens
    assert OTHER not in h.ctl.zones


def test_a_removed_emergency_file_does_not_end_a_forced_emergency():
    h = Harness()
    h.new()
    h.ctl.force("emergency", None, "maintenance")
    h.ctl.remove_emergency(ORIGIN, "gone")
    assert h.st.override is not None and h.st.mode is Mode.LIVE


def test_a_removed_emergency_file_while_live_changes_nothing_served():
    h = Harness()
    h.new()
    published = len(h.published)
    h.ctl.remove_emergency(ORIGIN, "gone")
    assert h.mode == "live" and len(h.published) == published
    assert h.st.unprotected == "gone"


def test_new_emergency_files_cap_ttls_protect_and_publish():
    h = Harness(fail_after=1, emergency_ttl_max=60)
    h.new()
    h.fail()
    h.ctl.set_emergency_check(ORIGIN, EmergencyCheck(problems=["old"]))
    replacement = make_zone(ORIGIN, 2, hosts=2, address="192.0.2.98")
    h.ctl.add_emergency({ORIGIN: replacement},
                        {ORIGIN: EmergencyCheck(drift=0.5)})
    h.ctl.flush()
    assert h.st.protected and h.st.unprotected is None
    assert h.served_address() == "192.0.2.98"
    assert max(r.ttl for r in h.st.served.rrsets()) == 60
    assert h.st.emergency_check.drift == 0.5


def test_zones_first_seen_after_start_are_unprotected(caplog):
    h = Harness()
    h.new()
    h.ctl.finish_startup("done")
    with caplog.at_level(logging.WARNING, logger="seawall.failover"):
        h.ctl.apply([Report(OTHER, True, version=Version(OTHER, make_zone(OTHER, 1), [],
                                                         "o", "t"), tag="o")])
    assert h.ctl.zones[OTHER].unprotected == "no emergency version"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == \
        ["new zone without an emergency version: zone=other.test."]
    assert h.st.unprotected is None


def test_check_protected_lists_zones_without_emergency(caplog):
    h = Harness()
    h.new()
    h.ctl.apply([Report(OTHER, True, version=Version(OTHER, make_zone(OTHER, 1), [], "o", "t"),
                        tag="o")])
    third = dns.name.from_text("third.test.")
    h.ctl.set_emergency_check(third, EmergencyCheck(problems=["does not load"]))
    with caplog.at_level(logging.WARNING, logger="seawall.failover"):
        assert h.ctl.check_protected(require=True) == ["other.test."]
    assert [(r.levelno, r.getMessage()) for r in caplog.records
            if "no emergency zone" in r.getMessage()] == \
        [(logging.ERROR, "no emergency zone: zone=other.test.")]
    assert h.ctl.zones[OTHER].unprotected == "no emergency version"
    assert h.ctl.zones[third].unprotected == "does not load"
    assert h.st.unprotected is None
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seawall.failover"):
        h.ctl.check_protected(require=False)
    assert [r.levelno for r in caplog.records if "no emergency zone" in r.getMessage()] == \
        [logging.WARNING]


# ------------------------------------------------------------ operator


def test_force_refusals_name_the_zone_and_why():
    h = Harness()
    h.st.emergency = None
    h.st.unprotected = "file does not load"
    h.ctl.state(OTHER)
    with pytest.raises(ControlError, match=r"^zone example.org. has no emergency zone "
                                           r"\(file does not load\)$"):
        h.ctl.force("emergency", ["example.org"], "x")
    h.st.unprotected = None
    with pytest.raises(ControlError, match=r"^zone example.org. has no emergency zone$"):
        h.ctl.force("emergency", ["example.org"], "x")
    with pytest.raises(ControlError, match=r"^zone other.test. has no live data to serve$"):
        h.ctl.force("live", ["other.test"], "x")
    with pytest.raises(ControlError, match=r"^a zone can be forced to live or emergency, "
                                           r"not held$"):
        h.ctl.force("held", None, "x")
    with pytest.raises(ControlError, match=r"^bad zone name"):
        h.ctl.force("live", ["a..b"], "x")
    assert h.st.override is None


def test_force_and_release_events_and_answers():
    h, store = recording()
    h.new()
    h.ctl.state(OTHER).emergency = make_zone(OTHER, 1)
    assert h.ctl.force("emergency", None, "maintenance") == ["example.org.", "other.test."]
    event = [e for e in store.events if e["kind"] == "override"][0]
    assert (event["from"], event["to"], event["cause"]) == ("live", "emergency", "operator")
    assert event["reason"] == "forced emergency: maintenance"
    assert event["until"] is None and event["forced"] is True
    assert store.named("save_overrides")[-1][0][0]["example.org."]["reason"] == "maintenance"
    h.ctl.zones[OTHER].override = None
    assert h.ctl.release(None, by="bob", reason="done") == ["example.org."]
    event = [e for e in store.events if e["kind"] == "override"][-1]
    assert (event["from"], event["to"], event["cause"]) == ("emergency", "live", "operator")
    assert event["reason"] == "released to automatic: done" and event["forced"] is False
    assert store.named("save_overrides")[-1][0][0] == {}
    assert h.ctl.release(None) == []


def test_a_drill_override_is_a_drill_event_and_expires_as_one():
    h, store = recording()
    h.new()
    h.ctl.force("emergency", ["example.org"], "drill 7", until=h.clock.wall() + 30, by="drill")
    event = [e for e in store.events if e["kind"] == "override"][0]
    assert event["cause"] == "drill"
    assert event["until"] == pytest.approx(h.clock.wall() + 30, abs=0.01)
    assert zone_status(h)["forced"]["by"] == "drill"
    h.clock.now += 30
    h.ctl.tick()
    assert h.mode == "live"
    event = [e for e in store.events if e["kind"] == "override"][-1]
    assert event["cause"] == "drill"
    assert event["reason"] == "released to automatic: override expired (drill 7)"


def test_an_override_until_the_past_ends_at_the_next_tick():
    h = Harness()
    h.new()
    h.ctl.force("emergency", None, "oops", until=h.clock.wall() - 100)
    assert h.mode == "emergency"
    h.ctl.tick()
    assert h.mode == "live"


def test_accept_from_stale_goes_live_and_counts_as_recovered():
    h, store = recording(fail_after=1, stale_for=600)
    h.new(hosts=100)
    wipe = Version(ORIGIN, wiped(h.st.good.zone), [], "wipe", "t")
    h.ctl.apply([Report(ORIGIN, True, version=wipe, tag="wipe")])
    reason = h.st.held.reason
    h.fail()
    assert h.mode == "stale"
    assert h.ctl.accept("example.org", by="carol") == wipe.zone.serial
    assert h.mode == "live" and h.st.served is wipe.zone
    assert (h.st.failures, h.st.successes) == (0, 0)
    updated = [e for e in store.events if e["kind"] == "updated"][-1]
    assert updated["cause"] == "operator"
    assert updated["reason"] == f"accepted by carol: {reason}"
    assert transitions(store)[-1] == ("stale", "live", "operator", f"accepted by carol: {reason}")


def test_accept_while_held_goes_live_without_a_second_transition_reason():
    h, store = recording()
    h.new()
    h.new(serial=3)
    h.ctl.accept("example.org")
    assert h.mode == "live" and h.st.served.serial == 3
    assert transitions(store)[-1][2] == "operator"


def test_accept_refuses_a_version_that_does_not_validate():
    h = Harness()
    h.new()
    bad = Version(ORIGIN, None, [Problem(Location("z", 3), "CNAME and other data")], "bad",
                  "t")
    h.ctl.apply([Report(ORIGIN, True, version=bad, tag="bad")])
    assert h.mode == "held"
    with pytest.raises(ControlError, match=r"^zone example.org.: the held version fails "
                                           r"validation and cannot be served \(fails "
                                           r"validation with 1 error\(s\): z:3: CNAME"):
        h.ctl.accept("example.org")
    assert h.mode == "held"


def test_note_is_an_event_about_the_zone():
    h, store = recording()
    h.new()
    h.ctl.note(ORIGIN, "drill", "fault injected: timeout 1 in 3")
    event = store.events[-1]
    assert (event["kind"], event["cause"], event["reason"]) == \
        ("note", "drill", "fault injected: timeout 1 in 3")
    assert (event["from"], event["to"]) == ("live", "live")
    h.ctl.note(ORIGIN, "drill", "x", kind="drill")
    assert store.events[-1]["kind"] == "drill"
    h.ctl.note(OTHER, "drill", "not served")
    assert len(store.events) == 3


def test_restore_brings_back_an_override_with_defaults_and_ignores_broken_ones(caplog):
    h = Harness()
    with caplog.at_level(logging.ERROR, logger="seawall.failover"):
        h.ctl.restore({}, {"example.org.": {"mode": "emergency"},
                           "other.test.": {"mode": "sideways"},
                           "bad..name": {"mode": "live"}})
    override = h.st.override
    assert (override.mode, override.reason, override.by, override.at) == \
        (Mode.EMERGENCY, "", "operator", 0.0)
    assert override.until is None
    assert OTHER not in h.ctl.zones
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all(m.startswith("override ignored: zone=") for m in messages)
    assert "override ignored: zone=other.test. reason='sideways' is not a valid Mode" \
        in messages


def test_restored_override_keeps_its_words_and_deadline():
    h = Harness()
    at = h.clock.wall() - 50
    h.ctl.restore({}, {"example.org.": {"mode": "live", "reason": "r", "by": "dave", "at": at,
                                        "until": h.clock.wall() - 10}})
    override = h.st.override
    assert (override.mode, override.reason, override.by, override.at) == \
        (Mode.LIVE, "r", "dave", at)
    h.new()
    h.ctl.finish_startup("x")
    assert h.mode == "live"                 # the deadline passed while the server was down
    h.ctl.tick()
    assert h.st.override is None and h.mode == "live"


def test_restore_of_a_missing_until_is_until_released():
    h = Harness()
    h.ctl.restore({}, {"example.org.": {"mode": "emergency", "until": None}})
    assert h.st.override.until is None


# ------------------------------------------------------------ publishing


def test_a_mode_change_without_new_data_tells_the_workers():
    h = Harness(fail_after=1, stale_for=600)
    calls = []
    h.ctl.on_mode_change = lambda: calls.append(1)
    h.new()
    assert calls == []                       # new data: published, not a mode-only change
    published = len(h.published)
    h.fail()
    assert h.mode == "stale" and len(h.published) == published and calls == [1]
    h.fail()
    h.ctl.tick()
    assert calls == [1]                      # nothing changed: nobody is told
    assert zone_status(h)["switches"] == 1


def test_the_answer_filter_shapes_what_is_published_and_refilter_republishes():
    h = Harness()
    filtered = make_zone(ORIGIN, 11, address="192.0.2.77")
    seen = []

    def answer_filter(origin, zone):
        seen.append(origin)
        return filtered if len(seen) > 1 else zone

    h.ctl.answer_filter = answer_filter
    h.new()
    assert h.served_address() == "192.0.2.80"
    h.ctl.refilter([ORIGIN, OTHER])
    assert seen == [ORIGIN, ORIGIN]
    assert h.published[-1] == {ORIGIN: filtered}
    assert h.served_address() == "192.0.2.77"
    count = len(h.published)
    h.ctl.refilter([ORIGIN])
    assert len(h.published) == count          # the same zone again: nothing to publish


def test_finish_startup_with_a_reporting_zone_keeps_it_and_marks_started():
    h = Harness()
    h.new()
    other = h.ctl.state(OTHER)
    other.emergency = make_zone(OTHER, 1)
    h.ctl.finish_startup("no answer from the primary")
    assert h.mode == "live" and h.ctl.started
    assert other.mode is Mode.EMERGENCY and other.failures == 3
    assert other.last_event["reason"] == "no answer from the primary"
    assert other.last_event["cause"] == "startup"
    assert h.published[-1] == {OTHER: other.emergency}


def test_apply_names_the_backend_of_each_zone():
    h = Harness()
    h.ctl.apply([Report(ORIGIN, True, version=h.version(), tag="t1")], backend="axfr:primary")
    h.ctl.apply([Report(ORIGIN, True, tag="t1")])
    assert zone_status(h)["backend"] == "axfr:primary"


def test_unseen_version_while_a_version_is_held():
    h = Harness()
    h.new()
    h.new(serial=3)
    held_tag = h.st.held.version.tag
    assert not h.ctl.unseen_version(Report(ORIGIN, True, tag=held_tag))
    assert h.ctl.unseen_version(Report(ORIGIN, True, tag="newer"))
    assert not h.ctl.unseen_version(Report(ORIGIN, True, tag=None))
    assert not h.ctl.unseen_version(Report(OTHER, True, tag="x"))
    assert not h.ctl.unseen_version(Report(ORIGIN, True, tag="newer",
                                           version=h.version()))
    h2 = Harness()
    h2.ctl.finish_startup("x")
    assert h2.ctl.unseen_version(Report(ORIGIN, True, tag="first"))


def test_prejudge_against_nothing_served_and_without_a_version():
    h = Harness()
    version = h.version()
    current, verdict = h.ctl.prejudge(Report(ORIGIN, True, version=version))
    assert current is None and verdict.accepted
    assert h.ctl.prejudge(Report(ORIGIN, True, tag="x")) is None
    h.new()
    current, verdict = h.ctl.prejudge(Report(ORIGIN, True, version=h.version(serial=1)))
    assert current is h.st.good.zone and verdict.older


def test_stale_ttl_cap_is_computed_once_per_version():
    h = Harness(fail_after=1, stale_for=600, stale_ttl_max=30)
    h.new()
    h.fail()
    capped = h.st.served
    h.ctl.refilter([ORIGIN])
    assert h.st.served is capped
    h.ctl.apply([Report(ORIGIN, True, version=h.version(hosts=21), tag="n")])
    assert h.mode == "stale"
    assert h.st.served is not capped and h.st.served.serial == 12
    assert max(r.ttl for r in h.st.served.rrsets()) == 30


def test_a_timed_override_keeps_its_deadline_through_a_restart(tmp_path):
    """`force --for 30m`, then a restart 5 minutes in: 25 minutes of the override are left."""
    h = Harness(tmp_path)
    h.new()
    h.ctl.force("emergency", None, "maintenance", until=h.clock.wall() + 1800)
    h2 = Harness(tmp_path)
    h2.clock.start_wall = h.clock.start_wall
    h2.clock.now = h.clock.now + 300
    h2.ctl.restore(h2.store.load_snapshots(), h2.store.load_overrides())
    h2.ctl.finish_startup("no answer")
    h2.ctl.tick()
    assert h2.mode == "emergency"
    assert h2.ctl.status()["zones"][0]["forced"]["until"] == \
        pytest.approx(h.clock.wall() + 1800, abs=0.01)
    h2.clock.now += 1501
    h2.ctl.tick()
    assert h2.mode == "emergency" and h2.st.override is None   # released at the deadline


def test_an_emergency_file_that_appears_for_a_zone_with_nothing_to_serve_is_served():
    h = Harness()
    h.st.emergency = None
    h.fail("refused")
    assert h.st.served is None
    h.ctl.add_emergency({ORIGIN: make_zone(ORIGIN, 2, hosts=1, address="192.0.2.97")})
    h.ctl.flush()
    assert h.mode == "emergency" and h.served_address() == "192.0.2.97"


def test_a_restart_at_once_sees_the_snapshot_confirmed_just_now(tmp_path):
    h = Harness(tmp_path, stale_for=600)
    h.new()
    h2 = Harness(tmp_path, stale_for=600)
    h2.clock.start_wall, h2.clock.now = h.clock.start_wall, h.clock.now
    h2.ctl.restore(h2.store.load_snapshots(), {})
    assert zone_status(h2)["good_age"] == 0.0


class FailingWrite(RecordingStore):
    """A state directory where one kind of write fails (read-only file system)."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing

    def __getattr__(self, name):
        if name == "failing" or name.startswith("_"):
            raise AttributeError(name)
        if name == self.failing:
            def fail(*args, **kwargs):
                raise OSError(30, "Read-only file system")
            return fail
        return super().__getattr__(name)


@pytest.mark.parametrize("failing, what", [
    ("save_snapshot", "snapshot not written"),
    ("touch_snapshot", "snapshot not touched"),
    ("drop_snapshot", "snapshot not dropped"),
    ("save_overrides", "overrides not saved"),
])
def test_each_failed_write_is_named_in_the_log(caplog, failing, what):
    h = Harness()
    h.ctl.store = FailingWrite(failing)
    with caplog.at_level(logging.ERROR, logger="seawall.failover"):
        h.new()
        h.clock.now += 10
        h.ok()
        h.ctl.force("emergency", None, "x")
        h.ctl.apply([Report(ORIGIN, True, removed=True)])
    assert [r.getMessage() for r in caplog.records] == \
        [f"state directory: {what}: reason=[Errno 30] Read-only file system"]


def test_a_failed_override_write_stays_in_status():
    h = Harness()
    h.ctl.store = FailingWrite("save_overrides")
    h.new()
    h.ctl.force("emergency", None, "x")
    assert h.ctl.status()["state_dir_error"] == "overrides not saved: Read-only file system"


def test_an_orphan_snapshot_that_cannot_be_dropped_is_logged(caplog):
    h = Harness()
    h.ctl.store = FailingWrite("drop_snapshot")
    h.ctl.restore({}, {})
    h.ctl.state(OTHER)
    with caplog.at_level(logging.ERROR, logger="seawall.failover"):
        assert h.ctl.drop_orphans(set()) == [OTHER]
    assert [r.getMessage() for r in caplog.records] == \
        ["state directory: snapshot not dropped: reason=[Errno 30] Read-only file system"]


def test_a_failed_over_held_zone_comes_back_held_while_the_backend_offers_the_rejected_version():
    h, store = recording(fail_after=1, recover_after=2, stale_for=600)
    h.new()
    h.new(serial=3)
    held_tag = h.st.held.version.tag
    h.fail()
    assert h.mode == "stale"
    h.ctl.apply([Report(ORIGIN, True, tag=held_tag)])
    assert h.mode == "stale"
    h.clock.now += 1
    h.ctl.apply([Report(ORIGIN, True, tag=held_tag)])
    assert h.mode == "held" and h.served_address() == "192.0.2.80"
    assert transitions(store)[-1] == ("stale", "held", "probe",
                                      "2 consecutive successes (recover_after=2)")
    assert store.events[-1]["ts"] == h.clock.wall()


def test_an_older_signed_version_is_older_data_whatever_the_parent_says():
    h = Harness(stale_for=-1)
    far = int(h.clock.wall()) + 86400 * 30
    h.new(zone=signed_zone(11, far))
    h.ctl.parent_ds = lambda origin: {(1, 13, b"x")}
    h.new(zone=signed_zone(5, far))
    assert h.mode == "held" and h.st.held.older
    assert h.st.held.reason == "serial 5 is older than the served serial 11 (RFC 1982)"


def test_a_version_taken_in_emergency_names_the_last_good_serial_it_replaces():
    h, store = recording(fail_after=1)
    h.new()
    h.fail()
    assert h.mode == "emergency"
    h.new(hosts=21)
    updated = [e for e in store.events if e["kind"] == "updated"][-1]
    assert (updated["serial_from"], updated["serial_to"]) == (11, 12)


def test_a_first_version_that_does_not_validate_starts_in_emergency():
    h, store = recording()
    bad = Version(ORIGIN, None, [Problem(Location("z", 3), "CNAME and other data")], "bad",
                  "t")
    h.ctl.apply([Report(ORIGIN, True, version=bad, tag="bad")])
    assert h.mode == "emergency" and h.st.held is not None
    assert transitions(store) == [(None, "emergency", "startup", "no last good version")]


def test_signatures_exactly_the_margin_away_are_not_yet_expiring():
    h = Harness(stale_for=-1)
    h.clock.start_wall = float(int(time.time()))
    expiry = int(h.clock.start_wall) + 7200
    h.new(zone=signed_zone(11, expiry))
    h.clock.now += 3600                         # exactly signature_margin left
    h.ctl.tick()
    assert h.mode == "live" and not zone_status(h)["signatures_expiring"]
    h.clock.now += 0.5
    h.ctl.tick()
    assert h.mode == "emergency"


def test_an_emergency_version_whose_signatures_run_out_is_not_fallen_back_to():
    h = Harness(fail_after=1, stale_for=0)
    h.ctl.add_emergency({ORIGIN: signed_zone(1, int(h.clock.wall()) + 600, hosts=3,
                                             address="192.0.2.99")})
    h.new()
    h.fail()
    assert h.mode == "stale" and h.served_address() == "192.0.2.80"


def test_stale_data_past_its_expire_names_the_expire_as_the_horizon():
    h, store = recording(fail_after=1, stale_for=-1)
    h.ctl.apply([Report(ORIGIN, True, version=Version(ORIGIN, make_zone(ORIGIN, 7), [], "t7",
                                                      "axfr", soa_expire=900), tag="t7")])
    h.fail()
    h.clock.now += 901
    h.ctl.tick()
    assert h.mode == "emergency"
    assert transitions(store)[-1][3] == "last good data is 901s old (stale_for=900s)"


def test_the_default_expire_horizon_reads_as_whole_seconds():
    h, store = recording(fail_after=1, stale_for=-1)
    h.new()
    h.fail()
    h.clock.now += 1209601
    h.ctl.tick()
    assert h.mode == "emergency"
    assert transitions(store)[-1][3] == "last good data is 1209601s old (stale_for=1209600s)"


def test_operator_defaults_name_the_operator():
    h, store = recording()
    h.new()
    h.ctl.force("emergency", None, "x")
    assert zone_status(h)["forced"]["by"] == "operator"
    h.ctl.release(None)
    assert store.events[-1]["reason"] == "released to automatic: released"
    h.new(serial=3)
    reason = h.st.held.reason
    h.ctl.accept("example.org")
    assert [e for e in store.events if e["kind"] == "updated"][-1]["reason"] == \
        f"accepted by operator: {reason}"


def two_zones() -> Harness:
    h = Harness()
    h.new()
    h.ctl.add_emergency({OTHER: make_zone(OTHER, 1)})
    h.ctl.apply([Report(OTHER, True, version=Version(OTHER, make_zone(OTHER, 5), [], "o1",
                                                     "t"), tag="o1")])
    return h


def test_release_accept_and_remove_act_on_the_named_zone_only():
    h = two_zones()
    h.ctl.force("emergency", None, "both")
    assert h.ctl.release(["other.test"], by="drill") == ["other.test."]
    assert h.st.override is not None and h.ctl.zones[OTHER].override is None
    assert h.ctl.zones[OTHER].last_event["cause"] == "drill"
    h.ctl.apply([Report(OTHER, True, version=Version(OTHER, make_zone(OTHER, 2), [], "o2",
                                                     "t"), tag="o2")])
    assert h.ctl.accept("other.test") == 2
    assert h.ctl.zones[OTHER].served.serial == 2 and h.st.good.zone.serial == 11
    h.ctl.remove("other.test")
    assert h.ctl.zones[OTHER].good is None and h.st.good is not None


def test_only_leaving_a_healthy_state_is_a_bounce():
    h = Harness(fail_after=1, stale_for=60)
    h.fail()                                     # start-up straight to emergency
    assert zone_status(h)["damping"]["episodes"] == 0
    h2 = Harness(fail_after=1, stale_for=60)
    h2.new()
    h2.fail()
    h2.clock.now += 61
    h2.ctl.tick()                                # stale -> emergency: the same episode
    assert h2.mode == "emergency"
    assert zone_status(h2)["damping"]["episodes"] == 1


def test_the_first_transition_under_a_restored_override_comes_from_nothing():
    h = Harness()
    h.ctl.restore({}, {"example.org.": {"mode": "emergency", "reason": "kept"}})
    h.new()
    assert h.st.last_event["kind"] == "transition"
    assert (h.st.last_event["from"], h.st.last_event["to"]) == (None, "emergency")


def test_log_lines_of_events_and_the_level_of_rejections(caplog):
    h = Harness(fail_after=1, stale_for=600)
    with caplog.at_level(logging.INFO, logger="seawall.failover"):
        h.new()
        h.new(serial=3)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0] == (logging.INFO, "transition: zone=example.org. from=None to=live "
                                      "cause=startup reason=the backend answered")
    assert lines[1] == (logging.WARNING, "rejected: zone=example.org. from=live to=live "
                                         "cause=guard reason=older data: serial 3 is older "
                                         "than the served serial 11 (RFC 1982)")


def test_a_zone_removed_in_a_batch_does_not_stop_the_others_being_published():
    h = Harness()
    h.st.emergency = None
    other = make_zone(OTHER, 5)
    h.ctl.apply([Report(ORIGIN, True, version=h.version(), tag="t1"),
                 Report(ORIGIN, True, removed=True),
                 Report(OTHER, True, version=Version(OTHER, other, [], "o", "t"), tag="o")])
    assert ORIGIN not in h.ctl.zones
    assert h.ctl.zones[OTHER].served is other
    assert any(p.get(OTHER) is other for p in h.published)


def test_status_shows_a_zero_stale_for_as_zero_seconds():
    h = Harness(stale_for=0)
    assert h.ctl.status()["thresholds"]["stale_for"] == 0.0


def test_the_damping_factor_is_capped_however_many_bounces():
    from seawall.failover.zonestate import Damping
    damping = Damping(points=40.0, at=0.0)
    assert damping.factor(0.0, 600.0, 2**40) == 2**30
    assert damping.factor(0.0, 600.0, 32) == 32


def test_a_first_signed_version_the_parent_ds_does_not_lead_to_is_not_served():
    h = Harness(stale_for=-1)
    h.ctl.parent_ds = lambda origin: {(1, 13, b"x")}
    h.new(zone=signed_zone(11, int(h.clock.wall()) + 86400 * 30))
    assert h.mode == "emergency" and h.st.good is None
    assert h.st.held.reason == "none of its KSKs matches the 1 DS record(s) the parent " \
                               "publishes now (validators would see it as bogus)"
