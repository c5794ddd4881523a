"""Graceful shutdown: on SIGTERM stop accepting, answer what is in flight, exit within 2 s."""

from __future__ import annotations

import signal
import socket
import time

import dns.message
import dns.rcode

from conftest import decode_twice


def test_sigterm_answers_in_flight_tcp_and_exits_quickly(seawall):
    query = dns.message.make_query("www.example.com.", "A").to_wire()
    with socket.create_connection(seawall.addr, timeout=5) as sock:
        # Half a message is in flight when the signal arrives; the rest follows.
        framed = len(query).to_bytes(2, "big") + query
        sock.sendall(framed[:10])
        time.sleep(0.2)
        started = time.monotonic()
        seawall.signal(signal.SIGTERM)
        sock.sendall(framed[10:])
        size = int.from_bytes(sock.recv(2), "big")
        reply = b""
        while len(reply) < size:
            chunk = sock.recv(size - len(reply))
            assert chunk, "connection closed before the answer"
            reply += chunk
        assert decode_twice(reply).rcode() == dns.rcode.NOERROR
        assert seawall.proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 2.0
    # New connections are refused once it is gone.
    with socket.socket() as late:
        late.settimeout(1)
        assert late.connect_ex(seawall.addr) != 0
