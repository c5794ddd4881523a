"""The master-file reader (RFC 1035 §5): directives, problems with file:line.

One tiny zone per check, in ``tests/zones/data/``; ``seawall check`` on the
same files is tested in ``tests/cli/test_check.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from conftest import CONFORMANCE, ROOT, require_tool
from seawall.zones.loader import load_directory, load_zone_file, origin_for
from seawall.zones.reader import MAX_TTL, read_master_file

DATA = Path(__file__).parent / "data"


def read(filename: str, origin: str | None = None, include_root: Path | None = None):
    path = DATA / filename
    zone_origin = dns.name.from_text(origin) if origin else origin_for(path)
    return read_master_file(path, zone_origin, include_root=include_root)


def texts(records) -> set[str]:
    return {f"{r.name} {r.ttl} {dns.rdatatype.to_text(r.rdata.rdtype)} {r.rdata}"
            for r in records}


def test_origin_comes_from_the_file_name():
    assert origin_for(Path("example.com.zone")) == dns.name.from_text("example.com.")
    assert origin_for(Path("example.com")) == dns.name.from_text("example.com.")
    assert origin_for(Path("root.zone")) == dns.name.root


def test_origin_and_ttl_directives():
    """RFC 1035 §5.1 $ORIGIN (relative to the current origin), RFC 2308 §4 $TTL."""
    records, problems = read("origin-ttl.test.zone")
    assert problems == []
    assert texts(records) == {
        "origin-ttl.test. 3600 SOA ns1.example.net. hostmaster.origin-ttl.test. "
        "1 7200 3600 1209600 300",
        "origin-ttl.test. 3600 NS ns1.example.net.",
        # No $TTL yet: the previous record's TTL (RFC 1035 §5.1).
        "www.origin-ttl.test. 3600 A 192.0.2.1",
        "mail.origin-ttl.test. 120 A 192.0.2.25",
        "host.sub.origin-ttl.test. 120 A 192.0.2.30",
        "x.deeper.sub.origin-ttl.test. 120 A 192.0.2.31",
        "y.deeper.sub.origin-ttl.test. 3600 A 192.0.2.32",
    }
    lines = {str(r.name): r.location.line for r in records}
    assert lines["mail.origin-ttl.test."] == 5
    assert lines["y.deeper.sub.origin-ttl.test."] == 11


def test_generate_with_modifiers():
    """BIND's $GENERATE: ``$``, ``${offset,width,base}`` in d, x, X, n, N."""
    records, problems = read("generate.test.zone")
    assert problems == []
    generated = {t for t in texts(records) if "SOA" not in t and " NS " not in t}
    assert generated == {
        "host-1.generate.test. 300 A 192.0.2.1",
        "host-2.generate.test. 300 A 192.0.2.2",
        "host-3.generate.test. 300 A 192.0.2.3",
        "pad-010.generate.test. 300 A 198.51.100.1",
        "pad-012.generate.test. 300 A 198.51.100.3",
        "pad-014.generate.test. 300 A 198.51.100.5",
        "hfe.generate.test. 300 AAAA 2001:db8::fe",
        "hff.generate.test. 300 AAAA 2001:db8::ff",
        # Nibble width counts the dots too, as in BIND.
        "1.0.0.0.rev.generate.test. 300 PTR nibble.example.net.",
        "B.A.up.generate.test. 300 PTR nibble.example.net.",
        "0.0.z.generate.test. 300 PTR nibble.example.net.",
    }
    assert all(r.location.line == 4 for r in records if r.name.labels[0].startswith(b"host-"))


def test_generate_agrees_with_bind(tmp_path):
    """The same $GENERATE lines expanded by BIND's named-checkzone."""
    require_tool("named-checkzone")
    out = subprocess.run(["named-checkzone", "-D", "-o", "-", "generate.test",
                          str(DATA / "generate.test.zone")],
                         capture_output=True, text=True, check=True).stdout
    bind = dns.zone.from_text(out, "generate.test.", relativize=False, check_origin=False)
    records, _ = read("generate.test.zone")
    ours = {(r.name, r.rdata.rdtype, r.rdata) for r in records}
    theirs = {(name, rdataset.rdtype, rdata)
              for name, rdataset in bind.iterate_rdatasets() for rdata in rdataset}
    assert ours == theirs


def test_include_inside_the_zones_directory():
    """$INCLUDE with and without an origin (RFC 1035 §5.1); lines of the included file."""
    records, problems = read("include-inside/include-inside.test.zone",
                             include_root=DATA / "include-inside")
    assert problems == []
    assert "www.include-inside.test. 300 A 192.0.2.80" in texts(records)
    assert "www.lab.include-inside.test. 300 A 192.0.2.80" in texts(records)
    included = [r for r in records if r.rdata.rdtype == dns.rdatatype.A]
    assert {r.location.line for r in included} == {1}
    assert all(r.location.file.endswith("hosts.inc") for r in included)


