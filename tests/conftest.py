"""Shared fixtures: a real Seawall process on a free loopback port, peers, clients.

Every response a test receives through ``ask`` is decoded twice, by
dnspython and by dnslib; a message either parser rejects fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dnslib
import pytest

from seawall.zones.loader import load_zone_file
from seawall.zones.model import Zone

ROOT = Path(__file__).resolve().parent.parent
def _find_shared() -> Path:
    """The read-only ``shared/`` folder beside the project (or where SEAWALL_SHARED says)."""
    candidates = [Path(os.environ["SEAWALL_SHARED"])] if os.environ.get("SEAWALL_SHARED") else []
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    return next((c for c in candidates if (c / "conformance").is_dir()), candidates[0])


SHARED = _find_shared()
CONFORMANCE = SHARED / "conformance"
REQUIRE_PEERS = os.environ.get("SEAWALL_REQUIRE_PEERS") == "1"


# Skips that stay skips in CI (SEAWALL_REQUIRE_PEERS=1): a reason that starts
# with one of these. Every other skip fails the run there, so a test that needs
# root, /proc, IPv6 loopback, git or systemd-analyze cannot quietly not run.
# Keep this list short and keep README.md ("Skips in CI") in step with it.
SKIP_ALLOW_LIST = (
    # tests/test_privileges.py: binding a port below 1024 and dropping to
    # nobody needs root (CI runs as root, so it runs there).
    "needs root to bind a port below 1024",
    # pytest-benchmark's own switch, for a local run that skips the
    # microbenchmarks on purpose; `make test` runs them once each instead.
    "Skipping benchmark (--benchmark-skip active)",
)


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason pytest recorded for a skip, without its "Skipped: " prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_unlisted_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (REQUIRE_PEERS and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if reason.startswith(SKIP_ALLOW_LIST):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI (SEAWALL_REQUIRE_PEERS=1) for a reason that is not "
                       f"on the allow-list (tests/conftest.py SKIP_ALLOW_LIST): {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    _fail_unlisted_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    _fail_unlisted_skip(report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Microbenchmarks run once each (checked to work, not timed) unless
    SEAWALL_PERF=1 asks for timings; see tests/perf/test_micro.py."""
    if os.environ.get("SEAWALL_PERF") != "1" and hasattr(config.option, "benchmark_disable"):
        config.option.benchmark_disable = True


# Helpers that start a peer program. A test module that uses one of them and
# marks none of its tests ``interop`` is an interop test as a whole
# (``-m "not interop"`` leaves it out) even where it forgot its ``pytestmark``;
# a module that marks its peer tests one by one is taken at its word.
PEER_MARKERS = ("require_tool(", "Knot(", "Bind(", "diffdns.Peer(", "sign_zone(", "make_keys(")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    sources: dict[str, bool] = {}
    for item in items:
        path = str(item.path)
        if path not in sources:
            try:
                text = Path(path).read_text()
            except OSError:
                text = ""
            sources[path] = ("mark.interop" not in text
                             and any(marker in text for marker in PEER_MARKERS))
        if sources[path]:
            item.add_marker(pytest.mark.interop)


