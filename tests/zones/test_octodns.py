"""octoDNS YAML zone files: records, problems with file:line, the synthesized SOA,
and the round trip with RFC 1035 files (same answers from a real server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import pytest
from conftest import ROOT, SeawallProcess, ask, exchange_raw, free_port, require_tool, rrset_texts

from seawall.zones.export import ExportError, to_master_file, to_octodns_yaml, zone_rrsets
from seawall.zones.loader import is_zone_file, load_directory, load_zone_file, origin_for
from seawall.zones.octodns import content_serial, natural_key, read_octodns_file, txt_chunks

ORIGIN = dns.name.from_text("example.org.")
APEX = """\
---
'':
  - type: NS
    values:
      - ns1.example.org.
      - ns2.example.org.
"""
GLUE = """\
ns1:
  type: A
  value: 192.0.2.53
ns2:
  type: A
  value: 192.0.2.54
"""


def write(tmp_path: Path, body: str, name: str = "example.org.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def load(tmp_path: Path, body: str):
    return load_zone_file(write(tmp_path, body))


def texts(records) -> set[str]:
    return {f"{r.name} {r.ttl} {dns.rdatatype.to_text(r.rdata.rdtype)} {r.rdata}"
            for r in records if r.rdata.rdtype != dns.rdatatype.SOA}


def messages(loaded) -> list[str]:
    return [str(p) for p in loaded.problems]


# ------------------------------------------------------------------ names

def test_yaml_files_are_zones_named_by_their_file(tmp_path):
    for name in ("example.org.yaml", "example.org.yml", "octodns.yaml", "x.zone"):
        (tmp_path / name).write_text("")
    assert is_zone_file(tmp_path / "example.org.yaml")
    assert is_zone_file(tmp_path / "example.org.yml")
    assert not is_zone_file(tmp_path / "octodns.yaml")  # configuration beside the zones
    assert origin_for(tmp_path / "example.org.yaml") == ORIGIN
    assert origin_for(tmp_path / "2.0.192.in-addr.arpa.yml") == dns.name.from_text(
        "2.0.192.in-addr.arpa.")


def test_a_small_zone_reads_with_lines_and_default_ttl(tmp_path):
    loaded = load(tmp_path, APEX + """\
        '*':
          type: A
          value: 192.0.2.99
        """.replace("        ", "") + GLUE + """\
        www:
          ttl: 300
          type: AAAA
          values:
            - 2001:db8::1
            - 1:2:3:4:5:6:7:8
        """.replace("        ", ""))
    assert loaded.ok, messages(loaded)
    assert texts(loaded.records) == {
        "example.org. 3600 NS ns1.example.org.",
        "example.org. 3600 NS ns2.example.org.",
        "*.example.org. 3600 A 192.0.2.99",
        "ns1.example.org. 3600 A 192.0.2.53",
        "ns2.example.org. 3600 A 192.0.2.54",
        "www.example.org. 300 AAAA 2001:db8::1",
        "www.example.org. 300 AAAA 1:2:3:4:5:6:7:8",  # no YAML 1.1 sexagesimal
    }
    lines = {str(r.rdata): r.location.line for r in loaded.records}
    assert lines["ns2.example.org."] == 6
    assert lines["192.0.2.99"] == 9
    assert lines["2001:db8::1"] == 20
    assert loaded.records[0].location.file.endswith("example.org.yaml")


# ------------------------------------------------------------------ types

TYPES = [
    ("MX", "values:\n  - exchange: mail.example.org.\n    preference: 10\n"
           "  - exchange: .\n    preference: 0", {"10 mail.example.org.", "0 ."}),
    ("TXT", "values:\n  - v=spf1 -all\n  - v=DKIM1\\; k=rsa\\; p=abc\n  - '\"pre\" \"quoted\"'",
     {'"v=spf1 -all"', '"v=DKIM1; k=rsa; p=abc"', '"prequoted"'}),
    ("SPF", "value: v=spf1 -all", {'"v=spf1 -all"'}),
    ("CAA", "values:\n  - tag: issue\n    value: letsencrypt.org\n"
            "  - flags: 128\n    tag: iodef\n    value: mailto:sec@example.org",
     {'0 issue "letsencrypt.org"', '128 iodef "mailto:sec@example.org"'}),
    ("PTR", "values: [a.example.net., b.example.net.]", {"a.example.net.", "b.example.net."}),
    ("CNAME", "value: www.example.net.", {"www.example.net."}),
    ("DNAME", "value: example.net.", {"example.net."}),
    ("NAPTR", "value:\n  flags: u\n  order: 100\n  preference: 10\n"
              "  regexp: '!^.*$!sip:info@example.org!'\n  replacement: .\n  service: E2U+sip",
     {'100 10 "U" "E2U+sip" "!^.*$!sip:info@example.org!" .'}),
    ("SSHFP", "value:\n  algorithm: 4\n  fingerprint: " + "ab" * 32 + "\n  fingerprint_type: 2",
     {"4 2 " + "ab" * 32}),
    ("DS", "value:\n  algorithm: 13\n  digest: " + "0f" * 32 + "\n  digest_type: 2\n"
           "  key_tag: 12345", {"12345 13 2 " + "0f" * 32}),
    ("TLSA", "value:\n  certificate_association_data: " + "cd" * 32 +
             "\n  certificate_usage: 3\n  matching_type: 1\n  selector: 1",
     {"3 1 1 " + "cd" * 32}),
]


@pytest.mark.parametrize(("rdtype", "body", "expected"), TYPES, ids=[t[0] for t in TYPES])
def test_each_type_reads_with_octodns_field_names(tmp_path, rdtype, body, expected):
    owner = "_sip._tcp" if rdtype == "SRV" else "sub"
    record = f"{owner}:\n  type: {rdtype}\n" + textwrap.indent(body, "  ") + "\n"
    loaded = load(tmp_path, APEX + GLUE + record)
    assert loaded.ok, messages(loaded)
    got = {str(r.rdata) for r in loaded.records if r.rdata.rdtype == dns.rdatatype.from_text(
        rdtype) and r.name != ORIGIN}
    assert got == expected


def test_srv_reads_and_wants_a_service_name(tmp_path):
    srv = ("  type: SRV\n"
           "  value: {port: 5060, priority: 10, target: sip.example.org., weight: 60}\n")
    loaded = load(tmp_path, APEX + GLUE + "_sip._tcp:\n" + srv)
    assert loaded.ok, messages(loaded)
    assert "_sip._tcp.example.org. 3600 SRV 10 60 5060 sip.example.org." in texts(loaded.records)
    loaded = load(tmp_path, APEX + GLUE + "sip:\n" + srv)
    assert any("invalid name for an SRV record" in m for m in messages(loaded))


def test_long_txt_is_cut_into_255_character_strings(tmp_path):
    loaded = load(tmp_path, APEX + GLUE + f"txt:\n  type: TXT\n  value: {'x' * 600}\n")
    assert loaded.ok, messages(loaded)
    (txt,) = [r.rdata for r in loaded.records if r.rdata.rdtype == dns.rdatatype.TXT]
    assert [len(s) for s in txt.strings] == [255, 255, 90]
    assert txt_chunks('a"b') == ['a\\"b']
    assert txt_chunks("x" * 254 + "\\;") == ["x" * 254, "\\;"]  # never split after a backslash
    assert txt_chunks("x" * 253 + "\\\\") == ["x" * 253 + "\\\\"]
    assert txt_chunks("x" * 254 + "\\065") == ["x" * 254, "\\065"]


def test_legacy_mx_fields_read_with_a_warning(tmp_path):
    loaded = load(tmp_path, APEX + GLUE + "mx:\n  type: MX\n  value: {priority: 5, value: "
                                          "mail.example.org.}\n")
    assert loaded.ok
    assert "mx.example.org. 3600 MX 5 mail.example.org." in texts(loaded.records)
    assert any("deprecated" in m and "warning" in m for m in messages(loaded))


def test_ignored_records_are_not_served(tmp_path):
    loaded = load(tmp_path, APEX + GLUE + "old:\n  octodns:\n    ignored: true\n  type: A\n"
                                          "  value: 192.0.2.9\n")
    assert loaded.ok
    assert not any(r.name.labels[0] == b"old" for r in loaded.records)


# --------------------------------------------------------------- problems

PROBLEMS = [
    # (name, record YAML, line of the problem, words of the message)
    ("alias", "lb:\n  type: ALIAS\n  value: lb.example.net.\n", 2, "ALIAS is not a DNS record"),
    ("at-sign", "'@':\n  type: A\n  value: 192.0.2.1\n", 1, "invalid name '@'"),
    ("final-dot", "www.:\n  type: A\n  value: 192.0.2.1\n", 1, "no final dot"),
    ("relative-target", "www:\n  type: CNAME\n  value: web\n", 3, "missing its final '.'"),
    ("unknown-type", "www:\n  type: WKS\n  value: x\n", 2, "WKS is not served"),
    ("no-type", "www:\n  value: 192.0.2.1\n", 2, "has no type"),
    ("no-value", "www:\n  type: A\n", 2, "has no value(s)"),
    ("bad-address", "www:\n  type: A\n  values:\n    - 192.0.2.1\n    - 192.0.2.300\n", 5,
     "bad A value"),
    ("bad-ttl", "www:\n  ttl: soon\n  type: A\n  value: 192.0.2.1\n", 2, "ttl must be"),
    ("huge-ttl", "www:\n  ttl: 2147483648\n  type: A\n  value: 192.0.2.1\n", 2, "out of range"),
    ("two-a", "www:\n  - type: A\n    value: 192.0.2.1\n  - type: A\n    value: 192.0.2.2\n", 4,
     "second A record"),
    ("upper-case-twin", "WWW:\n  type: A\n  value: 192.0.2.1\nwww:\n  type: A\n"
                        "  value: 192.0.2.2\n", 5, "second A record for www.example.org."),
    ("semicolon", "txt:\n  type: TXT\n  value: a;b\n", 3, "unescaped ;"),
    ("mx-missing", "mx:\n  type: MX\n  value: {exchange: mail.example.org.}\n", 3,
     "missing preference"),
    ("sshfp-length", "s:\n  type: SSHFP\n  value: {algorithm: 1, fingerprint: abcd, "
                     "fingerprint_type: 1}\n", 3, "does not match"),
    ("two-cnames", "c:\n  type: CNAME\n  values: [a.example.org., b.example.org.]\n", 3,
     "more than one value"),
    ("cname-and-a", "c:\n  - type: A\n    value: 192.0.2.1\n  - type: CNAME\n"
                    "    value: a.example.org.\n", 5, "CNAME at c.example.org. beside other"),
    ("yaml-syntax", "www:\n  type: A\n  value: [192.0.2.1\n", 4, "not valid YAML"),
    ("soa-below-apex", "www:\n  type: SOA\n  value: {serial: 1}\n", 2, "not at the zone apex"),
    ("include-tag", "www: !include other.yaml\n", 1, "YAML tag !include"),
]


@pytest.mark.parametrize(("case", "record", "line", "words"), PROBLEMS,
                         ids=[p[0] for p in PROBLEMS])
def test_problems_name_their_line(tmp_path, case, record, line, words):
    head = APEX + GLUE
    offset = head.count("\n")
    loaded = load(tmp_path, head + record)
    errors = [p for p in loaded.problems if p.is_error]
    hits = [p for p in errors if words in p.message]
    assert hits, messages(loaded)
    assert hits[0].location.line == line + offset, messages(loaded)
    assert hits[0].location.file.endswith("example.org.yaml")
    assert not loaded.ok


@pytest.mark.parametrize(("body", "line", "words"), [
    ("www: &x\n  - *x\n", 2, "refers to a node that contains it"),
    ("x: " + "[" * 40 + "]" * 40 + "\n", 2, "nested deeper than 32 levels"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
     + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef"))
     + "g: [" + ", ".join(["*f"] * 10) + "]\n", 7, "expand to more than 1000000 nodes"),
], ids=["recursive-alias", "deep", "billion-laughs"])
def test_hostile_yaml_is_a_problem_not_a_crash(tmp_path, body, line, words):
    loaded = load(tmp_path, "---\n" + body)
    hits = [p for p in loaded.problems if words in p.message]
    assert hits and hits[0].location.line == line, messages(loaded)


def test_lenient_records_turn_octodns_rules_into_warnings(tmp_path):
    loaded = load(tmp_path, APEX + GLUE + "txt:\n  octodns:\n    lenient: true\n  type: TXT\n"
                                          "  value: a;b\n")
    assert loaded.ok, messages(loaded)
    assert any("unescaped ;" in m and "warning" in m for m in messages(loaded))
    assert '"a;b"' in {str(r.rdata) for r in loaded.records}


def test_keys_out_of_natural_order_are_a_warning(tmp_path):
    loaded = load(tmp_path, APEX + GLUE + "www:\n  type: A\n  value: 192.0.2.1\n"
                                          "api:\n  value: 192.0.2.2\n  type: A\n")
    assert loaded.ok
    warnings = [p for p in loaded.problems if not p.is_error]
    assert [p.location.line for p in warnings] == [16, 18]
    assert all("out of order" in p.message for p in warnings)


def test_empty_file_and_no_ns_are_errors(tmp_path):
    assert any("empty zone file" in m for m in messages(load(tmp_path, "---\n")))
    loaded = load(tmp_path, GLUE)
    assert any("no NS records at its apex" in m for m in messages(loaded))


# -------------------------------------------------------------------- SOA

def test_soa_is_synthesized_with_a_content_serial(tmp_path):
    loaded = load(tmp_path, APEX + GLUE)
    soa = loaded.zone.soa
    assert soa.ttl == 3600
    assert soa[0].mname == dns.name.from_text("ns1.example.org.")
    assert soa[0].rname == dns.name.from_text("hostmaster.example.org.")
    assert (soa[0].refresh, soa[0].retry, soa[0].expire, soa[0].minimum) == (3600, 600,
                                                                             604800, 300)
    serial = soa[0].serial
    assert serial == content_serial(loaded.records[1:],
                                    b"ns1.example.org. hostmaster.example.org. "
                                    b"3600 600 604800 300 3600")
    # Comments, key order and file time do not change it; a change of data does.
    reordered = load(tmp_path, "# comment\n" + APEX + "ns2:\n  type: A\n  value: 192.0.2.54\n"
                               "ns1:\n  value: 192.0.2.53\n  type: A\n")
    assert reordered.zone.serial == serial
    os.utime(tmp_path / "example.org.yaml", (0, 0))
    assert load_zone_file(tmp_path / "example.org.yaml").zone.serial == serial
    changed = load(tmp_path, APEX + GLUE.replace("192.0.2.54", "192.0.2.55"))
    assert changed.zone.serial != serial


def test_an_apex_soa_record_overrides_the_defaults(tmp_path):
    loaded = load(tmp_path, APEX + """\
  - ttl: 600
    type: SOA
    value:
      minimum: 60
      rname: dns.example.net.
      serial: 2026112701
