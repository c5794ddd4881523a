"""``seawall check PATH``: exact ``file:line: message`` lines and the exit code.

Exit 1 when any problem is an error, 0 for warnings only, 2 for a path that
does not exist. Each bad zone is a fixture file in ``tests/zones/data/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

DATA = ROOT / "tests" / "zones" / "data"


def check(*paths: str, cwd: Path = DATA) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", "check", *paths], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("filename, lines", [
    pytest.param("no-soa.test.zone",
                 ["no-soa.test.zone:1: zone no-soa.test. has no SOA record"],
                 id="no-SOA-RFC1035-5.2"),
    pytest.param("two-soas.test.zone",
                 ["two-soas.test.zone:4: second SOA record at two-soas.test.; a zone has "
                  "exactly one (first at line 2)"],
                 id="two-SOAs-RFC1035-5.2"),
    pytest.param("no-apex-ns.test.zone",
                 ["no-apex-ns.test.zone:1: zone no-apex-ns.test. has no NS records at its apex"],
                 id="no-apex-NS-RFC1035-5.2"),
    pytest.param("cname-and-other.test.zone",
                 ["cname-and-other.test.zone:5: CNAME at www.cname-and-other.test. beside "
                  "other data (A) (RFC 1034 §3.6.2)"],
                 id="CNAME-and-other-data-RFC1034-3.6.2"),
    pytest.param("out-of-zone.test.zone",
                 ["out-of-zone.test.zone:4: www.example.net. is outside the zone "
                  "out-of-zone.test."],
                 id="out-of-zone"),
    pytest.param("label-too-long.test.zone",
                 ["label-too-long.test.zone:4: label is longer than 63 octets "
                  "(RFC 1035 §2.3.4)"],
                 id="label-over-63-RFC1035-2.3.4"),
    pytest.param("name-too-long.test.zone",
                 ["name-too-long.test.zone:4: name is longer than 255 octets "
                  "(RFC 1035 §2.3.4)"],
                 id="name-over-255-RFC1035-2.3.4"),
    pytest.param("ttl-out-of-range.test.zone",
                 ["ttl-out-of-range.test.zone:4: TTL 2147483648 is out of range "
                  "(RFC 2181 §8: at most 2147483647)"],
                 id="TTL-over-2^31-1-RFC2181-8"),
])
def test_errors_exit_1(filename, lines):
    result = check(filename)
    assert result.stdout.splitlines() == lines
    assert result.returncode == 1
    assert "1 error(s)" in result.stderr


def test_every_bad_record_is_reported_on_its_own_line():
    """A record noticed bad at its end of line, or an unterminated quoted string,
    must not hide the next line's problem (nor crash the reader)."""
    result = check("bad-rdata.test.zone")
    assert result.stdout.splitlines() == [
        "bad-rdata.test.zone:4: bad MX record data: expecting an identifier",
        "bad-rdata.test.zone:5: bad MX record data: expecting an integer",
        "bad-rdata.test.zone:6: bad SRV record data: expecting an identifier",
        "bad-rdata.test.zone:7: bad TXT record data: newline in quoted string",
        "bad-rdata.test.zone:8: bad CNAME record data: name has an empty label",
        "bad-rdata.test.zone:9: bad AAAA record data: Text input is malformed.",
        'bad-rdata.test.zone:10: bad A record data: expected EOL or EOF, got 3 "extra"',
        "bad-rdata.test.zone:12: bad CNAME record data: label is longer than 63 octets "
        "(RFC 1035 §2.3.4)",
    ]
    assert result.returncode == 1


def test_parenthesis_open_at_the_end_of_the_file():
    result = check("unbalanced-parenthesis.test.zone")
    assert result.stdout.splitlines() == ["unbalanced-parenthesis.test.zone:5: "
                                          "bad A record data: unbalanced parentheses"]
    assert result.returncode == 1


def test_byte_order_mark_is_skipped():
    """An editor's UTF-8 byte-order mark is not part of the first name."""
    assert (check("byte-order-mark.test.zone").stdout, check("byte-order-mark.test.zone")
            .returncode) == ("", 0)


def test_ns_target_without_address_is_a_warning():
    result = check("ns-without-address.test.zone")
    assert result.stdout.splitlines() == [
        "ns-without-address.test.zone:3: warning: NS target ns1.ns-without-address.test. "
        "is inside the zone but has no A or AAAA record"]
    assert result.returncode == 0


@pytest.mark.parametrize("path", ["good.test.zone", "generate.test.zone", "origin-ttl.test.zone",
                                  "include-inside/include-inside.test.zone",
                                  "include-inside"])
def test_good_zones_exit_0(path):
    result = check(path)
    assert (result.stdout, result.returncode) == ("", 0)


def test_include_outside_the_zones_directory_is_an_error():
    result = check("include-outside.test.zone", cwd=DATA / "include-outside")
    assert result.stdout.splitlines() == [
        "include-outside.test.zone:4: $INCLUDE ../outside.inc is outside the zones "
        f"directory {DATA / 'include-outside'}"]
    assert result.returncode == 1


def test_several_paths_report_every_problem():
    result = check("no-soa.test.zone", "good.test.zone", "two-soas.test.zone")
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == \
        ["no-soa.test.zone", "two-soas.test.zone"]
    assert result.returncode == 1


def test_lenient_makes_missing_apex_ns_a_warning():
    result = subprocess.run([sys.executable, "-m", "seawall", "check", "--lenient",
                             "no-apex-ns.test.zone"], cwd=DATA, capture_output=True,
                            text=True, timeout=60, env={"PYTHONPATH": str(ROOT)})
    assert result.stdout.startswith("no-apex-ns.test.zone:1: warning: ")
    assert result.returncode == 0


