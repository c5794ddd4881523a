"""Start as root on a privileged port, then serve as an unprivileged user."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import dns.rcode
import pytest

from conftest import ROOT, SeawallProcess, ask, free_port


def privileged_port() -> int:
    for _ in range(50):
        port = free_port()
        if port < 1024:
            return port
    import socket

    for port in range(600, 1024):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                udp.bind(("127.0.0.1", port))
                tcp.bind(("127.0.0.1", port))
                return port
        except OSError:
            continue
    pytest.skip("no free port below 1024")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind a port below 1024")
def test_binds_a_privileged_port_then_runs_as_nobody(zones_dir):
    port = privileged_port()
    # pytest's tmp_path is private to root; the served files must be readable by nobody.
    tmp_path = Path(tempfile.mkdtemp(prefix="seawall-priv-"))
    tmp_path.chmod(0o755)
    shutil.copytree(zones_dir, tmp_path / "zones")
    zones_dir = tmp_path / "zones"
    state = tmp_path / "state"
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:{port}']\nzones: {zones_dir}\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\nstate_dir: {state}\n"
                      "user: nobody\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        assert server.addr[1] == port
        assert ask(server.addr, "www.example.com.").rcode() == dns.rcode.NOERROR
        status = Path(f"/proc/{server.pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        nobody = pwd.getpwnam("nobody").pw_uid
        assert all(int(u) == nobody for u in uids), status
        mode = stat.S_IMODE(os.stat(state).st_mode)
        assert mode & 0o002 == 0, "the state directory is not world-writable"
        assert os.stat(state).st_uid == nobody
    shutil.rmtree(tmp_path, ignore_errors=True)