""" + GLUE)
    assert loaded.ok, messages(loaded)
    soa = loaded.zone.soa
    assert (soa.ttl, soa[0].serial, soa[0].minimum) == (600, 2026112701, 60)
    assert soa[0].rname == dns.name.from_text("dns.example.net.")
    assert soa[0].refresh == 3600  # not given: the default


# -------------------------------------------------------------- round trip

QUERIES = [
    ("example.com.", "SOA"), ("example.com.", "NS"), ("example.com.", "MX"),
    ("example.com.", "TXT"), ("example.com.", "CAA"), ("example.com.", "ANY"),
    ("www.example.com.", "A"), ("www.example.com.", "AAAA"), ("api.example.com.", "A"),
    ("x.apps.example.com.", "A"), ("_sip._udp.example.com.", "SRV"),
    ("host.lab.example.com.", "A"), ("nothere.example.com.", "A"), ("www.example.com.", "MX"),
]


def answers(addr, queries) -> list[tuple]:
    out = []
    for qname, qtype in queries:
        response = ask(addr, qname, qtype)
        out.append((qname, qtype, response.rcode(), response.flags,
                    rrset_texts(response.answer), rrset_texts(response.authority),
                    rrset_texts(response.additional)))
    return out


def rrset_set(zone) -> set[tuple]:
    return {(r.name, r.ttl, r.rdtype, r.covers, frozenset(rd.to_text() for rd in r))
            for r in zone_rrsets(zone)}


def test_round_trip_gives_identical_zones_and_answers(tmp_path):
    """RFC 1035 -> octoDNS YAML -> RFC 1035, each served by a real Seawall."""
    original = load_zone_file(ROOT / "zones" / "example.com.zone")
    assert original.ok
    yaml_dir, text_dir, zone_dir = (tmp_path / d for d in ("yaml", "text", "zone"))
    for directory in (yaml_dir, text_dir, zone_dir):
        directory.mkdir()
    shutil.copy(ROOT / "zones" / "example.com.zone", zone_dir)
    (yaml_dir / "example.com.yaml").write_text(to_octodns_yaml(original.zone))
    from_yaml = load_zone_file(yaml_dir / "example.com.yaml")
    assert from_yaml.ok and not from_yaml.problems, messages(from_yaml)
    (text_dir / "example.com.zone").write_text(to_master_file(from_yaml.zone))
    back = load_zone_file(text_dir / "example.com.zone")
    assert back.ok
    assert rrset_set(original.zone) == rrset_set(from_yaml.zone) == rrset_set(back.zone)

    results = []
    for directory in (zone_dir, yaml_dir, text_dir):
        with SeawallProcess(tmp_path, zones=directory,
                            env={"PYTHONPATH": str(ROOT)}) as server:
            results.append(answers(server.addr, QUERIES))
    assert results[0] == results[1] == results[2]
    assert results[0][6][4] == {"www.example.com. 3600 A 192.0.2.80"}


def test_round_trip_from_yaml_keeps_the_synthesized_soa(tmp_path):
    loaded = load(tmp_path, APEX + GLUE + "txt:\n  type: TXT\n  values:\n    - 'a\\; b'\n"
                                          "    - " + "y" * 300 + "\n")
    assert loaded.ok, messages(loaded)
    text = tmp_path / "example.org.zone"
    text.write_text(to_master_file(loaded.zone))
    back = load_zone_file(text)
    assert back.ok
    assert rrset_set(back.zone) == rrset_set(loaded.zone)
    again = tmp_path / "again" / "example.org.yaml"
    again.parent.mkdir()
    again.write_text(to_octodns_yaml(back.zone, include_soa=False))
    assert load_zone_file(again).zone.serial == loaded.zone.serial


def test_export_refuses_what_octodns_cannot_express(tmp_path):
    path = tmp_path / "example.org.zone"
    path.write_text("$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
                    't TXT "short" "strings"\nh HINFO "pc" "unix"\n')
    loaded = load_zone_file(path)
    assert loaded.ok
    with pytest.raises(ExportError) as info:
        to_octodns_yaml(loaded.zone)
    assert "octoDNS has no HINFO record type" in str(info.value)
    path.write_text("$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
                    't TXT "short" "strings"\n')
    with pytest.raises(ExportError) as info:
        to_octodns_yaml(load_zone_file(path).zone)
    assert "t.example.org. 300 TXT" in str(info.value)


# --------------------------------------------------------- seawall check

def test_seawall_check_validates_both_formats(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    shutil.copy(ROOT / "zones" / "example.com.zone", zones)
    write(zones, APEX + GLUE)
    write(zones, APEX + GLUE + "www:\n  type: ALIAS\n  value: lb.example.net.\n",
          "example.net.yaml")
    (zones / "octodns.yaml").write_text("providers: {}\n")
    result = subprocess.run([sys.executable, "-m", "seawall", "check", str(zones)],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "zones/example.net.yaml:14: ALIAS is not a DNS record type but a provider's "
        "flattening of a CNAME at the apex; an authoritative server cannot serve it: write the "
        "apex A and AAAA records instead (or a CNAME below the apex)"]
    assert "3 zone(s) checked: 1 error(s)" in result.stderr
    (zones / "example.net.yaml").unlink()
    result = subprocess.run([sys.executable, "-m", "seawall", "check", str(zones)],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert [z.origin.to_text() for z in load_directory(zones)] == ["example.com.",
                                                                   "example.org."]


def test_a_yaml_zone_is_served(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    write(zones, APEX + GLUE + "www:\n  ttl: 60\n  type: A\n  values: [192.0.2.80, 192.0.2.81]\n")
    with SeawallProcess(tmp_path, zones=zones, env={"PYTHONPATH": str(ROOT)}) as server:
        response = ask(server.addr, "www.example.org.", "A")
        assert rrset_texts(response.answer) == {"www.example.org. 60 A 192.0.2.80",
                                                "www.example.org. 60 A 192.0.2.81"}
        response = ask(server.addr, "missing.example.org.", "A")
        assert response.rcode() == 3
        (soa,) = response.authority
        assert soa[0].serial == load_zone_file(zones / "example.org.yaml").zone.serial


def test_reading_a_missing_file_is_a_problem(tmp_path):
    records, problems = read_octodns_file(tmp_path / "nope.example.yaml", ORIGIN)
    assert records == [] and "cannot read zone file" in str(problems[0])


def test_seawall_check_refuses_a_zone_in_both_formats(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    write(zones, APEX + GLUE)
    (zones / "example.org.zone").write_text(to_master_file(load_zone_file(
        zones / "example.org.yaml").zone))
    result = subprocess.run([sys.executable, "-m", "seawall", "check", str(zones)],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "zones/example.org.zone:1: zone example.org. is also defined by "
        "zones/example.org.yaml; keep one file per zone"]


# ------------------------------------------------- octoDNS itself as the peer

FULL = """\
---
'':
  - type: CAA
    values:
      - flags: 0
        tag: issue
        value: letsencrypt.org
  - type: MX
    values:
      - exchange: mail.example.org.
        preference: 10
      - exchange: mx2.example.org.
        preference: 20
  - type: NS
    values:
      - ns1.example.org.
      - ns2.example.org.
  - type: TXT
    values:
      - v=spf1 mx -all
      - v=DKIM1\\; k=rsa\\; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC
  - type: SPF
    value: v=spf1 -all
