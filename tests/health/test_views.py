"""A change of health view: the zone as served, and its answer tables, at the cost of the
names that change.

For random target states (every target down included: fail static), the
zone the filter derives (seawall/zones/derive.py, sharing the rest with the
base zone) answers every query as ``build_zone`` over the zone's records
with the picked answers in place does, and its answer tables, adapted from
the previous view's, are the tables a full build makes, with only the
health-checked names' questions built again.
"""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import zone_from_text
from seawall.config import load_config
from seawall.dns.answers import TableStore
from seawall.dns.engine import resolve
from seawall.health.service import HealthService
from seawall.zones.model import build_zone
from seawall.zones.problems import Location
from seawall.zones.reader import Record
from seawall.zones.zoneset import ZoneSet

ORIGIN = dns.name.from_text("hc.example.")
ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
ZONE = """$ORIGIN hc.example.
$TTL 60
@       SOA ns1 hostmaster 1 7200 3600 1209600 60
@       NS  ns1
ns1     A   192.0.2.53
www     A   127.0.0.2
www     A   127.0.0.3
www     AAAA 2001:db8::1
alias   CNAME www
mx      MX  10 www
*.w     A   127.0.0.4
x.w     A   192.0.2.9
sub     NS  ns.sub
ns.sub  A   127.0.0.5
plain   A   192.0.2.80
""" + "".join(f"p{i}     A   192.0.2.{i + 100}\n" for i in range(40))   # names no view touches
# www A: main (.2, .3) then backup (.4); *.w A: .4 alone (fail static when down);
# ns.sub A (glue below a cut): .5 then .2.
SIDE = """www:
  type: A
  dynamic:
    pools:
      main: {values: [{value: 127.0.0.2}, {value: 127.0.0.3}], fallback: backup}
      backup: {values: [{value: 127.0.0.4}]}
    rules: [{pool: main}]
  healthcheck: {protocol: TCP, port: 80}
'*.w':
  type: A
  dynamic:
    pools:
      only: {values: [{value: 127.0.0.4}]}
    rules: [{pool: only}]
  healthcheck: {protocol: TCP, port: 80}
ns.sub:
  type: A
  dynamic:
    pools:
      main: {values: [{value: 127.0.0.5}], fallback: other}
      other: {values: [{value: 127.0.0.2}]}
    rules: [{pool: main}]
  healthcheck: {protocol: TCP, port: 80}
"""
QNAMES = ["www", "alias", "mx", "a.w", "b.c.w", "x.w", "w", "sub", "ns.sub", "k.sub", "plain",
          "nope", "", "ns1"]
QTYPES = ["A", "AAAA", "MX", "NS", "CNAME", "SOA", "ANY", "TXT"]


class Controller:
    """What the health service needs of a controller here: no zones, no swaps."""

    zones: dict = {}

    def refilter(self, origins) -> None:
        pass


def service(tmp_path) -> HealthService:
    zones = tmp_path / "zones"
    zones.mkdir(exist_ok=True)
    (zones / "hc.example.health.conf").write_text(SIDE)
    config = load_config(None, zones=str(zones), state_dir=str(tmp_path / "state"))
    return HealthService(config, Controller())


def in_place(zone, answers) -> list[Record]:
    """The zone's records with each health-checked RRset's records where they were."""
    where = Location("test", 0)
    out, done = [], set()
    for rrset in zone.rrsets():
        key = (rrset.name, rrset.rdtype)
        if key in answers and key not in done:
            done.add(key)
            out += [Record(rrset.name, rrset.ttl,
                           dns.rdata.from_text(dns.rdataclass.IN, rrset.rdtype, a), where)
                    for a in answers[key]]
        else:
            out += [Record(rrset.name, rrset.ttl, rdata, where) for rdata in rrset]
    return out


def shown(answer) -> tuple:
    def section(rrsets):
        return [(r.name.to_text(), r.ttl, r.rdtype, sorted(x.to_text() for x in r))
                for r in rrsets]
    return (answer.rcode, answer.outcome, section(answer.answer), section(answer.authority),
            section(answer.additional))


@settings(max_examples=40, deadline=None)
@given(views=st.lists(st.sets(st.sampled_from(ADDRESSES)), min_size=1, max_size=6))
def test_each_view_answers_as_built_and_rebuilds_only_what_changed(tmp_path_factory, views):
    health = service(tmp_path_factory.mktemp("views"))
    flt = health.filter
    zone = zone_from_text("hc.example.", ZONE, strict=False)
    store = TableStore()
    served = ZoneSet([flt(ORIGIN, zone)])
    for _ in store.prepare(served):
        pass
    for up in views:
        for (address, _), target in health.targets.items():
            target.up = address in up
        health._pick({ORIGIN})
        answers = {key: answer for (origin, key), answer in flt.answers.items()}
        assert all(answers.values())                 # never empty: fail static
        derived = flt(ORIGIN, zone)
        expected = ZoneSet([build_zone(ORIGIN, in_place(zone, answers))])
        ours = ZoneSet([derived])
        for qname in QNAMES:
            name = dns.name.from_text(qname, ORIGIN) if qname else ORIGIN
            for qtype in QTYPES:
                rdtype = dns.rdatatype.from_text(qtype)
                assert shown(resolve(ours, name, rdtype)) == \
                    shown(resolve(expected, name, rdtype)), (qname, qtype, up)
        # The tables: adapted from the last view's, equal to a full build's.
        new = served.replace({ORIGIN: derived})
        built = store.built
        for _ in store.prepare(new):
            pass
        fresh = TableStore()
        for _ in fresh.prepare(new):
            pass
        assert store.bodies_for(new) == fresh.bodies_for(new)
        # At most: www A, AAAA; alias A, AAAA, CNAME; mx MX; x.w A; *.w A; ns.sub A;
        # sub NS (its glue) - the questions that read a health-checked name, of 55.
        assert store.built - built <= 10 and fresh.built > 50
        store.retain(new)
        served = new


def test_fail_static_keeps_the_last_answer(tmp_path):
    health = service(tmp_path)
    zone = zone_from_text("hc.example.", ZONE, strict=False)
    www = (dns.name.from_text("www", ORIGIN), dns.rdatatype.A)
    for target in health.targets.values():
        target.up = target.address == "127.0.0.4"
    health._pick({ORIGIN})
    for target in health.targets.values():
        target.up = False
    health._pick({ORIGIN})
    derived = health.filter(ORIGIN, zone)
    assert [r.to_text() for r in derived.find_node(www[0]).get(www[1])] == ["127.0.0.4"]


def test_an_adapted_version_still_gets_its_image(tmp_path):
    """A restart reads the served view's table back (seawall/dns/image.py), so an
    adapted version's image is written too, by a thread of its own."""
    from conftest import wait_for
    from seawall.dns.image import read_image, zone_digest
    health = service(tmp_path)
    zone = zone_from_text("hc.example.", ZONE, strict=False)
    store = TableStore()
    store.images = tmp_path / "images"
    store.images.mkdir()
    served = ZoneSet([zone])
    for _ in store.prepare(served):
        pass
    for target in health.targets.values():
        target.up = target.address != "127.0.0.2"
    health._pick({ORIGIN})
    derived = health.filter(ORIGIN, zone)
    built, loaded = store.built, store.loaded
    for _ in store.prepare(served.replace({ORIGIN: derived})):
        pass
    assert store.built - built <= 10 and store.loaded == loaded   # adapted, not read
    origins = frozenset([ORIGIN])
    assert wait_for(lambda: read_image(store.images, derived, zone_digest(derived), origins)
                    is not None, 20)
