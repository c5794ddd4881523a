"""The built wheel is what runs: install it into a fresh virtualenv (not the
source tree), start ``seawall serve`` from that install, and ask it a question.

Every path that reaches the source tree is cut: the server runs from a
directory outside it, without PYTHONPATH, and the test checks that the
``seawall`` package it imported lives in the new virtualenv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from conftest import ROOT, free_port

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    return done


def test_installed_wheel_serves_queries(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # Build from a copy of the tree, so the build leaves nothing in it.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
        ".seawall", ".benchmarks", ".fuzz-corpus", "tests", "bench"))
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source],
        env=env, timeout=400)
    (wheel,) = wheels.glob("seawall-*-py3-none-any.whl")
    shutil.rmtree(source)   # nothing left to import from but the install

    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", wheel], env=env, timeout=400)

    site = tmp_path / "site"          # the operator's directory: zones, state
    site.mkdir()
    shutil.copytree(ROOT / "zones", site / "zones")
    where = run([python, "-c", "import seawall; print(seawall.__file__)"], env=env, cwd=site,
                timeout=60).stdout.strip()
    assert Path(where).is_relative_to(target), where

    port = free_port()
    ready = site / "ready.json"
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen([target / "bin" / "seawall", "serve", "--zones", "zones",
                               "--listen", f"127.0.0.1:{port}", "--ready-file", ready],
                              cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.05)
        assert json.loads(ready.read_text())["listen"][0]["port"] == port
        query = dns.message.make_query("www.example.com.", "A")
        for via in (dns.query.udp, dns.query.tcp):
            response = via(query, "127.0.0.1", timeout=3, port=port)
            assert response.rcode() == dns.rcode.NOERROR
            assert [rd.address for rrset in response.answer for rd in rrset] == ["192.0.2.80"]
            assert response.flags & dns.flags.AA
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    assert server.returncode == 0, (tmp_path / "serve.log").read_text()