'*.apps':
  type: A
  value: 192.0.2.100
_443._tcp.www:
  type: TLSA
  value:
    certificate_association_data: d2abde240d7cd3ee6b4b28c54df034b97983a1d16e8a410e4561cb106618e971
    certificate_usage: 3
    matching_type: 1
    selector: 1
_sip._tcp:
  ttl: 600
  type: SRV
  values:
    - port: 5060
      priority: 10
      target: sip.example.org.
      weight: 60
    - port: 5061
      priority: 20
      target: .
      weight: 0
api:
  type: CNAME
  value: www.example.org.
long:
  type: TXT
  value: LONG
mail:
  type: A
  value: 192.0.2.25
naptr:
  type: NAPTR
  value:
    flags: U
    order: 100
    preference: 10
    regexp: '!^.*$!sip:info@example.org!'
    replacement: .
    service: E2U+sip
ns1:
  - type: A
    value: 192.0.2.53
  - type: AAAA
    value: 2001:db8::53
ns2:
  type: A
  value: 192.0.2.54
old:
  type: DNAME
  value: example.net.
ptr:
  type: PTR
  values:
    - a.example.org.
    - b.example.org.
secure:
  - type: DS
    value:
      algorithm: 13
      digest: 2bb183af5f22588179a53b0a98631fad1a292118ec65146f79a0ce9ec1fe0c7f
      digest_type: 2
      key_tag: 60485
  - type: NS
    value: ns.secure.example.net.
