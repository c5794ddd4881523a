"""The conformance suites of ../shared/conformance/, run against a real Seawall.

``diffdns.py --peers`` starts Knot (port 15401) and NSD (port 15402) on the
suite's zones, asks them and Seawall every case and prints ``N passed, M
failed``; cases where Knot and NSD disagree are implementation-defined and
never count as failures. Its ports are fixed, so nothing else may run diffdns
at the same time: every test here is in this one module and they run one
after the other (never split this module across pytest-xdist workers).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CONFORMANCE, ROOT, SeawallProcess, require_tool

pytestmark = pytest.mark.interop

NSD_TPKG = CONFORMANCE / "nsd-tpkg"
ENGINE_SUITE = ROOT / "tests" / "dns" / "data" / "engine"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)
# Every query file, the signed ones included (dnssec_rrsig_ds, nsec3_zone,
# nx_dnssec ask with DO=1 and need RRSIGs and NSEC/NSEC3 proofs).
NSD_TPKG_FILES = sorted(p.stem for p in (NSD_TPKG / "queries").glob("*.yaml"))


PORT_TAKEN_RETRIES = 30
"""diffdns refuses to start while its fixed ports are taken (someone else runs it):
wait for them, 2 s at a time, this many times."""


def diffdns(target: tuple[str, int], *args: str) -> tuple[int, int, str]:
    """Run the harness; (passed, failed, output)."""
    for _ in range(PORT_TAKEN_RETRIES):
        result = subprocess.run(
            [sys.executable, str(CONFORMANCE / "diffdns.py"), "--peers",
             "--target", f"{target[0]}:{target[1]}", *args],
            capture_output=True, text=True, timeout=240)
        output = result.stdout + result.stderr
        if "already in use" not in output:
            break
        time.sleep(2)
    match = SUMMARY.search(result.stdout)
    assert match, f"no summary line from diffdns:\n{output}"
    passed, failed = int(match[1]), int(match[2])
    assert (result.returncode == 0) == (failed == 0), output
    return passed, failed, output


def serve(tmp_path_factory, zones: Path, *args: str) -> SeawallProcess:
    workdir = tmp_path_factory.mktemp("conformance")
    return SeawallProcess(workdir, *args, zones=zones, env={"PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def public_server(tmp_path_factory):
    require_tool("knotd", "nsd")
    with serve(tmp_path_factory, CONFORMANCE / "public" / "zones") as process:
        yield process


@pytest.fixture(scope="module")
def nsd_tpkg_server(tmp_path_factory):
    require_tool("knotd", "nsd")
    # Some of these zones (taken from NSD's tests) have no apex NS records.
    with serve(tmp_path_factory, NSD_TPKG / "zones", "--lenient") as process:
        yield process


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory):
    require_tool("knotd", "nsd")
    with serve(tmp_path_factory, ENGINE_SUITE / "zones") as process:
        yield process


def test_public_suite(public_server):
    passed, failed, output = diffdns(public_server.addr)
    assert failed == 0, output
    assert passed > 0


@pytest.mark.parametrize("stem", NSD_TPKG_FILES)
def test_nsd_tpkg_suite(nsd_tpkg_server, stem):
    passed, failed, output = diffdns(nsd_tpkg_server.addr, "--suite", str(NSD_TPKG),
                                     "--only", f"{stem}/")
    # A file whose every case is implementation-defined reports "0 passed, 0 failed".
    assert failed == 0, output


def test_engine_tables_agree_with_knot_and_nsd(engine_server):
    """The zones of tests/dns/test_engine.py and more edge cases, asked of all three."""
    passed, failed, output = diffdns(engine_server.addr, "--zones", str(ENGINE_SUITE / "zones"),
                                     "--queries", str(ENGINE_SUITE / "queries"))
    assert failed == 0, output
    assert passed > 0
