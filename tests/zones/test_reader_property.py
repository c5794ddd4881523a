"""Property: our reader and dnspython's ``dns.zone.from_file`` agree on RRsets.

Zones of the common types are generated with the usual master-file shapes:
relative and absolute owners, ``@``, a blank owner (the previous name),
explicit and ``$TTL`` TTLs, an optional class, ``$ORIGIN`` changes,
rdata in parentheses over several lines with comments.
"""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rrset
import dns.zone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seawall.zones.loader import load_zone_file

ORIGIN = dns.name.from_text("prop.test.")
LABELS = ["www", "mail", "a", "b.c", "x-1", "_sip._udp", "deep.er.name"]
HEADER = ("$TTL 3600\n"
          "@ SOA ns1.example.net. hostmaster 1 7200 3600 1209600 300\n"
          "@ NS ns1.example.net.\n")

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.tuples(*[st.integers(0, 0xFFFF)] * 8).map(
    lambda t: ":".join(f"{x:x}" for x in t))
target = st.sampled_from(["www", "mail.prop.test.", "host.example.net.", "@", "a"])
word = st.text("abcdefghijklmnopqrstuvwxyz0123456789 =;-", min_size=0, max_size=30)
rdata = st.one_of(
    st.tuples(st.just("A"), ipv4),
    st.tuples(st.just("AAAA"), ipv6),
    st.tuples(st.just("NS"), target),
    st.tuples(st.just("MX"), st.tuples(st.integers(0, 65535), target).map(
        lambda t: f"{t[0]} {t[1]}")),
    st.tuples(st.just("TXT"), st.lists(word, min_size=1, max_size=3).map(
        lambda ws: " ".join('"' + w + '"' for w in ws))),
    st.tuples(st.just("SRV"), st.tuples(st.integers(0, 65535), st.integers(0, 65535),
                                        st.integers(0, 65535), target).map(
        lambda t: " ".join(map(str, t)))),
    st.tuples(st.just("PTR"), target),
    st.tuples(st.just("CAA"), st.sampled_from(['0 issue "ca.example.net"',
                                               '128 iodef "mailto:x@example.net"'])),
)
owner = st.one_of(st.sampled_from(LABELS), st.sampled_from(LABELS).map(
    lambda label: f"{label}.prop.test."), st.just("@"), st.just(""))
ttl = st.one_of(st.none(), st.integers(0, 2**31 - 1).map(str),
                st.sampled_from(["1h", "2d", "1w"]))
line = st.tuples(owner, ttl, st.booleans(), rdata, st.booleans())
directive = st.one_of(st.integers(0, 86400).map(lambda t: f"$TTL {t}"),
                      st.just("$ORIGIN sub.prop.test."), st.just("$ORIGIN prop.test."))
entry = st.one_of(line, line, line, directive)
cname_line = st.tuples(st.sampled_from(["alias1", "alias2", "alias3"]), ttl, target)


def render(entries, cnames) -> str:
    out = [HEADER]
    previous_was_record = True
    for item in entries:
        if isinstance(item, str):
            out.append(item + "\n")
            previous_was_record = False
            continue
        name, record_ttl, with_class, (rdtype, text), multiline = item
        if name == "" and not previous_was_record:
            name = "@"
        fields = [record_ttl] if record_ttl is not None else []
        if with_class:
            fields.append("IN")
        if multiline:
            # RFC 1035 §5.1: parentheses continue an entry over lines, with comments.
            text = f"( ; the rdata\n    {text} ; its end\n  )"
        fields += [rdtype, text]
        # A blank owner is written as leading white space: the previous name.
        out.append(f"{name} {' '.join(fields)}\n")
        previous_was_record = True
    # CNAME owners hold nothing else (RFC 1034 §3.6.2), so put them last under
    # the zone's own origin, where no generated record can share their name.
    out.append("$ORIGIN prop.test.\n")
    for name, record_ttl, text in cnames:
        out.append(f"{name}.cn {record_ttl or ''} CNAME {text}\n")
    return "".join(out)


def rrsets_of(zone_rrsets) -> dict:
    return {(rrset.name, rrset.rdtype): (rrset.ttl, frozenset(rrset)) for rrset in zone_rrsets}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(entry, max_size=25),
       cnames=st.lists(cname_line, max_size=3, unique_by=lambda c: c[0]))
def test_reader_agrees_with_dnspython(tmp_path_factory, entries, cnames):
    path: Path = tmp_path_factory.mktemp("prop") / "prop.test.zone"
    path.write_text(render(entries, cnames))
    loaded = load_zone_file(path)
    assert [p for p in loaded.problems if p.is_error] == [], path.read_text()
    assert loaded.zone is not None
    ours = rrsets_of(loaded.zone.rrsets())
    reference = dns.zone.from_file(str(path), ORIGIN, relativize=False)
    theirs = rrsets_of(rdataset_to_rrset(name, rds)
                       for name, rds in reference.iterate_rdatasets())
    assert ours == theirs, path.read_text()


def rdataset_to_rrset(name, rdataset):
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
    rrset.update(rdataset)
    return rrset
