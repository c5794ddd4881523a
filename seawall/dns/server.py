"""UDP and TCP listeners: bytes in, bytes out, around one Responder.

The protocol classes are thin on purpose: every decision about a message
is the responder's. TCP follows RFC 7766: two-octet length framing (§8),
several queries per connection answered as they come (§6.2.1), an idle
timeout (§6.2.3), and a bound on the message size.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..budgets import ConnectionBudget, LogLimiter
from ..config import parse_listen
from .responder import UDP, HandOff, Responder
from .rrl import ERROR, PASS, SLIP, RateLimiter, truncated

if TYPE_CHECKING:
    from ..metrics import QueryStats

log = logging.getLogger("seawall.server")


class UdpProtocol(asyncio.DatagramProtocol):
    """One datagram in, at most one datagram out."""

    def __init__(self, responder: Responder, rate_limiter: RateLimiter | None = None,
                 stats: QueryStats | None = None, listener: int = 0,
                 hand_off: Callable[[int, bytes, tuple], None] | None = None) -> None:
        self.responder = responder
        self.fast = responder.fast
        self.rate_limiter = rate_limiter
        self.stats = stats
        self.listener = listener      # index of our socket in DnsServer.sockets
        self.hand_off = hand_off      # a worker's way to the supervisor (seawall/workers.py)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        response = self.response_to(data, addr)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)

    def response_to(self, data: bytes, addr: tuple) -> bytes | None:
        """What to send back to ``addr`` (None: nothing), rate limited and counted."""
        # A hit in the answer cache first, without a call (see FastPath.answer).
        hit = self.fast.udp.get(data[2:])
        if hit is not None:
            response: bytes | None = data[:2] + hit
        else:
            if self.rate_limiter is not None and for_supervisor(data):
                # NOTIFY, AXFR, IXFR: rate limited before anything is done for
                # them (a hand-off, a log line, a probe of a primary).
                verdict = self.rate_limiter.verdict(addr, ERROR)
                if verdict != PASS:
                    return truncated(data) if verdict == SLIP else None
                try:
                    response = self.responder.respond(data, UDP, addr)
                except HandOff:
                    if self.hand_off is not None:
                        self.hand_off(self.listener, data, addr)
                    return None
                if response is not None and self.stats is not None:
                    self.stats.count(0, data, response, addr)
                return response
            try:
                response = self.responder.respond(data, UDP, addr)
            except HandOff:
                if self.hand_off is not None:
                    self.hand_off(self.listener, data, addr)
                return None
            if response is None:
                return None
        if self.rate_limiter is not None:
            response = self.rate_limiter.filter(addr, response)
            if response is None:
                return None
        if self.stats is not None:
            self.stats.count(0, data, response, addr)
        return response

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that went away: nothing to do.
        log.debug("udp error: %s", exc)


class TcpProtocol(asyncio.Protocol):
    """A DNS-over-TCP connection: length-prefixed messages, pipelined."""

    def __init__(self, server: DnsServer, listener: object = 0) -> None:
        self.server = server
        self.listener = listener   # the index of its socket, or "handed" (see DnsServer.adopt)
        self.responder = server.responder
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: tuple | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.paused = False  # the client is not reading its answers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        if not self.server.admit(self):
            # Over a connection budget: refuse at once rather than let a flood of
            # idle connections starve real clients (RFC 7766 §6.2.2).
            transport.abort()  # type: ignore[attr-defined]
            self.transport = None
            return
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.release(self)
        if self.idle is not None:
            self.idle.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._answer_buffered()

    def _answer_buffered(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2 and self.transport is not None and not self.paused:
            size = (buffer[0] << 8) | buffer[1]
            if size == 0 or size > self.server.max_message:
                # Nothing sensible can follow a zero or oversized length: close.
                self.close()
                return
            if len(buffer) < 2 + size:
                break
            message = bytes(buffer[2:2 + size])
            try:
                responses = self.responder.respond_stream(message, self.peer)
            except HandOff:
                self.hand_off("supervisor")
                return
            del buffer[:2 + size]
            for response in responses:
                if self.server.stats is not None:
                    self.server.stats.count(1, message, response, self.peer)
                self.transport.write(len(response).to_bytes(2, "big") + response)
            # Only a complete message buys more time: a client dribbling out a
            # partial length or message is closed when the idle timeout runs out.
            self._arm_idle()

    def pause_writing(self) -> None:
        """Pipelining with a bound (RFC 7766 §6.2.1.1): a client that does not read
        its answers gets no more of its queries read, so our output buffer for it
        stays near asyncio's high-water mark instead of growing with every query."""
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport is not None:
            self._arm_idle()  # the client read its answers: it is not idle
            self.transport.resume_reading()
            self._answer_buffered()

    def eof_received(self) -> bool | None:
        return None  # close our side too once the answers are written

    def _arm_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.server.idle_timeout, self.close)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def hand_off(self, purpose: str) -> None:
        """Give the connection, with what is still unanswered, to the supervisor:
        ``"supervisor"`` for a transfer or NOTIFY, which need its state; ``"retire"``
        when this worker stops, for a newer one to serve on (seawall/workers.py)."""
        transport, self.transport = self.transport, None
        sock = transport.get_extra_info("socket") if transport is not None else None
        if self.server.hand_off_connection is None or sock is None:
            if transport is not None:
                transport.close()
            return
        if self.idle is not None:
            self.idle.cancel()
        self.server.hand_off_connection(sock.fileno(), bytes(self.buffer), purpose)
        self.buffer.clear()
        # The supervisor holds its own descriptor of the connection now: closing
        # ours sends nothing to the client.
        transport.abort()  # type: ignore[attr-defined]

    def ready_to_hand_off(self) -> bool:
        """Every answer written out: the connection can change hands."""
        return (self.transport is not None and not self.paused
                and self.transport.get_write_buffer_size() == 0)


