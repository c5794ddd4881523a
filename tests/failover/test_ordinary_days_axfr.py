"""Ordinary days with Knot as the hidden primary: a bad push and a primary that comes back old.

A real Knot, a real Seawall process (one process and two workers), and a
query loop that records every answer clients saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SeawallProcess, wait_for
from failover_peers import EMERGENCY_WWW, LIVE_WWW, QueryLoop, events, zone_text
from test_axfr_failover import ZONE, setup

pytestmark = pytest.mark.interop
WORKERS = pytest.mark.parametrize("workers", ["1", "2"], ids=["one-process", "two-workers"])


def zone_state(server: SeawallProcess, tmp_path: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "seawall", "failover", "status", "--json",
                             "--state-dir", "state"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]["zones"][0]


@WORKERS
def test_a_90_percent_deletion_pushed_by_knot_is_held(tmp_path, workers):
    """Measured before: each rejection was a failure; 769 of 1,058 answers came from emergency."""
    knot, config, _ = setup(tmp_path, stale_for="expire", notify=True)
    try:
        with SeawallProcess(tmp_path, "--workers", workers, config=config) as server:
            loop = QueryLoop(server.addr, qname=f"www.{ZONE}.", rate=100).start()
            try:
                knot.publish(ZONE, zone_text(ZONE, 2, hosts=200), 2)   # 1800 of 2006 gone
                assert wait_for(lambda: zone_state(server, tmp_path)["state"] == "held", 15), \
                    server.output()
                time.sleep(5 * 0.5)          # five probes more than fail_after
                zone = zone_state(server, tmp_path)
                assert zone["state"] == "held" and zone["failures"] == 0
                assert "would delete 1800 of 2006 RRsets" in zone["held"]["reason"]
                assert zone["serial"] == 1
            finally:
                loop.stop()
    finally:
        knot.kill()
    summary = loop.summary()
    assert set(summary) == {LIVE_WWW}, summary
    assert not [e for e in events(tmp_path / "state") if e["to"] in ("stale", "emergency")]


@WORKERS
def test_a_primary_back_with_older_data_is_held_not_emergency(tmp_path, workers):
    """Measured before: still in emergency 1,000 probes after the primary came back."""
    knot, config, _ = setup(tmp_path, stale_for="expire", fail_after=3, recover_after=3)
    try:
        knot.publish(ZONE, zone_text(ZONE, 7, hosts=2000, extra="new A 192.0.2.7\n"), 7)
        with SeawallProcess(tmp_path, "--workers", workers, config=config) as server:
            loop = QueryLoop(server.addr, qname=f"www.{ZONE}.", rate=100).start()
            try:
                assert wait_for(lambda: zone_state(server, tmp_path)["serial"] == 7, 15)
                knot.kill()                                  # SIGKILL, and its log closed
                assert wait_for(lambda: zone_state(server, tmp_path)["state"] == "stale", 15)
                knot.write_zone(ZONE, zone_text(ZONE, 5, hosts=2000))   # restored from an old backup
                knot.start()
                assert wait_for(lambda: zone_state(server, tmp_path)["state"] == "held", 15), \
                    server.output()
                time.sleep(3.0)
                zone = zone_state(server, tmp_path)
                assert zone["state"] == "held" and zone["serial"] == 7
                assert zone["held"]["older"] and "older than the served serial 7" \
                    in zone["held"]["reason"]
            finally:
                loop.stop()
    finally:
        knot.kill()
    summary = loop.summary()
    assert set(summary) == {LIVE_WWW}, summary
    assert EMERGENCY_WWW not in summary
