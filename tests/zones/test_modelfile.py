"""The zone model as octets (zones/modelfile.py): read back, it is the zone written.

One small zone with a bit of everything the tree holds: compact leaves of
several types, a leaf in mixed case (a Node), an alias, a wildcard, an empty
non-terminal, a delegation with glue and occluded data, a DNAME. Damaged
octets raise ValueError; the checksum that catches the rest is the store's.
"""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdata
import dns.rdatatype
import pytest

from seawall.dns.image import zone_digest
from seawall.zones.loader import load_zone_file
from seawall.zones.modelfile import dump_zone, load_zone

DATA = Path(__file__).parent / "data"
ORIGIN = dns.name.from_text("model.test.")


@pytest.fixture(scope="module")
def zone():
    loaded = load_zone_file(DATA / "model.test.zone", ORIGIN)
    assert loaded.ok, loaded.problems
    return loaded.zone


def _shape(zone):
    """Every node as the engine sees it: name, flags, RRsets with TTLs, in order."""
    return [(node.name.to_text(), node.is_apex, node.is_delegation, node.is_occluded,
             [(rrset.rdtype, rrset.covers, rrset.ttl, [r.to_text() for r in rrset])
              for rrset in node.rrsets.values()])
            for node in zone.nodes()]


def test_a_zone_read_back_is_the_zone_written(zone):
    data = dump_zone(zone)
    again = load_zone(data, ORIGIN)
    assert zone_digest(again) == zone_digest(zone)     # its zone image still fits
    assert _shape(again) == _shape(zone)
    assert (again.serial, again.node_count, again.rrset_count) == \
        (zone.serial, zone.node_count, zone.rrset_count)
    # The tree's own form is kept: compact leaves stay tuples, equal to the first ones.
    assert again.apex.children.entries[b"web"] == zone.apex.children.entries[b"web"]
    assert dump_zone(again) == data


def test_every_truncation_is_refused(zone):
    data = dump_zone(zone)
    for end in range(0, len(data) - 1, 7):
        with pytest.raises(ValueError):
            load_zone(data[:end], ORIGIN)


def test_a_model_of_another_zone_or_format_is_refused(zone):
    data = dump_zone(zone)
    with pytest.raises(ValueError, match="another zone"):
        load_zone(data, dns.name.from_text("other.test."))
    with pytest.raises(ValueError, match="format"):
        load_zone(data[:8] + b"\x09\x00" + data[10:], ORIGIN)
    with pytest.raises(ValueError, match="after the end"):
        load_zone(data + b"\x00", ORIGIN)


def test_a_record_kept_as_an_object_has_no_model(zone):
    """A record with a comment is not octets in a leaf: the master file alone holds it."""
    leaf = zone.apex.children.entries[b"short"]
    odd = dns.rdata.from_text("IN", "A", "192.0.2.7")
    object.__setattr__(odd, "rdcomment", "kept")
    zone.apex.children.entries[b"short"] = leaf[:2] + (odd,)
    try:
        assert dump_zone(zone) is None
    finally:
        zone.apex.children.entries[b"short"] = leaf
