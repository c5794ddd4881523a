"""The control channel: how ``seawall failover`` and ``seawall reload`` drive a running server.

The server listens on a Unix socket, ``state_dir/control.sock``, mode 0600
(owner only; bound in a private directory and moved into place, so it is
never reachable with looser permissions). Requests and answers are JSON
objects, one per line, each with a ``version`` field::

    → {"version": 1, "command": "force", "mode": "emergency", "zones": ["example.com"],
       "reason": "provider outage", "for": 600}
    ← {"version": 1, "ok": true, "zones": ["example.com."], "until": 1795740023.5}
    ← {"version": 1, "ok": false, "error": "zone nope.example. is not served"}

Commands: ``status``, ``force``, ``release``, ``accept``, ``history``,
``reload``, ``drill-start``, ``drill-status``, ``drill-stop``. Optionally
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
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import pwd
import secrets
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dns.exception
import dns.name

from ..config import parse_listen
from ..errors import SeawallError
from .controller import ControlError

log = logging.getLogger("seawall.control")

PROTOCOL = 1
SOCKET_NAME = "control.sock"
MAX_LINE = 1 << 20          # a request longer than this closes the connection
IDLE_TIMEOUT = 60.0         # a silent connection is closed after this long
MAX_CONNECTIONS = 32
HISTORY_LIMIT = 10_000      # events returned by one history request at most


# ------------------------------------------------------------------ signing

def canonical(message: dict[str, Any]) -> bytes:
    """The bytes an HMAC covers: the message without ``mac``, keys sorted, no spaces."""
    body = {k: v for k, v in message.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def mac_of(secret: bytes, message: dict[str, Any]) -> str:
    return hmac.new(secret, canonical(message), hashlib.sha256).hexdigest()


def sign(secret: bytes, message: dict[str, Any], *, nonce: str | None = None,
         now: float | None = None) -> dict[str, Any]:
    """``message`` with a timestamp, a nonce and its HMAC-SHA256."""
    signed = dict(message)
    signed["ts"] = time.time() if now is None else now
    signed["nonce"] = nonce or secrets.token_hex(16)
    signed["mac"] = mac_of(secret, signed)
    return signed


class Verifier:
    """Checks signed requests: a valid MAC, a fresh timestamp, a nonce never seen."""

    def __init__(self, secret: bytes, max_skew: float) -> None:
        self.secret = secret
        self.max_skew = max_skew
        self._seen: dict[str, float] = {}

    def check(self, request: dict[str, Any], now: float | None = None) -> str | None:
        """None when the request may be served, else why not."""
        now = time.time() if now is None else now
        mac, ts, nonce = request.get("mac"), request.get("ts"), request.get("nonce")
        if not isinstance(mac, str) or not isinstance(nonce, str) \
                or not isinstance(ts, (int, float)):
            return "unsigned request (mac, ts and nonce are required)"
        if not hmac.compare_digest(mac, mac_of(self.secret, request)):
            return "bad signature"
        if abs(now - ts) > self.max_skew:
            return f"stale request: timestamp {now - ts:+.0f}s off (max_skew={self.max_skew:g}s)"
        for old, seen_at in list(self._seen.items()):
            if now - seen_at > 2 * self.max_skew:
                del self._seen[old]
        if nonce in self._seen:
            return "replayed request (nonce already used)"
        self._seen[nonce] = now
        return None


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
        self.drills = DrillManager(app.failover, self.listen_addresses)
        self._servers: list[asyncio.AbstractServer] = []
        self._inode: int | None = None
        self._connections: set[asyncio.Task] = set()
        self.verifier: Verifier | None = None
        self.tcp_port: int | None = None
        if self.settings.listen:
            # Read now, so a missing secret stops the start before anything is served.
            self.verifier = Verifier(self._read_secret(), float(self.settings.max_skew))

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

    async def _unix_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        who = _peer_user(writer)
        await self._serve(reader, writer, who, signed=False)

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        who = f"tcp {peer[0]}:{peer[1]}" if peer else "tcp"
        await self._serve(reader, writer, who, signed=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     who: str, *, signed: bool) -> None:
        task = asyncio.current_task()
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
                except (asyncio.TimeoutError, asyncio.LimitOverrunError, ValueError,
                        ConnectionError):
                    break
                if not line:
                    break
                answer, keep = await self._answer(line, who, signed)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _answer(self, line: bytes, who: str, signed: bool) -> tuple[dict[str, Any], bool]:
        """The answer to one request line, and whether to keep the connection."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return _error(f"not a JSON object: {exc}"), False
        nonce = request.get("nonce")
        if signed:
            assert self.verifier is not None
            why = self.verifier.check(request)
            if why is not None:
                log.warning("control request refused: peer=%s reason=%s", who, why)
                return _error(f"refused: {why}"), False
        if request.get("version") != PROTOCOL:
            return _error(f"unsupported protocol version {request.get('version')!r} "
                          f"(this server speaks {PROTOCOL})"), True
        command = str(request.get("command", ""))
        try:
            answer = await self.handle(command, request, who)
            if command in SWITCHING and answer.get("ok"):
                await self.app.settled()   # the switch is served when we say ok
        except (ControlError, ValueError, TypeError, KeyError,
                dns.exception.DNSException) as exc:
            log.info("control request failed: command=%s by=%s reason=%s", command, who, exc)
            answer = _error(str(exc))
        except Exception:
            log.exception("control request crashed: command=%s", command)
            answer = _error("internal error (see the server's log)")
        if signed and isinstance(nonce, str):
            assert self.verifier is not None
            answer = sign(self.verifier.secret, answer, nonce=nonce)
        return answer, True

    # ------------------------------------------------------------- commands

    async def handle(self, command: str, request: dict[str, Any], who: str) -> dict[str, Any]:
        service = self.app.failover
        controller = service.controller
        if command == "status":
            return _ok(status=service.status(), listen=self.listen_addresses(),
                       drill=self.drills.summary())
        if command == "force":
            reason = str(request.get("reason") or "").strip()
            if not reason:
                raise ControlError("force needs a reason")
            duration = request.get("for")
            until = time.time() + float(duration) if duration else None
            zones = controller.force(str(request.get("mode")), _zones(request), reason,
                                     until=until, by=f"operator {who}")
            log.info("forced: mode=%s zones=%s by=%s until=%s reason=%s", request.get("mode"),
                     ",".join(zones), who, until, reason)
            return _ok(zones=zones, until=until)
        if command == "release":
            zones = controller.release(_zones(request), by=f"operator {who}")
            return _ok(zones=zones)
        if command == "accept":
            zone = request.get("zone")
            if not zone:
                raise ControlError("accept needs a zone")
            serial = controller.accept(str(zone), by=f"operator {who}")
            return _ok(zone=_normal(str(zone)), serial=serial)
        if command == "history":
            since = request.get("since")
            zone = request.get("zone")
            events = await asyncio.to_thread(
                service.store.read_events, since=float(since) if since is not None else None,
                zone=_normal(str(zone)) if zone else None)
            limit = min(int(request.get("limit") or HISTORY_LIMIT), HISTORY_LIMIT)
            return _ok(events=events[-limit:], total=len(events))
        if command == "reload":
            self.app.reload()
            log.info("reload requested: by=%s", who)
            return _ok()
        if command == "drill-start":
            return _ok(**self.drills.start(request, who))
        if command == "drill-status":
            return _ok(drill=self.drills.status(request.get("id"),
                                                 int(request.get("events_from") or 0)))
        if command == "drill-stop":
            return _ok(drill=await self.drills.stop_drill(request.get("id"), who))
        raise ControlError(f"unknown command {command!r}")


SWITCHING = ("force", "release", "accept")   # commands that change what is served at once


def _ok(**fields: Any) -> dict[str, Any]:
    return {"version": PROTOCOL, "ok": True, **fields}


def _error(message: str) -> dict[str, Any]:
    return {"version": PROTOCOL, "ok": False, "error": message}


def _normal(zone: str) -> str:
    try:
        return dns.name.from_text(zone).to_text()
    except dns.exception.DNSException as exc:
        raise ControlError(f"bad zone name {zone!r}: {exc}") from None


def _zones(request: dict[str, Any]) -> list[str] | None:
    """The request's zones; None (every zone) only when ``all`` is said explicitly."""
    zones = request.get("zones")
    if zones is None:
        if request.get("all"):
            return None
        raise ControlError("name the zones, or say all")
    if not isinstance(zones, list) or not zones:
        raise ControlError("zones must be a non-empty list")
    return [str(z) for z in zones]


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
