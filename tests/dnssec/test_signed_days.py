"""Signed zones on bad days: untrustworthy emergency files, and a signer that stopped.

* A mis-signed emergency file (other keys than the DS leads to) and an
  expired one no longer stop the server: live data serves, the zone is
  reported unprotected, and ``seawall check`` still fails so CI catches it.
* Live data whose signatures run out within ``signature_margin``, with the
  backend offering nothing newer: the zone switches to its emergency version,
  whose signatures are valid, before validators see bogus data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import pytest

from conftest import SeawallProcess, ask, free_port, require_tool, wait_for
from dnssec_signing import make_keys, sign

pytestmark = pytest.mark.interop  # BIND's dnssec-keygen and dnssec-signzone

ORIGIN = "signed.test."
ZONE = """\
$ORIGIN signed.test.
$TTL 300
@      SOA   ns1 hostmaster {serial} 7200 3600 1209600 300
@      NS    ns1
ns1    A     192.0.2.53
www    A     {www}
"""
LIVE_WWW, EMERGENCY_WWW = "192.0.2.80", "192.0.2.99"


def events(state: Path) -> list[dict]:
    path = state / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def setup(tmp_path: Path, failover: str = "") -> tuple[Path, Path, Path]:
    require_tool("dnssec-signzone", "dnssec-keygen")
    keys = tmp_path / "keys"
    make_keys(ORIGIN, keys)
    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:{free_port()}']\nzones: zones\n"
                      "emergency_dir: zones/emergency\nstate_dir: state\n"
                      "failover: {probe_interval: 0.2s, fail_after: 3, recover_after: 3"
                      + (", " + failover if failover else "") + "}\n")
    return keys, zones, config


def zone_status(tmp_path: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "seawall", "failover", "status", "--json",
                             "--state-dir", "state"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]["zones"][0]


def www(server: SeawallProcess) -> str:
    return ask(server.addr, f"www.{ORIGIN}").answer[0][0].address


def check(zones: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", "check", str(zones)],
                          capture_output=True, text=True, timeout=60, cwd=zones.parent)


@pytest.mark.parametrize("workers", [1, 2])
def test_mis_signed_emergency_file_leaves_the_zone_unprotected(tmp_path, workers):
    keys, zones, config = setup(tmp_path)
    sign(ZONE.format(serial=10, www=LIVE_WWW), ORIGIN, keys, output=zones / "signed.test.zone")
    other = tmp_path / "other-keys"
    make_keys(ORIGIN, other)               # keys the parent's DS does not lead to
    sign(ZONE.format(serial=20, www=EMERGENCY_WWW), ORIGIN, other,
         output=zones / "emergency" / "signed.test.zone")
    with SeawallProcess(tmp_path, "--workers", str(workers), config=config) as server:
        assert www(server) == LIVE_WWW
        zone = zone_status(tmp_path)
        assert zone["state"] == "live" and zone["protected"] is False
        assert "none of its KSKs matches the DS of the live zone's KSKs" in zone["unprotected"]
        # With no trustworthy emergency version, a failing backend serves the last good data.
        live = (zones / "signed.test.zone").read_text()
        (zones / "signed.test.zone").unlink()
        assert wait_for(lambda: zone_status(tmp_path)["state"] == "stale"), server.output()
        assert www(server) == LIVE_WWW
    (zones / "signed.test.zone").write_text(live)
    result = check(zones)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "emergency version of signed.test.: none of its KSKs matches" in result.stdout


def test_expired_emergency_file_does_not_stop_the_server(tmp_path):
    keys, zones, config = setup(tmp_path)
    sign(ZONE.format(serial=10, www=LIVE_WWW), ORIGIN, keys, output=zones / "signed.test.zone")
    sign(ZONE.format(serial=20, www=EMERGENCY_WWW), ORIGIN, keys, start="20200101000000",
         end="20200201000000", output=zones / "emergency" / "signed.test.zone")
    with SeawallProcess(tmp_path, config=config) as server:
        assert www(server) == LIVE_WWW
        zone = zone_status(tmp_path)
        assert zone["protected"] is False and "expired" in zone["unprotected"]
        unprotected = [e for e in events(tmp_path / "state") if e["kind"] == "unprotected"]
        assert unprotected and unprotected[0]["zone"] == ORIGIN
    result = check(zones)
    assert result.returncode == 1
    assert "emergency/signed.test.zone" in result.stdout and "expired" in result.stdout


@pytest.mark.parametrize("workers", [1, 2])
def test_signatures_running_out_in_live_data_switch_to_valid_emergency(tmp_path, workers):
    """A signer that stopped: live RRSIGs expire in 3660 s, the margin is 3650 s."""
    keys, zones, config = setup(tmp_path, "signature_margin: 3650s")
    sign(ZONE.format(serial=10, www=LIVE_WWW), ORIGIN, keys, end="now+3660",
         output=zones / "signed.test.zone")
    sign(ZONE.format(serial=20, www=EMERGENCY_WWW), ORIGIN, keys,
         output=zones / "emergency" / "signed.test.zone")
    with SeawallProcess(tmp_path, "--workers", str(workers), config=config) as server:
        assert www(server) == LIVE_WWW
        assert wait_for(lambda: www(server) == EMERGENCY_WWW, 30), server.output()
        log = events(tmp_path / "state")
        warned = [e for e in log if e["kind"] == "signatures"]
        assert warned and "expires at" in warned[0]["reason"]
        switch = [e for e in log if e["kind"] == "transition" and e["to"] == "emergency"]
        assert switch and switch[0]["cause"] == "signatures"
        # what resolvers get now is signed, and its signatures are years from expiry
        query = dns.message.make_query(f"www.{ORIGIN}", "A", want_dnssec=True)
        response = dns.query.udp(query, server.addr[0], port=server.addr[1], timeout=5)
        sigs = [rr for rrset in response.answer for rr in rrset if rr.rdtype == 46]
        assert sigs and min(s.expiration for s in sigs) > time.time() + 86400 * 300
        assert zone_status(tmp_path)["state"] == "emergency"


def test_re_signing_is_not_a_change_of_the_zone(tmp_path):
    """A routine re-signing replaces every RRSIG: the guard's ratios count data, not signatures."""
    import dns.name

    from seawall.backends.base import Version
    from seawall.failover.guard import Limits, judge
    from seawall.zones.loader import load_zone_file

    require_tool("dnssec-signzone", "dnssec-keygen")
    make_keys(ORIGIN, tmp_path)
    origin = dns.name.from_text(ORIGIN)
    old = load_zone_file(sign(ZONE.format(serial=1, www=LIVE_WWW), ORIGIN, tmp_path,
                              output=tmp_path / "one"), origin).zone
    new = load_zone_file(sign(ZONE.format(serial=2, www=LIVE_WWW), ORIGIN, tmp_path,
                              output=tmp_path / "two"), origin).zone
    verdict = judge(old, Version(origin, new, [], "t", "test"), Limits(0.3, 0.5))
    assert verdict.accepted, verdict.reason
    assert verdict.diff.modified == 0 and verdict.diff.deleted == 0
