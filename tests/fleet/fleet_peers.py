"""A fleet on loopback: a 3-member etcd cluster, a Knot hidden primary, 3 Seawall servers.

etcd runs as three foreground processes on free ports (PEERS.md, "etcd");
each member can be killed and started again on its data directory. Every
Seawall server pulls example.net from the one Knot (so the backend can fail
for all at once) and reads example.org from its own directory (so one server
can be offered a version the others are not).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import SeawallProcess, free_port, require_tool
from failover.failover_peers import Knot, QueryLoop, emergency_text, zone_text
from seawall.failover.control_client import ControlClient
from seawall.fleet.etcd import EtcdClient, EtcdError
from seawall.fleet.orders import read_view
from seawall.fleet.view import FleetView

NET = "example.net"
ORG = "example.org"
NAMES = ("edge-1", "edge-2", "edge-3")
ROOT = Path(__file__).resolve().parents[2]


class EtcdCluster:
    """Three etcd members on loopback, each its own process (stopped by PID)."""

    def __init__(self, work: Path, size: int = 3) -> None:
        require_tool("etcd", "etcdctl")
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.names = [f"e{i + 1}" for i in range(size)]
        self.peer = {n: free_port() for n in self.names}
        self.client = {n: free_port() for n in self.names}
        self.procs: dict[str, subprocess.Popen] = {}
        self.token = f"seawall-test-{os.getpid()}-{time.monotonic_ns()}"

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{self.client[n]}" for n in self.names]

    def argv(self, name: str) -> list[str]:
        cluster = ",".join(f"{n}=http://127.0.0.1:{self.peer[n]}" for n in self.names)
        return ["etcd", "--name", name, "--data-dir", str(self.work / name),
                "--listen-peer-urls", f"http://127.0.0.1:{self.peer[name]}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer[name]}",
                "--listen-client-urls", f"http://127.0.0.1:{self.client[name]}",
                "--advertise-client-urls", f"http://127.0.0.1:{self.client[name]}",
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token, "--log-level", "warn"]

    def start_member(self, name: str) -> None:
        log = open(self.work / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(self.argv(name), stdout=log,
                                            stderr=subprocess.STDOUT)
        log.close()

    def start(self, timeout: float = 20.0) -> EtcdCluster:
        for name in self.names:
            if name not in self.procs or self.procs[name].poll() is not None:
                self.start_member(name)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        client = EtcdClient(self.endpoints, 1.0)
        while time.monotonic() < deadline:
            try:
                asyncio.run(client.put("/seawall-test/health", b"ok"))
                return
            except EtcdError:
                time.sleep(0.2)
        raise RuntimeError(f"etcd did not become healthy: {self.output()}")

    def kill_member(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def signal_all(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(sig)

    def stop(self) -> None:
        self.signal_all(signal.SIGCONT)
        for name in self.names:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in self.names:
            proc = self.procs.get(name)
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def output(self) -> str:
        return "\n".join((self.work / f"{n}.log").read_text(errors="replace")[-2000:]
                         for n in self.names if (self.work / f"{n}.log").exists())


def org_text(serial: int, extra: str = "") -> str:
    return zone_text(ORG, serial, hosts=20, extra=extra)


class Fleet:
    """The three servers, their directories, and the etcd and Knot they use."""

    def __init__(self, work: Path, etcd: EtcdCluster, knot: Knot, *, quorum: int = 2,
                 grace: float = 4.0, tcp_control: tuple[str, ...] = ()) -> None:
        # Members named in tcp_control also get a signed TCP control listener (port 0)
        # with the shared secret in work/control.secret.
        self.secret = work / "control.secret"
        if tcp_control:
            self.secret.write_text("fleet-drill-secret-0123456789\n")
            self.secret.chmod(0o600)
        self.work = work
        self.etcd = etcd
        self.knot = knot
        self.servers: dict[str, SeawallProcess] = {}
        self.dirs: dict[str, Path] = {}
        for name in NAMES:
            d = work / name
            (d / "zones").mkdir(parents=True)
            (d / "emergency").mkdir()
            (d / "zones" / f"{ORG}.zone").write_text(org_text(1))
            for zone in (NET, ORG):
                (d / "emergency" / f"{zone}.zone").write_text(emergency_text(zone))
            endpoints = ", ".join(f'"{e}"' for e in etcd.endpoints)
            (d / "seawall.yaml").write_text(
                f"listen: [\"127.0.0.1:{free_port()}\"]\nworkers: 1\n"
                f"state_dir: state\nemergency_dir: emergency\nzones: zones\n"
                f"backends:\n  - type: axfr\n    primary: \"127.0.0.1:{knot.port}\"\n"
                f"    zones: [{NET}]\n  - type: files\n    path: zones\n"
                f"failover:\n  probe_interval: 0.5s\n  probe_timeout: 0.5s\n"
                f"  fail_after: 2\n  recover_after: 3\n  stale_for: 0s\n  startup_wait: 3s\n"
                f"  flap_half_life: 1s\n"
                f"fleet:\n  etcd: [{endpoints}]\n  name: {name}\n  quorum: {quorum}\n"
                f"  lease_ttl: 3s\n  grace: {grace}s\n"
                + (f"control:\n  listen: \"127.0.0.1:0\"\n  secret_file: {self.secret}\n"
                   if name in tcp_control else ""))
            self.dirs[name] = d

    def start(self) -> Fleet:
        for name in NAMES:
            self.servers[name] = SeawallProcess(self.dirs[name],
                                                config=self.dirs[name] / "seawall.yaml").start()
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def state_dir(self, name: str) -> Path:
        return self.dirs[name] / "state"

    def control(self, name: str) -> ControlClient:
        return ControlClient(state_dir=self.state_dir(name))

    def zone_status(self, name: str, zone: str) -> dict:
        status = self.control(name).call("status")["status"]
        return next(z for z in status["zones"] if z["zone"] == zone + ".")

    def states(self, zone: str) -> dict[str, str]:
        return {name: self.zone_status(name, zone)["state"] for name in NAMES}

    def view(self) -> FleetView:
        return asyncio.run(read_view(EtcdClient(self.etcd.endpoints, 1.0)))

    def loops(self, rate: float = 40.0) -> dict[str, QueryLoop]:
        return {name: QueryLoop(self.servers[name].addr, qname=f"www.{NET}.", rate=rate,
                                max_seconds=90).start() for name in NAMES}

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "seawall", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def etcd_args(self) -> list[str]:
        return [a for e in self.etcd.endpoints for a in ("--etcd", e)]

    def local(self, name: str) -> dict:
        path = self.state_dir(name) / "fleet.json"
        return json.loads(path.read_text()) if path.exists() else {}
