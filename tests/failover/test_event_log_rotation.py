"""The event log is bounded: it rotates, and history reads across the rotated files."""

from __future__ import annotations

from seawall.failover import store as store_module
from seawall.failover.store import StateStore


def test_events_rotate_and_read_back_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "EVENTS_MAX_BYTES", 2000)
    monkeypatch.setattr(store_module, "EVENTS_KEEP", 3)
    store = StateStore(tmp_path)
    for i in range(200):
        store.append_event({"ts": float(i), "zone": "example.com.", "kind": "transition",
                            "reason": "x" * 40})
    files = store.event_files()
    assert len(files) == 4  # events.jsonl and three rotated files, no more
    assert all(path.stat().st_size <= 2000 + 200 for path in files)
    events = store.read_events()
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps) and stamps[-1] == 199.0
    assert len(events) < 200  # the oldest were dropped with the oldest file
    assert [e["ts"] for e in store.read_events(since=190)] == [float(i) for i in range(190, 200)]