sip:
  type: A
  value: 192.0.2.60
ssh:
  type: SSHFP
  values:
    - algorithm: 4
      fingerprint: 9d24b3f4d8ba2d0f1f7ea0d3c95bbd0a77cd79ab4a3f08c1b06c19e9f8c4de4b
      fingerprint_type: 2
www:
  ttl: 300
  type: A
  values:
    - 192.0.2.80
    - 192.0.2.81
""".replace("LONG", "k" * 300)


def octodns_records(directory: Path, origin: str) -> set[tuple]:
    """The zone as octoDNS's own YamlProvider reads it: (name, ttl, type, rdata wire)."""
    try:
        from octodns.provider.yaml import YamlProvider
        from octodns.zone import Zone as OctodnsZone
    except ImportError:
        if os.environ.get("SEAWALL_REQUIRE_PEERS") == "1":
            pytest.fail("octodns is not installed (SEAWALL_REQUIRE_PEERS=1)")
        pytest.skip("octodns is not installed")
    provider = YamlProvider("seawall-test", str(directory), supports_root_ns=True,
                            escaped_semicolons=True)
    zone = OctodnsZone(origin, [])
    provider.populate(zone)
    out = set()
    for record in zone.records:
        rrset = record.to_rrset()
        rdtype = dns.rdatatype.from_text(rrset._type)
        for text in rrset.rdatas:
            rdata = dns.rdata.from_text("IN", rdtype, text, dns.name.root, relativize=False)
            out.add((dns.name.from_text(rrset.name), rrset.ttl, rdtype, rdata.to_digestable()))
    return out


