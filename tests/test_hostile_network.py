"""A real server under hostile connections and datagrams (issue 14, findings 2 and 3).

Each test attacks a server process as a client on loopback would: idle
connections to the metrics port and NOTIFYs over TCP under a low descriptor
limit (the supervisor must keep the descriptors it needs for its own zone
files), and a flood of NOTIFYs over UDP, which must be rate limited before
the workers hand them to the supervisor.
"""

from __future__ import annotations

import json
import resource
import select
import signal
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

import conftest
from conftest import ROOT, SeawallProcess, ask, wait_for
from seawall.budgets import ConnectionBudget, LogLimiter
from seawall.failover.control_client import ControlClient

DESCRIPTORS = 200


class LimitedProcess(SeawallProcess):
    """``seawall serve`` started with ``ulimit -n DESCRIPTORS``."""

    def start(self, timeout: float = 20.0) -> SeawallProcess:
        real = subprocess.Popen

        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))

        def popen(*args, **kwargs):
            pin = kwargs.pop("preexec_fn", None)   # SeawallProcess's CPU pinning, if any

            def before_exec() -> None:
                if pin is not None:
                    pin()
                limited()
            return real(*args, preexec_fn=before_exec, **kwargs)

        with mock.patch.object(conftest.subprocess, "Popen", popen):
            return super().start(timeout)


def serve(tmp_path: Path, zones_dir: Path, extra: str = "", *, limited: bool = False,
          workers: int = 2) -> SeawallProcess:
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\nworkers: {workers}\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\nstate_dir: state\n"
                      "failover: {probe_interval: 0.5s, fail_after: 2}\n" + extra)
    cls = LimitedProcess if limited else SeawallProcess
    return cls(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)})


def zone_states(tmp_path: Path) -> dict[str, str]:
    answer = ControlClient(state_dir=tmp_path / "state", timeout=5).call("status")
    return {z["zone"]: z["state"] for z in answer["status"]["zones"]}


def metrics_port(server: SeawallProcess) -> int:
    return json.loads(server.ready.read_text())["metrics_port"]


def hold_connections(stack: ExitStack, addr: tuple[str, int], count: int,
                     sources: tuple[str, ...] = ("127.0.0.1",),
                     first: bytes = b"") -> list[socket.socket]:
    """``count`` TCP connections to ``addr`` (spread over ``sources``), each sending
    ``first``; those the server refused at once are left out."""
    held = []
    for index in range(count):
        sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.bind((sources[index % len(sources)], 0))
        sock.settimeout(2)
        try:
            sock.connect(addr)
            if first:
                sock.sendall(first)
        except OSError:
            continue
        held.append(sock)
    return held


def still_open(socks: list[socket.socket]) -> int:
    """How many of ``socks`` the server has not closed."""
    alive = 0
    for sock in socks:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            alive += 1
            continue
        try:
            sock.setblocking(False)
            data = sock.recv(65535)
        except BlockingIOError:
            alive += 1
            continue
        except OSError:
            continue
        if data:
            alive += 1   # an answer (the NOTIFY's): the connection is still open
    return alive


def assert_healthy(server: SeawallProcess, tmp_path: Path) -> None:
    """Answers over UDP and TCP; a reload lists the zones directory; every zone live;
    no traceback in the log."""
    assert ask(server.addr, "www.example.com.").rcode() == dns.rcode.NOERROR
    assert ask(server.addr, "www.example.com.", tcp=True).rcode() == dns.rcode.NOERROR
    server.signal(signal.SIGHUP)   # the files backend lists its directory now
    time.sleep(2.0)                # > fail_after probes
    assert set(zone_states(tmp_path).values()) == {"live"}, server.output()[-3000:]
    assert "Traceback" not in server.output(), server.output()[-5000:]


# ------------------------------------------------------------- finding 2


def test_idle_metrics_connections_do_not_exhaust_descriptors(tmp_path, zones_dir):
    """400 idle connections to the metrics port under ulimit -n 200: before, the
    supervisor ran out of descriptors, its files backend could not list the zones
    directory and every zone went to emergency, with megabytes of tracebacks."""
    with serve(tmp_path, zones_dir, "metrics: {listen: '127.0.0.1:0'}\n",
               limited=True) as server, ExitStack() as stack:
        port = metrics_port(server)
        deadline = time.monotonic() + 4.0
        held: list[socket.socket] = []
        while time.monotonic() < deadline:   # keep 400 open, reopening what was closed
            held = [s for s in held if still_open([s])]
            held += hold_connections(stack, ("127.0.0.1", port), 400 - len(held))
            time.sleep(0.5)
        assert still_open(held) <= 16, "the metrics listener holds at most max_connections"
        assert_healthy(server, tmp_path)
        refused = server.output().count("connection refused: listener=metrics")
        assert 1 <= refused <= 5, "the budget says so, a line every 10 s at most"


