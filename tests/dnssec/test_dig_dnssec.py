"""dig and kdig with +dnssec against a signed zone served by Seawall."""

from __future__ import annotations

import subprocess

import pytest

from conftest import ROOT, SeawallProcess, require_tool
from dnssec_signing import sign_zone

pytestmark = pytest.mark.interop  # starts BIND/Knot/NSD/Unbound tools

ZONE = """\
$ORIGIN signed.test.
$TTL 300
@     SOA   ns1 hostmaster 1 7200 3600 1209600 300
@     NS    ns1
ns1   A     192.0.2.53
www   A     192.0.2.80
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_tool("dig", "kdig", "dnssec-signzone")
    base = tmp_path_factory.mktemp("dig")
    zones = base / "zones"
    zones.mkdir()
    signed = sign_zone(ZONE, "signed.test.", base / "keys", nsec3=True)
    (zones / "signed.test.zone").write_text(signed.read_text())
    with SeawallProcess(base, zones=zones, env={"PYTHONPATH": str(ROOT)}) as process:
        yield process


@pytest.mark.parametrize("client", ["dig", "kdig"])
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_signed_answer_and_denial(server, client, transport):
    host, port = server.addr
    def run(*args):
        return subprocess.run([client, f"@{host}", "-p", str(port), "+dnssec", "+norec",
                               transport, *args], capture_output=True, text=True,
                              timeout=30).stdout
    positive = run("www.signed.test.", "A")
    assert "NOERROR" in positive and "192.0.2.80" in positive
    assert "RRSIG" in positive and " aa" in positive.lower()
    negative = run("nope.signed.test.", "A")
    assert "NXDOMAIN" in negative and "NSEC3" in negative and "RRSIG" in negative
    plain = subprocess.run([client, f"@{host}", "-p", str(port), "+norec", transport,
                            "www.signed.test.", "A"], capture_output=True, text=True,
                           timeout=30).stdout
    assert "192.0.2.80" in plain and "RRSIG" not in plain   # no DO, no DNSSEC (RFC 4035 §3.1.1)
