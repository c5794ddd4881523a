"""Each check against a real listener on loopback: HTTP status and body, HTTPS, DNS, TCP."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from conftest import require_tool
from seawall.health.checks import run_check
from seawall.health.declaration import Check

HOST = "127.0.0.5"


async def http_server(status: int, body: bytes, context: ssl.SSLContext | None = None):
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, HOST, 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("status, body, check, expected", [
    (200, b"all ok", {}, (True, "")),
    (503, b"ok", {}, (False, "HTTP 503")),
    (301, b"", {}, (True, "")),
    (301, b"", {"expect": 200}, (False, "HTTP 301, expected 200")),
    (200, b"degraded", {"body": "ok"}, (False, "HTTP 200, body without 'ok'")),
    (200, b"status: ok", {"body": "ok"}, (True, "")),
])
def test_http(status, body, check, expected):
    async def main():
        server, port = await http_server(status, body)
        async with server:
            return await run_check(Check("HTTP", port, timeout=2, **check), HOST)
    assert asyncio.run(main()) == expected


def test_https_without_verifying_the_certificate(tmp_path: Path):
    require_tool("openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=www.hc.example", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def main():
        server, port = await http_server(200, b"ok", context)
        async with server:
            return await run_check(Check("HTTPS", port, host="www.hc.example", body="ok",
                                         timeout=3), HOST)
    assert asyncio.run(main()) == (True, "")


class Responder(asyncio.DatagramProtocol):
    def __init__(self, rcode: int) -> None:
        self.rcode = rcode

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(self.rcode)
        self.transport.sendto(response.to_wire(), addr)


@pytest.mark.parametrize("rcode, expected", [
    (dns.rcode.NOERROR, (True, "")),
    (dns.rcode.SERVFAIL, (False, "DNS SERVFAIL")),
])
def test_dns(rcode, expected):
    async def main():
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: Responder(rcode), local_addr=(HOST, 0))
        port = transport.get_extra_info("sockname")[1]
        try:
            return await run_check(Check("DNS", port, query=("hc.example.", "SOA"),
                                         timeout=2), HOST)
        finally:
            transport.close()
    assert asyncio.run(main()) == expected


def test_dns_silence_is_a_timeout_and_tcp_refusal_a_failure():
    async def main():
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(HOST, 0))
        port = transport.get_extra_info("sockname")[1]
        try:
            silent = await run_check(Check("DNS", port, query=("x.", "A"), timeout=0.3), HOST)
        finally:
            transport.close()
        refused = await run_check(Check("TCP", port, timeout=1), HOST)
        return silent, refused
    silent, refused = asyncio.run(main())
    assert silent == (False, "timeout after 0.3s")
    assert refused[0] is False and "refused" in refused[1].lower()
