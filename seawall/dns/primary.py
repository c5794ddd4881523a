"""Seawall as a primary: served serials, IXFR history, transfers out and NOTIFY.

Around its one ZoneSet swap the application calls ``prepare``; the
responder calls ``handle`` and ``sign_answer``:

* ``prepare(changes, zoneset)`` before the swap: each new version gets its
  served serial (:mod:`.serials`; the SOA rewritten if it must move on);
  after the swap, off the event loop, the difference from the version
  replaced is kept for IXFR, then a NOTIFY per changed zone goes to every
  secondary (:mod:`.notify`);
* ``handle`` answers AXFR/IXFR requests (:mod:`.transfer`);
* ``sign_answer`` signs the answer to a TSIG-signed query (a secondary's
  SOA check) with the key it came with (RFC 8945 §5.3).

All of it is off (changes pass through untouched) unless the configuration
has ``transfers.allow`` or ``transfers.notify``. Example::

    transfers:
      keys: [{name: xfr-key, algorithm: hmac-sha256, secret: "c2VjcmV0..."}]
      allow:
        - {address: ["192.0.2.0/24"]}          # these addresses, signed or not
        - {key: xfr-key}                       # anyone holding the key
      notify: ["192.0.2.53:53", "192.0.2.54:53"]
      notify_key: xfr-key
      ixfr_history: 20
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import dns.tsig

from ..budgets import LogLimiter
from ..config import Config, TransfersConfig, parse_listen
from ..zones.model import Zone
from ..zones.zoneset import ZoneSet
from .notify import Notifier
from .query import Query
from .serials import ServedSerials, emergency_serial_warning
from .transfer import Acl, History, TransferServer, make_rule
from .xfrwire import TSIG_ERRORS, check_tsig, tsig_error_response

log = logging.getLogger("seawall.transfers")
_tsig_refusals = LogLimiter(log, burst=20)   # 20 lines per 10 s at most

Changes = Mapping[dns.name.Name, Zone | None]


def make_keyring(settings: TransfersConfig) -> dict[dns.name.Name, dns.tsig.Key]:
    keyring = {}
    for spec in settings.keys:
        key = dns.tsig.Key(spec.name, spec.secret, spec.algorithm)
        keyring[key.name] = key
    return keyring


class Primary:
    """What makes secondaries follow Seawall's served versions."""

    def __init__(self, config: Config, zoneset: Callable[[], ZoneSet]) -> None:
        settings = config.transfers
        self.settings = settings
        self.enabled = settings.enabled
        keyring = make_keyring(settings)
        self.keyring = keyring
        self.serials = ServedSerials(Path(config.path(config.state_dir))) if self.enabled \
            else None
        self.history = History(settings.ixfr_history)
        acl = Acl(tuple(make_rule(rule.address, rule.key) for rule in settings.allow))
        self.server = TransferServer(acl, keyring, zoneset, self.history)
        notify_key = keyring.get(dns.name.from_text(settings.notify_key)) \
            if settings.notify_key else None
        self.notifier = Notifier([parse_listen(t) for t in settings.notify], notify_key)
        self._background = ThreadPoolExecutor(1, thread_name_prefix="transfers")
        # Awaited before a NOTIFY goes out (App.settled: the workers serve the change).
        self.before_notify: Callable[[], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task] = set()
        if settings.notify and not settings.allow:
            log.warning("transfers: notify is set but allow is empty: every secondary told of "
                        "a change will be refused its transfer")

    # --------------------------------------------------------- publishing

    def prepare(self, changes: Changes, zoneset: ZoneSet) -> Changes:
        """The zones to swap in, served serials applied; the rest follows the swap."""
        if not self.enabled or self.serials is None:
            return changes
        out: dict[dns.name.Name, Zone | None] = {}
        batch = []
        for origin, zone in changes.items():
            if zone is None:
                self.serials.forget(origin)
            served = self.serials.serve(zone) if zone is not None else None
            batch.append((zoneset.get(origin), served, zone))
            out[origin] = served
        self.serials.save()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None   # no event loop (tests, tools): at once, and nobody to NOTIFY
        if loop is None:
            self._after_swap(batch, None)
        else:
            self._background.submit(self._after_swap, batch, loop)
        return out

    def _after_swap(self, batch: list[tuple[Zone | None, Zone | None, Zone | None]],
                    loop: asyncio.AbstractEventLoop | None) -> None:
        """The slow part of a swap, in order, off the event loop (a second or so for
        50k records): the difference kept for IXFR, the fingerprint for restarts;
        then NOTIFY, so a secondary that asks at once gets the IXFR, not the AXFR."""
        notify = []
        for old, served, zone in batch:
            try:
                self.history.record(old, served)
                if zone is not None:
                    self.serials.remember(zone)   # type: ignore[union-attr]
            except Exception:
                log.exception("transfer bookkeeping failed: zone=%s",
                              (served or old).origin if (served or old) else "?")
            if served is not None:
                notify.append((served.origin, served.soa))
        if loop is not None and notify:
            try:
                loop.call_soon_threadsafe(self._notify, notify)
            except RuntimeError:
                pass   # the loop closed while we worked: the server is stopping

    def _notify(self, notify: list[tuple[dns.name.Name, dns.rrset.RRset]]) -> None:
        if self.before_notify is None:
            self._send_notify(notify)
            return
        task = asyncio.get_running_loop().create_task(self._notify_when_served(notify))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify_when_served(self, notify: list[tuple[dns.name.Name, dns.rrset.RRset]]
                                  ) -> None:
        """A secondary asks for the SOA as soon as it is told: tell it once the new
        version is what answers (with workers, once their new generation serves)."""
        assert self.before_notify is not None
        await self.before_notify()
        self._send_notify(notify)

    def _send_notify(self, notify: list[tuple[dns.name.Name, dns.rrset.RRset]]) -> None:
        for origin, soa in notify:
            self.notifier.notify(origin, soa)

    def handle(self, query: Query, client: object, wire: bytes) -> list[bytes] | None:
        """The transfer hook of the responder."""
        return self.server.handle(query, client, wire)

    def sign_answer(self, wire: bytes, response: bytes, tcp: bool) -> bytes:
        """RFC 8945 §5.3: the answer to a signed query (e.g. a secondary's SOA check), signed.

        A query whose TSIG does not verify gets NOTAUTH with the TSIG error
        (BADKEY, BADSIG, BADTIME; §5.2), never the answer: a key name we know
        with another algorithm is BADKEY too (§5.2.1).
        """
        check = check_tsig(wire, self.keyring)
        if check.request is None:
            _tsig_refusals.warning("tsig", "tsig query refused: error=%s reason=%s",
                                   TSIG_ERRORS.get(check.error or 0, "FORMERR"), check.reason)
            question_end = 12 + _question_length(wire)
            return tsig_error_response(wire, question_end, check, self.keyring)
        request = check.request
        answer = dns.message.from_wire(response)
        answer.use_tsig(request.keyring, request.keyname, original_id=request.id,
                        algorithm=request.keyalgorithm)
        answer.request_mac = request.mac
        limit = 65535 if tcp else max(512, request.payload if request.edns >= 0 else 512)
        return answer.to_wire(max_size=limit, prefer_truncation=True)

    # ------------------------------------------------------------ running

    def start(self) -> None:
        """The listeners are open: NOTIFY what changed while starting."""
        self.notifier.start()

    async def stop(self) -> None:
        await self.notifier.stop()
        self._background.shutdown(wait=False, cancel_futures=True)

    def check_emergency(self, pairs: Iterable[tuple[Zone | None, Zone | None]]) -> list[str]:
        """Start-up: warn about signed emergency zones secondaries would not follow."""
        warnings: list[str] = []
        if not self.enabled:
            return warnings
        for live, emergency in pairs:
            if live is None or emergency is None:
                continue
            message = emergency_serial_warning(live, emergency)
            if message is not None:
                log.warning("emergency serial: %s", message)
                warnings.append(message)
        return warnings


def _question_length(message: bytes) -> int:
    """Length of the one question of a well-formed message (its name is not compressed)."""
    offset = 12
    while message[offset]:
        offset += message[offset] + 1
    return offset + 1 + 4 - 12
