"""The control channel's requests on the wire: reading one safely, signing, verifying.

Whoever can reach a control listener can send any bytes, so a request line
is read under bounds before anything looks inside it (:func:`parse_request`):
at most ``MAX_LINE`` bytes, UTF-8, JSON nested at most ``MAX_DEPTH`` deep
(checked before the JSON parser recurses), no NaN or Infinity, an object at
the top. Anything else is a :class:`RequestError` with a message the server
sends back; nothing a client sends raises anything else.

Over TCP every request is signed: HMAC-SHA256 over the canonical JSON of
the request (keys sorted, no spaces, without ``mac``), which carries a
timestamp ``ts`` and a ``nonce``. :class:`Verifier` refuses a MAC that is
not 64 hex digits or does not match, a timestamp further than ``max_skew``
from now (or not a finite number), and a nonce seen before. The nonces seen
within the window are kept in the state directory (``control-nonces.json``,
mode 0600, replaced atomically, at most ``MAX_NONCES``), so a restart does
not open a window for replaying what was captured before it; when that file
cannot be read, requests signed before the start are refused instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from ..errors import SeawallError

log = logging.getLogger("seawall.control")

PROTOCOL = 1
MAX_LINE = 1 << 20          # a request longer than this is refused and the connection closed
MAX_DEPTH = 16              # JSON nested deeper than this is refused before it is parsed
MAX_NONCES = 4096           # signed requests remembered within one max_skew window
NONCES_FILE = "control-nonces.json"
_MAC = re.compile(r"[0-9a-f]{64}")
_NONCE = re.compile(r"[0-9A-Za-z_-]{8,64}")


class RequestError(SeawallError):
    """A control request that cannot be read: too long, not UTF-8, not JSON, nested
    too deeply, or not an object. The message says which."""


def parse_request(line: bytes) -> dict[str, Any]:
    """The JSON object of one request line; RequestError for anything else."""
    if len(line) > MAX_LINE:
        raise RequestError(f"request longer than {MAX_LINE} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("request is not UTF-8") from None
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise RequestError(f"request nested deeper than {MAX_DEPTH} levels")
    try:
        request = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"not a JSON object: {exc}") from None
    if not isinstance(request, dict):
        raise RequestError("not a JSON object")
    return request


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


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
    """Checks signed requests: a valid MAC, a fresh timestamp, a nonce never seen.

    ``state_dir``: where the nonces seen are kept across restarts (None: in
    memory only, for tools and tests).
    """

    def __init__(self, secret: bytes, max_skew: float, state_dir: Path | None = None,
                 now: float | None = None) -> None:
        self.secret = secret
        self.max_skew = max_skew
        self.path = state_dir / NONCES_FILE if state_dir is not None else None
        self._seen: dict[str, float] = {}
        self.not_before = float("-inf")
        if self.path is not None:
            self._load(time.time() if now is None else now)

    def check(self, request: dict[str, Any], now: float | None = None) -> str | None:
        """None when the request may be served, else why not (never raises)."""
        now = time.time() if now is None else now
        mac, ts, nonce = request.get("mac"), request.get("ts"), request.get("nonce")
        if not isinstance(mac, str) or not isinstance(nonce, str) \
                or not isinstance(ts, (int, float)) or isinstance(ts, bool):
            return "unsigned request (mac, ts and nonce are required)"
        if not _MAC.fullmatch(mac):
            return "bad signature (mac is not 64 hex digits)"
        if not _NONCE.fullmatch(nonce):
            return "bad nonce (8 to 64 letters, digits, - or _)"
        try:
            expected = mac_of(self.secret, request)
        except (TypeError, ValueError, RecursionError):
            return "bad signature (the request cannot be made canonical)"
        if not hmac.compare_digest(mac.encode("ascii"), expected.encode("ascii")):
            return "bad signature"
        if not math.isfinite(ts) or abs(now - ts) > self.max_skew:
            return f"stale request: timestamp {now - ts:+.0f}s off (max_skew={self.max_skew:g}s)"
        if ts < self.not_before:
            return "stale request: signed before this server started (the nonces of the " \
                   "previous run could not be read)"
        self._expire(now)
        if nonce in self._seen:
            return "replayed request (nonce already used)"
        if len(self._seen) >= MAX_NONCES:
            return f"too many signed requests within {self.max_skew:g}s; try again later"
        self._seen[nonce] = now
        self._save()
        return None

    def _expire(self, now: float) -> None:
        for old, seen_at in list(self._seen.items()):
            if now - seen_at > 2 * self.max_skew:
                del self._seen[old]

    # ------------------------------------------------------------ persistence

    def _load(self, now: float) -> None:
        assert self.path is not None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._unreadable(now, exc)
            return
        try:
            with os.fdopen(fd, "rb") as handle:
                data = parse_request(handle.read(MAX_LINE + 1))
            seen = data.get("seen")
            if not isinstance(seen, dict):
                raise RequestError("no seen nonces")
            for nonce, at in list(seen.items())[-MAX_NONCES:]:
                if isinstance(nonce, str) and isinstance(at, (int, float)) \
                        and math.isfinite(at):
                    self._seen[nonce] = float(at)
        except (OSError, SeawallError) as exc:
            self._unreadable(now, exc)
            return
        self._expire(now)

    def _unreadable(self, now: float, exc: Exception) -> None:
        self.not_before = now
        log.warning("control nonces not read: path=%s reason=%s; requests signed before "
                    "now are refused", self.path, exc)

    def _save(self) -> None:
        """Write the window of nonces atomically (a new file, then rename), owner only."""
        if self.path is None:
            return
        tmp = self.path.with_name(f".{NONCES_FILE}.{os.getpid()}")
        data = json.dumps({"seen": self._seen}, separators=(",", ":")).encode()
        try:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("control nonces not saved: path=%s reason=%s", self.path, exc)
