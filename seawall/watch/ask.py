"""Asking one server one question, the way a resolver would (no recursion wanted).

UDP first with EDNS(0), TCP when the answer comes back truncated (RFC 7766
§5). Every failure is an :class:`Unanswered` naming the server and why, so a
finding can say which server did not answer and how.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdatatype

from ..config import parse_listen
from ..errors import SeawallError

PAYLOAD = 1232   # EDNS(0) UDP payload size asked for (DNS flag day 2020)
TRIES = 3        # datagrams sent before a server counts as not answering


class Unanswered(SeawallError):
    """A server gave no usable answer (timeout, refused connection, malformed reply)."""


@dataclass(frozen=True, order=True)
class Server:
    """One server's address and port; ``str()`` is HOST:PORT ([IPv6]:PORT)."""

    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str, default_port: int = 53) -> Server:
        if ":" not in text or (text.count(":") > 1 and not text.startswith("[")):
            return cls(text, default_port)   # a bare address
        host, port = parse_listen(text)
        return cls(host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


async def ask(server: Server, qname: dns.name.Name, rdtype: int, timeout: float, *,
              dnssec: bool = False, tries: int = TRIES) -> dns.message.Message:
    """One question to ``server``, RD clear; the response, or Unanswered.

    A datagram that gets no answer is sent again, up to ``tries`` times, as a
    resolver does: one lost packet is not a finding.
    """
    query = dns.message.make_query(qname, rdtype, use_edns=0, payload=PAYLOAD,
                                   want_dnssec=dnssec)
    query.flags &= ~dns.flags.RD
    for attempt in range(tries):
        try:
            response = await dns.asyncquery.udp(query, server.host, timeout=timeout,
                                                port=server.port, ignore_unexpected=True)
            if response.flags & dns.flags.TC:
                response = await dns.asyncquery.tcp(query, server.host, timeout=timeout,
                                                    port=server.port)
            return response
        except (dns.exception.Timeout, asyncio.TimeoutError):
            if attempt + 1 < tries:
                continue
            raise Unanswered(f"{server}: no answer within {timeout:g}s, {tries} tries") \
                from None
        except (OSError, EOFError, socket.error) as exc:
            raise Unanswered(f"{server}: {getattr(exc, 'strerror', None) or exc}") from None
        except (dns.exception.DNSException, ValueError) as exc:
            raise Unanswered(f"{server}: unusable answer: {exc}") from None
    raise Unanswered(f"{server}: no answer")


def type_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(rdtype)
