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


# ------------------------------------------- issue 14, findings 6 and 10


def test_state_directory_and_its_files_are_private_without_user(tmp_path, zones_dir):
    """Before: without `user:` the state directory was 0755 and its snapshots 0644."""
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\nworkers: 1\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\nstate_dir: state\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        assert ask(server.addr, "www.example.com.").rcode() == dns.rcode.NOERROR
        state = tmp_path / "state"
        created = [p for p in state.rglob("*") if not p.is_symlink()]
        assert created, "the server wrote its state"
        assert stat.S_IMODE(state.stat().st_mode) & 0o077 == 0, oct(state.stat().st_mode)
        loose = {str(p.relative_to(state)): oct(stat.S_IMODE(p.lstat().st_mode))
                 for p in created if stat.S_IMODE(p.lstat().st_mode) & 0o077}
        assert not loose, f"readable by others: {loose}"


def test_group_without_user_is_a_config_error(tmp_path):
    from seawall.config import load_config
    from seawall.errors import ConfigError

    config = tmp_path / "seawall.yaml"
    config.write_text("group: nogroup\n")
    with pytest.raises(ConfigError, match="group is set without user"):
        load_config(config)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_hand_over_never_follows_a_linked_state_directory(tmp_path):
    """Before: a state directory that is a link had its target's files given away."""
    from seawall.privileges import _hand_over

    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    (victim / "secret").write_text("root only")
    link = tmp_path / "state"
    link.symlink_to(victim)
    nobody = pwd.getpwnam("nobody")
    _hand_over(link, nobody.pw_uid, nobody.pw_gid)
    assert (victim / "secret").stat().st_uid == 0
    assert victim.stat().st_uid == 0 and stat.S_IMODE(victim.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_hand_over_changes_a_link_not_its_target_even_if_swapped_in_late(tmp_path, monkeypatch):
    """Before: `is_symlink()` then a `chown` that follows links: an entry replaced by a
    link between the two (simulated: the check answers False) gave away the target."""
    from seawall.privileges import _hand_over

    victim = tmp_path / "shadow"
    victim.write_text("root only")
    state = tmp_path / "state"
    state.mkdir()
    (state / "events.jsonl").symlink_to(victim)
    monkeypatch.setattr(Path, "is_symlink", lambda self: False)   # the race, won
    nobody = pwd.getpwnam("nobody")
    _hand_over(state, nobody.pw_uid, nobody.pw_gid)
    assert victim.stat().st_uid == 0
    assert (state / "events.jsonl").lstat().st_uid == nobody.pw_uid