def test_connections_handed_over_by_notify_stay_within_budget(tmp_path, zones_dir):
    """NOTIFY over TCP moves the connection to the supervisor: 240 of them from four
    addresses under ulimit -n 200 must not take the supervisor's descriptors."""
    notify = dns.message.make_query("example.com.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    wire = notify.to_wire()
    framed = len(wire).to_bytes(2, "big") + wire
    sources = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
    with serve(tmp_path, zones_dir, "tcp_idle_timeout: 30s\n",
               limited=True) as server, ExitStack() as stack:
        held = hold_connections(stack, server.addr, 240, sources, framed)
        time.sleep(1.0)
        assert still_open(held) <= DESCRIPTORS - 100
        assert_healthy(server, tmp_path)
        assert "connection refused: listener=dns-tcp budget=total" in server.output()


def test_one_ipv4_prefix_shares_one_budget(tmp_path, zones_dir):
    """tcp_client_ipv4_prefix: 24 makes 127.0.0.1 and 127.0.0.2 one client."""
    extra = "tcp_max_per_client: 4\ntcp_client_ipv4_prefix: 24\n"
    with serve(tmp_path, zones_dir, extra, workers=1) as server, ExitStack() as stack:
        held = hold_connections(stack, server.addr, 8, ("127.0.0.1", "127.0.0.2"))
        time.sleep(0.5)
        assert still_open(held) == 4
        # Another /24 is another client.
        other = hold_connections(stack, server.addr, 2, ("127.0.1.1",))
        time.sleep(0.3)
        assert still_open(other) == 2
        assert "budget=prefix limit=4 client=127.0.0.0/24" in server.output()


def test_ipv6_budget_counts_the_whole_slash_64():
    budget = ConnectionBudget("dns-tcp", total=1000, per_prefix=3, bound_by_descriptors=False)
    hosts = [f"2001:db8:1:2::{n:x}" for n in range(1, 6)]
    taken = [budget.take(h) for h in hosts]
    assert taken[:3] == [None] * 3
    assert [r.budget for r in taken[3:]] == ["prefix", "prefix"]
    assert budget.take("2001:db8:1:3::1") is None          # the next /64
    budget.give_back(hosts[0])
    assert budget.take(hosts[4]) is None
    assert budget.prefix_of("::ffff:192.0.2.7") == "192.0.2.7/32"


def test_budget_total_follows_the_descriptor_limit():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = ConnectionBudget("x", total=10**9, per_prefix=10)
    assert budget.total <= max(16, soft - 128)


def test_log_limiter_counts_what_it_held_back():
    now = [0.0]
    lines = []

    class Logger:
        def log(self, level, message, *args):
            lines.append(message % args)

    limiter = LogLimiter(Logger(), interval=10, clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(1000):
        limiter.warning("k", "refused: n=%d", 1)
    now[0] = 11
    limiter.warning("k", "refused: n=%d", 2)
    assert lines == ["refused: n=1 suppressed=0", "refused: n=2 suppressed=999"]


# ------------------------------------------------------------- finding 3


@pytest.mark.parametrize("workers", [1, 2])
def test_notify_flood_over_udp_is_rate_limited(tmp_path, zones_dir, workers):
    """600 NOTIFYs from one non-exempt source: before, 600 answers (and 600 log
    lines) while the same burst of queries was limited; now the errors budget
    limits them before they reach the supervisor."""
    rrl = "rrl: {errors_per_second: 20, slip: 2, exempt: []}\n"
    notify = dns.message.make_query("example.com.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    with serve(tmp_path, zones_dir, rrl, workers=workers) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            started = time.monotonic()
            for n in range(600):
                notify.id = n
                sock.sendto(notify.to_wire(), server.addr)
            elapsed = time.monotonic() - started
            full = truncated = 0
            sock.settimeout(1.0)
            while True:
                try:
                    reply = dns.message.from_wire(sock.recv(4096))
                except socket.timeout:
                    break
                if reply.flags & dns.flags.TC:
                    truncated += 1
                else:
                    full += 1
        windows = int(elapsed) + 2
        assert full <= 20 * windows, (full, truncated, elapsed)
        assert truncated >= 100, (full, truncated)
        # The log has a line per NOTIFY that got through, not one per NOTIFY sent.
        wait_for(lambda: "notify refused" in server.output(), timeout=3)
        assert server.output().count("notify refused") <= 20 * windows
        assert "Traceback" not in server.output()
