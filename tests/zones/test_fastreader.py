"""The fast master-file reader gives exactly what the reference reader gives.

Generated zone files, good and bad, are read by ``reader.read_master_file``
(dnspython's tokenizer and rdata parsers) and by
``fastreader.read_master_file_fast``: the records (owner labels with their
case, TTL, rdata class, text and wire form, file:line) and the problems must
be identical. A plain file must actually take the fast route.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dns.name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seawall.zones.fastreader import _FastReader, read_master_file_fast
from seawall.zones.reader import read_master_file

ORIGIN = dns.name.from_text("example.test.")

owners = st.sampled_from(["@", "www", "WWW", "a.b", "*", "*.wild", "x.example.test.",
                          "other.test.", "a..b", "a" * 63, "a" * 64, "sub", "xn--bcher-kva",
                          "host-1", "_srv._tcp", "", " ", "\t"])
ttls = st.sampled_from(["", "", "300", "1h", "1H30m", "2147483647", "2147483648", "1x", "0"])
classes = st.sampled_from(["", "", "IN", "in", "CH"])
names = st.sampled_from(["ns1", "ns1.example.test.", "@", "elsewhere.test.", "a..b", ".",
                         "Mixed.Case", "x" * 64])
rdatas = st.one_of(
    st.tuples(st.just("A"), st.sampled_from(["192.0.2.1", "10.0.0.255", "01.2.3.4",
                                             "256.1.1.1", "1.2.3", "1.2.3.4 5.6.7.8", "",
                                             "0.0.0.0"])),
    st.tuples(st.sampled_from(["AAAA", "aaaa"]),
              st.sampled_from(["2001:db8::1", "2001:DB8:0:0:0:0:0:1", "::", "2001:db8::g",
                               "::ffff:192.0.2.1", "1.2.3.4", "1:0:0:2::3", "fe80::",
                               "2001:db8:0:0:1::1", "2001:db8::1:0:0:1", "::1.2.3.4",
                               "2001:db8:0:1:1:1:1:1", "2001:0db8::1", "1::2::3"])),
    st.tuples(st.sampled_from(["NS", "CNAME", "PTR", "DNAME", "cname"]), names),
    st.tuples(st.just("MX"), st.builds(lambda p, n: f"{p} {n}",
                                       st.sampled_from(["0", "10", "65535", "65536", "-1",
                                                        "x"]), names)),
    st.tuples(st.just("SRV"), st.builds(lambda a, n: f"{a} {n}",
                                        st.sampled_from(["0 5 80", "1 2 3", "1 2", "1 2 70000"]),
                                        names)),
    st.tuples(st.sampled_from(["TXT", "SPF"]),
              st.sampled_from(['"hello world"', "plain words", '""', '"a;b" c', '"a"b',
                               '"unterminated', '"' + "x" * 255 + '"', '"' + "x" * 256 + '"',
                               '"x" ; comment', '( "multi" "line" )', '"esc\\"aped"',
                               "x" * 256, '"tab\there"'])),
    st.tuples(st.just("SOA"),
              st.sampled_from(["ns1 hostmaster 1 7200 3600 1209600 300",
                               "ns1 hostmaster ( 2 7200 3600 1209600 300 )",
                               "ns1 hostmaster (\n 3 ; serial\n 1h 30m 2w 5m )",
                               "ns1 hostmaster 4294967296 1 1 1 1",
                               "ns1 hostmaster 1 2 3"])),
    st.tuples(st.sampled_from(["CAA", "SSHFP", "HINFO", "TYPE65534", "NOPE", "ANY", "OPT"]),
              st.sampled_from(['0 issue "ca.example"', "1 1 abcdef0123", '"cpu" "os"',
                               "\\# 2 abcd", "x"])),
)
directives = st.sampled_from(["$TTL 3600", "$TTL 1d ; comment", "$TTL", "$ORIGIN sub",
                              "$ORIGIN example.test.", "$ORIGIN other.test.",
                              "$INCLUDE nothere.inc", "$GENERATE 1-3 h$ A 192.0.2.$",
                              "$BOGUS x", "; just a comment", "", "   "])


@st.composite
def lines(draw) -> str:
    if draw(st.integers(0, 5)) == 0:
        return draw(directives)
    rdtype, rdata = draw(rdatas)
    parts = [draw(owners), draw(ttls), draw(classes), rdtype, rdata]
    if draw(st.booleans()):
        parts[1], parts[2] = parts[2], parts[1]
    text = " ".join(parts)
    if draw(st.integers(0, 6)) == 0:
        text += " ; trailing comment"
    return text


def both(text: str, newline: str = "\n") -> tuple:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "example.test.zone"
        path.write_bytes(text.replace("\n", newline).encode())
        reference = read_master_file(path, ORIGIN)
        fast = read_master_file_fast(path, ORIGIN)
        try:
            took_fast = _FastReader(path, ORIGIN, None).read() is not None
        except Exception:
            took_fast = False
    return reference, fast, took_fast


def shape(result: tuple) -> tuple:
    records, problems = result
    return ([(r.name.labels, r.ttl, type(r.rdata), r.rdata.rdclass, r.rdata.rdtype,
              r.rdata.to_text(), r.rdata.to_wire(), str(r.location)) for r in records],
            [str(p) for p in problems])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(lines(), min_size=1, max_size=12), newline=st.sampled_from(["\n", "\r\n"]))
def test_same_records_and_problems(body: list[str], newline: str) -> None:
    text = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n" + \
        "\n".join(body) + "\n"
    reference, fast, _ = both(text, newline)
    assert shape(fast) == shape(reference)


good_lines = st.builds(
    lambda owner, ttl, cls, rr: " ".join((owner, ttl, cls) + rr),
    st.sampled_from(["@", "www", "WWW", "a.b", "*", "*.wild", "x.example.test.", "a" * 63,
                     " ", "\t", "_srv._tcp"]),
    st.sampled_from(["", "300", "1h", "0"]), st.sampled_from(["", "IN", "in"]),
    st.sampled_from([("A", "192.0.2.1"), ("A", "0.0.0.0"), ("aaaa", "2001:DB8::1"),
                     ("NS", "ns1"), ("CNAME", "Mixed.Case"), ("PTR", "elsewhere.test."),
                     ("DNAME", "@"), ("MX", "10 ns1.example.test."), ("SRV", "1 2 3 ."),
                     ("TXT", '"hello world" x ""'), ("SPF", '"v=spf1 -all"'),
                     ("TXT", '( "multi" \n "line" )'), ("CAA", '0 issue "ca.example"'),
                     ("HINFO", '"cpu" "os"')]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(good_lines, min_size=1, max_size=12))
def test_good_files_take_the_fast_route(body: list[str]) -> None:
    text = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n" + \
        "\n".join(line for line in body if "CNAME" not in line) + "\n"
    reference, fast, took_fast = both(text)
    assert not reference[1] and took_fast
    assert shape(fast) == shape(reference)


def test_plain_file_takes_the_fast_route() -> None:
    text = ("$ORIGIN example.test.\n$TTL 3600\n"
            "@ IN SOA ns1 hostmaster ( 2024010101 ; serial\n 7200 3600 1209600 300 )\n"
            "@ NS ns1\n@ MX 10 mail\nns1 A 192.0.2.53\nmail 300 IN A 192.0.2.25\n"
            "www IN 60 AAAA 2001:db8::1\nalias CNAME www\n_sip._tcp SRV 0 5 5060 www\n"
            '@ TXT "v=spf1 -all" "second"\n*.wild A 192.0.2.1\n'
            "\tAAAA 2001:db8::2\nsub NS ns.sub\nns.sub A 192.0.2.9\n"
            "@ CAA 0 issue ca.example\n")
    reference, fast, took_fast = both(text)
    assert not reference[1]
    assert took_fast
    assert shape(fast) == shape(reference)
    assert len(fast[0]) == 14


def test_problem_file_gives_the_reference_problems() -> None:
    text = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\nbad A 300.1.1.1\n" \
           "out.other. A 192.0.2.1\n$INCLUDE /etc/passwd\n"
    reference, fast, _ = both(text)
    assert reference[1] and shape(fast) == shape(reference)
