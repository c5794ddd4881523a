"""The last good snapshot's zone model: a faster way to the same version, never another.

The master file stays the reference: its checksum is checked first, and a
model that is missing or does not check out is passed over with a log line
and the master file is read instead.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dns.name
import pytest

from seawall.dns.image import zone_digest
from seawall.failover import store as store_module
from seawall.failover.store import StateStore
from seawall.zones.loader import load_zone_file

from failover_peers import zone_text

ORIGIN = dns.name.from_text("model.test.")


def saved(tmp_path: Path) -> tuple[StateStore, Path]:
    """A store with one snapshot of model.test (serial 5), from a master file."""
    store = StateStore(tmp_path / "state")
    store.prepare()
    source = tmp_path / "source.zone"
    source.write_text(zone_text("model.test", 5, hosts=50))
    zone = load_zone_file(source, ORIGIN).zone
    store.save_snapshot(zone, fetched_at=1.0, confirmed_at=2.0, source="t", tag="t1")
    store.zone_written = zone   # type: ignore[attr-defined]
    return store, tmp_path / "state" / "snapshots"


def no_master_file(*args, **kwargs):
    raise AssertionError("the master file was read")


def test_a_snapshot_is_read_from_its_model(tmp_path, monkeypatch):
    store, snaps = saved(tmp_path)
    assert (snaps / "model.test.model").exists()
    text = store.load_snapshots()[ORIGIN].zone          # the master file, as before
    monkeypatch.setattr(store_module, "load_zone_file", no_master_file)
    fast = store.load_snapshots()[ORIGIN]
    assert fast.zone.serial == 5 and fast.tag == "t1" and not store.ignored
    assert zone_digest(fast.zone) == zone_digest(text)


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_damaged_model_is_passed_over_for_the_master_file(tmp_path, caplog, damage):
    store, snaps = saved(tmp_path)
    model = snaps / "model.test.model"
    data = model.read_bytes()
    if damage == "flip":
        # www's address 192.0.2.80 made .81: the model still parses, as another
        # version of the zone; only its checksum tells.
        at = data.index(bytes((192, 0, 2, 80))) + 3
        model.write_bytes(data[:at] + bytes((data[at] ^ 1,)) + data[at + 1:])
    elif damage == "truncate":
        model.write_bytes(data[: len(data) // 2])
    else:
        model.unlink()
    with caplog.at_level(logging.WARNING, logger="seawall.failover"):
        snap = store.load_snapshots()[ORIGIN]
    assert not store.ignored                                # the snapshot itself is fine
    assert "snapshot model passed over" in caplog.text and "reading the master file" \
        in caplog.text
    # The version written, read from its master file, whatever the model said.
    assert zone_digest(snap.zone) == zone_digest(store.zone_written)


def test_a_damaged_master_file_is_ignored_even_with_a_good_model(tmp_path):
    """The model never stands in for a master file that does not check out."""
    store, snaps = saved(tmp_path)
    master = snaps / "model.test.zone"
    master.write_bytes(master.read_bytes()[:-30])
    assert store.load_snapshots() == {}
    assert "checksum mismatch" in store.ignored[0][1]


def test_a_snapshot_written_before_models_is_read_from_its_master_file(tmp_path):
    store, snaps = saved(tmp_path)
    meta_path = snaps / "model.test.json"
    meta = json.loads(meta_path.read_text())
    del meta["model_sha256"]
    meta_path.write_text(json.dumps(meta))
    (snaps / "model.test.model").unlink()
    assert store.load_snapshots()[ORIGIN].zone.serial == 5 and not store.ignored


def test_a_confirmation_keeps_the_models_checksum(tmp_path, monkeypatch):
    store, snaps = saved(tmp_path)
    store.touch_snapshot(ORIGIN, fetched_at=1.0, confirmed_at=9.0, source="t", tag="t1",
                         serial=5)
    monkeypatch.setattr(store_module, "load_zone_file", no_master_file)
    assert store.load_snapshots()[ORIGIN].confirmed_at == 9.0
