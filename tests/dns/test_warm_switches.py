"""A real server with workers: a switch never forks a cold generation.

The emergency version's answer tables are built at start-up and the last
good version's kept, so `force emergency` and `release` fork generations
that have them; a restart on the same state directory reads its zone image
and its first workers start warm. Each generation says in the log whether
it was forked warm or cold.
"""

from __future__ import annotations

import re
import time

from conftest import ROOT, SeawallProcess, ask, wait_for
from seawall.failover.control_client import ControlClient

ENV = {"PYTHONPATH": str(ROOT)}
GENERATION = re.compile(r"generation=(\d+) serving pids=[\d,]+ in [\d.]+ s \(zone set (\d+), (warm|cold)\)")


def generations(server: SeawallProcess) -> list[tuple[int, int, str]]:
    return [(int(g), int(z), how) for g, z, how in GENERATION.findall(server.output())]


def config_for(tmp_path, zones_dir):
    state = tmp_path / "state"
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\nworkers: 2\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\nstate_dir: {state}\n"
                      "log_level: info\n")
    return config, state


def address(server: SeawallProcess) -> str:
    return ask(server.addr, "www.example.com.").answer[0][0].address


def test_force_and_release_fork_warm_generations(tmp_path, zones_dir):
    config, state = config_for(tmp_path, zones_dir)
    with SeawallProcess(tmp_path, config=config, env=ENV) as server:
        assert wait_for(lambda: "answer tables built ahead" in server.output(), 20)
        live = address(server)
        control = ControlClient(state_dir=state)
        for _ in range(2):
            control.call("force", mode="emergency", zones=["example.com."], reason="test")
            emergency = address(server)
            control.call("release", zones=["example.com."])
            assert address(server) == live
        assert emergency != live
        switched = [g for g in generations(server) if g[1] > 1]
        assert len(switched) >= 4
        assert all(how == "warm" for _, _, how in switched), switched


def test_a_restart_reads_its_zone_image(tmp_path, zones_dir):
    config, state = config_for(tmp_path, zones_dir)
    with SeawallProcess(tmp_path, config=config, env=ENV) as server:
        assert wait_for(lambda: any(how == "warm" for *_, how in generations(server)), 20)
        assert wait_for(lambda: len(list((state / "images").glob("*.img"))) >= 2, 20)
    time.sleep(0.2)
    with SeawallProcess(tmp_path, config=config, env=ENV) as server:
        assert address(server) == "192.0.2.80"
        assert wait_for(lambda: generations(server), 10)
        assert "zone image read: zone=example.com." in server.output()
        assert generations(server)[0][2] == "warm"
