"""Several workers: forked generations serving the supervisor's sockets.

Each test runs a real ``seawall serve --workers 2`` and looks at its
processes in /proc: the supervisor answers nothing itself, its children do,
and a new generation replaces the old one on every change of the data.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.zone
import dnslib
import pytest

from conftest import (ROOT, SeawallProcess, ask, decode_twice, exchange, free_port, recv_exact,
                      wait_for)

ENV = {"PYTHONPATH": str(ROOT)}


def children(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry.name))
    return out


def state(pid: int) -> str:
    """The process state letter of ``pid`` (proc(5): R, S, T, Z...)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def wait_until(check, timeout: float = 10.0, what: str = "condition"):
    """``wait_for``, failing the test with ``what`` when the time runs out."""
    return wait_for(check, timeout) or pytest.fail(f"timed out waiting for {what}")


def settled_workers(server: SeawallProcess) -> set[int]:
    """The workers of the first generation that has the answer tables (a first
    generation forked before they were built serves cold and is replaced once
    the supervisor built them), once they are the only children left."""
    def warm() -> set[int] | None:
        found = re.findall(r"generation=\d+ serving pids=([\d,]+) .*, warm\)", server.output())
        if not found:
            return None
        pids = {int(pid) for pid in found[-1].split(",")}
        return pids if children(server.pid) == pids else None
    return wait_until(warm, what="the workers of the warm generation")


def bump(zones_dir: Path, serial: int, address: str) -> None:
    path = zones_dir / "example.com.zone"
    text = path.read_text()
    text = re.sub(r"2026112701", str(serial), text, count=1)
    text = text.replace("192.0.2.80", address)
    path.write_text(text)


def test_two_workers_answer_udp_and_tcp(tmp_path, zones_dir):
    with SeawallProcess(tmp_path, "--workers", "2", zones=zones_dir, env=ENV) as server:
        workers = settled_workers(server)
        for tcp in (False, True):
            reply = ask(server.addr, "www.example.com.", tcp=tcp)
            assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
            assert reply.answer[0][0].address == "192.0.2.80"
        assert ask(server.addr, "nope.example.com.").rcode() == dns.rcode.NXDOMAIN
        # The workers do the answering: stop them and nothing answers any more.
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        # SIGSTOP takes effect when delivered: wait until both really are stopped.
        wait_until(lambda: all(state(pid) == "T" for pid in workers), what="workers stopped")
        try:
            wire = dns.message.make_query("www.example.com.", "A").to_wire()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(0.5)
                sock.sendto(wire, server.addr)
                with pytest.raises(TimeoutError):
                    sock.recv(512)
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        # ...and the datagram queued meanwhile is answered once they run again.
        assert ask(server.addr, "www.example.com.").rcode() == dns.rcode.NOERROR


def test_a_reload_forks_a_new_generation_and_loses_nothing(tmp_path, zones_dir):
    with SeawallProcess(tmp_path, "--workers", "2", zones=zones_dir, env=ENV) as server:
        first = settled_workers(server)
        lost: list[str] = []
        seen: set[str] = set()
        order: list[str] = []   # the address of every answer, in order
        stop = threading.Event()

        def load() -> None:
            # A bounded loop of queries across the switch: every one is answered.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2.0)
                for n in range(20_000):
                    if stop.is_set():
                        return
                    query = dns.message.make_query("www.example.com.", "A")
                    sock.sendto(query.to_wire(), server.addr)
                    try:
                        reply = decode_twice(sock.recv(4096))
                    except TimeoutError:
                        lost.append(f"query {n}")
                        continue
                    seen.add(reply.answer[0][0].address)
                    order.append(reply.answer[0][0].address)

        thread = threading.Thread(target=load)
        thread.start()
        try:
            time.sleep(0.3)
            bump(zones_dir, 2026112702, "192.0.2.81")
            server.signal(signal.SIGHUP)
            wait_until(lambda: "192.0.2.81" in seen, what="the new data served")
            second = wait_until(lambda: (lambda c: len(c) == 2 and not c & first and c)(
                children(server.pid)), what="the old generation to exit")
            time.sleep(0.3)
        finally:
            stop.set()
            thread.join()
        assert not lost
        assert seen == {"192.0.2.80", "192.0.2.81"}
        # Once the new data was seen the old never came back (the generations
        # do not read the sockets at the same time).
        first_new = order.index("192.0.2.81")
        assert "192.0.2.80" not in order[first_new:]
        assert ask(server.addr, "www.example.com.").answer[0][0].address == "192.0.2.81"
        assert not (second & first)
    # The reload forked one generation, with its answer tables built first.
    last = re.findall(r"generation=\d+ serving .*", server.output())[-1]
    assert last.endswith(", warm)")


