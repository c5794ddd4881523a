"""TSIG errors per RFC 8945 §5.2 and §5.3.2 (issue 14, finding 9), against a server process.

Before: the right key name with another algorithm got FORMERR on a transfer
and a normal, unsigned answer on a query; TSIG error responses carried no
TSIG record, so a client could not tell BADKEY from BADSIG from BADTIME.
"""

from __future__ import annotations

import subprocess
import time
from unittest import mock

import dns.message
import dns.name
import dns.rcode
import dns.renderer
import dns.tsig
import dns.tsigkeyring
import pytest

from conftest import exchange_raw, require_tool
from transfer_setup import KEYRING, SECRET, WRONG_KEYRING, ZONE, start_primary

KEYS = f"  keys: [{{name: xfr-key, algorithm: hmac-sha256, secret: \"{SECRET}\"}}]\n"
OTHER_ALGORITHM = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha512", SECRET)})
OTHER_NAME = dns.tsigkeyring.from_text({"nobody-key.": ("hmac-sha256", SECRET)})
BADSIG, BADKEY, BADTIME = 16, 17, 18


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    server = start_primary(tmp_path_factory.mktemp("tsig"), KEYS + "  allow: [{key: xfr-key}]\n")
    yield server
    server.stop()


def signed(qtype: str, keyring) -> dns.message.Message:
    query = dns.message.make_query(ZONE, qtype)
    query.use_tsig(keyring, keyname=next(iter(keyring)))
    return query


def reply_to(server, query: dns.message.Message, tcp: bool) -> dns.message.Message:
    raw = exchange_raw(server.addr, query.to_wire(), tcp=tcp)
    assert raw is not None, "no answer"
    return dns.message.from_wire(raw, keyring=False)   # read the TSIG record, do not verify


CASES = [("right name, another algorithm", OTHER_ALGORITHM, BADKEY),
         ("unknown name", OTHER_NAME, BADKEY),
         ("wrong secret", WRONG_KEYRING, BADSIG)]


@pytest.mark.parametrize("qtype,tcp", [("SOA", False), ("SOA", True), ("AXFR", True)],
                         ids=["SOA-udp", "SOA-tcp", "AXFR-tcp"])   # AXFR is TCP only
@pytest.mark.parametrize("case,keyring,error", CASES, ids=[c[0] for c in CASES])
def test_tsig_errors_carry_the_error_code(primary, qtype, tcp, case, keyring, error):
    reply = reply_to(primary, signed(qtype, keyring), tcp)
    assert reply.rcode() == dns.rcode.NOTAUTH, (case, dns.rcode.to_text(reply.rcode()))
    assert not reply.answer
    assert reply.tsig is not None, "the error goes back in a TSIG record (RFC 8945 §5.3.2)"
    tsig = reply.tsig[0]
    assert tsig.error == error
    assert tsig.mac == b"", "BADKEY and BADSIG go unsigned (empty MAC)"
    assert reply.keyname == next(iter(keyring))


def test_badtime_is_signed_and_says_the_server_time(primary):
    query = signed("SOA", KEYRING)
    now = time.time
    with mock.patch.object(dns.renderer.time, "time", lambda: now() - 3600):
        wire = query.to_wire()
    raw = exchange_raw(primary.addr, wire)
    reply = dns.message.from_wire(raw, keyring=False)
    assert reply.rcode() == dns.rcode.NOTAUTH and not reply.answer
    tsig = reply.tsig[0]
    assert tsig.error == BADTIME
    assert len(tsig.mac) == 32, "BADTIME is signed with the key (RFC 8945 §5.2.3)"
    assert abs(int.from_bytes(tsig.other, "big") - time.time()) < 5
    # dnspython, given the key and the request's MAC, reads it as the server's BADTIME.
    with pytest.raises(dns.tsig.PeerBadTime):
        dns.message.from_wire(raw, keyring=KEYRING, request_mac=query.mac)


def test_dnspython_client_sees_badkey_for_the_wrong_algorithm(primary):
    query = signed("SOA", OTHER_ALGORITHM)
    with pytest.raises(dns.tsig.PeerBadKey):
        dns.query.udp(query, primary.addr[0], port=primary.addr[1], timeout=3)


def test_the_right_key_still_gets_a_signed_answer(primary):
    query = signed("SOA", KEYRING)
    response = dns.query.tcp(query, primary.addr[0], port=primary.addr[1], timeout=3)
    assert response.had_tsig and response.answer[0][0].serial == 2026112701


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_dig_and_kdig_see_notauth_badkey(primary, tool):
    require_tool(tool)
    host, port = primary.addr
    wrong = subprocess.run([tool, f"@{host}", "-p", str(port), "-y",
                            f"hmac-sha512:xfr-key:{SECRET}", ZONE, "SOA"],
                           capture_output=True, text=True, timeout=15)
    text = wrong.stdout + wrong.stderr
    # dig shows "status: NOTAUTH" and the TSIG error; kdig folds the TSIG error into
    # the status ("status: BADKEY").
    assert "BADKEY" in text and ("NOTAUTH" in text or "status: BADKEY" in text), text
    right = subprocess.run([tool, f"@{host}", "-p", str(port), "-y",
                            f"hmac-sha256:xfr-key:{SECRET}", ZONE, "SOA"],
                           capture_output=True, text=True, timeout=15)
    text = right.stdout + right.stderr
    assert "NOERROR" in text and "2026112701" in text, text
    assert "BADKEY" not in text and "BADSIG" not in text and "failed" not in text.lower(), text


def test_a_signed_query_without_any_key_configured_is_badkey(tmp_path):
    """No transfers.keys at all: a signed query is BADKEY, not answered unsigned."""
    server = start_primary(tmp_path, "  notify: []\n  allow: [{address: [\"127.0.0.0/8\"]}]\n")
    try:
        reply = reply_to(server, signed("SOA", KEYRING), tcp=False)
        assert reply.rcode() == dns.rcode.NOTAUTH and reply.tsig[0].error == BADKEY
    finally:
        server.stop()
