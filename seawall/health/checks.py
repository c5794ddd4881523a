"""The checks: TCP connect, HTTP(S) status and optional body match, DNS query.

Each check is one coroutine returning ``(ok, why)``; it never raises and
never takes longer than the check's timeout (the caller enforces it too).
HTTPS does not verify the certificate: the check asks whether the site
answers, not whether its certificate chain is right (a monitor of its own).
"""

from __future__ import annotations

import asyncio
import os
import ssl

import dns.message
import dns.rcode

from .declaration import Check

BODY_LIMIT = 64 * 1024   # bytes of a response read for a body match


async def run_check(check: Check, address: str) -> tuple[bool, str]:
    """Check ``address`` as ``check`` says; (True, "") or (False, the reason)."""
    try:
        return await asyncio.wait_for(_run(check, address), check.timeout)
    except asyncio.TimeoutError:
        return False, f"timeout after {check.timeout:g}s"
    except OSError as exc:
        return False, (os.strerror(exc.errno) if exc.errno else str(exc)) or type(exc).__name__
    except Exception as exc:   # a check must never take the service down
        return False, f"{type(exc).__name__}: {exc}"


async def _run(check: Check, address: str) -> tuple[bool, str]:
    if check.protocol == "TCP":
        return await tcp_check(address, check.port)
    if check.protocol in ("HTTP", "HTTPS"):
        return await http_check(check, address)
    return await dns_check(check, address)


async def tcp_check(address: str, port: int) -> tuple[bool, str]:
    _, writer = await asyncio.open_connection(address, port)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True, ""


async def http_check(check: Check, address: str) -> tuple[bool, str]:
    context = None
    if check.protocol == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(
        address, check.port, ssl=context, server_hostname=(check.host or None) if context
        else None)
    try:
        host = check.host or (f"[{address}]" if ":" in address else address)
        writer.write(f"GET {check.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: seawall-health"
                     f"\r\nConnection: close\r\n\r\n".encode("ascii", "replace"))
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.decode("latin-1").split()
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            return False, "not an HTTP response"
        status = int(parts[1])
        if check.expect is not None and status != check.expect:
            return False, f"HTTP {status}, expected {check.expect}"
        if check.expect is None and not 200 <= status < 400:
            return False, f"HTTP {status}"
        if check.body is not None:
            data = b""
            while len(data) < BODY_LIMIT:
                chunk = await reader.read(BODY_LIMIT - len(data))
                if not chunk:
                    break
                data += chunk
            if check.body.encode() not in data.partition(b"\r\n\r\n")[2]:
                return False, f"HTTP {status}, body without {check.body!r}"
        return True, ""
    finally:
        writer.close()


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def dns_check(check: Check, address: str) -> tuple[bool, str]:
    """One query over UDP: a NOERROR response with our ID is a server that answers;
    any other rcode (SERVFAIL, REFUSED, NXDOMAIN) is a failed check."""
    assert check.query is not None
    query = dns.message.make_query(check.query[0], check.query[1])
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _DnsProtocol, remote_addr=(address, check.port))
    try:
        transport.sendto(query.to_wire())
        wire = await protocol.answer
    finally:
        transport.close()
    try:
        response = dns.message.from_wire(wire)
    except Exception as exc:
        return False, f"unparsable DNS response: {exc}"
    if response.id != query.id:
        return False, "DNS response with another ID"
    if response.rcode() != dns.rcode.NOERROR:
        return False, f"DNS {dns.rcode.to_text(response.rcode())}"
    return True, ""
