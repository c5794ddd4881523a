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
