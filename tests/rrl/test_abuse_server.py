"""The real server under abuse: a UDP flood from one network, a pile of TCP connections."""

from __future__ import annotations

import select
import socket
import time

import dns.flags
import dns.message
import dns.rcode

from conftest import ROOT, SeawallProcess, ask


def serve_with(tmp_path, zones_dir, text):
    config = tmp_path / "seawall.yaml"
    # One process: the RRL table and the TCP caps are each worker's own, so exact
    # counts need one worker (tests/test_workers.py covers several).
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\nworkers: 1\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\n" + text)
    return SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)})


def flood(addr, source, count):
    """Send ``count`` queries from ``source`` as fast as possible; count what comes back."""
    query = dns.message.make_query("www.example.com.", "A").to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for _ in range(count):
            sock.sendto(query, addr)
        full = truncated = 0
        sock.settimeout(0.5)
        while True:
            try:
                reply = dns.message.from_wire(sock.recv(4096))
            except socket.timeout:
                break
            if reply.flags & dns.flags.TC:
                truncated += 1
            else:
                full += 1
        return full, truncated


def test_rrl_limits_one_network_and_answers_another(tmp_path, zones_dir):
    rrl = ("rrl: {enabled: true, answers_per_second: 20, slip: 2, exempt: []}\n")
    with serve_with(tmp_path, zones_dir, rrl) as server:
        full, truncated = flood(server.addr, "127.0.0.1", 400)
        # Within one second at most the limit is answered in full (two windows
        # at worst if the flood straddles a second); half the excess slips.
        assert full <= 40, (full, truncated)
        assert truncated >= 50, (full, truncated)
        # Another /24 has its own budget.
        other_full, _ = flood(server.addr, "127.0.1.1", 5)
        assert other_full == 5


def test_loopback_is_exempt_by_default(seawall):
    answered = 0
    for _ in range(6):  # bursts small enough for the socket buffers, over the limit together
        full, truncated = flood(seawall.addr, "127.0.0.1", 50)
        assert truncated == 0
        answered += full
    assert answered == 300


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True once the other end closes (EOF or reset) within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_tcp_connection_caps_and_idle_timeout(tmp_path, zones_dir):
    settings = "tcp_max_per_client: 4\ntcp_idle_timeout: 1s\n"
    with serve_with(tmp_path, zones_dir, settings) as server:
        opened = time.monotonic()
        held = [socket.create_connection(server.addr, timeout=3) for _ in range(8)]
        time.sleep(0.3)
        readable, _, _ = select.select(held, [], [], 0)   # EOF or reset: closed by the server
        assert len(readable) == 4, "connections over the per-client cap are closed at once"
        # UDP keeps answering while TCP is saturated.
        assert ask(server.addr, "www.example.com.").rcode() == dns.rcode.NOERROR
        # The four accepted ones say nothing (a slowloris): the server closes
        # each at the idle timeout, not before and not much later.
        silent = [sock for sock in held if sock not in readable]
        for sock in silent:
            assert closed_by_peer(sock, timeout=3), "a silent connection outlived the idle timeout"
        elapsed = time.monotonic() - opened
        assert 0.9 <= elapsed < 3, elapsed
        for sock in held:
            sock.close()
        # With the idle ones gone the same client gets TCP service again.
        assert ask(server.addr, "www.example.com.", tcp=True).rcode() == dns.rcode.NOERROR


def test_partial_length_prefix_is_closed_at_the_timeout(tmp_path, zones_dir):
    with serve_with(tmp_path, zones_dir, "tcp_idle_timeout: 1s\n") as server:
        with socket.create_connection(server.addr, timeout=5) as sock:
            sock.sendall(b"\x00")            # half a length prefix
            time.sleep(0.6)
            sock.sendall(b"")                # nothing more
            started = time.monotonic()
            assert sock.recv(1) == b""       # closed by the server
            assert time.monotonic() - started < 3


def test_tcp_max_connections_caps_all_clients_together(tmp_path, zones_dir):
    """RFC 7766 §6.2.2: a global budget across clients, beside the per-client one."""
    settings = "tcp_max_connections: 5\ntcp_max_per_client: 64\ntcp_idle_timeout: 5s\n"
    with serve_with(tmp_path, zones_dir, settings) as server:
        held = [socket.create_connection(server.addr, timeout=3,
                                         source_address=(source, 0))
                for source in ("127.0.0.1", "127.0.0.2") * 4]
        time.sleep(0.3)
        readable, _, _ = select.select(held, [], [], 0)
        closed = [sock for sock in readable if closed_by_peer(sock, timeout=1)]
        assert len(closed) == 3, "8 connections from 2 clients under a global cap of 5"
        # Each admitted connection is served; UDP is not affected.
        admitted = [sock for sock in held if sock not in readable]
        wire = dns.message.make_query("www.example.com.", "A").to_wire()
        for sock in admitted:
            sock.sendall(len(wire).to_bytes(2, "big") + wire)
            size = int.from_bytes(sock.recv(2), "big")
            assert dns.message.from_wire(sock.recv(size)).rcode() == dns.rcode.NOERROR
        assert ask(server.addr, "www.example.com.").rcode() == dns.rcode.NOERROR
        # A freed slot is taken by the next client.
        admitted[0].close()
        time.sleep(0.2)
        with socket.create_connection(server.addr, timeout=3,
                                      source_address=("127.0.0.3", 0)) as late:
            late.sendall(len(wire).to_bytes(2, "big") + wire)
            size = int.from_bytes(late.recv(2), "big")
            assert dns.message.from_wire(late.recv(size)).rcode() == dns.rcode.NOERROR
        for sock in held:
            sock.close()
