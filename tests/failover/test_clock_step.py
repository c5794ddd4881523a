"""A server whose wall clock is stepped (NTP, an operator, a VM restore) while it runs.

The server runs under libfaketime with a shifted wall clock and its real
monotonic clock (FAKETIME_DONT_FAKE_MONOTONIC), and the test steps the wall
clock by an hour while it serves. Durations (an override's ``--for``,
``stale_for``) run on the monotonic clock, so neither step moves them.
Measured before: after a 1-hour step back, a ``--for 30m`` override was still
in force 80 minutes later; a +1 h step sent a stale zone to emergency at once.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SeawallProcess, ask, free_port, require_tool, wait_for
from failover_peers import EMERGENCY_WWW, LIVE_WWW, events

pytestmark = pytest.mark.interop   # libfaketime (Debian package faketime)


def faketime_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    require_tool("faketime")
    libraries = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
    assert libraries, "libfaketime is installed with the faketime package"
    offset = tmp_path / "clock-offset"
    offset.write_text("+0\n")
    return {"LD_PRELOAD": libraries[0], "FAKETIME_TIMESTAMP_FILE": str(offset),
            "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}, offset


def start(tmp_path: Path, workers: int, failover: str) -> tuple[SeawallProcess, Path]:
    shutil.copytree(ROOT / "zones", tmp_path / "zones")
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:{free_port()}']\nstate_dir: state\n"
                      f"workers: {workers}\nfailover: {{probe_interval: 0.2s, {failover}}}\n")
    env, offset = faketime_env(tmp_path)
    return SeawallProcess(tmp_path, config=config, env=env).start(), offset


def www(server: SeawallProcess) -> str:
    return ask(server.addr, "www.example.com.").answer[0][0].address


@pytest.mark.parametrize("workers", [1, 2])
def test_a_step_back_does_not_stretch_an_override(tmp_path, workers):
    server, offset = start(tmp_path, workers, "fail_after: 3")
    try:
        at = time.monotonic()
        forced = subprocess.run([sys.executable, "-m", "seawall", "failover", "force",
                                 "emergency", "--all", "--reason", "rehearsal", "--for", "8s",
                                 "--state-dir", "state"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)
        assert forced.returncode == 0, forced.stderr
        assert www(server) == EMERGENCY_WWW     # force answers once the switch is served
        offset.write_text("-3600\n")            # the wall clock jumps an hour back
        assert wait_for(lambda: www(server) == LIVE_WWW, 30), server.output()
        took = time.monotonic() - at
        assert 7.5 <= took < 25, took          # eight seconds, not an hour and eight seconds
        expired = [e for e in events(tmp_path / "state") if "override expired" in e["reason"]]
        assert expired, server.output()
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_step_forward_does_not_age_stale_data(tmp_path, workers):
    server, offset = start(tmp_path, workers, "fail_after: 3, stale_for: 10m")
    try:
        (tmp_path / "zones").rename(tmp_path / "away")
        assert wait_for(lambda: any(e["to"] == "stale" for e in events(tmp_path / "state")))
        offset.write_text("+3600\n")            # an hour forward: past stale_for by the wall
        time.sleep(3.0)
        assert www(server) == LIVE_WWW
        assert not [e for e in events(tmp_path / "state") if e["to"] == "emergency"]
    finally:
        server.stop()