def seawall_records(records) -> set[tuple]:
    return {(r.name, r.ttl, r.rdata.rdtype, r.rdata.to_digestable()) for r in records
            if r.rdata.rdtype != dns.rdatatype.SOA}


def test_octodns_reads_the_same_records_as_seawall(tmp_path):
    """Every type, read by octoDNS's YamlProvider and by Seawall: the same rdata."""
    write(tmp_path, FULL)
    loaded = load_zone_file(tmp_path / "example.org.yaml")
    assert loaded.ok and not loaded.problems, messages(loaded)
    theirs = octodns_records(tmp_path, "example.org.")
    ours = seawall_records(loaded.records)
    assert len(ours) == 28
    assert ours == theirs


def test_octodns_reads_what_seawall_exports(tmp_path):
    """A zone exported without its SOA (octoDNS 1.x has no SOA type) loads in octoDNS."""
    original = load_zone_file(ROOT / "zones" / "example.com.zone")
    (tmp_path / "example.com.yaml").write_text(to_octodns_yaml(original.zone,
                                                               include_soa=False))
    theirs = octodns_records(tmp_path, "example.com.")
    assert theirs == seawall_records(original.records)


def test_natural_order_is_octodns_order(tmp_path):
    """Keys sorted as Seawall sorts them load in octoDNS, which enforces its order."""
    keys = ["", "1a", "9", "10", "*", "*.apps", "B", "_443._tcp.www", "_sip._tcp", "a", "a2",
            "a10", "a-b", "a.b", "b1", "b.1", "mail2.sub", "mail.sub", "www", "www2",
            "www10", "x1y2", "x1y10"]
    assert sorted(reversed(keys), key=natural_key) == keys
    records = "".join(f"'{key}':\n  type: A\n  value: 192.0.2.1\n" for key in keys if key)
    (tmp_path / "example.org.yaml").write_text(APEX + records)
    loaded = load_zone_file(tmp_path / "example.org.yaml")
    assert loaded.ok and not any("out of order" in m for m in messages(loaded))
    assert len(octodns_records(tmp_path, "example.org.")) == len(keys) - 1 + 2