def require_tool(*names: str) -> None:
    """Skip when a peer program is missing; fail instead in CI (SEAWALL_REQUIRE_PEERS=1)."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        message = f"peer program(s) not installed: {', '.join(missing)}"
        if REQUIRE_PEERS:
            pytest.fail(message + " (SEAWALL_REQUIRE_PEERS=1)")
        pytest.skip(message)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


class SeawallProcess:
    """``seawall serve`` as a child process; ``addr`` is its (host, port)."""

    def __init__(self, workdir: Path, *args: str, zones: Path | None = None,
                 config: Path | None = None, env: dict | None = None,
                 cpus: set[int] | None = None) -> None:
        self.workdir = workdir
        self.ready = workdir / f"ready-{time.monotonic_ns()}.json"
        self.log_path = workdir / f"seawall-{time.monotonic_ns()}.log"
        argv = [sys.executable, "-m", "seawall", "serve", "--ready-file", str(self.ready)]
        if config is not None:
            argv += ["--config", str(config)]
        if zones is not None:
            argv += ["--zones", str(zones)]
        if "--listen" not in args and config is None:
            argv += ["--listen", "127.0.0.1:0"]
        argv += list(args)
        self.argv = argv
        self.env = {**os.environ, **(env or {})}
        self.cpus = cpus   # pin the server (and the workers it forks) to these cores
        self.proc: subprocess.Popen | None = None
        self.addr: tuple[str, int] = ("127.0.0.1", 0)

    def start(self, timeout: float = 20.0) -> SeawallProcess:
        self.log = open(self.log_path, "wb")
        cpus = self.cpus
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env, preexec_fn=pin)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"seawall exited with {self.proc.returncode}:\n{self.output()}")
            if self.ready.exists():
                info = json.loads(self.ready.read_text())
                first = info["listen"][0]
                self.addr = (first["host"], first["port"])
                self.pid = info["pid"]
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"seawall did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def __enter__(self) -> SeawallProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def decode_twice(wire: bytes) -> dns.message.Message:
    """Parse with dnspython and with dnslib; either one failing fails the test."""
    message = dns.message.from_wire(wire)
    try:
        dnslib.DNSRecord.parse(wire)
    except Exception as exc:  # dnslib raises assorted errors on bad input
        pytest.fail(f"dnslib rejects a response dnspython accepted: {exc!r}: {wire.hex()}")
    return message


def ask(addr: tuple[str, int], qname: str, qtype: str = "A", *, tcp: bool = False,
        edns: int | bool = 0, payload: int = 1232, dnssec: bool = False, rd: bool = False,
        qclass: str = "IN", timeout: float = 3.0) -> dns.message.Message:
    """One query to ``addr``; the response, decoded by both parsers."""
    use_edns = False if edns is False else (0 if edns is True else edns)
    query = dns.message.make_query(qname, qtype, qclass, use_edns=use_edns, payload=payload,
                                   want_dnssec=dnssec, flags=dns.flags.RD if rd else 0)
    return exchange(addr, query.to_wire(), tcp=tcp, timeout=timeout)


def exchange(addr: tuple[str, int], wire: bytes, *, tcp: bool = False,
             timeout: float = 3.0) -> dns.message.Message:
    raw = exchange_raw(addr, wire, tcp=tcp, timeout=timeout)
    if raw is None:
        pytest.fail(f"no answer from {addr} over {'TCP' if tcp else 'UDP'}")
    return decode_twice(raw)


def exchange_raw(addr: tuple[str, int], wire: bytes, *, tcp: bool = False,
                 timeout: float = 3.0) -> bytes | None:
    """Send raw bytes; the raw reply, or None if nothing came back in time."""
    if tcp:
        with socket.create_connection(addr, timeout=timeout) as sock:
            sock.sendall(len(wire).to_bytes(2, "big") + wire)
            try:
                size = int.from_bytes(recv_exact(sock, 2), "big")
                return recv_exact(sock, size)
            except (OSError, EOFError):
                return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(wire, addr)
        try:
            return sock.recv(65535)
        except OSError:
            return None


def wait_for(predicate, timeout: float = 15.0, step: float = 0.05):
    """Poll ``predicate`` until it returns something true (returned) or ``timeout``
    seconds pass (then its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def rrset_texts(section) -> set[str]:
    """A section as a set of 'name ttl class type rdata' lines, names lowercased."""
    out = set()
    for rrset in section:
        for rdata in rrset:
            out.add(f"{rrset.name.to_text().lower()} {rrset.ttl} "
                    f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}")
    return out


def zone_from_text(origin: str, text: str, *, strict: bool = True) -> Zone:
    """A Zone built by the real reader and checks from master-file text.

    Errors fail the test; warnings are allowed (tests build odd zones on purpose).
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{origin.rstrip('.')}.zone"
        path.write_text(text)
        loaded = load_zone_file(path, strict=strict)
    errors = [str(p) for p in loaded.errors]
    if errors or loaded.zone is None:
        pytest.fail(f"zone {origin} does not load: {errors}")
    return loaded.zone


@pytest.fixture
def zones_dir(tmp_path: Path) -> Path:
    """A fresh copy of the project's example zones."""
    target = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", target)
    return target


@pytest.fixture
def seawall(tmp_path: Path, zones_dir: Path) -> Iterator[SeawallProcess]:
    """Seawall serving a copy of ``zones/`` on a free port."""
    with SeawallProcess(tmp_path, zones=zones_dir, env={"PYTHONPATH": str(ROOT)}) as server:
        yield server
