"""``seawall config``: the defaults and the reference come from the dataclasses.

The printed defaults load back into exactly ``Config()``; the committed
docs/configuration.md is what the code generates today; packaging gives a
``seawall`` command without a compiler; the systemd unit is valid and hardened.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

from seawall.cli.config import field_docs, format_duration, keys, type_name
from seawall.config import Config, Duration, load_config

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def seawall(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", *args], capture_output=True,
                          text=True, timeout=60, env=ENV, cwd=cwd)


def test_print_defaults_loads_back_into_the_defaults(tmp_path):
    result = seawall("config", "--print-defaults")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "seawall.yaml"
    path.write_text(result.stdout)
    loaded = load_config(path)
    assert dataclasses.replace(loaded, base_dir=".") == Config()
    for key in keys():
        if "[]" not in key.path:
            assert f"{key.name}:" in result.stdout, key.path


def test_every_key_is_printed_with_its_comment():
    text = seawall("config", "--print-defaults").stdout
    lines = text.splitlines()
    for key in keys():
        if not key.doc or "[]" in key.path:
            continue
        at = next(i for i, line in enumerate(lines)
                  if line.lstrip("# ").startswith(f"{key.name}:")
                  and len(line) - len(line.lstrip()) == 2 * key.depth)
        assert lines[at - 1].strip().startswith("#"), key.path
    assert "  # how often each backend is probed\n  probe_interval: 1s\n" in text


def test_committed_reference_is_up_to_date():
    result = seawall("config", "--reference")
    assert result.returncode == 0
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == result.stdout, (
        "docs/configuration.md is stale: run `make docs` (seawall config --reference "
        "> docs/configuration.md) and commit it")


def test_config_needs_a_choice():
    result = seawall("config")
    assert result.returncode == 2
    assert "--print-defaults" in result.stderr


@dataclass(frozen=True)
class Documented:
    """A section for the test."""

    plain: int = 1
    trailing: str = "x"          # a trailing comment
    #: a comment above,
    #: on two lines
    above: bool = True
    docstring: Duration = Duration(90)
    """An attribute docstring."""
    listed: tuple[str, ...] = ("a",)
    maybe: int | None = None


def test_field_docs_come_from_the_source():
    assert field_docs(Documented) == {"trailing": "a trailing comment",
                                      "above": "a comment above, on two lines",
                                      "docstring": "An attribute docstring."}
    hints = {k.name: type_name(k.hint) for k in keys(Documented)}
    assert hints == {"plain": "integer", "trailing": "string", "above": "boolean",
                     "docstring": "duration", "listed": "list of strings",
                     "maybe": "integer or null"}


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.5, "500ms"), (1, "1s"), (90, "90s"), (600, "10m"), (7200, "2h"),
    (86400, "1d"), (1.5, "1.5s")])
def test_durations_print_as_they_are_written(seconds, text):
    assert format_duration(Duration(seconds)) == text
    assert Duration.parse(text) == seconds


# -------------------------------------------------------------- packaging

def test_systemd_unit_is_hardened_and_valid(tmp_path):
    unit = (ROOT / "contrib" / "seawall.service").read_text()
    for directive in ("ProtectSystem=strict", "NoNewPrivileges=yes",
                      "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                      "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "DynamicUser=yes",
                      "StateDirectory=seawall"):
        assert f"\n{directive}\n" in unit, directive
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    local = tmp_path / "seawall.service"
    local.write_text(unit.replace("/opt/seawall/bin/seawall", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.timeout(600)
def test_pip_install_gives_the_seawall_command_without_a_compiler(tmp_path):
    """A pure-Python wheel, installed into a fresh virtualenv: ``seawall`` runs."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
        ".seawall", "tests", "bench"))
    env = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false"}  # no compiler
    env.pop("PYTHONPATH", None)
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    wheels = tmp_path / "wheels"
    built = subprocess.run([str(python), "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True,
                           env=env, timeout=400)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("seawall-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")  # nothing compiled
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)],
                               capture_output=True, text=True, env=env, timeout=400)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    command = target / "bin" / "seawall"
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("seawall "), version.stderr
    check = subprocess.run([str(command), "check", "zones"], capture_output=True, text=True,
                           env=env, cwd=source, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 error(s)" in check.stderr
    assert list((target / "lib").glob("python3*/site-packages/seawall/py.typed"))
