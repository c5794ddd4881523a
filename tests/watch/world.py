"""A small internet on loopback for the watch tests.

Every server listens on the same port on its own loopback address
(127.X.Y.n, X and Y random so parallel runs do not meet), as on a real
network where every nameserver answers on port 53:

* ``.1`` Knot serving a fake root ``.`` that delegates ``test.`` to
* ``.2`` and ``.3``, two Knot servers of the signed TLD ``test.``, which
  delegate ``example.test.`` (NS + glue + DS) to
* ``.4`` Seawall, serving ``example.test.`` signed, with an emergency file
  signed with the same keys, and the watch on (root hints: ``.1``);
* ``.5`` a Knot secondary of Seawall (no NOTIFY: it refreshes when told);
* ``.6`` Unbound validating with ``test.``'s DS as its trust anchor.

Parent edits re-sign ``test.`` with its keys and reload Knot; ``served_at``
says when the parent answers with the change, so detection times are
measured from the moment the world could see it.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode

from conftest import ROOT, SeawallProcess, require_tool

from seawall.failover.control_client import ControlClient

sys.path.insert(0, str(ROOT / "tests" / "dnssec"))
from dnssec_signing import make_keys, sign  # noqa: E402

ZONE = "example.test"
TLD = "test"


def pick_network() -> tuple[str, int]:
    """A 127.X.Y prefix and a port free on the six addresses used, UDP and TCP."""
    for _ in range(50):
        prefix = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"
        port = random.randint(20000, 60000)
        try:
            for n in range(1, 10):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind((f"{prefix}.{n}", port))
        except OSError:
            continue
        return prefix, port
    raise RuntimeError("no free loopback port")


def soa_serial(address: str, port: int, zone: str) -> int | None:
    query = dns.message.make_query(zone.rstrip(".") + ".", "SOA")
    try:
        response = dns.query.udp(query, address, port=port, timeout=0.5)
    except Exception:
        return None
    for rrset in response.answer:
        if rrset.rdtype == 6:
            return rrset[0].serial
    return None


class KnotServer:
    """knotd on one loopback address for some zones (primary or secondary)."""

    def __init__(self, work: Path, address: str, port: int, zones: dict[str, str | None], *,
                 primary: str | None = None) -> None:
        require_tool("knotd", "knotc")
        self.work, self.address, self.port = work, address, port
        work.mkdir(parents=True, exist_ok=True)
        self.conf = work / "knot.conf"
        self.zones = zones
        remote = acl = ""
        if primary is not None:
            host, p = primary.rsplit(":", 1)
            remote = f"remote:\n  - id: primary\n    address: {host}@{p}\n"
            acl = "acl:\n  - id: notify\n    address: 127.0.0.0/8\n    action: notify\n"
        conf = (f"server:\n  listen: {address}@{port}\n  rundir: {work}\n"
                f"control:\n  listen: {work}/knot.sock\n"
                f"database:\n  storage: {work}\n"
                f"log:\n  - target: stderr\n    any: info\n{remote}{acl}"
                f"template:\n  - id: default\n    zonefile-sync: -1\n"
                f"    journal-content: none\n    zonefile-load: whole\n"
                f"    semantic-checks: off\n"
                f"zone:\n")
        for origin in zones:
            conf += f"  - domain: \"{origin}.\"\n    file: \"{work}/{origin or 'root'}.zone\"\n"
            if primary is not None:
                conf += "    master: primary\n    acl: notify\n"
        self.conf.write_text(conf)
        for origin, text in zones.items():
            if text is not None:
                self.write(origin, text)
        self.proc: subprocess.Popen | None = None

    def write(self, origin: str, text: str) -> None:
        (self.work / f"{origin or 'root'}.zone").write_text(text)

    def start(self) -> KnotServer:
        self.log = open(self.work / "knotd.log", "ab")
        self.proc = subprocess.Popen(["knotd", "-c", str(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        return self

    def knotc(self, *args: str) -> None:
        subprocess.run(["knotc", "-c", str(self.conf), *args], check=True,
                       capture_output=True, timeout=10)

    def reload(self, origin: str, serial: int, timeout: float = 10.0) -> float:
        """Reload ``origin`` from its file; the monotonic time it answers with ``serial``."""
        self.knotc("zone-reload", origin + ".")
        return self.wait_serial(origin, serial, timeout)

    def wait_serial(self, origin: str, serial: int, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while soa_serial(self.address, self.port, origin) != serial:
            if time.monotonic() > deadline:
                raise RuntimeError(f"knot {self.address} did not serve {origin} serial "
                                   f"{serial}:\n" + (self.work / "knotd.log").read_text()[-3000:])
            time.sleep(0.02)
        return time.monotonic()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


def root_text(prefix: str, serial: int = 1) -> str:
    return (f"$TTL 3600\n. SOA a.root-servers.test. hostmaster.test. {serial} 1800 900 "
            f"604800 60\n. NS a.root-servers.test.\na.root-servers.test. A {prefix}.1\n"
            f"test. NS ns1.nic.test.\ntest. NS ns2.nic.test.\n"
            f"ns1.nic.test. A {prefix}.2\nns2.nic.test. A {prefix}.3\n")


def child_text(prefix: str, serial: int, www: str = "192.0.2.80") -> str:
    return (f"$ORIGIN {ZONE}.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 1209600 60\n"
            f"@ NS ns1\nns1 A {prefix}.4\nwww A {www}\nmail A 192.0.2.25\n@ MX 10 mail\n")


class World:
    """The whole set-up; ``parent()`` edits the TLD zone on one or both TLD servers."""

    def __init__(self, work: Path, *, interval: float = 1.0, ds_ttl: int = 2) -> None:
        require_tool("knotd", "knotc", "unbound", "dnssec-signzone", "dnssec-keygen")
        self.work = work
        self.interval = interval
        self.ds_ttl = ds_ttl
        self.prefix, self.port = pick_network()
        p = self.prefix
        self.addr = {n: f"{p}.{n}" for n in range(1, 10)}
        self.tld_keys = work / "tld-keys"
        self.child_keys = work / "child-keys"
        self.other_keys = work / "other-keys"
        make_keys(TLD, self.tld_keys)
        make_keys(ZONE, self.child_keys)
        make_keys(ZONE, self.other_keys)     # an unrelated key of the same zone
        self.child_serial = 10
        self.zones = work / "zones"
        (self.zones / "emergency").mkdir(parents=True)
        self.write_child(self.child_serial)
        emergency = sign(child_text(p, 1, www="192.0.2.99"), ZONE, self.child_keys,
                         output=self.child_keys / "emergency.signed")
        shutil.copy(emergency, self.zones / "emergency" / f"{ZONE}.zone")
        self.tld_serial = 100
        self.delegation = self.default_delegation()
        self.root = KnotServer(work / "root", self.addr[1], self.port, {"": root_text(p)})
        tld = self.tld_text(self.delegation, self.tld_serial)
        self.tlds = [KnotServer(work / f"tld{n}", self.addr[n], self.port, {TLD: tld})
                     for n in (2, 3)]
        self.secondary = KnotServer(work / "secondary", self.addr[5], self.port, {ZONE: None},
                                    primary=f"{self.addr[4]}:{self.port}")
        self.seawall: SeawallProcess | None = None
        self.unbound: subprocess.Popen | None = None

    # ------------------------------------------------------------- zones

    def ds_records(self, keydir: Path) -> str:
        """DS (SHA-256) of the KSKs in ``keydir``, with the short test TTL."""
        out = []
        for key in sorted(keydir.glob(f"K{ZONE}.+*.key")):
            if " 257 " not in key.read_text():
                continue
            line = subprocess.run(["dnssec-dsfromkey", "-2", str(key)], check=True,
                                  capture_output=True, text=True).stdout.split()
            at = line.index("DS")
            out.append(" ".join([line[0], str(self.ds_ttl)] + line[at:at + 4]
                                + ["".join(line[at + 4:])]))
        return "\n".join(out)

    def default_delegation(self) -> str:
        p = self.prefix
        return (f"{ZONE}. 300 NS ns1.{ZONE}.\nns1.{ZONE}. 300 A {p}.4\n"
                + self.ds_records(self.child_keys) + "\n")

    def tld_text(self, delegation: str, serial: int) -> str:
        p = self.prefix
        unsigned = (f"$ORIGIN {TLD}.\n$TTL 300\n@ SOA ns1.nic hostmaster {serial} 3600 600 "
                    f"1209600 60\n@ NS ns1.nic\n@ NS ns2.nic\nns1.nic A {p}.2\n"
                    f"ns2.nic A {p}.3\n" + delegation)
        return sign(unsigned, TLD, self.tld_keys).read_text()

    def write_child(self, serial: int, keys: Path | None = None) -> None:
        signed = sign(child_text(self.prefix, serial), ZONE, keys or self.child_keys,
                      output=(keys or self.child_keys) / f"{ZONE}.signed")
        tmp = self.zones / f".{ZONE}.tmp"
        shutil.copy(signed, tmp)
        tmp.replace(self.zones / f"{ZONE}.zone")
        self.child_serial = serial

    def parent(self, delegation: str, servers: tuple[int, ...] = (0, 1)) -> float:
        """Publish ``delegation`` on the given TLD servers; when all of them serve it."""
        self.tld_serial += 1
        text = self.tld_text(delegation, self.tld_serial)
        served_at = 0.0
        for index in servers:
            self.tlds[index].write(TLD, text)
            served_at = max(served_at, self.tlds[index].reload(TLD, self.tld_serial))
        return served_at

    def restore_parent(self) -> float:
        return self.parent(self.delegation)

    # ------------------------------------------------------------ running

    def config(self) -> Path:
        p, port = self.prefix, self.port
        path = self.work / "seawall.yaml"
        path.write_text(
            f"listen: [\"{p}.4:{port}\"]\nzones: zones\nemergency_dir: zones/emergency\n"
            f"state_dir: state\nworkers: 1\nmetrics: {{listen: \"127.0.0.1:0\"}}\n"
            f"failover: {{probe_interval: 200ms, max_change_ratio: 1.0}}\n"   # re-signing changes every RRSIG

            f"transfers:\n  allow: [{{address: [\"127.0.0.0/8\"]}}]\n"
            f"watch:\n  interval: {self.interval}s\n  timeout: 300ms\n"
            f"  root_hints: [\"{p}.1:{port}\"]\n  port: {port}\n  drift_after: 0s\n"
            f"  peers: [{{address: \"{p}.5:{port}\", name: knot-secondary}}]\n")
        return path

    def start(self) -> World:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> World:
        self.root.start()
        for tld in self.tlds:
            tld.start()
        self.root.wait_serial("", 1)
        for tld in self.tlds:
            tld.wait_serial(TLD, self.tld_serial)
        self.seawall = SeawallProcess(self.work, config=self.config(),
                                      env={"PYTHONPATH": str(ROOT)}).start()
        self.secondary.start()
        self.secondary.wait_serial(ZONE, self.child_serial, timeout=20)
        self.start_unbound()
        return self

    def start_unbound(self, validated: bool = True) -> None:
        """Unbound on .6; wait until it validates www (or, not ``validated``, answers)."""
        p, port = self.prefix, self.port
        words = (self.tld_keys / f"dsset-{TLD}.").read_text().split()
        anchor = " ".join([words[0]] + words[2:6] + ["".join(words[6:])])   # digest in one
        conf = self.work / "unbound.conf"
        conf.write_text("\n".join([
            "server:", f"  interface: {p}.6@{port}", f"  port: {port}", "  chroot: \"\"",
            "  username: \"\"", f"  directory: \"{self.work}\"", "  pidfile: \"\"",
            "  do-not-query-localhost: no", "  use-syslog: no", "  verbosity: 1",
            "  module-config: \"validator iterator\"", "  val-log-level: 2",
            "  local-zone: \"test.\" nodefault", "  cache-max-ttl: 1",
            "  cache-max-negative-ttl: 1", "  infra-host-ttl: 1",
            f"  trust-anchor: \"{anchor}\"",
            "stub-zone:", f"  name: \"{TLD}.\"", f"  stub-addr: {p}.2@{port}",
            "stub-zone:", f"  name: \"{ZONE}.\"", f"  stub-addr: {p}.4@{port}"]) + "\n")
        self.unbound_log = open(self.work / "unbound.log", "wb")
        self.unbound = subprocess.Popen(["unbound", "-d", "-c", str(conf)],
                                        stdout=self.unbound_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            answer = self.resolve(f"www.{ZONE}.")
            if answer is not None and (answer.flags & dns.flags.AD or not validated):
                return   # the chain of trust from test.'s anchor validates
            time.sleep(0.1)
        raise RuntimeError("unbound did not validate www:\n"
                           + (self.work / "unbound.log").read_text()[-3000:])

    def restart_unbound(self, validated: bool = True) -> None:
        """A resolver with an empty cache (and key cache): what a fresh one sees now."""
        self.stop_unbound()
        self.start_unbound(validated)

    def stop_unbound(self) -> None:
        if self.unbound is not None and self.unbound.poll() is None:
            self.unbound.terminate()
            self.unbound.wait(timeout=5)
            self.unbound_log.close()
        self.unbound = None

    def resolve(self, name: str) -> dns.message.Message | None:
        """Ask the validating resolver (RD, DO)."""
        query = dns.message.make_query(name, "A", want_dnssec=True)
        try:
            return dns.query.udp(query, self.addr[6], port=self.port, timeout=2)
        except Exception:
            return None

    def stop(self) -> None:
        self.stop_unbound()
        if self.seawall is not None:
            self.seawall.stop()
        for server in [self.secondary, *self.tlds, self.root]:
            server.stop()

    # ------------------------------------------------------------ looking

    def status(self) -> dict[str, Any]:
        return ControlClient(state_dir=self.work / "state").call("status")["status"]

    def findings(self) -> list[dict[str, Any]]:
        watch = self.status().get("watch") or {}
        return (watch.get("zones") or {}).get(f"{ZONE}.", {}).get("findings", [])

    def rounds(self) -> int:
        return (self.status().get("watch") or {}).get("rounds", 0)

    def zone_status(self) -> dict[str, Any]:
        return next(z for z in self.status()["zones"] if z["zone"] == f"{ZONE}.")

    def events(self) -> list[dict[str, Any]]:
        path = self.work / "state" / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def wait_finding(self, kind: str, since: float, timeout: float = 15.0,
                     server: str | None = None) -> tuple[float, dict[str, Any]]:
        """Poll status until a ``kind`` finding stands; (seconds after ``since``, finding)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for finding in self.findings():
                if finding["kind"] == kind and (server is None or server in finding["server"]):
                    return time.monotonic() - since, finding
            time.sleep(0.05)
        raise AssertionError(f"no {kind} finding within {timeout}s: {self.findings()}")

    def wait_clear(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.findings():
                return
            time.sleep(0.1)
        raise AssertionError(f"findings still standing: {self.findings()}")
