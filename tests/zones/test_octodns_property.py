"""Properties of the octoDNS reader: it never raises on any input, and a zone it
reads survives a round trip through both writers unchanged."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seawall.zones.export import to_master_file, to_octodns_yaml, zone_rrsets
from seawall.zones.loader import load_zone_file

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                    st.text(max_size=20), st.sampled_from(
                        ["A", "MX", "TXT", "CNAME", "SRV", "ALIAS", "SOA", "ttl", "type",
                         "value", "values", "192.0.2.1", "www.example.org.", ".", "@", ""]))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(scalars, st.sampled_from(
                                ["type", "ttl", "value", "values", "octodns", "exchange",
                                 "preference", "priority", "weight", "port", "target",
                                 "flags", "tag", "lenient", "ignored"])), inner, max_size=5)),
    max_leaves=25)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(documents)
def test_any_yaml_document_gives_problems_not_exceptions(document):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "example.org.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
        loaded = load_zone_file(path)
        assert loaded.ok or loaded.errors


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_give_problems_not_exceptions(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "example.org.yaml"
        path.write_bytes(data)
        loaded = load_zone_file(path)
        assert loaded.ok or loaded.errors


labels = st.sampled_from(["www", "mail", "a.b", "_sip._tcp", "*", "x-1", "deep.er.name"])
txt = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300)
records = st.one_of(
    st.builds(lambda v: {"type": "A", "value": v},
              st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))),
    st.builds(lambda v: {"type": "TXT", "values": v}, st.lists(txt, min_size=1, max_size=3)),
    st.builds(lambda p, e: {"type": "MX", "value": {"exchange": e, "preference": p}},
              st.integers(0, 65535), st.sampled_from(["mail.example.org.", "."])),
    st.builds(lambda v: {"type": "CAA", "value": {"flags": 0, "tag": "issue", "value": v}},
              txt),
)


def rrsets(zone) -> set[tuple]:
    return {(r.name, r.ttl, r.rdtype, frozenset(rd.to_text() for rd in r))
            for r in zone_rrsets(zone)}


@SETTINGS
@given(st.dictionaries(labels, records, min_size=1, max_size=6),
       st.integers(0, 2**31 - 1))
def test_round_trip_through_both_writers(names, ttl):
    document = {"": {"type": "NS", "values": ["ns1.example.net.", "ns2.example.net."]}}
    for label, record in names.items():
        if record["type"] == "TXT":  # octoDNS's escaping of ; and \\ before writing
            record = {**record, "values": [v.replace("\\", "\\\\").replace(";", "\\;")
                                           for v in record["values"]]}
        if label.startswith("_") and record["type"] != "SRV":
            label = "s" + label
        document[label] = {**record, "ttl": ttl}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "example.org.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        loaded = load_zone_file(path)
        if not loaded.ok:  # a value octoDNS's rules refuse (e.g. a lone quote)
            return
        want = rrsets(loaded.zone)
        again = Path(tmp) / "again" / "example.org.yaml"
        again.parent.mkdir()
        again.write_text(to_octodns_yaml(loaded.zone))
        text = Path(tmp) / "example.org.zone"
        text.write_text(to_master_file(loaded.zone))
        for copy in (again, text):
            reread = load_zone_file(copy)
            assert reread.ok, reread.problems
            assert rrsets(reread.zone) == want
