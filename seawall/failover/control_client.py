"""The client side of the control channel, for ``seawall failover`` and ``seawall reload``.

One request per line, one answer per line (see :mod:`seawall.failover.control`);
over TCP every request is signed and every answer's signature is checked::

    client = ControlClient(state_dir=Path(".seawall"))
    client.call("force", mode="emergency", zones=["example.com"], reason="outage")
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from pathlib import Path
from typing import Any

from ..config import parse_listen
from ..errors import SeawallError
from .control import bindable, socket_path
from .control_wire import MAX_LINE, PROTOCOL, mac_of, sign


class ControlUnavailable(SeawallError):
    """No server answers on the control channel: it is not running, or not here."""


class ControlRefused(SeawallError):
    """The server refused the request; the message is the server's reason."""


class ControlClient:
    """Talks to a running server: its Unix socket, or a signed TCP listener."""

    def __init__(self, *, state_dir: Path | None = None, tcp: str | None = None,
                 secret: bytes | None = None, timeout: float = 10.0) -> None:
        if (state_dir is None) == (tcp is None):
            raise ValueError("give a state directory or a TCP address")
        if tcp is not None and not secret:
            raise ControlUnavailable("a TCP control address needs the shared secret")
        self.state_dir = state_dir
        self.tcp = tcp
        self.secret = secret
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def where(self) -> str:
        if self.tcp is not None:
            return f"the control listener {self.tcp}"
        assert self.state_dir is not None
        return f"state directory {self.state_dir} (no control socket answers at " \
               f"{socket_path(self.state_dir)})"

    async def connect(self) -> None:
        if self._writer is not None:
            return
        try:
            if self.tcp is not None:
                host, port = parse_listen(self.tcp)
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, limit=64 * MAX_LINE), self.timeout)
            else:
                assert self.state_dir is not None
                path = socket_path(self.state_dir)
                usable, fd = bindable(path) if path.parent.is_dir() else (str(path), None)
                try:
                    self._reader, self._writer = await asyncio.wait_for(
                        asyncio.open_unix_connection(usable, limit=64 * MAX_LINE), self.timeout)
                finally:
                    if fd is not None:
                        os.close(fd)
        except PermissionError:
            raise ControlUnavailable(f"permission denied on the control socket of "
                                     f"{self.state_dir} (run as the server's user)") from None
        except (OSError, asyncio.TimeoutError):
            raise ControlUnavailable(f"no Seawall server is running for {self.where}") from None

    async def request(self, command: str, **fields: Any) -> dict[str, Any]:
        """Send one request; the answer (ControlRefused when ``ok`` is false)."""
        await self.connect()
        assert self._reader is not None and self._writer is not None
        message: dict[str, Any] = {"version": PROTOCOL, "command": command, **fields}
        if self.secret is not None:
            message = sign(self.secret, message)
        try:
            self._writer.write(json.dumps(message).encode() + b"\n")
            await self._writer.drain()
            line = await asyncio.wait_for(self._reader.readline(), self.timeout)
        except (OSError, asyncio.TimeoutError, asyncio.LimitOverrunError, ValueError):
            await self.close()
            raise ControlUnavailable(f"the server stopped answering ({self.where})") from None
        if not line:
            await self.close()
            raise ControlUnavailable(f"the server closed the control connection "
                                     f"({self.where})")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise ControlRefused(str(answer.get("error", "refused")))
        if self.secret is not None and (
                answer.get("nonce") != message["nonce"]
                or not hmac.compare_digest(str(answer.get("mac")), mac_of(self.secret, answer))):
            raise ControlRefused("the server's answer carries no valid signature")
        if not answer.get("ok"):
            raise ControlRefused(str(answer.get("error", "refused")))
        return answer

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    def call(self, command: str, **fields: Any) -> dict[str, Any]:
        """One request from synchronous code."""
        async def once() -> dict[str, Any]:
            try:
                return await self.request(command, **fields)
            finally:
                await self.close()
        return asyncio.run(once())
