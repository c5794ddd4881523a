"""A fork that fails (EAGAIN) does not leave a switch unserved: the generation is tried again.

The server runs as a real process through a small launcher that makes its
third fork fail once, as a full process table would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SeawallProcess, ask, free_port, wait_for

LAUNCHER = """
import os, sys
real_fork = os.fork
calls = [0]
def fork():
    calls[0] += 1
    if calls[0] == 3:      # the first generation takes forks 1 and 2
        raise BlockingIOError(11, "Resource temporarily unavailable")
    return real_fork()
os.fork = fork
from seawall.cli.main import main
sys.exit(main())
"""


def test_a_failed_fork_is_retried_and_force_still_reports_the_truth(tmp_path: Path):
    shutil.copytree(ROOT / "zones", tmp_path / "zones")
    (tmp_path / "launch.py").write_text(LAUNCHER)
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:{free_port()}']\nstate_dir: state\nworkers: 2\n")
    server = SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)})
    server.argv[1:3] = [str(tmp_path / "launch.py")]     # instead of -m seawall
    with server:
        forced = subprocess.run([sys.executable, "-m", "seawall", "failover", "force",
                                 "emergency", "--zone", "example.com", "--reason", "test",
                                 "--state-dir", "state"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert forced.returncode == 0, forced.stderr     # served, after the retry
        assert ask(server.addr, "www.example.com.").answer[0][0].address == "192.0.2.99"
        assert wait_for(lambda: "fork failed" in server.output())
        assert "is tried again" in server.output()
