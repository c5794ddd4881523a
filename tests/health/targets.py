"""Real targets on loopback addresses for the health tests: HTTP and TCP listeners
that a test kills, hangs and brings back."""

from __future__ import annotations

import socket
import threading
import time


class Target:
    """A listener on ``host:port``: ``http`` answers ``200 ok``, ``tcp`` accepts and closes.

    ``kill()`` closes the listener (connections are refused), ``hang()`` keeps
    accepting but never answers, ``revive()`` serves again.
    """

    def __init__(self, host: str, port: int, kind: str = "http") -> None:
        self.host, self.port, self.kind = host, port, kind
        self.mode = "down"
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._held: list[socket.socket] = []
        self.served = 0

    def start(self) -> "Target":
        self.revive()
        return self

    def revive(self) -> None:
        if self._sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
            sock.settimeout(0.05)
            self._sock = sock
            self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._thread.start()
        self.mode = "up"

    def hang(self) -> None:
        if self._sock is None:
            self.revive()
        self.mode = "hang"

    def kill(self) -> None:
        self.mode = "down"
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
            assert self._thread is not None
            self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self._held.clear()

    def _serve(self, sock: socket.socket) -> None:
        while self._sock is sock:
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.mode == "hang":
                self._held.append(conn)
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            self.served += 1
            if self.kind == "tcp":
                return
            conn.settimeout(2)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close"
                             b"\r\n\r\nok")
            except OSError:
                pass


def free_port_on(hosts: list[str]) -> int:
    """A TCP port free on every one of ``hosts``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        try:
            for host in hosts[1:]:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on every target address")


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))
