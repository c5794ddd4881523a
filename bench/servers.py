"""Start Seawall, NSD and Knot on free loopback ports, pinned to a core.

Each server runs in the foreground under ``taskset``, is stopped by its PID,
and is measured through ``/proc``: CPU ticks (utime+stime) and memory of its
whole process tree (NSD forks a server child; Knot and Seawall do not, unless
Seawall runs several workers).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
FORBIDDEN_PORTS = {15401, 15402}   # the conformance harness's fixed ports
PROBE_ID = 0x5EA1


def free_port() -> int:
    """A loopback port free for UDP and TCP, never one of the conformance ports."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            if port in FORBIDDEN_PORTS:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def soa_query(origin: str) -> bytes:
    labels = b"".join(bytes((len(p),)) + p.encode() for p in origin.rstrip(".").split("."))
    return (PROBE_ID.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
            + labels + b"\x00\x00\x06\x00\x01")


def answers(port: int, probe: bytes, timeout: float = 0.2) -> bool:
    """True when the server gives a NOERROR answer with records to ``probe``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(probe, ("127.0.0.1", port))
            reply = sock.recv(4096)
        except OSError:
            return False
    return (len(reply) >= 12 and reply[:2] == probe[:2] and reply[3] & 0x0F == 0
            and reply[6:8] != b"\x00\x00")


# ------------------------------------------------------------------ /proc

def tree_pids(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def cpu_seconds(root: int) -> float:
    """utime+stime of the live process tree, with the children each one reaped
    (Seawall's retired workers), in seconds (proc(5): fields 14-17)."""
    ticks = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def memory_kib(root: int) -> dict[str, int]:
    """RSS, PSS and peak RSS (VmHWM) of the tree, in KiB."""
    rss = pss = hwm = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_kib": rss, "pss_kib": pss, "peak_rss_kib": hwm}


# ---------------------------------------------------------------- servers

@dataclass
class Server:
    """One server under test: how to configure, start and stop it."""

    name: str
    zone_file: Path
    origin: str
    work: Path
    cpu: int | str = 1     # taskset -c: one core, or a list such as "0,1"
    port: int = 0
    proc: subprocess.Popen | None = None
    load_seconds: float = 0.0
    settled_seconds: float = 0.0
    extra: tuple[str, ...] = ()
    processes: int = 1     # NSD's server-count (Seawall takes --workers in extra)

    def argv(self) -> list[str]:
        raise NotImplementedError

    def available(self) -> bool:
        return True

    def start(self, timeout: float = 120.0) -> None:
        """Start pinned to ``cpu``; return once the zone answers (load time measured)."""
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        argv = ["taskset", "-c", str(self.cpu)] + self.argv()
        self.log_path = self.work / f"{self.name}.log"
        self.log = open(self.log_path, "wb")
        started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.work, start_new_session=True)
        probe = soa_query(self.origin)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            if answers(self.port, probe):
                self.load_seconds = time.monotonic() - started
                self.settle(started, deadline)
                return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"{self.name} did not answer within {timeout:.0f} s")

    def settle(self, started: float, deadline: float) -> None:
        """Wait until the server is idle (Seawall builds answers in the background):
        three quiet half-seconds in a row, since Seawall looks for versions to
        build ahead (its emergency versions) once a second."""
        self.settled_seconds = self.load_seconds
        quiet = 0
        while time.monotonic() < deadline:
            before = cpu_seconds(self.pid)
            time.sleep(0.5)
            quiet = quiet + 1 if cpu_seconds(self.pid) - before < 0.05 else 0
            if quiet == 3:
                self.settled_seconds = time.monotonic() - started - 1.5
                return

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()


class Seawall(Server):
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "seawall", "serve", "--zones", str(self.zone_file.parent),
                "--listen", f"127.0.0.1:{self.port}", "--log-level", "warning", *self.extra]

    def start(self, timeout: float = 120.0) -> None:
        os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
        super().start(timeout)


class Nsd(Server):
    def available(self) -> bool:
        return shutil.which("nsd") is not None

    def argv(self) -> list[str]:
        w = self.work
        conf = (f"server:\n  ip-address: 127.0.0.1@{self.port}\n  port: {self.port}\n"
                f"  username: \"\"\n  database: \"\"\n  zonelistfile: \"{w}/zone.list\"\n"
                f"  xfrdfile: \"{w}/xfrd.state\"\n  pidfile: \"{w}/nsd.pid\"\n"
                f"  server-count: {self.processes}\n  hide-version: yes\n  hide-identity: yes\n"
                f"  verbosity: 1\n"
                # PEERS.md: the Debian build rate-limits one source to 200 qps by default.
                f"  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n"
                f"remote-control:\n  control-enable: no\n"
                f"zone:\n  name: \"{self.origin}\"\n  zonefile: \"{self.zone_file}\"\n")
        (w / "nsd.conf").write_text(conf)
        return ["nsd", "-d", "-c", str(w / "nsd.conf")]


class Knot(Server):
    def available(self) -> bool:
        return shutil.which("knotd") is not None

    def argv(self) -> list[str]:
        w = self.work
        conf = (f"server:\n  listen: 127.0.0.1@{self.port}\n  rundir: {w}\n"
                f"  identity: \"\"\n  version: \"\"\n"
                f"  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"
                f"database:\n  storage: {w}\n"
                f"log:\n  - target: stderr\n    any: warning\n"
                f"template:\n  - id: default\n    zonefile-sync: -1\n"
                f"    journal-content: none\n    semantic-checks: off\n"
                f"zone:\n  - domain: \"{self.origin}\"\n    file: \"{self.zone_file}\"\n")
        (w / "knot.conf").write_text(conf)
        return ["knotd", "-c", str(w / "knot.conf")]


KINDS = {"seawall": Seawall, "nsd": Nsd, "knot": Knot}
