"""Zone images (seawall/dns/image.py): a table written once, read back exactly.

An image is used only for the very zone version, set of zones and answer
code it was made from; a torn, edited or stale file is ignored and the
table is built again, never served.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import zone_from_text
from seawall.dns import image
from seawall.dns.answers import TableStore
from seawall.dns.image import read_image, write_image, zone_digest
from seawall.dns.responder import TCP, UDP, Responder, ResponderSettings
from seawall.zones.zoneset import ZoneSet

from test_answers import BASE, QTYPES, all_names, query_wire, zone_text, zones  # noqa: E402


def built(store: TableStore, zoneset: ZoneSet) -> None:
    for _ in store.prepare(zoneset):
        pass


def test_a_restart_reads_the_table_back(tmp_path: Path) -> None:
    zoneset = ZoneSet(zones())
    first = TableStore()
    first.images = tmp_path
    built(first, zoneset)
    assert first.loaded == 0 and len(os.listdir(tmp_path)) == 3
    # Another process: the same zone files loaded again (new objects).
    again = ZoneSet(zones())
    second = TableStore()
    second.images = tmp_path
    assert second.has_images(again)
    built(second, again)
    origins = frozenset(zone.origin for zone in again)
    tables = [second._table(zone, origins) for zone in again]
    # Only the bodies that read other zones are made again (they are, for every set).
    assert second.loaded == 3 and second.built == sum(len(t.foreign) for t in tables if t)
    assert second.bodies_for(again) == first.bodies_for(zoneset)
    # Exact, against a responder without the fast path.
    fast = Responder(again, ResponderSettings(cache_entries=50), store=second)
    fast.fast.bodies = dict(second.bodies_for(again) or {})
    slow = Responder(again, ResponderSettings(fast_path=False))
    rng = random.Random(9)
    names = all_names(again)
    for _ in range(800):
        wire = query_wire(rng.choice(names), rng.choice(QTYPES), rng)
        transport = rng.choice([UDP, TCP])
        assert fast.respond(wire, transport) == slow.respond(wire, transport)
    assert fast.fast.body_hits > 50


def test_an_image_of_another_version_is_not_used(tmp_path: Path) -> None:
    old = zone_from_text("example.test.", zone_text(BASE), strict=False)
    store = TableStore()
    store.images = tmp_path
    built(store, ZoneSet([old]))
    changed = dict(BASE, www=["A 198.51.100.1"])
    new = zone_from_text("example.test.", zone_text(changed), strict=False)   # same serial
    assert zone_digest(new) != zone_digest(old)
    assert read_image(tmp_path, new, zone_digest(new), [new.origin]) is None
    fresh = TableStore()
    fresh.images = tmp_path
    built(fresh, ZoneSet([new]))
    assert fresh.loaded == 0 and fresh.built > 10


def test_same_content_same_digest() -> None:
    a = zone_from_text("example.test.", zone_text(BASE), strict=False)
    b = zone_from_text("example.test.", zone_text(BASE), strict=False)
    assert zone_digest(a) == zone_digest(b)
    ttl = zone_from_text("example.test.", zone_text(BASE, ttl_of="h1"), strict=False)
    assert zone_digest(ttl) != zone_digest(a)


def test_another_set_of_zones_or_other_code_is_not_used(tmp_path: Path, monkeypatch) -> None:
    zone = zone_from_text("example.test.", zone_text(BASE), strict=False)
    store = TableStore()
    store.images = tmp_path
    built(store, ZoneSet([zone]))
    digest = zone_digest(zone)
    other = zones()[1]
    assert read_image(tmp_path, zone, digest, [zone.origin, other.origin]) is None
    assert read_image(tmp_path, zone, digest, [zone.origin]) is not None
    monkeypatch.setattr(image, "_engine", b"\x00" * 16)
    assert read_image(tmp_path, zone, digest, [zone.origin]) is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend", "header"])
def test_a_damaged_image_is_ignored(tmp_path: Path, damage: str) -> None:
    zone = zone_from_text("example.test.", zone_text(BASE), strict=False)
    store = TableStore()
    store.images = tmp_path
    built(store, ZoneSet([zone]))
    [path] = list(tmp_path.iterdir())
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x40
    elif damage == "truncate":
        del data[-7:]
    elif damage == "extend":
        data += b"\x00"
    else:
        data[:8] = b"NOTIMAGE"
    path.write_bytes(bytes(data))
    assert read_image(tmp_path, zone, zone_digest(zone), [zone.origin]) is None
    fresh = TableStore()
    fresh.images = tmp_path
    built(fresh, ZoneSet([zone]))
    assert fresh.loaded == 0 and fresh.built > 10


def test_a_link_in_place_of_an_image_is_not_followed(tmp_path: Path) -> None:
    zone = zone_from_text("example.test.", zone_text(BASE), strict=False)
    digest = zone_digest(zone)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"secret")
    images = tmp_path / "images"
    images.mkdir()
    os.symlink(target, image.image_path(images, zone, digest))
    assert read_image(images, zone, digest, [zone.origin]) is None
    write_image(images, zone, digest, [zone.origin], {}, {}, [])
    assert target.read_bytes() == b"secret"


def test_old_images_are_pruned(tmp_path: Path) -> None:
    for serial in range(1, 6):
        zone = zone_from_text("example.test.", zone_text(BASE, serial=serial), strict=False)
        write_image(tmp_path, zone, zone_digest(zone), [zone.origin], {}, {}, [])
        os.utime(image.image_path(tmp_path, zone, zone_digest(zone)), (serial, serial))
    assert len(list(tmp_path.iterdir())) == image.KEEP


@pytest.fixture(scope="module")
def from_image(tmp_path_factory) -> tuple[ZoneSet, TableStore]:
    directory = tmp_path_factory.mktemp("images")
    writer = TableStore()
    writer.images = directory
    built(writer, ZoneSet(zones()))
    zoneset = ZoneSet(zones())
    reader = TableStore()
    reader.images = directory
    built(reader, zoneset)
    assert reader.loaded == 3
    return zoneset, reader


@settings(max_examples=150, deadline=None)
@given(label=st.sampled_from(["www", "alias", "into", "out", "ns1", "x.wild", "kid", "h.kid",
                              "sub", "ns.sub", "", "nope", "mail", "A.b", "WwW"]),
       zone=st.sampled_from(["example.test.", "other.test.", "kid.example.test."]),
       qtype=st.sampled_from(QTYPES), seed=st.integers(0, 2**32 - 1))
def test_random_questions_answered_from_an_image(from_image, label: str, zone: str, qtype: str,
                                                 seed: int) -> None:
    """Random questions: a table read from an image answers as the engine does."""
    zoneset, store = from_image
    rng = random.Random(seed)
    fast = Responder(zoneset, ResponderSettings(cache_entries=50), store=store)
    fast.fast.bodies = dict(store.bodies_for(zoneset) or {})
    slow = Responder(zoneset, ResponderSettings(fast_path=False))
    wire = query_wire(f"{label}.{zone}" if label else zone, qtype, rng)
    for transport in (UDP, TCP):
        expected = slow.respond(wire, transport)
        assert fast.respond(wire, transport) == expected
        assert fast.respond(wire, transport) == expected
