"""The fleet's decisions without etcd: the quorum vote, the fence, fingerprints, config."""

from __future__ import annotations

import json

import dns.name
import pytest

from seawall.config import ConfigError, load_config
from seawall.fleet.etcd import KeyValue
from seawall.fleet.view import FleetView, fence, fingerprint, key, vote
from failover.failover_zones import make_zone

ZONE = dns.name.from_text("example.net.")


def view_of(**keys: dict) -> FleetView:
    kvs = [KeyValue(k, json.dumps(v).encode(), i + 1, i + 1, 0)
           for i, (k, v) in enumerate(keys.items())]
    return FleetView.parse(kvs)


def members(*failing: str, healthy: tuple[str, ...] = ()) -> FleetView:
    values = {}
    for name in failing + healthy:
        values[key("members", name)] = {"zones": {"example.net.": {"failing": name in failing}}}
    return FleetView.parse([KeyValue(k, json.dumps(v).encode(), 1, 1, 1)
                            for k, v in values.items()])


@pytest.mark.parametrize("failing, healthy, i_fail, quorum, allowed", [
    ((), ("b", "c"), True, 2, False),          # alone with the failure: stay on last good
    (("b",), ("c",), True, 2, True),           # two of three: quorum
    (("b", "c"), (), False, 2, True),          # the others fail, this one not yet: still quorum
    (("b",), ("c",), True, 0, True),           # majority of three is two
    ((), ("b", "c"), True, 0, False),
    ((), (), True, 2, True),                   # alone in the fleet: the quorum is capped
    (("b",), ("c", "d", "e"), True, 0, False), # 2 of 5 is no majority
    (("b", "c"), ("d", "e"), True, 0, True),
])
def test_quorum(failing, healthy, i_fail, quorum, allowed) -> None:
    why = vote(members(*failing, healthy=healthy), ZONE, "a", i_fail, quorum)
    assert (why is None) is allowed, why
    if why is not None:
        assert "quorum not reached" in why and "serving the last good data" in why


def test_my_own_stale_record_does_not_count_twice() -> None:
    view = members("a", healthy=("b", "c"))
    assert vote(view, ZONE, "a", True, 2) is not None


def epochs() -> FleetView:
    newest = {"epoch": 2, "fingerprint": "f2", "serial": 10, "by": "edge-1"}
    return view_of(**{key("epoch", "example.net."): newest,
                      key("version", "example.net.", "f1"): {"epoch": 1, "serial": 9},
                      key("version", "example.net.", "f2"): newest})


@pytest.mark.parametrize("fp, serial, ordered, refused", [
    ("f2", 10, True, False),     # the newest
    ("f1", 9, True, True),       # known, older epoch
    ("f1", 11, True, True),      # older content under a newer serial
    ("f3", 11, True, False),     # new content, newer serial
    ("f3", 8, True, True),       # new content, serial behind the newest
    ("f3", 8, False, False),     # hash serials say nothing of order
    ("f1", 8, False, True),      # ... but known older content is still older
    (None, 8, True, True),       # not fingerprinted (a large zone): the serial counts
    (None, 11, True, False),
])
def test_fence(fp, serial, ordered, refused) -> None:
    why = fence(epochs(), ZONE, fp, serial, ordered)
    assert (why is not None) is refused, why


def test_no_epoch_yet_fences_nothing() -> None:
    assert fence(FleetView(), ZONE, "f1", 1, True) is None


def test_fingerprint_ignores_the_serial_only() -> None:
    a = make_zone(ZONE, 1)
    assert fingerprint(a) == fingerprint(make_zone(ZONE, 2))
    assert fingerprint(a) != fingerprint(make_zone(ZONE, 1, hosts=21))
    assert fingerprint(a) != fingerprint(make_zone(ZONE, 1, address="192.0.2.81"))
    assert fingerprint(a) != fingerprint(make_zone(ZONE, 1, ttl=60))


def test_without_a_fleet_section_there_is_no_fleet(tmp_path) -> None:
    assert not load_config(None).fleet.enabled
    path = tmp_path / "seawall.yaml"
    path.write_text("fleet:\n  etcd: [\"127.0.0.1:2379\"]\n  name: edge-1\n  quorum: 2\n")
    fleet = load_config(path).fleet
    assert fleet.enabled and fleet.quorum == 2 and fleet.name == "edge-1"
    path.write_text("fleet:\n  etcd: [\"127.0.0.1:2379\"]\n  lease_ttl: 1s\n")
    with pytest.raises(ConfigError, match="lease_ttl"):
        load_config(path)