# -------------------------------------- Knot serving the export, as the peer

def run_knot(work: Path, origin: str, zone_file: Path):
    """knotd in the foreground on a free loopback port, serving one zone file."""
    require_tool("knotd")
    port = free_port()
    conf = work / "knot.conf"
    conf.write_text(f"server:\n  listen: 127.0.0.1@{port}\n  rundir: {work}\n"
                    f"control:\n  listen: {work}/knot.sock\n"
                    f"database:\n  storage: {work}\n"
                    f"template:\n  - id: default\n    zonefile-sync: -1\n"
                    f"    journal-content: none\n    semantic-checks: off\n"
                    f"zone:\n  - domain: \"{origin}\"\n    file: \"{zone_file}\"\n")
    log = open(work / "knotd.log", "wb")
    proc = subprocess.Popen(["knotd", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, (work / "knotd.log").read_text()
        probe = dns.message.make_query(origin, "SOA").to_wire()
        if exchange_raw(("127.0.0.1", port), probe, timeout=0.3) is not None:
            return proc, ("127.0.0.1", port), log
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError((work / "knotd.log").read_text())


def test_yaml_zone_answers_like_knot_serving_its_export(tmp_path):
    """Seawall serving octoDNS YAML and Knot serving Seawall's RFC 1035 export of it
    give the same answers for every name and type of the zone, and for names that
    are not there."""
    zones = tmp_path / "zones"
    zones.mkdir()
    write(zones, FULL)
    loaded = load_zone_file(zones / "example.org.yaml")
    assert loaded.ok
    knot_dir = tmp_path / "knot"
    knot_dir.mkdir()
    zone_file = knot_dir / "example.org.zone"
    zone_file.write_text(to_master_file(loaded.zone))
    queries = sorted({(r.name.to_text(), dns.rdatatype.to_text(r.rdata.rdtype))
                      for r in loaded.records})
    queries += [("nothere.example.org.", "A"), ("www.example.org.", "MX"),
                ("x.apps.example.org.", "A"), ("x.apps.example.org.", "TXT"),
                ("host.old.example.org.", "A"), ("deep.secure.example.org.", "A")]
    knot, knot_addr, log = run_knot(knot_dir, "example.org.", zone_file)
    try:
        with SeawallProcess(tmp_path, zones=zones, env={"PYTHONPATH": str(ROOT)}) as server:
            ours = answers(server.addr, queries)
        theirs = answers(knot_addr, queries)
    finally:
        knot.kill()
        knot.wait()
        log.close()
    assert len(ours) == len(theirs) == len(queries) > 25
    assert ours[0][4]  # an answer, not two empty lists
    for mine, knots in zip(ours, theirs):
        # rcode, flags, answer and authority; Knot and Seawall both leave out
        # additional data beyond what fits, so additional is compared too.
        assert mine == knots, mine[:2]
