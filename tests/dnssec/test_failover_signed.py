"""DNSSEC stays valid through failover (live -> emergency), and the guard protects it.

The live and emergency versions of a signed zone are signed with the same
keys, as an operator signs the emergency file when committing it. A
validating resolver (Unbound, trust anchor = the zone's DS) must see
authentic answers (AD) from both; a new live version whose keys no longer
match the DS, or whose signatures have expired, is rejected by the guard.
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
import dns.rcode
import pytest

from conftest import ROOT, SeawallProcess, ask, free_port, require_tool, wait_for
from dnssec_signing import ds_anchors, make_keys, sign
from test_validation_unbound import _unbound

pytestmark = pytest.mark.interop  # starts BIND/Knot/NSD/Unbound tools

ORIGIN = "nsec.test."
LIVE = """\
$ORIGIN nsec.test.
$TTL 300
@      SOA   ns1 hostmaster {serial} 7200 3600 1209600 300
@      NS    ns1
ns1    A     192.0.2.53
www    A     {www}
before A     192.0.2.1
after  A     192.0.2.2
"""


def events(state: Path) -> list[dict]:
    path = state / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def signed_setup(tmp_path):
    require_tool("unbound", "dnssec-signzone", "dnssec-keygen")
    keys = tmp_path / "keys"
    make_keys(ORIGIN, keys)
    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    sign(LIVE.format(serial=10, www="192.0.2.80"), ORIGIN, keys,
         output=zones / "nsec.test.zone")
    sign(LIVE.format(serial=20, www="192.0.2.99"), ORIGIN, keys,
         output=zones / "emergency" / "nsec.test.zone")
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones}\n"
                      f"emergency_dir: {zones / 'emergency'}\nstate_dir: {tmp_path / 'state'}\n"
                      "failover: {probe_interval: 0.2s, fail_after: 3, recover_after: 3, "
                      "max_delete_ratio: 0.9, max_change_ratio: 1.0, stale_for: 0s}\n")
    return tmp_path, keys, zones, config


def validated(addr, name):
    query = dns.message.make_query(name, "A", want_dnssec=True)
    return dns.query.udp(query, addr[0], port=addr[1], timeout=5)


def test_emergency_answers_stay_authentic(signed_setup):
    tmp_path, keys, zones, config = signed_setup
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        port = free_port()
        resolver = _unbound(tmp_path, port, ds_anchors(ORIGIN, keys), server.addr[1])
        try:
            addr = ("127.0.0.1", port)
            live = validated(addr, "before.nsec.test.")
            assert live.flags & dns.flags.AD and live.rcode() == dns.rcode.NOERROR
            # The backend fails (its file is gone; stale_for: 0s, so straight to emergency).
            (zones / "nsec.test.zone").unlink()
            assert wait_for(lambda: ask(server.addr, "www.nsec.test.").answer[0][0].address
                            == "192.0.2.99"), server.output()
            for name, rcode in (("www.nsec.test.", dns.rcode.NOERROR),
                                ("after.nsec.test.", dns.rcode.NOERROR),
                                ("missing.nsec.test.", dns.rcode.NXDOMAIN)):
                response = validated(addr, name)
                assert response.rcode() == rcode, response.to_text()
                assert response.flags & dns.flags.AD, response.to_text()
        finally:
            resolver.terminate()
            resolver.wait(timeout=10)


def test_guard_rejects_a_version_whose_keys_left_the_ds(signed_setup):
    tmp_path, keys, zones, config = signed_setup
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        other = tmp_path / "other-keys"
        make_keys(ORIGIN, other)  # a new KSK the parent's DS does not know
        sign(LIVE.format(serial=11, www="192.0.2.81"), ORIGIN, other,
             output=zones / "nsec.test.zone")
        server.signal(1)
        assert wait_for(lambda: any(e["kind"] == "rejected" for e in events(tmp_path / "state")))
        reason = next(e for e in events(tmp_path / "state") if e["kind"] == "rejected")["reason"]
        assert "no longer matches the DS" in reason
        assert ask(server.addr, "www.nsec.test.").answer[0][0].address == "192.0.2.80"


def test_guard_rejects_expired_signatures(signed_setup):
    tmp_path, keys, zones, config = signed_setup
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        sign(LIVE.format(serial=12, www="192.0.2.82"), ORIGIN, keys, start="20200101000000",
             end="20200201000000", output=zones / "nsec.test.zone")
        server.signal(1)
        assert wait_for(lambda: any(e["kind"] == "rejected" for e in events(tmp_path / "state")))
        reason = next(e for e in events(tmp_path / "state") if e["kind"] == "rejected")["reason"]
        assert "signatures expired" in reason
        assert ask(server.addr, "www.nsec.test.").answer[0][0].address == "192.0.2.80"


def unprotected_reason(tmp_path: Path) -> str | None:
    result = subprocess.run([sys.executable, "-m", "seawall", "failover", "status", "--json",
                             "--state-dir", str(tmp_path / "state")],
                            capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]["zones"][0]["unprotected"]


def test_an_emergency_zone_with_expired_signatures_leaves_the_zone_unprotected(signed_setup):
    """Found at start-up, reported loudly; live data keeps serving (it no longer stops)."""
    tmp_path, keys, zones, config = signed_setup
    sign(LIVE.format(serial=20, www="192.0.2.99"), ORIGIN, keys, start="20200101000000",
         end="20200201000000", output=zones / "emergency" / "nsec.test.zone")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        assert ask(server.addr, "www.nsec.test.").answer[0][0].address == "192.0.2.80"
        assert "expired" in unprotected_reason(tmp_path)


def test_status_reports_the_signature_expiry_of_the_served_data(signed_setup):
    tmp_path, keys, zones, config = signed_setup
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        result = subprocess.run([sys.executable, "-m", "seawall", "failover", "status", "--json",
                                 "--state-dir", str(tmp_path / "state")],
                                capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        zones = data["status"]["zones"] if "status" in data else data["zones"]
        zone = next(z for z in zones if z["zone"] == ORIGIN)
        # Signed for ten years from now (dnssec_signing.VALIDITY).
        assert zone["signature_expiry"] > time.time() + 9 * 365 * 86400
        assert server.proc.poll() is None


def test_a_mis_signed_emergency_zone_leaves_the_zone_unprotected(signed_setup):
    """A record changed after signing: the emergency version would be bogus, so never used."""
    tmp_path, keys, zones, config = signed_setup
    path = zones / "emergency" / "nsec.test.zone"
    path.write_text(path.read_text().replace("192.0.2.99", "192.0.2.98"))
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        assert "does not verify" in unprotected_reason(tmp_path)
        (zones / "nsec.test.zone").unlink()      # the backend fails (stale_for: 0s) ...
        time.sleep(2.0)
        # ... and the zone serves its last good data, not the bogus emergency version
        assert ask(server.addr, "www.nsec.test.").answer[0][0].address == "192.0.2.80"
