"""The control channel: how ``seawall failover`` and ``seawall reload`` drive a running server.

The server listens on a Unix socket, ``state_dir/control.sock``, mode 0600
(owner only; bound in a private directory and moved into place, so it is
never reachable with looser permissions). Requests and answers are JSON
objects, one per line, each with a ``version`` field::

    → {"version": 1, "command": "force", "mode": "emergency", "zones": ["example.com"],
       "reason": "provider outage", "for": 600}
    ← {"version": 1, "ok": true, "zones": ["example.com."], "until": 1795740023.5}
    ← {"version": 1, "ok": false, "error": "zone nope.example. is not served"}

Commands (what each does: ``control_commands.py``): ``status``, ``force``,
``release``, ``accept``, ``remove``, ``history``, ``reload``,
``drill-start``, ``drill-status``, ``drill-stop``. Optionally
a TCP listener on loopback (``control.listen``) takes the same requests
signed with a shared secret: HMAC-SHA256 over the canonical JSON of the
request, which carries a timestamp and a nonce; a request without a valid
signature, older or newer than ``max_skew``, or replayed is refused and
logged. Answers on TCP are signed the same way, bound to the request's
nonce. Example::

    control:
      listen: "127.0.0.1:5380"
      secret_file: /etc/seawall/control.key

A failing control channel never stops the server from answering queries
(DESIGN principle 1): if the socket cannot be bound the error is logged and
the server serves on without it.

Capacity is kept apart so that nobody on the TCP port can lock the operator
out: the Unix socket has ``UNIX_CONNECTIONS`` of its own. A TCP connection
must send its first request within ``AUTH_DEADLINE`` (at most
``TCP_PENDING`` connections wait for that) and the request must verify
before the connection takes one of the ``TCP_CONNECTIONS`` slots; what is
over a budget is closed at once, with a log line at most every 10 s.
Reading a request is bounded (seawall/failover/control_wire.py): a line
that is too long, not JSON, nested too deeply or not an object gets an
error answer and the connection is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dns.exception

from ..budgets import LogLimiter
from ..config import parse_listen
from ..errors import SeawallError
from .control_wire import (MAX_LINE, PROTOCOL, RequestError, Verifier, canonical,  # noqa: F401
                           mac_of, parse_request, sign)
from .control_commands import SETTLE_TIMEOUT, SWITCHING, Commands, error_answer
from .controller import ControlError

log = logging.getLogger("seawall.control")

SOCKET_NAME = "control.sock"
IDLE_TIMEOUT = 60.0         # a silent connection is closed after this long
UNIX_CONNECTIONS = 16       # the Unix socket's own, never taken by TCP clients
TCP_PENDING = 16            # TCP connections waiting to send their first, signed request
TCP_CONNECTIONS = 8         # TCP connections whose first request verified
AUTH_DEADLINE = 2.0         # a TCP connection's first request must come within this


# ------------------------------------------------------------------ paths

def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


def bindable(path: Path) -> tuple[str, int | None]:
    """A path ``bind``/``connect`` accept (sun_path holds 107 bytes) and a directory fd to close.

    A longer path goes through ``/proc/self/fd/N/``, N an open descriptor of
    its directory.
    """
    text = str(path)
    if len(os.fsencode(text)) < 100:
        return text, None
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{path.name}", fd


def _answers(path: Path) -> bool:
    """Does a server answer on the socket at ``path``?"""
    usable, fd = bindable(path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(usable)
            return True
    except OSError:
        return False
    finally:
        if fd is not None:
            os.close(fd)


# ------------------------------------------------------------------ server

Handler = Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]


class ControlServer:
    """The Unix socket (and optional signed TCP listener) of one running server.

    ``app`` is the :class:`seawall.app.App`; the commands call its failover
    service (``app.failover``), its ``reload()`` and read ``app.server.bound``.
    """

    def __init__(self, app: Any) -> None:
        from .drill import DrillManager   # drill imports this module's errors

        self.app = app
        self.config = app.config
        self.settings = app.config.control
        self.state_dir = app.config.path(app.config.state_dir)
        self.path = socket_path(self.state_dir)
        self.drills = DrillManager(app.failover, self.listen_addresses,
                                   getattr(app, "health", None))
        self.commands = Commands(app, self.drills, self.listen_addresses)
        self._servers: list[asyncio.AbstractServer] = []
        self._inode: int | None = None
        self._connections: set[asyncio.Task] = set()     # every one, to cancel at stop
        self._unix: set[asyncio.Task] = set()
        self._pending: set[asyncio.Task] = set()          # TCP, first request not yet verified
        self._tcp: set[asyncio.Task] = set()              # TCP, verified
        self._log = LogLimiter(log)                    # budgets: a line per 10 s
        self._refusals = LogLimiter(log, burst=10)     # refused requests: 10 per 10 s
        self.verifier: Verifier | None = None
        self.tcp_port: int | None = None
        if self.settings.listen:
            # Read now, so a missing secret stops the start before anything is served.
            # The nonces it saw survive a restart, in the state directory.
            self.verifier = Verifier(self._read_secret(), float(self.settings.max_skew),
                                     self.state_dir)

    def _read_secret(self) -> bytes:
        assert self.settings.secret_file is not None
        secret_path = self.config.path(self.settings.secret_file)
        try:
            secret = secret_path.read_bytes().strip()
        except OSError as exc:
            raise SeawallError(f"control.secret_file {secret_path}: cannot read: "
                               f"{exc.strerror}") from None
        if len(secret) < 16:
            raise SeawallError(f"control.secret_file {secret_path}: the secret is shorter "
                               "than 16 bytes")
        return secret

    def addresses(self) -> dict[str, str | None]:
        """Where this control channel answers (what a fleet member publishes, so that
        ``seawall failover drill --fleet`` can reach every member): the socket's
        absolute path while it is bound here, and the signed TCP listener."""
        tcp = None
        if self.tcp_port is not None and self.settings.listen:
            host, _ = parse_listen(self.settings.listen)
            tcp = f"[{host}]:{self.tcp_port}" if ":" in host else f"{host}:{self.tcp_port}"
        return {"socket": str(self.path.resolve()) if self._inode is not None else None,
                "tcp": tcp}

    def listen_addresses(self) -> list[dict[str, Any]]:
        return [{"transport": b.transport, "host": b.host, "port": b.port}
                for b in self.app.server.bound]

    # ------------------------------------------------------- start and stop

    async def start(self) -> None:
        if self.settings.enabled:
            try:
                await self._start_unix()
            except OSError as exc:
                log.error("control socket not opened: path=%s reason=%s; serving without it",
                          self.path, exc)
        if self.settings.listen:
            await self._start_tcp()

    async def _start_unix(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                log.error("control socket not opened: path=%s reason=another server answers "
                          "on it (two servers share this state directory)", self.path)
                return
            self.path.unlink()
        # Bind inside a private directory, tighten, then move into place: the socket is
        # never reachable by others, whatever the umask.
        private = self.state_dir / f".control-{os.getpid()}"
        private.mkdir(mode=0o700, exist_ok=True)
        fresh = private / SOCKET_NAME
        usable, fd = bindable(fresh)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(usable)
            os.chmod(fresh, 0o600)
            os.replace(fresh, self.path)
            sock.listen(16)
        except OSError:
            sock.close()
            raise
        finally:
            if fd is not None:
                os.close(fd)
            try:
                private.rmdir()
            except OSError:
                pass
        sock.setblocking(False)
        self._inode = os.stat(self.path).st_ino
        server = await asyncio.start_unix_server(self._unix_client, sock=sock, limit=MAX_LINE)
        self._servers.append(server)
        log.info("control channel: socket=%s", self.path)

    async def _start_tcp(self) -> None:
        assert self.settings.listen is not None and self.verifier is not None
        host, port = parse_listen(self.settings.listen)
        server = await asyncio.start_server(self._tcp_client, host, port, limit=MAX_LINE)
        self._servers.append(server)
        self.tcp_port = server.sockets[0].getsockname()[1]
        log.info("control channel: tcp=%s:%d signed=hmac-sha256", host, self.tcp_port)

    async def stop(self) -> None:
        await self.drills.stop()
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        self._servers.clear()
        if self._inode is not None:
            try:
                if os.stat(self.path).st_ino == self._inode:
                    self.path.unlink()
            except OSError:
                pass
            self._inode = None

    # ---------------------------------------------------------- connections

    def _over(self, slots: set[asyncio.Task], limit: int, kind: str, who: str) -> bool:
        """Is ``slots`` full? (Then say so in the log, at most every 10 s.)"""
        if len(slots) < limit:
            return False
        self._log.warning(f"control:{kind}", "connection refused: listener=control-%s "
                          "budget=total limit=%d client=%s", kind, limit, who)
        return True

    async def _unix_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        who = _peer_user(writer)
        if self._over(self._unix, UNIX_CONNECTIONS, "unix", who):
            writer.close()
            return
        with _member(self._unix, self._connections):
            await self._serve(reader, writer, who, signed=False)

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        """A TCP client: its first request, signed, within AUTH_DEADLINE; only then
        does it take one of the TCP_CONNECTIONS slots."""
        peer = writer.get_extra_info("peername")
        who = f"tcp {peer[0]}:{peer[1]}" if peer else "tcp"
        if self._over(self._pending, TCP_PENDING, "tcp-pending", who):
            writer.transport.abort()
            return
        try:
            with _member(self._pending, self._connections):
                try:
                    line = await asyncio.wait_for(reader.readline(), AUTH_DEADLINE)
                except (asyncio.TimeoutError, ConnectionError):
                    return
                except ValueError:   # longer than the stream's limit
                    await _reply(writer, error_answer(f"refused: request longer than "
                                                f"{MAX_LINE} bytes"))
                    return
                if not line:
                    return
                why = self._verify(line, who)
                if why is not None:
                    await _reply(writer, error_answer(f"refused: {why}"))
                    return
            if self._over(self._tcp, TCP_CONNECTIONS, "tcp", who):
                await _reply(writer, error_answer("busy: too many control connections; try again"))
                return
            with _member(self._tcp, self._connections):
                await self._serve(reader, writer, who, signed=True, first=line)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _verify(self, line: bytes, who: str) -> str | None:
        """Why the signed request ``line`` may not be served (None: it may)."""
        assert self.verifier is not None
        try:
            why = self.verifier.check(parse_request(line))
        except RequestError as exc:
            why = str(exc)
        if why is not None:
            self._refusals.warning("refused", "control request refused: peer=%s reason=%s", who, why)
        return why

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     who: str, *, signed: bool, first: bytes | None = None) -> None:
        """Answer request lines until the client is done (``first``: read already,
        and verified)."""
        try:
            while True:
                if first is not None:
                    line, first, verified = first, None, True
                else:
                    verified = False
                    try:
                        line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
                    except (asyncio.TimeoutError, ConnectionError):
                        break
                    except ValueError:   # longer than the stream's limit
                        await _reply(writer, error_answer(f"request longer than {MAX_LINE} "
                                                          "bytes"))
                        break
                if not line:
                    break
                answer, keep = await self._answer(line, who, signed, verified)
                await _reply(writer, answer)
                if not keep:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _answer(self, line: bytes, who: str, signed: bool,
                      verified: bool = False) -> tuple[dict[str, Any], bool]:
        """The answer to one request line, and whether to keep the connection."""
        try:
            request = parse_request(line)
        except RequestError as exc:
            return error_answer(str(exc)), False
        nonce = request.get("nonce")
        if signed and not verified:
            why = self._verify(line, who)
            if why is not None:
                return error_answer(f"refused: {why}"), False
        if request.get("version") != PROTOCOL:
            return error_answer(f"unsupported protocol version {request.get('version')!r} "
                                f"(this server speaks {PROTOCOL})"), True
        command = str(request.get("command", ""))
        try:
            answer = await self.commands.handle(command, request, who)
            if command in SWITCHING and answer.get("ok") \
                    and not await self.app.settled(SETTLE_TIMEOUT):
                # Ordered, but not what clients get yet: say so rather than claim it.
                answer = error_answer(f"{command} was ordered but the workers did not "
                                      f"serve it within {SETTLE_TIMEOUT:g}s; `seawall failover "
                                      "status` shows what is served")
        except (ControlError, ValueError, TypeError, KeyError,
                dns.exception.DNSException) as exc:
            log.info("control request failed: command=%s by=%s reason=%s", command, who, exc)
            answer = error_answer(str(exc))
        except Exception:
            log.exception("control request crashed: command=%s", command)
            answer = error_answer("internal error (see the server's log)")
        if signed and isinstance(nonce, str):
            assert self.verifier is not None
            answer = sign(self.verifier.secret, answer, nonce=nonce)
        return answer, True

class _member:
    """``with _member(a, b)``: the current task is in the sets a and b meanwhile."""

    def __init__(self, *sets: set[asyncio.Task]) -> None:
        self.sets = sets
        self.task = asyncio.current_task()

    def __enter__(self) -> None:
        if self.task is not None:
            for tasks in self.sets:
                tasks.add(self.task)

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            for tasks in self.sets:
                tasks.discard(self.task)


async def _reply(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
    writer.write(json.dumps(answer).encode() + b"\n")
    await writer.drain()


def _peer_user(writer: asyncio.StreamWriter) -> str:
    """``user NAME`` of the process at the other end of a Unix socket (SO_PEERCRED)."""
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
    except (OSError, AttributeError):
        return "local"
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"uid {uid}"
