"""``seawall failover status --watch-now``: a watch round on demand, then the status.

The watch here runs once an hour, so the only round after the start-up one
is the one the operator asks for: a change at the parent shows in the
status printed by the same command, and the round counter says it ran.
A server without a watch refuses the flag with a clear error.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import SeawallProcess
from world import ZONE, World

pytestmark = pytest.mark.interop   # Knot, Unbound and BIND's signing tools

CLI = [sys.executable, "-m", "seawall"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("watch-now"), interval=3600.0).start()
    try:
        yield world
    finally:
        world.stop()


def status(world: World, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["failover", "status", "--config",
                                 str(world.work / "seawall.yaml"), *flags],
                          capture_output=True, text=True, cwd=world.work, timeout=90)


def test_watch_now_runs_a_round_and_shows_what_it_found(world):
    world.wait_clear()
    rounds = world.rounds()
    assert rounds >= 1, "the start-up round has run"
    world.parent("")    # the delegation vanishes at the parent
    try:
        # Without the flag nothing is looked at again for an hour.
        plain = status(world, "--json")
        assert plain.returncode == 0, plain.stderr
        assert json.loads(plain.stdout)["status"]["watch"]["rounds"] == rounds

        asked = status(world, "--json", "--watch-now")
        assert asked.returncode == 0, asked.stderr
        watch = json.loads(asked.stdout)["status"]["watch"]
        assert watch["rounds"] == rounds + 1
        kinds = {f["kind"] for f in watch["zones"][f"{ZONE}."]["findings"]}
        assert "delegation-missing" in kinds, watch["zones"][f"{ZONE}."]

        readable = status(world, "--watch-now")
        assert readable.returncode == 0, readable.stderr
        assert "CRITICAL delegation-missing" in readable.stdout, readable.stdout
    finally:
        world.restore_parent()
    cleared = status(world, "--json", "--watch-now")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["status"]["watch"]["zones"][f"{ZONE}."]["findings"] == []


def test_watch_now_without_a_watch_is_refused(tmp_path):
    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    text = ("$ORIGIN example.org.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n"
            "@ NS ns1\nns1 A 192.0.2.1\n")
    (zones / "example.org.zone").write_text(text)
    (zones / "emergency" / "example.org.zone").write_text(text)
    config = tmp_path / "seawall.yaml"
    config.write_text("zones: zones\nemergency_dir: zones/emergency\nstate_dir: state\n"
                      "workers: 1\nlisten: [\"127.0.0.1:0\"]\n")
    with SeawallProcess(tmp_path, config=config):
        done = subprocess.run(CLI + ["failover", "status", "--watch-now",
                                     "--config", str(config)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode != 0
    assert "this server runs no watch" in done.stderr, done.stderr
