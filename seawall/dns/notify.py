"""NOTIFY out (RFC 1996): tell the secondaries that a zone's served version changed.

Every change of what is served — a new live version, a switch to stale or
emergency, the return to live — sends a NOTIFY for the zone to every
configured secondary, over UDP, with the served SOA in the answer section
(§3.7) and signed with TSIG when a key is configured (RFC 8945). As §3.6
asks, an unanswered NOTIFY is sent again, here after 1, 2, 4 and 8 seconds
(``ATTEMPTS`` tries in all); any response ends the retries, and an error
rcode is logged. A newer change of the same zone replaces a NOTIFY still
being retried, so a secondary hears about the newest serial.

Until ``start`` (the listeners are open), notifications wait: a secondary
that asks for the SOA at once must find the server answering.
"""

from __future__ import annotations

import asyncio
import logging

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig

log = logging.getLogger("seawall.transfers")

ATTEMPTS = 5
FIRST_TIMEOUT = 1.0


class Notifier:
    """Sends NOTIFY messages to a fixed list of secondaries, with retries."""

    def __init__(self, targets: list[tuple[str, int]], key: dns.tsig.Key | None = None, *,
                 attempts: int = ATTEMPTS, first_timeout: float = FIRST_TIMEOUT) -> None:
        self.targets = targets
        self.key = key
        self.attempts = attempts
        self.first_timeout = first_timeout
        self._tasks: dict[tuple[dns.name.Name, tuple[str, int]], asyncio.Task] = {}
        self._waiting: dict[dns.name.Name, dns.rrset.RRset] = {}
        self._started = False
        # (zone, "host:port", serial, outcome) of every finished NOTIFY, for tests and logs.
        self.results: list[tuple[str, str, int, str]] = []

    def start(self) -> None:
        """The server answers now: send what waited."""
        self._started = True
        waiting, self._waiting = self._waiting, {}
        for origin, soa in waiting.items():
            self.notify(origin, soa)

    def notify(self, origin: dns.name.Name, soa: dns.rrset.RRset) -> None:
        """NOTIFY every secondary that ``origin`` is now served with ``soa``."""
        if not self.targets:
            return
        if not self._started:
            self._waiting[origin] = soa
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("notify not sent: zone=%s reason=no event loop", origin)
            return
        for target in self.targets:
            previous = self._tasks.pop((origin, target), None)
            if previous is not None and not previous.done():
                previous.cancel()
            task = loop.create_task(self._send(origin, soa, target))
            self._tasks[(origin, target)] = task
            task.add_done_callback(lambda t, k=(origin, target): self._forget(k, t))

    def _forget(self, key: tuple[dns.name.Name, tuple[str, int]], task: asyncio.Task) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    def _message(self, origin: dns.name.Name, soa: dns.rrset.RRset) -> dns.message.Message:
        message = dns.message.make_query(origin, dns.rdatatype.SOA)
        message.flags = dns.flags.AA   # RFC 1996 §3.7: AA set, RD clear
        message.set_opcode(dns.opcode.NOTIFY)   # after: the opcode lives in the flags
        message.answer.append(soa)
        if self.key is not None:
            message.use_tsig(self.key)
        return message

    async def _send(self, origin: dns.name.Name, soa: dns.rrset.RRset,
                    target: tuple[str, int]) -> None:
        host, port = target
        where = f"{host}:{port}"
        serial = soa[0].serial
        timeout = self.first_timeout
        outcome = "no answer"
        for attempt in range(1, self.attempts + 1):
            message = self._message(origin, soa)
            try:
                response = await dns.asyncquery.udp(message, host, timeout=timeout, port=port)
            except dns.exception.Timeout:
                log.debug("notify unanswered: zone=%s secondary=%s attempt=%d", origin, where,
                          attempt)
            except (OSError, dns.exception.DNSException) as exc:
                log.debug("notify failed: zone=%s secondary=%s attempt=%d reason=%s", origin,
                          where, attempt, exc)
                outcome = f"error: {exc}"
                # An ICMP error comes back at once: wait as a lost datagram would.
                await asyncio.sleep(timeout)
            else:
                rcode = response.rcode()
                if response.opcode() != dns.opcode.NOTIFY:
                    # Not an answer to a NOTIFY (RFC 1996 §4.7): as good as none.
                    outcome = f"answered with opcode {dns.opcode.to_text(response.opcode())}"
                    timeout *= 2
                    continue
                outcome = dns.rcode.to_text(rcode)
                if rcode == dns.rcode.NOERROR:
                    log.info("notify acknowledged: zone=%s serial=%d secondary=%s attempt=%d",
                             origin, serial, where, attempt)
                else:
                    log.warning("notify refused: zone=%s serial=%d secondary=%s rcode=%s",
                                origin, serial, where, outcome)
                self.results.append((str(origin), where, serial, outcome))
                return
            timeout *= 2
        log.warning("notify gave up: zone=%s serial=%d secondary=%s attempts=%d last=%s",
                    origin, serial, where, self.attempts, outcome)
        self.results.append((str(origin), where, serial, "gave up"))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
