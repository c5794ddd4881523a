"""The hooks a control channel drives: faults with a server-held deadline, force, status.

An in-process App on the project's example zones; answers are checked over
real UDP from a thread while the fault is injected into the backend client.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import dns.name
import pytest

from conftest import ROOT, free_port
from failover_peers import QueryLoop, events
from seawall.app import App
from seawall.backends.base import Fault
from seawall.config import load_config
from seawall.failover.controller import ControlError

ZONE = dns.name.from_text("example.com.")
LIVE_WWW, EMERGENCY_WWW = "192.0.2.80", "192.0.2.99"   # zones/ and zones/emergency/


def make_app(tmp_path: Path) -> tuple[App, int]:
    shutil.copytree(ROOT / "zones", tmp_path / "zones")
    port = free_port()
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: [\"127.0.0.1:{port}\"]\nstate_dir: state\n"
                      "failover: {probe_interval: 0.1s, probe_timeout: 0.1s, fail_after: 3,"
                      " recover_after: 3, stale_for: 0s}\n")
    return App(load_config(config, workers=1)), port  # in this process: no forks


async def running(app: App, ready: Path) -> asyncio.Task:
    task = asyncio.create_task(app.run(ready))
    while not ready.exists():
        await asyncio.sleep(0.02)
    return task


def mode(app: App) -> str:
    return app.controller.zones[ZONE].served_mode.value


@pytest.mark.parametrize("kind", ["backend-down", "backend-hang", "backend-corrupt",
                                  "backend-wipe", "flap"])
def test_fault_with_deadline_switches_and_reverts_by_itself(tmp_path, kind):
    app, port = make_app(tmp_path)

    loop = QueryLoop(("127.0.0.1", port), qname="www.example.com.")

    async def scenario():
        task = await running(app, tmp_path / "ready.json")
        loop.start()
        try:
            await asyncio.sleep(0.3)
            fault = Fault(kind, zones=frozenset({ZONE}), until=time.time() + 2.0,
                          period=0.5 if kind == "flap" else 1.0)
            assert app.failover.inject_fault(fault) == [f"files:{tmp_path / 'zones'}"]
            with pytest.raises(ControlError, match="already injected"):
                app.failover.inject_fault(Fault("backend-down"))
            seen = set()
            for _ in range(100):
                seen.add(mode(app))
                await asyncio.sleep(0.05)
            assert app.backends[0].faults.current is None
            assert mode(app) == "live"
            return seen, app.failover.status()
        finally:
            loop.stop()
            app.stop()
            await task

    seen, status = asyncio.run(scenario())
    # No query lost or answered wrongly through the switches (DESIGN, principle 3).
    summary = loop.summary()
    print(f"\n[{kind}] answers: {summary}; late answers (sent at, s late): {loop.late}")
    held = kind in ("backend-corrupt", "backend-wipe")   # bad data is held: live answers
    assert set(summary) <= {LIVE_WWW, EMERGENCY_WWW}, (summary, "late:", loop.late)
    assert summary.get(LIVE_WWW), summary
    assert bool(summary.get(EMERGENCY_WWW)) is not held, summary
    assert ("held" if held else "emergency") in seen, seen
    assert status["zones"][0]["state"] == "live"
    causes = [(e["kind"], e["cause"]) for e in events(tmp_path / "state")]
    assert ("fault", "drill") in causes
    assert ("transition", "drill") in causes, causes
    notes = [e["reason"] for e in events(tmp_path / "state") if e["kind"] == "fault"]
    assert notes[-1] == f"fault removed at its deadline: {kind}"


def test_force_release_accept_and_status_in_process(tmp_path):
    app, port = make_app(tmp_path)

    async def scenario():
        task = await running(app, tmp_path / "ready.json")
        try:
            app.controller.force("emergency", ["example.com"], "rehearsal", by="operator")
            assert app.zoneset.get(ZONE).serial == app.controller.zones[ZONE].emergency.serial
            status = app.failover.status()["zones"][0]
            assert status["forced"]["mode"] == "emergency" and status["state"] == "emergency"
            assert status["why"]["reason"] == "forced emergency: rehearsal"
            await asyncio.sleep(0.5)   # probes keep succeeding; the override holds
            assert mode(app) == "emergency"
            app.controller.release(None)
            assert mode(app) == "live"
            with pytest.raises(ControlError):
                app.controller.accept("example.com")
        finally:
            app.stop()
            await task

    asyncio.run(scenario())
    assert not (tmp_path / "state" / "overrides.json").read_text().count("emergency")
