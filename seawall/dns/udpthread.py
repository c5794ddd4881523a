"""A worker's UDP socket served by a plain loop in a thread of its own.

Measured here (dnsperf against a canned answer, server pinned to one core),
a non-blocking ``recvfrom``/``sendto`` loop costs 6.1 µs of CPU per datagram
and uvloop's datagram callbacks 6.8 µs: the event loop's bookkeeping is a
tenth of the whole cost of a query. A worker (seawall/workers.py) serves a
ZoneSet that never changes for its whole life, so its UDP answers can come
from a thread that owns a Responder of its own — its own answer cache,
encoder and rate limiter, shared with nobody — while the event loop thread
serves TCP and the supervisor's channel with another Responder over the same
zones. Nothing but immutable data is shared between the two threads.

The loop reads until the socket is empty, then waits in poll() for at most
``POLL_MS``; ``stop()`` is seen within that time. A worker never builds the
answer tables in advance: building them touches every zone object, and each
page a worker touches stops being shared with the supervisor (for 1M records
that doubled the memory of the server). The supervisor builds them before it
forks a generation (seawall/dns/answers.py, WorkerPool._build).
"""

from __future__ import annotations

import logging
import select
import socket
import threading

from .server import UdpProtocol

log = logging.getLogger("seawall.udpthread")

POLL_MS = 100


class UdpThread:
    """Serves one UDP socket with ``protocol`` until stopped."""

    def __init__(self, sock: socket.socket, protocol: UdpProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.running = True
        self._thread = threading.Thread(target=self._run, name=f"udp-{sock.fileno()}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Read no more (within POLL_MS); answers in progress are sent first."""
        self.running = False
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        receive, send = self.sock.recvfrom, self.sock.sendto
        respond = self.protocol.response_to
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        while self.running:
            try:
                data, addr = receive(65535)
            except (BlockingIOError, InterruptedError):
                poller.poll(POLL_MS)
                continue
            except OSError as exc:
                log.warning("udp receive failed: %s", exc)
                poller.poll(POLL_MS)
                continue
            try:
                response = respond(data, addr)
                if response is not None:
                    send(response, addr)
            except OSError as exc:   # a full send buffer or a gone client: UDP may lose it
                log.debug("udp send failed: client=%s: %s", addr, exc)
            except Exception:   # the responder answers SERVFAIL itself: a bug of ours here
                log.exception("udp answer failed: client=%s", addr)