AXFR_IXFR = (b"\x00\xfc", b"\x00\xfb")


def for_supervisor(data: bytes) -> bool:
    """Is this datagram a NOTIFY (RFC 1996), or an AXFR or IXFR query? Those need
    the supervisor's state; a malformed one is left to the responder."""
    if len(data) < 17:
        return False
    if (data[2] >> 3) & 0x0F == 4:   # opcode NOTIFY
        return True
    offset, end = 12, min(len(data), 12 + 255)
    while offset < end:
        length = data[offset]
        if length == 0:
            return data[offset + 1:offset + 3] in AXFR_IXFR
        if length & 0xC0:
            return False
        offset += length + 1
    return False


@dataclass(frozen=True)
class Bound:
    """One listening address, as bound (port 0 resolved)."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


class DnsServer:
    """Opens the UDP and TCP sockets of every listen address and serves them."""

    def __init__(self, responder: Responder, listen: tuple[str, ...], *,
                 idle_timeout: float = 10.0, max_message: int = 65535,
                 rate_limiter: RateLimiter | None = None, max_connections: int = 1000,
                 max_per_client: int = 64, stats: QueryStats | None = None,
                 max_per_listener: int = 0, ipv4_prefix: int = 32,
                 ipv6_prefix: int = 64) -> None:
        self.responder = responder
        self.stats = stats
        self.rate_limiter = rate_limiter
        self.listen = listen
        self.idle_timeout = idle_timeout
        self.max_message = max_message
        self.connections: set[TcpProtocol] = set()
        # TCP connections per client prefix, per listener and in total, those a
        # worker handed over included (seawall/budgets.py).
        self.budget = ConnectionBudget("dns-tcp", total=max_connections,
                                       per_prefix=max_per_client,
                                       per_listener=max_per_listener,
                                       ipv4_prefix=ipv4_prefix, ipv6_prefix=ipv6_prefix,
                                       logger=log)
        self.refused_connections = 0
        self._log = LogLimiter(log)
        self.bound: list[Bound] = []
        self.sockets: list[tuple[socket.socket, socket.socket]] = []   # (udp, tcp) per address
        # In a worker: how a UDP message or a TCP connection that needs the
        # supervisor's state reaches it (seawall/workers.py); None: answered here.
        self.hand_off_datagram: Callable[[int, bytes, tuple], None] | None = None
        self.hand_off_connection: Callable[[int, bytes, str], None] | None = None
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.AbstractServer] = []
        self._hand_off_protocol: UdpProtocol | None = None   # answers handed-over datagrams
        self._adopting: set[asyncio.Task] = set()

    def admit(self, connection: TcpProtocol) -> bool:
        """Count a new TCP connection in, unless it is over a budget (logged, rate
        limited, by the budget)."""
        host = connection.peer[0] if connection.peer else None
        if self.budget.take(host, connection.listener) is not None:
            self.refused_connections += 1
            return False
        self.connections.add(connection)
        return True

    def release(self, connection: TcpProtocol) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        self.budget.give_back(connection.peer[0] if connection.peer else None,
                              connection.listener)

    def bind(self) -> None:
        """Open the UDP and TCP socket of every listen address (once; a supervisor's
        workers serve the sockets it bound)."""
        if self.sockets:
            return
        for address in self.listen:
            host, port = parse_listen(address)
            udp_sock, tcp_sock = _bind_pair(host, port)
            self.sockets.append((udp_sock, tcp_sock))
            actual = udp_sock.getsockname()[1]
            self.bound += [Bound("udp", host, actual), Bound("tcp", host, actual)]
            log.info("listening: udp=%s:%d tcp=%s:%d", host, actual, host, actual)

    async def start(self, udp: bool = True) -> None:
        """Serve the sockets (bound now if they are not yet) on the running loop;
        ``udp=False``: TCP only (a worker serves UDP from threads, seawall/dns/udpthread.py)."""
        self.bind()
        loop = asyncio.get_running_loop()
        for index, (udp_sock, tcp_sock) in enumerate(self.sockets):
            if udp:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda index=index: UdpProtocol(self.responder, self.rate_limiter,
                                                    self.stats, index, self.hand_off_datagram),
                    sock=udp_sock)
                self._udp.append(transport)
            tcp_server = await loop.create_server(
                lambda index=index: TcpProtocol(self, index), sock=tcp_sock)
            self._tcp.append(tcp_server)

    def answer_datagram(self, listener: int, wire: bytes, addr: tuple) -> None:
        """Answer a datagram a worker handed over, from our copy of its socket."""
        if self._hand_off_protocol is None:
            self._hand_off_protocol = UdpProtocol(self.responder, None, self.stats)
        response = self._hand_off_protocol.response_to(wire, addr)
        if response is None:
            return
        try:
            self.sockets[listener][0].sendto(response, addr)
        except OSError as exc:   # a full send buffer or a gone client: UDP may lose it
            log.debug("udp send failed: client=%s: %s", addr, exc)

    def adopt(self, fd: int, pending: bytes, listener: object = "handed") -> None:
        """Serve the TCP connection on descriptor ``fd`` that another process handed
        over, starting with its unanswered bytes ``pending``. It counts against the
        budgets like any connection (under ``listener``): one over them is closed."""
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            self._log.warning("adopt", "connection not adopted: reason=%s", exc)
            try:
                os.close(fd)
            except OSError:
                pass
            return
        task = asyncio.get_running_loop().create_task(self._adopt(sock, pending, listener))
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def _adopt(self, sock: socket.socket, pending: bytes, listener: object) -> None:
        loop = asyncio.get_running_loop()
        try:
            sock.setblocking(False)
            _, protocol = await loop.connect_accepted_socket(
                lambda: TcpProtocol(self, listener), sock)
        except OSError as exc:   # the client went away meanwhile
            self._log.warning("adopt", "connection not adopted: reason=%s", exc)
            sock.close()
            return
        if pending and protocol.transport is not None:
            protocol.data_received(pending)

    def stop_listening(self) -> None:
        """Read no more datagrams and accept no more connections (ours: the sockets
        stay open in the processes that share them)."""
        for server in self._tcp:
            server.close()
        for transport in self._udp:
            transport.close()
        self._udp = []

    async def hand_over_connections(self, grace: float) -> None:
        """A retiring worker: each open connection, once its answers are written, to
        the supervisor for a newer worker; what is left after ``grace`` is closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.connections and loop.time() < deadline:
            for connection in list(self.connections):
                if connection.ready_to_hand_off():
                    connection.hand_off("retire")
            if self.connections:
                await asyncio.sleep(0.01)

    async def stop(self, grace: float = 1.0) -> None:
        """Stop accepting, let TCP answers drain for up to ``grace`` seconds, close."""
        self.stop_listening()
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections and asyncio.get_running_loop().time() < deadline:
            if all(not c.buffer for c in self.connections):
                break
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.close()
        for server in self._tcp:
            await server.wait_closed()
        self._tcp = []


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same port (port 0: one free for both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6:
                udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            large_buffer(udp, UDP_RECEIVE_BUFFER)
            udp.bind((host, port))
            actual = udp.getsockname()[1]
            tcp.bind((host, actual))
            tcp.listen(1024)
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
            if port != 0:
                raise
    raise OSError(f"no free port on {host} for both UDP and TCP")


UDP_RECEIVE_BUFFER = 4 << 20


def large_buffer(sock: socket.socket, size: int, *, send: bool = False) -> None:
    """Ask for a ``size``-byte receive (or send) buffer: the ~208 KiB default drops
    datagrams under load (see PEERS.md). The FORCE option, which needs
    CAP_NET_ADMIN, goes past the system's cap (rmem_max/wmem_max); the plain one
    is capped by it."""
    options = ((getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF) if send
               else (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF))
    for option in options:
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            return
        except OSError:
            continue
