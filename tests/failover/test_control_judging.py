"""How a drill judges one probe: the answer must be the data of a state in force meanwhile.

The judging is pure (a probe, the expected answers per state, the state
timeline), so the cases a real server should never produce — an answer
from the wrong state, an unknown answer, no answer — are checked here.
"""

from __future__ import annotations

import pytest

from seawall.failover.drill_client import SLACK, Probe, Timeline, judge

SPECS = [{"zone": "example.com.", "name": "www.example.com.", "type": "A", "distinct": True,
          "expect": {"live": "NOERROR | www A 192.0.2.80 |",
                     "stale": "NOERROR | www A 192.0.2.80 |",
                     "emergency": "NOERROR | www A 192.0.2.99 |"}},
         {"zone": "example.com.", "name": "example.com.", "type": "NS", "distinct": False,
          "expect": {"live": "NOERROR | ns |", "stale": "NOERROR | ns |",
                     "emergency": "NOERROR | ns |"}}]
LIVE, EMERGENCY = SPECS[0]["expect"]["live"], SPECS[0]["expect"]["emergency"]


def timeline() -> Timeline:
    """live until t=10, emergency until t=20, live again after."""
    line = Timeline({"example.com.": "live"})
    for ts, frm, to in ((10.0, "live", "emergency"), (20.0, "emergency", "live")):
        line.add({"zone": "example.com.", "kind": "transition", "from": frm, "to": to,
                  "ts": ts}, offset=0.0)
    line.add({"zone": "example.com.", "kind": "fault", "from": "live", "to": "live", "ts": 5.0},
             offset=0.0)
    return line


@pytest.mark.parametrize("sent, received, sig, verdict, source", [
    (1.0, 1.01, LIVE, "ok", "live"),
    (12.0, 12.01, EMERGENCY, "ok", "emergency"),
    (9.99, 10.02, LIVE, "ok", "live"),              # in flight across the switch: either
    (9.99, 10.02, EMERGENCY, "ok", "emergency"),
    (10.0 + SLACK / 2, 10.06, LIVE, "ok", "live"),  # the swap follows the event
    (10.5, 10.51, LIVE, "wrong", "live"),           # old data well after the switch
    (15.0, 15.01, LIVE, "wrong", "live"),
    (25.0, 25.01, EMERGENCY, "wrong", "emergency"),  # emergency data after recovery
    (3.0, 3.01, "SERVFAIL |  |", "wrong", None),
    (3.0, None, None, "lost", None),
])
def test_judge(sent, received, sig, verdict, source):
    probe = Probe(0, sent, received, sig)
    judge(probe, SPECS, timeline())
    assert (probe.verdict, probe.source) == (verdict, source)


def test_same_answer_in_every_state_is_credited_to_the_state_in_force():
    probe = Probe(1, 12.0, 12.01, "NOERROR | ns |")
    judge(probe, SPECS, timeline())
    assert (probe.verdict, probe.source) == ("ok", "emergency")


def test_clock_offset_moves_server_events_to_local_time():
    line = Timeline({"z.": "live"})
    line.add({"zone": "z.", "kind": "transition", "from": "live", "to": "emergency",
              "ts": 110.0}, offset=100.0)
    assert line.states_between("z.", 9.0, 9.5) == {"live"}
    assert line.states_between("z.", 9.5, 10.5) == {"live", "emergency"}
    assert line.states_between("z.", 10.5, 11.0) == {"emergency"}


def test_drill_record_follows_the_event_log_across_rotation(tmp_path, monkeypatch):
    """events.jsonl rotates (10 MiB): the drill's record loses no event and repeats none."""
    import types

    from seawall.backends.base import Fault
    from seawall.failover import store as store_module
    from seawall.failover.drill import DrillManager, DrillRun, _position
    from seawall.failover.store import StateStore

    monkeypatch.setattr(store_module, "EVENTS_MAX_BYTES", 300)
    store = StateStore(tmp_path)
    store.prepare()
    store.append_event({"zone": "example.com.", "ts": 0, "n": -1})
    manager = DrillManager(types.SimpleNamespace(store=store, backends=[]), lambda: [])
    inode, offset = _position(store.events_path)
    run = DrillRun("x", {"zones": ["example.com."]}, "test", 0.0, 1.0, Fault("backend-down"),
                   offset, inode)
    for n in range(40):
        store.append_event({"zone": "example.com." if n % 2 == 0 else "other.", "ts": n,
                            "n": n, "pad": "x" * 40})
        if n % 7 == 0:
            manager._read_events(run, {"example.com."})
    manager._read_events(run, {"example.com."})
    assert (tmp_path / "events.jsonl.1").exists()
    assert [e["n"] for e in run.events] == list(range(0, 40, 2))