def test_a_killed_worker_is_replaced(tmp_path, zones_dir):
    with SeawallProcess(tmp_path, "--workers", "2", zones=zones_dir, env=ENV) as server:
        workers = settled_workers(server)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        # The other worker answers meanwhile.
        assert ask(server.addr, "www.example.com.").rcode() == dns.rcode.NOERROR
        after = wait_until(lambda: (lambda c: len(c) == 2 and victim not in c and c)(
            children(server.pid)), what="a replacement worker")
        assert victim not in after
        # The replacement itself answers: with the surviving worker stopped, it does.
        survivor = (workers - {victim}).pop()
        os.kill(survivor, signal.SIGSTOP)
        try:
            assert ask(server.addr, "www.example.com.", timeout=5).rcode() == dns.rcode.NOERROR
            assert ask(server.addr, "www.example.com.", tcp=True,
                       timeout=5).rcode() == dns.rcode.NOERROR
        finally:
            os.kill(survivor, signal.SIGCONT)
    assert re.search(rf"pid {victim} of generation \d+ died \(signal 9\)", server.output())


def test_workers_stop_with_the_supervisor(tmp_path, zones_dir):
    server = SeawallProcess(tmp_path, "--workers", "2", zones=zones_dir, env=ENV).start()
    workers = settled_workers(server)
    # SIGTERM: the supervisor stops its workers and exits cleanly.
    assert server.stop() == 0
    assert all(not Path(f"/proc/{pid}").exists() or
               Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
               for pid in workers)
    # SIGKILL: the workers see their channel close and stop by themselves.
    server = SeawallProcess(tmp_path, "--workers", "2", zones=zones_dir, env=ENV).start()
    workers = settled_workers(server)
    server.signal(signal.SIGKILL)
    server.stop()
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
               what="the orphaned workers to exit")


def test_metrics_sum_every_worker(tmp_path, zones_dir):
    port = free_port()
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\nworkers: 2\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\n"
                      f"metrics: {{listen: '127.0.0.1:{port}'}}\n")
    with SeawallProcess(tmp_path, config=config, env=ENV) as server:
        settled_workers(server)
        # Many queries from many sockets, so both workers take some.
        for n in range(200):
            ask(server.addr, "www.example.com.", tcp=n % 10 == 0)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        udp = _metric(text, 'seawall_responses_total{qtype="A",rcode="NOERROR",transport="udp"}')
        tcp = _metric(text, 'seawall_responses_total{qtype="A",rcode="NOERROR",transport="tcp"}')
        assert (udp, tcp) == (180, 20)
        assert _metric(text, 'seawall_answers_total{rcode="NOERROR",source="live",'
                             'zone="example.com."}') == 200


def _metric(text: str, series: str) -> float:
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name and _same_series(name, series):
            return float(value)
    return 0.0


def _same_series(a: str, b: str) -> bool:
    def parse(s: str):
        name, _, labels = s.partition("{")
        return name, frozenset(re.findall(r'(\w+)="([^"]*)"', labels))
    return parse(a) == parse(b)


