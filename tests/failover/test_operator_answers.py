"""Honest operator answers: a switch not served is not reported as done; unprotected is visible."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import ROOT, SeawallProcess, ask, free_port, wait_for

ZONE = "example.com."


def setup(tmp_path: Path, extra: str = "") -> Path:
    shutil.copytree(ROOT / "zones", tmp_path / "zones")
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:{free_port()}']\nstate_dir: state\nworkers: 2\n"
                      f"metrics: {{listen: '127.0.0.1:0'}}\n{extra}")
    return config


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", "failover", *args, "--state-dir",
                           "state"], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def test_force_reports_failure_when_the_workers_do_not_serve_it(tmp_path):
    """The control channel says ok only once the switch is served; here it never is.

    A real server in this process (one process, so nothing forks); its ``settled``
    stands for a pool whose new generation did not come up in time.
    """
    import asyncio

    from seawall.app import App
    from seawall.config import load_config
    from seawall.failover import control

    config = setup(tmp_path).read_text().replace("workers: 2", "workers: 1")
    (tmp_path / "seawall.yaml").write_text(config)
    app = App(load_config(tmp_path / "seawall.yaml"))
    waited: list[float] = []

    async def never_settles(timeout: float | None = None) -> bool:
        waited.append(timeout or 0.0)
        return False

    app.settled = never_settles   # type: ignore[method-assign]

    async def scenario() -> dict:
        task = asyncio.create_task(app.run(tmp_path / "ready.json"))
        while not (tmp_path / "ready.json").exists():
            await asyncio.sleep(0.02)
        try:
            answer, _ = await app.control._answer(
                b'{"version": 1, "command": "force", "mode": "emergency", '
                b'"zones": ["example.com"], "reason": "test"}\n', "test", signed=False)
            return answer
        finally:
            app.stop()
            await task

    answer = asyncio.run(scenario())
    assert answer["ok"] is False
    assert "did not serve it within 10s" in answer["error"]
    assert waited == [control.SETTLE_TIMEOUT]


def test_unprotected_zone_on_readyz_and_in_the_metrics(tmp_path):
    config = setup(tmp_path)
    (tmp_path / "zones" / "emergency" / "example.com.zone").write_text("garbage\n")
    with SeawallProcess(tmp_path, config=config) as server:
        import json
        port = json.loads(server.ready.read_text())["metrics_port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as reply:
            body = reply.read().decode()
            assert reply.status == 200
        assert body.startswith("ready\n") and f"unprotected: {ZONE} (broken emergency" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            metrics = reply.read().decode()
        assert f'seawall_zone_unprotected{{zone="{ZONE}"}} 1.0' in metrics
        assert f'seawall_zone_state{{state="live",zone="{ZONE}"}} 1.0' in metrics
        # a fixed file and a reload make the zone protected again
        shutil.copy(ROOT / "zones" / "emergency" / "example.com.zone",
                    tmp_path / "zones" / "emergency" / "example.com.zone")
        server.signal(signal.SIGHUP)

        def protected() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
                return r.read().decode() == "ready\n"
        assert wait_for(protected), server.output()


def test_remove_drops_a_zone_whose_file_is_gone_at_once(tmp_path):
    config = setup(tmp_path, "failover: {probe_interval: 0.2s}\n")
    with SeawallProcess(tmp_path, config=config) as server:
        (tmp_path / "zones" / "example.com.zone").unlink()
        assert wait_for(lambda: "stale" in cli(tmp_path, "status").stdout)
        snapshot = tmp_path / "state" / "snapshots" / "example.com.zone"
        assert snapshot.exists()
        removed = cli(tmp_path, "remove", "--zone", "example.com")
        assert removed.returncode == 0, removed.stderr
        assert removed.stdout.strip() == f"removed: {ZONE} (its last good data is dropped)"
        assert wait_for(lambda: not snapshot.exists())
        # the emergency file still names the zone: it is what is left to serve
        assert ask(server.addr, f"www.{ZONE}").answer[0][0].address == "192.0.2.99"
