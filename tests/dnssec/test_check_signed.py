"""``seawall check`` on signed zones: signatures verify, expiry is reported, chains whole."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT, require_tool
from dnssec_signing import sign_zone

pytestmark = pytest.mark.interop  # starts BIND/Knot/NSD/Unbound tools

ZONE = """\
$ORIGIN signed.test.
$TTL 3600
@     SOA   ns1 hostmaster 1 7200 3600 1209600 300
@     NS    ns1
ns1   A     192.0.2.53
www   A     192.0.2.80
mail  A     192.0.2.25
"""


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", "check", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.fixture
def signed(tmp_path):
    require_tool("dnssec-signzone", "dnssec-keygen")

    def make(name="signed.test.zone", **options):
        path = sign_zone(ZONE, "signed.test.", tmp_path / "keys", **options)
        target = tmp_path / name
        target.write_text(path.read_text())
        return target

    return make


@pytest.mark.parametrize("options", [{}, {"nsec3": True}, {"nsec3": True, "opt_out": True}],
                         ids=["nsec", "nsec3", "opt-out"])
def test_a_freshly_signed_zone_passes(signed, options):
    result = check(str(signed(**options)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_a_tampered_record_fails_verification_with_its_line(signed):
    path = signed()
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if "192.0.2.80" in line)
    lines[index] = lines[index].replace("192.0.2.80", "192.0.2.81")
    path.write_text("\n".join(lines) + "\n")
    result = check(str(path))
    assert result.returncode == 1
    assert re.search(r"signed\.test\.zone:\d+: RRSIG A at www\.signed\.test\. does not verify",
                     result.stdout), result.stdout


def test_signatures_expiring_within_the_horizon_are_warnings(signed, monkeypatch):
    path = signed()
    result = check("--signature-horizon", "4000d", str(path))
    assert result.returncode == 0
    assert "expires at" in result.stdout and "warning:" in result.stdout


def test_a_missing_nsec_breaks_the_chain(signed):
    path = signed()
    text = path.read_text()
    # Drop mail's NSEC record (the one pointing at ns1); its RRSIG stays behind.
    kept = [line for line in text.splitlines()
            if not re.match(r"^\s*\d+\s+NSEC\s+ns1\.signed\.test\.", line)]
    assert len(kept) < len(text.splitlines()), "fixture layout changed: no NSEC line found"
    path.write_text("\n".join(kept) + "\n")
    result = check(str(path))
    assert result.returncode == 1
    assert "NSEC chain broken" in result.stdout or "has no NSEC record" in result.stdout
