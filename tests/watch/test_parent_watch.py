"""The watch against a real parent: a fake root and TLD (Knot) delegating to Seawall.

Each case changes what the parent (or a secondary) says, then waits for the
right finding in ``seawall failover status`` and measures how long after
the change was served it appeared: within two watch intervals. A steady
run of 60 intervals raises nothing. Unbound, validating from the TLD's
trust anchor, confirms that the DS case really is bogus to the world.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import dns.flags
import dns.rcode
import pytest

from world import ZONE, World, soa_serial

pytestmark = pytest.mark.interop   # Knot, Unbound and BIND's signing tools

INTERVAL = 1.0
DETECT = 2 * INTERVAL + 0.5   # two intervals, and the time of one round and one status poll
DETECTED: dict[str, float] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("watch"), interval=INTERVAL).start()
    try:
        yield world
    finally:
        world.stop()
        if DETECTED:
            print("\ndetection times: " + ", ".join(f"{k}={v:.2f}s"
                                                     for k, v in DETECTED.items()))


def detect(world: World, name: str, kind: str, since: float, server: str | None = None):
    took, finding = world.wait_finding(kind, since, server=server)
    DETECTED[name] = took
    assert took <= DETECT, f"{kind} seen {took:.2f}s after the change (limit {DETECT}s)"
    return finding


def restore(world: World) -> None:
    world.restore_parent()
    world.wait_clear()


def test_steady_run_raises_nothing(world):
    # The secondary starts after Seawall (it transfers from it): let it settle first.
    world.wait_clear()
    events_before = len(world.events())
    start = world.rounds()
    assert (world.status()["watch"]["zones"][f"{ZONE}."]["parent"]) == "test."
    seen = []
    while world.rounds() < start + 60:
        seen += world.findings()
        time.sleep(0.2)
    assert seen == []
    assert not [e for e in world.events()[events_before:] if e["kind"].startswith("watch-")]
    answer = world.resolve(f"www.{ZONE}.")
    assert answer is not None and answer.rcode() == dns.rcode.NOERROR
    assert answer.flags & dns.flags.AD, "the chain of trust validates when all is well"


def test_delegation_removed_at_the_parent(world):
    served_at = world.parent("")
    finding = detect(world, "delegation removed", "delegation-missing", served_at)
    assert finding["world"] == "NXDOMAIN" and "ns1.example.test." in finding["served"]
    events = [e for e in world.events() if e["kind"] == "watch-delegation-missing"]
    assert events and events[-1]["cause"] == "watch"
    restore(world)
    assert [e for e in world.events() if e["kind"] == "watch-cleared"]


def test_ns_changed_at_the_parent(world):
    served_at = world.parent(f"{ZONE}. 300 NS ns.hijack.test.\n"
                             + world.ds_records(world.child_keys) + "\n")
    finding = detect(world, "NS changed", "ns-mismatch", served_at)
    assert "ns.hijack.test." in finding["world"] and "ns1.example.test." in finding["served"]
    restore(world)


def test_glue_changed_at_the_parent(world):
    moved = world.addr[7]
    served_at = world.parent(f"{ZONE}. 300 NS ns1.{ZONE}.\nns1.{ZONE}. 300 A {moved}\n"
                             + world.ds_records(world.child_keys) + "\n")
    finding = detect(world, "glue changed", "glue-mismatch", served_at)
    assert finding["world"] == moved and finding["served"] == world.addr[4]
    # Nothing answers at the new address: the parent points at a dead server.
    world.wait_finding("lame", served_at, server=moved)
    restore(world)


def test_one_parent_server_disagrees(world):
    served_at = world.parent(f"{ZONE}. 300 NS ns.hijack.test.\n"
                             + world.ds_records(world.child_keys) + "\n", servers=(1,))
    other = f"{world.addr[3]}:{world.port}"
    finding = detect(world, "parent server disagrees", "parent-disagree", served_at,
                     server=other)
    assert "ns.hijack.test." in finding["detail"] + finding["world"]
    # The other parent server still says what Seawall serves: only one NS finding.
    ns = [f for f in world.findings() if f["kind"] == "ns-mismatch"]
    assert [f["server"] for f in ns] == [other]
    restore(world)


def test_parent_points_at_a_lame_server(world):
    lame = world.addr[1]   # the root server: asked for the zone it only refers onwards
    served_at = world.parent(f"{ZONE}. 300 NS ns1.{ZONE}.\n{ZONE}. 300 NS ns2.{ZONE}.\n"
                             f"ns1.{ZONE}. 300 A {world.addr[4]}\nns2.{ZONE}. 300 A {lame}\n"
                             + world.ds_records(world.child_keys) + "\n")
    finding = detect(world, "lame server", "lame", served_at, server="ns2.example.test.")
    assert lame in finding["server"] and "authority" in finding["detail"]
    restore(world)


def test_ds_replaced_by_an_unrelated_key(world):
    served_at = world.parent(f"{ZONE}. 300 NS ns1.{ZONE}.\nns1.{ZONE}. 300 A {world.addr[4]}\n"
                             + world.ds_records(world.other_keys) + "\n")
    finding = detect(world, "DS replaced", "ds-mismatch", served_at)
    assert "bogus" in finding["detail"]
    # The world agrees: a validating resolver (fresh caches) now calls the zone bogus.
    world.restart_unbound(validated=False)
    answer = world.resolve(f"www.{ZONE}.")
    assert answer is not None and answer.rcode() == dns.rcode.SERVFAIL
    assert "for key example.test. while building chain of trust" in \
        (world.work / "unbound.log").read_text()

    # Once the old DS has left caches (its TTL, 2s here), the emergency file, signed
    # with the zone's own (old) keys, can no longer stand in: the zone is unprotected.
    def unprotected():
        text = world.zone_status().get("unprotected") or ""
        return "parent publishes" in text
    started = time.monotonic()
    while not unprotected():
        assert time.monotonic() - started < world.ds_ttl + DETECT + 2, world.zone_status()
        time.sleep(0.05)
    DETECTED["emergency unprotected"] = time.monotonic() - served_at

    # A re-signed version with the same (old) keys would be bogus too: the guard holds it.
    world.write_child(world.child_serial + 1)
    held = None
    deadline = time.monotonic() + 10
    while held is None and time.monotonic() < deadline:
        held = world.zone_status().get("held")
        time.sleep(0.05)
    assert held is not None and "parent" in held["reason"], world.zone_status()
    assert world.zone_status()["serial"] == world.child_serial - 1

    # Back to the right DS: a new version is taken, the emergency file is trusted again.
    restore(world)
    world.write_child(world.child_serial + 1)
    deadline = time.monotonic() + 10
    while world.zone_status()["serial"] != world.child_serial or world.zone_status()["held"] \
            or world.zone_status()["unprotected"]:
        assert time.monotonic() < deadline, world.zone_status()
        time.sleep(0.05)
    world.secondary.knotc("zone-refresh", f"{ZONE}.")
    world.secondary.wait_serial(ZONE, world.child_serial)
    world.restart_unbound()   # validates again (it waits for AD)


def test_secondary_falls_behind(world):
    # A stopped secondary does not answer at all.
    world.secondary.proc.send_signal(signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        detect(world, "secondary stopped", "peer-unreachable", stopped_at,
               server="knot-secondary")
    finally:
        world.secondary.proc.send_signal(signal.SIGCONT)
    world.wait_clear()
    # It runs again but hears of no change (no NOTIFY): Seawall's zone moves on.
    world.write_child(world.child_serial + 1)
    deadline = time.monotonic() + 10
    while soa_serial(world.addr[4], world.port, ZONE) != world.child_serial:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    changed_at = time.monotonic()
    finding = detect(world, "secondary behind", "drift", changed_at, server="knot-secondary")
    assert finding["world"] == f"serial {world.child_serial - 1}"
    assert finding["served"] == f"serial {world.child_serial}"
    assert "behind" in finding["detail"]
    peers = world.status()["watch"]["zones"][f"{ZONE}."]["peers"]
    assert peers[0]["peer"] == "knot-secondary" and peers[0]["lag"] > 0
    world.secondary.knotc("zone-refresh", f"{ZONE}.")
    world.wait_clear()


def test_findings_in_the_cli_status_and_metrics(world):
    """`seawall watch` runs a round now; `failover status` and /metrics show findings."""
    config = str(world.work / "seawall.yaml")
    cli = [sys.executable, "-m", "seawall"]
    quiet = subprocess.run(cli + ["watch", "--config", config], capture_output=True,
                           text=True, cwd=world.work, timeout=60)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "0 finding(s) for 1 zone(s)" in quiet.stdout
    # Parent servers named directly (no root hints): the same answer.
    direct = subprocess.run(cli + ["watch", "--config", config, "--json",
                                   "--parent", f"{world.addr[2]}:{world.port}",
                                   "--parent", f"{world.addr[3]}:{world.port}"],
                            capture_output=True, text=True, cwd=world.work, timeout=60)
    assert direct.returncode == 0 and json.loads(direct.stdout)["findings"] == [], direct.stdout
    served_at = world.parent("")
    try:
        world.wait_finding("delegation-missing", served_at)
        loud = subprocess.run(cli + ["watch", "--config", config], capture_output=True,
                              text=True, cwd=world.work, timeout=60)
        assert loud.returncode == 1, loud.stdout + loud.stderr
        assert f"{ZONE}. critical delegation-missing [{world.addr[2]}:{world.port}]" \
            in loud.stdout
        status = subprocess.run(cli + ["failover", "status", "--config", config],
                                capture_output=True, text=True, cwd=world.work, timeout=60)
        assert status.returncode == 0, status.stderr
        assert "Watch: " in status.stdout and "parent test. (2 server(s))" in status.stdout
        assert "CRITICAL delegation-missing" in status.stdout
        assert "RRSIG expiry: live" in status.stdout
        port = json.loads(world.seawall.ready.read_text())["metrics_port"]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                         timeout=5).read().decode()
        assert f'seawall_watch_findings{{kind="delegation-missing",zone="{ZONE}."}} 2.0' \
            in metrics
        assert f'seawall_watch_findings{{kind="ds-mismatch",zone="{ZONE}."}} 0.0' in metrics
        for data in ("live", "last_good", "emergency"):
            assert f'seawall_signature_expiry_timestamp_seconds{{data="{data}",' \
                   f'zone="{ZONE}."}}' in metrics
        assert f'seawall_zone_unprotected{{zone="{ZONE}."}} 0.0' in metrics
    finally:
        restore(world)
