"""The served-serial scheme: switches move the serial forward, restarts do not.

Unit tests on ServedSerials and History with zones built by the real
reader; then ``seawall check`` and the start-up check on a signed emergency
zone whose serial is not above the live one; then a restart of a real
server in emergency keeps the serial it served.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import dns.name
import pytest

from conftest import ROOT, SeawallProcess, ask, require_tool, wait_for, zone_from_text
from seawall.dns.serials import ServedSerials, fingerprint, serial_gt, serial_next
from seawall.dns.transfer import History
from transfer_setup import ZONE, primary_config

pytestmark = pytest.mark.interop  # starts BIND/Knot/NSD/Unbound tools

LIVE = (ROOT / "zones" / "example.com.zone").read_text()
EMERGENCY = (ROOT / "zones" / "emergency" / "example.com.zone").read_text()


def zone(text: str, serial: int | None = None, www: str | None = None):
    if serial is not None:
        text = text.replace("2026112701", str(serial))
    if www is not None:
        text = text.replace("192.0.2.80", www).replace("192.0.2.99", www)
    return zone_from_text(ZONE, text)


@pytest.mark.parametrize("a, b, newer", [
    (2, 1, True), (1, 2, False), (1, 1, False),
    (0, 2**32 - 1, True),              # wraps: 0 follows 4294967295 (RFC 1982 §3.2)
    (2**31 + 5, 5, False),             # exactly half way round: undefined, not newer
    (2**31 + 4, 5, True),
])
def test_serial_arithmetic(a, b, newer):
    assert serial_gt(a, b) is newer


def test_serial_next_wraps():
    assert serial_next(2**32 - 1) == 0


def test_fingerprint_ignores_serial_but_not_data():
    assert fingerprint(zone(LIVE)) == fingerprint(zone(LIVE, serial=7))
    assert fingerprint(zone(LIVE)) != fingerprint(zone(LIVE, www="192.0.2.81"))


def test_switch_to_emergency_and_back_moves_the_serial_forward(tmp_path):
    serials = ServedSerials(tmp_path)
    live = zone(LIVE)                                        # 2026112701
    emergency = zone(EMERGENCY)                              # also 2026112701
    assert serials.serve(live).serial == 2026112701
    served = serials.serve(emergency)
    assert served.serial == 2026112702
    assert served.find_node(dns.name.from_text(f"www.{ZONE}")).get(1)[0].address == "192.0.2.99"
    assert serials.serve(live).serial == 2026112703          # back to live
    assert serials.serve(zone(LIVE, serial=2026112702)).serial == 2026112704  # still behind
    assert serials.serve(zone(LIVE, serial=2026120101)).serial == 2026120101  # passed it: own


def test_the_same_version_keeps_its_serial_across_a_restart(tmp_path):
    serials = ServedSerials(tmp_path)
    serials.serve(zone(LIVE))
    emergency = zone(EMERGENCY)
    assert serials.serve(emergency).serial == 2026112702
    assert serials.serve(emergency).serial == 2026112702     # the same object again
    serials.remember(emergency)                              # after the swap: saves
    again = ServedSerials(tmp_path)                          # a restart
    assert again.serve(zone(EMERGENCY)).serial == 2026112702  # not bumped for nothing
    assert again.serve(zone(LIVE)).serial == 2026112703
    data = json.loads((tmp_path / "served-serials.json").read_text())
    assert data["zones"]["example.com."]["high"] == 2026112702   # saved before the last serve


def test_a_restart_on_other_content_with_the_same_own_serial_is_a_new_version(tmp_path):
    serials = ServedSerials(tmp_path)
    live = zone(LIVE)
    serials.serve(live)
    serials.remember(live)
    again = ServedSerials(tmp_path)
    assert again.serve(zone(LIVE, www="192.0.2.81")).serial == 2026112702


def test_a_broken_mapping_file_is_ignored(tmp_path):
    (tmp_path / "served-serials.json").write_text("{not json")
    assert ServedSerials(tmp_path).serve(zone(LIVE)).serial == 2026112701


def test_history_chains_differences_and_forgets_the_oldest():
    history = History(depth=2)
    versions = [zone(LIVE, serial=s, www=f"192.0.2.{s - 2026112600}")
                for s in (2026112701, 2026112702, 2026112703, 2026112704)]
    previous = None
    for version in versions:
        history.record(previous, version)
        previous = version
    assert history.chain(versions[0].origin, 2026112701, 2026112704) is None  # forgotten
    chain = history.chain(versions[0].origin, 2026112702, 2026112704)
    assert [(d.old_serial, d.new_serial) for d in chain] == [(2026112702, 2026112703),
                                                             (2026112703, 2026112704)]
    assert [r[2].address for r in chain[0].deleted] == ["192.0.2.102"]
    assert [r[2].address for r in chain[0].added] == ["192.0.2.103"]
    # a version whose serial goes backwards cannot be sent incrementally: history restarts
    history.record(versions[-1], versions[0])
    assert history.chain(versions[0].origin, 2026112703, 2026112701) is None


# ----------------------------------------------------- signed emergency zones

SIGNED = """\
$ORIGIN example.com.
$TTL 300
@     SOA   ns1 hostmaster {serial} 300 60 1209600 60
@     NS    ns1
@     NS    ns2
ns1   A     192.0.2.53
ns2   A     192.0.2.54
www   A     192.0.2.99
"""


def signed_emergency(tmp_path, serial: int):
    require_tool("dnssec-signzone", "dnssec-keygen")
    sys.path.insert(0, str(ROOT / "tests" / "dnssec"))
    try:
        from dnssec_signing import sign_zone
    finally:
        sys.path.pop(0)
    zones = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", zones)
    signed = sign_zone(SIGNED.format(serial=serial), ZONE, tmp_path / "keys")
    (zones / "emergency" / "example.com.zone").write_text(signed.read_text())
    return zones


def check(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", "check", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=path.parent)


def test_check_warns_when_a_signed_emergency_serial_is_not_above_live(tmp_path):
    zones = signed_emergency(tmp_path, 2026112701)
    result = check(zones)
    assert result.returncode == 0, result.stdout + result.stderr     # a warning, not an error
    assert "warning: signed emergency zone example.com. has serial 2026112701, not above " \
           "the live zone's 2026112701" in result.stdout
    assert "emergency/example.com.zone:3:" in result.stdout         # the SOA's line


def test_check_is_quiet_when_the_signed_emergency_serial_is_higher(tmp_path):
    zones = signed_emergency(tmp_path, 2099010101)
    result = check(zones)
    assert "signed emergency zone" not in result.stdout, result.stdout


def test_startup_warns_about_a_signed_emergency_serial(tmp_path):
    signed_emergency(tmp_path, 2026112701)
    config = primary_config(tmp_path, "  allow: [{address: [\"127.0.0.1\"]}]\n")
    with SeawallProcess(tmp_path, config=config) as server:
        assert wait_for(lambda: "emergency serial: signed emergency zone example.com." in
                        server.output(), 5), server.output()


# ------------------------------------------------------------ a real restart

def test_restart_in_emergency_keeps_the_served_serial(tmp_path):
    failover = "  probe_interval: 0.2s\n  fail_after: 3\n  stale_for: 0s\n"
    config = primary_config(tmp_path, "  allow: [{address: [\"127.0.0.1\"]}]\n",
                            failover=failover)
    path = tmp_path / "zones" / "example.com.zone"
    with SeawallProcess(tmp_path, config=config) as server:
        # The backend fails (bad data would be held, not switched from).
        path.unlink()
        assert wait_for(lambda: ask(server.addr, f"www.{ZONE}").answer[0][0].address
                        == "192.0.2.99"), server.output()
        assert ask(server.addr, ZONE, "SOA").answer[0][0].serial == 2026112702
    with SeawallProcess(tmp_path, config=config) as server:   # still failing: emergency again
        assert ask(server.addr, f"www.{ZONE}").answer[0][0].address == "192.0.2.99"
        assert ask(server.addr, ZONE, "SOA").answer[0][0].serial == 2026112702
        path.write_text(LIVE)
        assert wait_for(lambda: ask(server.addr, f"www.{ZONE}").answer[0][0].address
                        == "192.0.2.80"), server.output()
        assert ask(server.addr, ZONE, "SOA").answer[0][0].serial == 2026112703
