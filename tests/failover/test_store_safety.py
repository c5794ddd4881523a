"""The state directory as an attacker with write access to parts of it would try it.

Names from zone data never leave ``snapshots/``; links planted in the state
directory are refused, never followed (the server may start as root); a
snapshot whose bytes or metadata do not match is ignored with a reason; the
lock keeps a second server out.
"""

from __future__ import annotations

import os
from pathlib import Path

import dns.name
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.failover.store import StateDirBusy, StateStore, safe_name

from failover_zones import make_zone


def store_at(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state")
    store.prepare()
    return store


@given(st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=6))
@settings(max_examples=300, deadline=None)
def test_every_zone_name_becomes_one_file_name_inside_the_directory(labels):
    try:
        origin = dns.name.Name([*labels, b""])
    except dns.name.NameTooLong:
        return
    name = safe_name(origin)
    assert "/" not in name and "\0" not in name and name not in (".", "..")
    assert not name.startswith(".") and len(name) <= 200
    assert (Path("/base") / f"{name}.zone").parent == Path("/base")


def test_the_escaped_slash_name_of_the_attack_stays_inside(tmp_path):
    store = store_at(tmp_path)
    origin = dns.name.from_text(r"\047tmp\047x\047pwned.")     # "/tmp/x/pwned" as a label
    zone = make_zone(origin, 1)
    store.save_snapshot(zone, fetched_at=0, confirmed_at=0, source="t", tag="t")
    written = sorted(p.name for p in (tmp_path / "state" / "snapshots").iterdir())
    assert len(written) == 2 and all(n.startswith("=") for n in written), written
    assert not Path("/tmp/x/pwned.zone").exists()
    assert store.load_snapshots()[origin].zone.serial == 1
    store.drop_snapshot(origin)
    assert list((tmp_path / "state" / "snapshots").iterdir()) == []


def test_a_linked_event_log_is_not_followed(tmp_path):
    store = store_at(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (tmp_path / "state" / "events.jsonl").symlink_to(victim)
    with pytest.raises(OSError):
        store.append_event({"kind": "test"})
    assert victim.read_text() == "untouched\n"


def test_a_linked_snapshots_directory_is_refused(tmp_path):
    store = store_at(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "state" / "snapshots").rmdir()
    (tmp_path / "state" / "snapshots").symlink_to(elsewhere)
    with pytest.raises(OSError, match="symbolic link"):
        store.prepare()
    with pytest.raises(OSError, match="symbolic link"):
        store.save_snapshot(make_zone(dns.name.from_text("example.org."), 1), fetched_at=0,
                            confirmed_at=0, source="t", tag="t")
    assert list(elsewhere.iterdir()) == []
    assert store.load_snapshots() == {} and "symbolic link" in store.ignored[0][1]


def test_a_linked_snapshot_file_is_not_read(tmp_path):
    store = store_at(tmp_path)
    origin = dns.name.from_text("example.org.")
    store.save_snapshot(make_zone(origin, 1), fetched_at=0, confirmed_at=0, source="t", tag="t")
    zone_file = tmp_path / "state" / "snapshots" / "example.org.zone"
    secret = tmp_path / "secret.zone"
    secret.write_bytes(zone_file.read_bytes())
    zone_file.unlink()
    zone_file.symlink_to(secret)
    assert store.load_snapshots() == {}
    assert "symbolic link" in store.ignored[0][1]


def test_files_are_private(tmp_path):
    store = store_at(tmp_path)
    origin = dns.name.from_text("example.org.")
    store.save_snapshot(make_zone(origin, 1), fetched_at=0, confirmed_at=0, source="t", tag="t")
    store.append_event({"kind": "test"})
    for path in [*(tmp_path / "state" / "snapshots").iterdir(),
                 tmp_path / "state" / "events.jsonl"]:
        assert path.stat().st_mode & 0o077 == 0, path


@pytest.mark.parametrize("damage", ["truncate", "edit", "meta-serial", "meta-zone"])
def test_a_damaged_snapshot_is_ignored_with_a_reason(tmp_path, damage):
    store = store_at(tmp_path)
    origin = dns.name.from_text("example.org.")
    store.save_snapshot(make_zone(origin, 7, hosts=50), fetched_at=0, confirmed_at=0,
                        source="t", tag="t")
    zone_file = tmp_path / "state" / "snapshots" / "example.org.zone"
    meta = tmp_path / "state" / "snapshots" / "example.org.json"
    lines = zone_file.read_text().splitlines(keepends=True)
    if damage == "truncate":                 # at a line boundary: still a valid zone file
        zone_file.write_text("".join(lines[:len(lines) // 2]))
    elif damage == "edit":
        zone_file.write_text("".join(lines).replace("198.51.100.7", "203.0.113.7"))
    elif damage == "meta-serial":
        meta.write_text(meta.read_text().replace('"serial": 7', '"serial": 8'))
    else:
        meta.write_text(meta.read_text().replace("example.org.", "example.net."))
    assert store.load_snapshots() == {}
    assert store.ignored and store.ignored[0][1], store.ignored


def test_the_lock_names_the_server_holding_it(tmp_path):
    first = store_at(tmp_path)
    first.lock()
    second = StateStore(tmp_path / "state")
    with pytest.raises(StateDirBusy, match=f"in use by another seawall server \\(pid {os.getpid()}\\)"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()


def test_the_served_serials_file_is_not_written_through_a_planted_link(tmp_path):
    """served-serials.json (and fleet.json) go through seawall.safefiles: before, the
    temporary file served-serials.tmp was opened for writing whatever it linked to."""
    from seawall.dns.serials import ServedSerials
    from seawall.safefiles import write_atomic

    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    state = tmp_path / "state"
    state.mkdir()
    for name in ("served-serials.tmp", f".served-serials.json.{os.getpid()}.tmp",
                 "served-serials.json", f".fleet.json.{os.getpid()}.tmp"):
        (state / name).symlink_to(victim)
    serials = ServedSerials(state)
    serials.zones[dns.name.from_text("example.org.")] = __import__(
        "seawall.dns.serials", fromlist=["Served"]).Served(1, 1, 1, "x")
    serials.save()
    write_atomic(state / "fleet.json", b"{}")
    assert victim.read_text() == "untouched\n"
    assert not (state / "served-serials.json").is_symlink()
    assert "example.org." in (state / "served-serials.json").read_text()
    assert (state / "fleet.json").stat().st_mode & 0o077 == 0