def test_missing_path_exits_2():
    result = check("no-such.test.zone")
    assert result.returncode == 2
    assert "no-such.test.zone: no such file or directory" in result.stderr


def test_directory_and_its_emergency_zones(tmp_path):
    """Paths are shown from where the directory was named: zones/..., zones/emergency/..."""
    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    (zones / "good.test.zone").write_text((DATA / "good.test.zone").read_text())
    (zones / "no-soa.test.zone").write_text((DATA / "no-soa.test.zone").read_text())
    (zones / "emergency" / "good.test.zone").write_text((DATA / "two-soas.test.zone")
                                                        .read_text().replace("two-soas", "good"))
    result = check("zones", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "zones/no-soa.test.zone:1: zone no-soa.test. has no SOA record",
        "zones/emergency/good.test.zone:4: second SOA record at good.test.; a zone has "
        "exactly one (first at line 2)"]
    assert result.returncode == 1


# ----------------------------------------------- hostile files (issue 14: 1, 5, 7)

def limited_check(*paths: str, cwd: Path) -> subprocess.CompletedProcess:
    """``seawall check`` with 1 GiB of address space and a minute: a file that asks for
    more fails the test instead of the machine."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run([sys.executable, "-m", "seawall", "check", *paths], cwd=cwd,
                          capture_output=True, text=True, timeout=60, preexec_fn=limit,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


HOSTILE_SOA = "$TTL 300\n@ SOA ns1.example.net. h.example.net. 1 2 3 4 5\n@ NS ns1.example.net.\n"
NAME_RULE = ("the file name gives no zone name: the character '\\' is not a letter, digit, "
             "'-' or '_'; a zone's file is named NAME.zone, NAME.yaml or NAME, where NAME is "
             "a plain host name (labels of 1 to 63 ASCII letters, digits, '-' or '_', "
             "separated by dots, 253 characters at most) or 'root'")


def test_escaped_path_as_a_file_name_is_an_error(tmp_path):
    """Issue 14, finding 1: ``\\047tmp\\047x\\047pwned.zone`` (the zone ``/tmp/x/pwned.``)
    and its emergency twin passed with 0 errors; each is now an error."""
    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    name = "\\047tmp\\047x\\047pwned.zone"
    (zones / name).write_text(HOSTILE_SOA + "www A 192.0.2.66\n")
    (zones / "emergency" / name).write_text(HOSTILE_SOA + "www A 192.0.2.67\n")
    result = check("zones", cwd=tmp_path)
    assert result.stdout.splitlines() == [f"zones/{name}:0: {NAME_RULE}",
                                          f"zones/emergency/{name}:0: {NAME_RULE}"]
    assert result.returncode == 1
    assert "2 error(s)" in result.stderr


def test_unprintable_file_name_is_one_escaped_line(tmp_path):
    """A newline or a terminal escape in a file name cannot forge or hide lines."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "a\nzones\x1b[2K.zone").write_text(HOSTILE_SOA)
    result = check("zones", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "zones/a\\nzones\\x1b[2K.zone:0: the file name gives no zone name: the character "
        "'\\n' is not a letter, digit, '-' or '_'; " + NAME_RULE.split("; ", 1)[1]]
    assert result.returncode == 1


def test_generate_width_attack_is_refused_at_once(tmp_path):
    """Issue 14, finding 5: these 143 bytes took 2 min 8 s and 1.8 GB in ``seawall check``."""
    (tmp_path / "gen.test.zone").write_text(
        HOSTILE_SOA + "$GENERATE 1-3 h${0,200000000,d} A 192.0.2.1\n")
    result = limited_check("gen.test.zone", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "gen.test.zone:4: $GENERATE modifier '${0,200000000,d}': the width 200000000 is over "
        "255 (a name is at most 255 octets, RFC 1035 §2.3.4)"]
    assert result.returncode == 1


def test_generate_negative_nibbles_are_refused_not_looped(tmp_path):
    (tmp_path / "nib.test.zone").write_text(
        HOSTILE_SOA + "$GENERATE 1-2 ${-5,0,n}.x PTR a.example.net.\n")
    result = limited_check("nib.test.zone", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "nib.test.zone:4: $GENERATE modifier '${-5,0,n}': the nibble format needs values "
        "of 0 or more, not -4"]
    assert result.returncode == 1


def test_include_fan_out_stops_at_the_read_budget(tmp_path):
    """Issue 14, finding 5: 10 includes per level, 4 levels, were 11,110 file reads."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "l4.inc").write_text("leaf A 192.0.2.1\n")
    for level in (3, 2, 1):
        (zones / f"l{level}.inc").write_text(f"$INCLUDE l{level + 1}.inc\n" * 10)
    (zones / "fan.test.zone").write_text(HOSTILE_SOA + "$INCLUDE l1.inc\n" * 10)
    result = limited_check("zones", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "zones/l3.inc:10: $INCLUDE: more than 256 files read for this zone (the reads one "
        "zone load may do); the zone is not loaded"]
    assert result.returncode == 1


def test_zone_file_linked_outside_the_directory_is_an_error(tmp_path):
    """Issue 14, finding 7: ``zones/c.test.zone -> /etc/os-release`` was read (and its
    lines quoted back as problems)."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "c.test.zone").symlink_to("/etc/os-release")
    result = check("zones", cwd=tmp_path)
    real = Path("/etc/os-release").resolve()
    assert result.stdout.splitlines() == [
        f"zones/c.test.zone:0: cannot read zone file: it leads to {real}, outside the "
        f"zones directory {zones.resolve()}"]
    assert result.returncode == 1
