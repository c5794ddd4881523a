"""A small etcd v3 client over the JSON gateway (HTTP/1.0 on asyncio streams).

etcd answers JSON on its client port besides gRPC (``POST /v3/kv/range``,
``/v3/kv/put``, ``/v3/kv/txn``, ``/v3/kv/deleterange``, ``/v3/lease/grant``,
``/v3/lease/keepalive``, ``/v3/lease/revoke``); keys and values are base64,
64-bit numbers are strings. Each request opens one connection to one
endpoint and has one deadline (``timeout``) for everything: connecting,
sending and reading the answer. An endpoint that does not answer is left
for the next one, so one dead member of the cluster costs one timeout at
most, and the next request starts with the endpoint that answered last.

Why not a PyPI client: the gRPC ones (``etcd3``) have been unmaintained
since 2020 and pin an old protobuf; ``etcd3gw`` is synchronous (requests)
and would block the event loop that also drives failover. What the fleet
needs is five calls with hard deadlines, which this module is. Example::

    client = EtcdClient(["127.0.0.1:2379", "127.0.0.1:22379"], timeout=1.0)
    lease = await client.grant(5)
    await client.put("/seawall/members/edge-1", b"{...}", lease=lease)
    kvs = await client.get_prefix("/seawall/")
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import parse_listen
from ..errors import SeawallError

MAX_ANSWER = 16 * 1024 * 1024   # bytes one answer may have (the whole fleet's keys)


class EtcdError(SeawallError):
    """etcd could not be reached, or answered with an error; the message says which."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def _range_end(prefix: str) -> str:
    """The end of the key range holding every key that starts with ``prefix``."""
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


class EtcdClient:
    """The calls a fleet needs, each under one deadline, over any of ``endpoints``."""

    def __init__(self, endpoints: Sequence[str], timeout: float = 1.0) -> None:
        if not endpoints:
            raise EtcdError("no etcd endpoint configured")
        self.endpoints = [parse_listen(e) for e in endpoints]
        self.timeout = timeout
        self._first = 0            # the endpoint that answered last is asked first
        self.last_error: str | None = None

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` on the first endpoint that answers in time."""
        errors = []
        count = len(self.endpoints)
        for i in range(count):
            index = (self._first + i) % count
            host, port = self.endpoints[index]
            try:
                answer = await asyncio.wait_for(self._post(host, port, path, body),
                                                self.timeout)
            except (OSError, asyncio.TimeoutError, EtcdError, ValueError) as exc:
                errors.append(f"{host}:{port}: {_why(exc)}")
                continue
            self._first = index
            self.last_error = None
            return answer
        self.last_error = "; ".join(errors)
        raise EtcdError(f"etcd unreachable ({self.last_error})")

    async def _post(self, host: str, port: int, path: str, body: dict[str, Any]
                    ) -> dict[str, Any]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            payload = json.dumps(body).encode()
            writer.write(f"POST {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(payload)}"
                         f"\r\n\r\n".encode() + payload)
            await writer.drain()
            data = await reader.read(MAX_ANSWER)
            while True:
                more = await reader.read(MAX_ANSWER)
                if not more:
                    break
                data += more
                if len(data) > MAX_ANSWER:
                    raise EtcdError("answer too large")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        if b"transfer-encoding: chunked" in head.lower():
            rest = _unchunk(rest)
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise EtcdError(f"not an HTTP answer: {status_line[:80]!r}")
        text = rest.decode("utf-8", "replace").strip()
        # Streaming calls (keepalive) answer one JSON object per line.
        first = text.splitlines()[0] if text else "{}"
        answer = json.loads(first)
        if parts[1] != "200":
            message = answer.get("error") or answer.get("message") or status_line
            raise EtcdError(f"HTTP {parts[1]}: {message}")
        if "result" in answer and isinstance(answer["result"], dict):
            answer = answer["result"]
        if "error" in answer:
            raise EtcdError(str(answer["error"]))
        return answer

    # ------------------------------------------------------------------ kv

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under ``prefix``, and the store's revision."""
        answer = await self.call("/v3/kv/range", {"key": _b64(prefix),
                                                  "range_end": _range_end(prefix)})
        revision = int(answer.get("header", {}).get("revision", 0))
        return [_kv(item) for item in answer.get("kvs", [])], revision

    async def put(self, key: str, value: bytes, lease: int | None = None) -> None:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        await self.call("/v3/kv/put", body)

    async def put_if(self, puts: Sequence[tuple[str, bytes]],
                     unchanged: Sequence[tuple[str, int]] = ()) -> bool:
        """Put every key at once if each key in ``unchanged`` still has that
        mod revision (0: the key does not exist); False when one changed."""
        body = {"compare": [{"key": _b64(key), "target": "MOD", "mod_revision": str(rev),
                             "result": "EQUAL"} for key, rev in unchanged],
                "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}
                            for key, value in puts],
                "failure": []}
        answer = await self.call("/v3/kv/txn", body)
        return bool(answer.get("succeeded"))

    async def delete_prefix(self, prefix: str) -> None:
        await self.call("/v3/kv/deleterange", {"key": _b64(prefix),
                                               "range_end": _range_end(prefix)})

    # -------------------------------------------------------------- leases

    async def grant(self, ttl: float) -> int:
        answer = await self.call("/v3/lease/grant", {"TTL": str(max(2, round(ttl)))})
        lease = int(answer.get("ID", 0))
        if not lease:
            raise EtcdError(f"no lease granted: {answer}")
        return lease

    async def keepalive(self, lease: int) -> int:
        """Renew ``lease``; its remaining TTL (0: it has lapsed, grant a new one)."""
        answer = await self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(answer.get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        await self.call("/v3/lease/revoke", {"ID": str(lease)})


def _kv(item: dict[str, Any]) -> KeyValue:
    return KeyValue(base64.b64decode(item.get("key", "")).decode("utf-8", "replace"),
                    base64.b64decode(item.get("value", "")),
                    int(item.get("mod_revision", 0)), int(item.get("create_revision", 0)),
                    int(item.get("lease", 0)))


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            break
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