def test_include_outside_the_zones_directory_is_refused():
    records, problems = read("include-outside/include-outside.test.zone",
                             include_root=DATA / "include-outside")
    assert [p.location.line for p in problems] == [4]
    assert "outside the zones directory" in problems[0].message
    assert not any(r.name.labels[0] == b"stolen" for r in records)


def test_include_of_itself_is_refused(tmp_path):
    zone = tmp_path / "loop.test.zone"
    zone.write_text("$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns.example.\n$INCLUDE loop.test.zone\n")
    _, problems = read_master_file(zone, dns.name.from_text("loop.test."))
    assert [(p.location.line, "includes itself" in p.message) for p in problems] == [(4, True)]


@pytest.mark.parametrize("filename, line, fragment", [
    ("label-too-long.test.zone", 4, "label is longer than 63 octets"),
    ("name-too-long.test.zone", 4, "name is longer than 255 octets"),
    ("ttl-out-of-range.test.zone", 4, f"at most {MAX_TTL}"),
    ("out-of-zone.test.zone", 4, "outside the zone out-of-zone.test."),
])
def test_line_problems(filename, line, fragment):
    """Problems confined to one line are reported there; the other lines still load."""
    records, problems = read(filename)
    assert [(p.location.line, fragment in p.message, p.is_error) for p in problems] == \
        [(line, True, True)]
    assert any(r.rdata.rdtype == dns.rdatatype.SOA for r in records)


def test_largest_ttl_is_accepted():
    """RFC 2181 §8: 2^31-1 is still a valid TTL."""
    records, _ = read("ttl-out-of-range.test.zone")
    assert "ok.ttl-out-of-range.test. 2147483647 A 192.0.2.2" in texts(records)


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    zone = tmp_path / "many.test.zone"
    zone.write_text("$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns.example.\n"
                    "a A 300.0.0.1\nb BOGUS x\nc 9999999999 A 192.0.2.1\n"
                    "d A 192.0.2.4\n$FOO bar\n")
    records, problems = read_master_file(zone, dns.name.from_text("many.test."))
    assert [p.location.line for p in problems] == [4, 5, 6, 8]
    assert "d.many.test. 300 A 192.0.2.4" in texts(records)


def test_load_directory_skips_include_fragments():
    zones = load_directory(DATA / "include-inside")
    assert [z.origin for z in zones] == [dns.name.from_text("include-inside.test.")]
    assert zones[0].ok


def test_broken_file_gives_no_zone():
    loaded = load_zone_file(DATA / "two-soas.test.zone")
    assert loaded.zone is None and not loaded.ok


REFERENCE_ZONES = sorted([*(ROOT / "zones").glob("*.zone"),
                          *(CONFORMANCE / "public" / "zones").glob("*.zone"),
                          *(ROOT / "tests" / "dns" / "data" / "engine" / "zones").glob("*.zone")])


@pytest.mark.interop
@pytest.mark.parametrize("path", REFERENCE_ZONES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_reader_agrees_with_bind(path):
    """Every RRset, TTL included, as BIND's named-checkzone reads the same file."""
    require_tool("named-checkzone")
    origin = origin_for(path)
    out = subprocess.run(["named-checkzone", "-D", "-o", "-", "-i", "none", "-k", "ignore",
                          "-n", "ignore", str(origin), str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    bind = dns.zone.from_text(out.stdout, origin, relativize=False, check_origin=False)
    theirs = {(name, rds.rdtype, rds.covers, rds.ttl, frozenset(rds))
              for name, rds in bind.iterate_rdatasets()}
    loaded = load_zone_file(path, include_root=path.parent)
    assert loaded.ok, [str(p) for p in loaded.errors]
    ours = {(r.name, r.rdtype, r.covers, r.ttl, frozenset(r)) for r in loaded.zone.rrsets()}
    assert ours == theirs


def test_comment_inside_open_parenthesis_is_a_problem_not_a_crash(tmp_path):
    """Found by the fast reader's property test: '(' then a comment then a directive."""
    path = tmp_path / "x.test.zone"
    path.write_text("$ORIGIN x.test.\n@ 300 SOA ns h 1 2 3 4 5\n(\n; comment\n$TTL 3600\n"
                    "@ NS ns\nns A 192.0.2.1\n")
    loaded = load_zone_file(path)
    assert any(p.location.line == 5 and "$TTL" in p.message for p in loaded.errors), \
        [str(p) for p in loaded.problems]