def test_notify_and_transfers_go_to_the_supervisor(tmp_path, zones_dir):
    """A worker hands a NOTIFY (UDP) and a zone transfer (TCP, after a plain query
    on the same connection) to the supervisor, which answers them."""
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\nworkers: 2\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\n"
                      "transfers:\n  allow: [{address: ['127.0.0.0/8']}]\n")
    with SeawallProcess(tmp_path, config=config, env=ENV) as server:
        settled_workers(server)
        notify = dns.message.make_query("example.com.", "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        notify.flags |= dns.flags.AA
        reply = exchange(server.addr, notify.to_wire())
        # No backend of ours takes NOTIFY for a files zone: refused, by the supervisor.
        assert reply.id == notify.id and reply.rcode() == dns.rcode.REFUSED
        assert reply.opcode() == dns.opcode.NOTIFY
        # One connection: a plain query, then an AXFR, then nothing more.
        plain = dns.message.make_query("www.example.com.", "A")
        axfr = dns.message.make_query("example.com.", "AXFR")
        with socket.create_connection(server.addr, timeout=5) as sock:
            sock.sendall(b"".join(len(w).to_bytes(2, "big") + w
                                  for w in (plain.to_wire(), axfr.to_wire())))
            first = decode_twice(recv_exact(sock, int.from_bytes(recv_exact(sock, 2), "big")))
            assert first.id == plain.id and first.answer[0][0].address == "192.0.2.80"
            records = []   # in order (dnspython would merge the two SOAs into one RRset)
            while len(records) < 2 or records[-1].rtype != dnslib.QTYPE.SOA:
                wire = recv_exact(sock, int.from_bytes(recv_exact(sock, 2), "big"))
                message = decode_twice(wire)
                assert message.id == axfr.id and message.rcode() == dns.rcode.NOERROR
                records += dnslib.DNSRecord.parse(wire).rr
            # The supervisor serves the handed-over connection on: a query after the transfer.
            again = dns.message.make_query("www.example.com.", "A")
            sock.sendall(len(again.to_wire()).to_bytes(2, "big") + again.to_wire())
            reply = decode_twice(recv_exact(sock, int.from_bytes(recv_exact(sock, 2), "big")))
            assert reply.id == again.id and reply.rcode() == dns.rcode.NOERROR
        assert records[0].rtype == dnslib.QTYPE.SOA
        assert any(str(r.rname) == "www.example.com." for r in records)


def test_workers_setting_is_checked(tmp_path, zones_dir):
    config = tmp_path / "seawall.yaml"
    config.write_text(f"zones: {zones_dir}\nworkers: -1\n")
    result = subprocess.run([sys.executable, "-m", "seawall", "serve", "--config", str(config)],
                            capture_output=True, text=True, env={**os.environ, **ENV},
                            timeout=30)
    assert result.returncode != 0
    assert "workers -1 must be within 0..256" in result.stderr


def test_a_forced_emergency_is_served_before_its_answer_tables_are_built(tmp_path):
    """A switch does not wait for tables that are not built yet (right after a
    first start, a big emergency zone's take seconds): it is served cold within
    about a second, and the control command answers, instead of the old data
    staying on for BUILD_WAIT (20 s) and the command failing after 10 s."""
    sys.path.insert(0, str(ROOT / "bench"))
    from zonegen import ORIGIN, write_zone

    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    live = zones / f"{ORIGIN}zone"
    write_zone(live, 60_000)                  # about 70k answers: several seconds to build
    text = live.read_text().replace(" 2024010101 ", " 2024010001 ", 1)
    (zones / "emergency" / f"{ORIGIN}zone").write_text(
        text.replace("\nh0 IN A 10.0.0.0\n", "\nh0 IN A 192.0.2.66\n", 1))
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: [\"127.0.0.1:{free_port()}\"]\nzones: zones\n"
                      "emergency_dir: zones/emergency\nstate_dir: state\nworkers: 2\n")
    server = SeawallProcess(tmp_path, config=config).start(timeout=60)
    try:
        assert ask(server.addr, f"h0.{ORIGIN}").answer[0][0].address == "10.0.0.0"
        from seawall.failover.control_client import ControlClient
        started = time.monotonic()
        answer = ControlClient(state_dir=tmp_path / "state", timeout=30).call(
            "force", mode="emergency", reason="test", zones=[ORIGIN])
        took = time.monotonic() - started
        assert answer["zones"] == [ORIGIN]
        assert ask(server.addr, f"h0.{ORIGIN}").answer[0][0].address == "192.0.2.66"
        assert took < 8.0, f"the forced switch was served after {took:.1f} s"
        assert "serving zone set" in server.output() and "cold" in server.output()
    finally:
        server.stop()
