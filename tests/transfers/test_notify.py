"""NOTIFY out against a real UDP listener: retries (RFC 1996 §3.6), TSIG, replacement."""

from __future__ import annotations

import asyncio
import socket
import threading

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import dns.tsig

from seawall.dns.notify import Notifier
from transfer_setup import KEYRING, ZONE

ORIGIN = dns.name.from_text(ZONE)


def soa(serial: int) -> dns.rrset.RRset:
    return dns.rrset.from_text(ZONE, 300, "IN", "SOA",
                               f"ns1.{ZONE} hostmaster.{ZONE} {serial} 300 60 1209600 60")


class Secondary(threading.Thread):
    """A UDP socket that ignores the first ``drop`` NOTIFYs and answers the rest."""

    def __init__(self, drop: int = 0, keyring=None, rcode: int = dns.rcode.NOERROR) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.drop = drop
        self.keyring = keyring
        self.rcode = rcode
        self.received: list[dns.message.Message] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                wire, peer = self.sock.recvfrom(65535)
            except OSError:
                continue
            message = dns.message.from_wire(wire, keyring=self.keyring)
            self.received.append(message)
            if len(self.received) <= self.drop:
                continue
            reply = dns.message.make_response(message)
            reply.flags |= dns.flags.AA
            reply.set_rcode(self.rcode)
            self.sock.sendto(reply.to_wire(), peer)

    def __enter__(self) -> Secondary:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join(2)
        self.sock.close()


async def notify_and_wait(notifier: Notifier, serial: int, count: int = 1) -> None:
    notifier.start()
    notifier.notify(ORIGIN, soa(serial))
    for _ in range(200):   # bounded: 10 s at most
        if len(notifier.results) >= count:
            break
        await asyncio.sleep(0.05)
    await notifier.stop()


def test_notify_is_retried_until_answered():
    with Secondary(drop=2) as secondary:
        notifier = Notifier([("127.0.0.1", secondary.port)], first_timeout=0.1)
        asyncio.run(notify_and_wait(notifier, 7))
    assert notifier.results == [(ZONE, f"127.0.0.1:{secondary.port}", 7, "NOERROR")]
    assert len(secondary.received) == 3
    first = secondary.received[0]
    assert first.opcode() == dns.opcode.NOTIFY and first.flags & dns.flags.AA
    assert not first.flags & dns.flags.RD
    assert first.answer[0][0].serial == 7          # the SOA rides along (RFC 1996 §3.7)


def test_notify_gives_up_after_the_last_attempt():
    with Secondary(drop=100) as secondary:
        notifier = Notifier([("127.0.0.1", secondary.port)], attempts=3, first_timeout=0.05)
        asyncio.run(notify_and_wait(notifier, 8))
    assert notifier.results == [(ZONE, f"127.0.0.1:{secondary.port}", 8, "gave up")]
    assert len(secondary.received) == 3


def test_an_error_rcode_ends_the_retries():
    with Secondary(rcode=dns.rcode.NOTAUTH) as secondary:
        notifier = Notifier([("127.0.0.1", secondary.port)], first_timeout=0.1)
        asyncio.run(notify_and_wait(notifier, 9))
    assert notifier.results[0][3] == "NOTAUTH"
    assert len(secondary.received) == 1


def test_notify_is_signed_with_the_configured_key():
    key = dns.tsig.Key("xfr-key.", KEYRING[dns.name.from_text("xfr-key.")].secret,
                       "hmac-sha256")
    with Secondary(keyring=KEYRING) as secondary:
        notifier = Notifier([("127.0.0.1", secondary.port)], key, first_timeout=0.5)
        asyncio.run(notify_and_wait(notifier, 10))
    assert secondary.received[0].had_tsig
    assert notifier.results[0][3] == "NOERROR"   # the signed response verified too


def test_a_newer_change_replaces_a_notify_being_retried():
    async def run(notifier: Notifier) -> None:
        notifier.start()
        notifier.notify(ORIGIN, soa(11))
        await asyncio.sleep(0.15)
        notifier.notify(ORIGIN, soa(12))
        for _ in range(200):
            if notifier.results:
                break
            await asyncio.sleep(0.05)
        await notifier.stop()

    with Secondary(drop=2) as secondary:
        notifier = Notifier([("127.0.0.1", secondary.port)], first_timeout=0.1)
        asyncio.run(run(notifier))
    assert [r[2] for r in notifier.results] == [12]


def test_nothing_is_sent_before_start():
    async def run(notifier: Notifier) -> None:
        notifier.notify(ORIGIN, soa(13))
        await asyncio.sleep(0.3)
        assert not secondary.received
        await notify_and_wait(notifier, 14)

    with Secondary() as secondary:
        notifier = Notifier([("127.0.0.1", secondary.port)], first_timeout=0.5)
        asyncio.run(run(notifier))
    # 13 waited for start, and 14 replaced it at once
    assert [m.answer[0][0].serial for m in secondary.received][-1] == 14
