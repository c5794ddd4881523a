"""CI is honest about skips: with SEAWALL_REQUIRE_PEERS=1 a skip fails the run
unless its reason is on tests/conftest.py's SKIP_ALLOW_LIST."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SKIP_ALLOW_LIST

SAMPLE = f'''
import pytest

def test_git_missing():
    pytest.skip("git is not installed")

@pytest.mark.skipif(True, reason="no IPv6 loopback here")
def test_ipv6():
    pass

@pytest.mark.skipif(True, reason={SKIP_ALLOW_LIST[0]!r})
def test_privileged():
    pass

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
'''


def run_sample(tmp_path: Path, require: str) -> str:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {**os.environ, "SEAWALL_REQUIRE_PEERS": require,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-q", "-rfs",
                           "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path),
                           str(tmp_path / "test_sample.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr


# A skip in the call phase becomes a failure, one in set-up (skipif) an error.
@pytest.mark.parametrize("require, summary", [
    ("1", "1 failed, 1 skipped, 1 xfailed, 1 error"),
    ("0", "3 skipped, 1 xfailed"),
])
def test_unlisted_skips_fail_in_ci(tmp_path: Path, require: str, summary: str) -> None:
    output = run_sample(tmp_path, require)
    assert summary in output, output
    if require == "1":
        assert "not on the allow-list" in output
        assert "git is not installed" in output and "no IPv6 loopback here" in output
