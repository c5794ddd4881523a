"""The real server process on 127.0.0.1: wire rules, EDNS, truncation, TCP, reloads.

Every response goes through ``conftest.exchange``, which decodes it with both
dnspython and dnslib. ``dig`` and ``kdig`` are used as clients too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from conftest import (ROOT, SeawallProcess, ask, decode_twice, exchange, exchange_raw,
                      require_tool, rrset_texts, wait_for)

TXT_200 = '"' + "x" * 200 + '"'
ZONE = f"""$TTL 3600
@     SOA   ns1 hostmaster 1 7200 3600 1209600 300
@     NS    ns1
ns1   A     192.0.2.53
www   A     192.0.2.80
mid   TXT   {TXT_200} "1"
mid   TXT   {TXT_200} "2"
mid   TXT   {TXT_200} "3"
big   TXT   {TXT_200} "1"
big   TXT   {TXT_200} "2"
big   TXT   {TXT_200} "3"
big   TXT   {TXT_200} "4"
big   TXT   {TXT_200} "5"
big   TXT   {TXT_200} "6"
big   TXT   {TXT_200} "7"
big   TXT   {TXT_200} "8"
"""
CONFIG = """listen: ["127.0.0.1:0"]
zones: zones
tcp_idle_timeout: 1s
"""


def make_server(directory: Path, zone_text: str = ZONE) -> SeawallProcess:
    (directory / "zones" / "emergency").mkdir(parents=True, exist_ok=True)
    (directory / "zones" / "example.test.zone").write_text(zone_text)
    # Every served zone has its static emergency version (DESIGN: fail static).
    (directory / "zones" / "emergency" / "example.test.zone").write_text(zone_text)
    (directory / "seawall.yaml").write_text(CONFIG)
    return SeawallProcess(directory, config=directory / "seawall.yaml",
                          env={"PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with make_server(tmp_path_factory.mktemp("server")) as process:
        yield process


# ------------------------------------------------------------- raw wire

def wire_name(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def opt(payload: int = 1232, version: int = 0, flags: int = 0) -> bytes:
    """An OPT pseudo-record (RFC 6891 §6.1.2) without options."""
    return b"\x00" + struct.pack(">HHBBHH", 41, payload, 0, version, flags, 0)


def raw_query(qname: str = "www.example.test.", qtype: int = 1, qclass: int = 1, *,
              qid: int = 0x1234, flags: int = 0, qdcount: int = 1, ancount: int = 0,
              nscount: int = 0, arcount: int = 0, body: bytes | None = None) -> bytes:
    header = struct.pack(">HHHHHH", qid, flags, qdcount, ancount, nscount, arcount)
    if body is None:
        body = wire_name(qname) + struct.pack(">HH", qtype, qclass)
    return header + body


def rcode_of(response: dns.message.Message) -> str:
    return dns.rcode.to_text(response.rcode())


# ------------------------------------------------------------ dig, kdig

SECTION = re.compile(r"^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:$")


def parse_dig(output: str) -> dict:
    """status, flags and sections (as 'name ttl TYPE rdata' sets) from dig or kdig text."""
    status = re.search(r"status: (\w+)", output)
    flags = re.search(r";; [Ff]lags: ([a-z ]*);", output)
    sections: dict[str, set[str]] = {"ANSWER": set(), "AUTHORITY": set(), "ADDITIONAL": set()}
    current = None
    for line in output.splitlines():
        match = SECTION.match(line)
        if match:
            current = match[1]
            continue
        if not line.strip():
            current = None
            continue
        if line.startswith(";"):
            continue
        if current is not None:
            name, ttl, _cls, rdtype, rdata = line.split(None, 4)
            sections[current].add(f"{name.lower()} {ttl} {rdtype} {rdata}")
    return {"status": status[1] if status else None,
            "flags": set(flags[1].split()) if flags else None, **sections}


CLIENTS = [
    pytest.param("dig", [], id="dig-udp"),
    pytest.param("dig", ["+tcp"], id="dig-tcp"),
    pytest.param("kdig", [], id="kdig-udp"),
    pytest.param("kdig", ["+tcp"], id="kdig-tcp"),
]


def run_client(tool: str, options: list[str], server: SeawallProcess, *query: str) -> dict:
    require_tool(tool)
    host, port = server.addr
    retries = "+tries=1" if tool == "dig" else "+retry=0"
    out = subprocess.run([tool, "-p", str(port), f"@{host}", "+norec", "+time=3", retries,
                          *options, *query], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    return {**parse_dig(out.stdout), "output": out.stdout + out.stderr}


@pytest.mark.interop
@pytest.mark.parametrize("tool, options", CLIENTS)
def test_client_answer(server, tool, options):
    """RFC 1034 §4.3.2: an authoritative answer, AA set, RA clear."""
    result = run_client(tool, options, server, "www.example.test", "A")
    assert result["status"] == "NOERROR"
    assert result["flags"] == {"qr", "aa"}
    assert result["ANSWER"] == {"www.example.test. 3600 A 192.0.2.80"}


@pytest.mark.interop
@pytest.mark.parametrize("tool, options", CLIENTS)
def test_client_nxdomain(server, tool, options):
    """RFC 2308 §2.1: NXDOMAIN with the SOA, TTL min(SOA TTL, MINIMUM)."""
    result = run_client(tool, options, server, "nope.example.test", "A")
    assert result["status"] == "NXDOMAIN"
    assert result["flags"] == {"qr", "aa"}
    assert result["AUTHORITY"] == {"example.test. 300 SOA ns1.example.test. "
                                   "hostmaster.example.test. 1 7200 3600 1209600 300"}


@pytest.mark.interop
@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_client_follows_truncation_to_tcp(server, tool):
    """RFC 1035 §4.2.1 / RFC 7766 §5: the client retries over TCP and gets every record."""
    result = run_client(tool, ["+noedns"], server,
                        "big.example.test", "TXT")
    assert re.search(r"[Tt]runcated.*retrying (in|over) TCP", result["output"]), result["output"]
    assert result["status"] == "NOERROR"
    assert len(result["ANSWER"]) == 8


# ------------------------------------------------------------- header

def test_rd_copied_and_ra_clear(server):
    """RFC 1035 §4.1.1: RD is copied into the response; RA stays clear."""
    with_rd = ask(server.addr, "www.example.test.", rd=True)
    assert with_rd.flags & dns.flags.RD and not with_rd.flags & dns.flags.RA
    without = ask(server.addr, "www.example.test.", rd=False)
    assert not without.flags & dns.flags.RD and not without.flags & dns.flags.RA


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_question_case_is_echoed_also_from_the_cache(server, tcp):
    """RFC 4343 §4.1 / RFC 1035 §7.3: the question comes back exactly as sent."""
    for qname in ("WwW.ExAmPlE.TeSt.", "www.EXAMPLE.test.", "WWW.EXAMPLE.TEST."):
        raw = exchange_raw(server.addr, raw_query(qname), tcp=tcp)
        assert raw is not None
        decode_twice(raw)
        assert raw[12:12 + len(wire_name(qname))] == wire_name(qname)


@pytest.mark.parametrize("qtype", ["MAILA", "MAILB"])
def test_maila_and_mailb_are_nodata(server, qtype):
    """RFC 1035 §3.2.3 QTYPEs we hold no data of: NODATA, as Knot and NSD answer."""
    response = ask(server.addr, "www.example.test.", qtype)
    assert rcode_of(response) == "NOERROR"
    assert response.answer == [] and response.flags & dns.flags.AA
    assert [r.rdtype for r in response.authority] == [dns.rdatatype.SOA]


def test_out_of_zone_is_refused(server):
    """RFC 1034 §4.3.2 step 2: no zone of ours contains the name."""
    response = ask(server.addr, "www.example.org.")
    assert rcode_of(response) == "REFUSED"
    assert not response.flags & dns.flags.AA


@pytest.mark.parametrize("qtype", ["TXT", "ANY"])
def test_chaos_identity_is_refused_by_default(server, qtype):
    """DESIGN: identity (RFC 4892) is hidden unless the config sets it."""
    for qname in ("version.bind.", "hostname.bind.", "id.server."):
        response = ask(server.addr, qname, qtype, qclass="CH")
        assert rcode_of(response) == "REFUSED"
        assert response.answer == []


@pytest.mark.parametrize("opcode", [dns.opcode.STATUS, dns.opcode.UPDATE, 3, 6],
                         ids=["STATUS", "UPDATE", "opcode3", "DSO"])
def test_other_opcodes_are_notimp(server, opcode):
    """RFC 1035 §4.1.1: opcodes we do not implement get NOTIMP."""
    response = exchange(server.addr, raw_query("example.test.", 6, flags=int(opcode) << 11))
    assert rcode_of(response) == "NOTIMP"
    assert response.opcode() == opcode


def test_dso_without_a_question_is_notimp(server):
    """RFC 8490 §5.1: a server without DSO answers a DSO message (no question) NOTIMP."""
    response = exchange(server.addr, raw_query(flags=6 << 11, qdcount=0, body=b""), tcp=True)
    assert rcode_of(response) == "NOTIMP"


def test_notify_from_an_unknown_host_is_refused(server):
    """RFC 1996 §3.7 (and §4.7): a NOTIFY not from a configured primary."""
    notify = dns.message.make_query("example.test.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    response = exchange(server.addr, notify.to_wire())
    assert rcode_of(response) == "REFUSED"
    assert response.opcode() == dns.opcode.NOTIFY


def test_axfr_over_udp_is_notimp(server):
    """RFC 5936 §4.2: AXFR is a TCP-only query."""
    assert rcode_of(ask(server.addr, "example.test.", "AXFR")) == "NOTIMP"


@pytest.mark.parametrize("qtype", ["AXFR", "IXFR"])
def test_transfer_over_tcp_is_refused(server, qtype):
    """No transfer is allowed by default: REFUSED (RFC 5936 §4.2)."""
    query = dns.message.make_query("example.test.", qtype)
    assert rcode_of(exchange(server.addr, query.to_wire(), tcp=True)) == "REFUSED"


# ------------------------------------------------------------ malformed

@pytest.mark.parametrize("qdcount", [0, 2])
def test_qdcount_other_than_one_is_formerr(server, qdcount):
    """RFC 1035 §4.1.2 / RFC 9619: exactly one question."""
    body = b"" if qdcount == 0 else (wire_name("www.example.test.") + b"\x00\x01\x00\x01") * 2
    response = exchange(server.addr, raw_query(qdcount=qdcount, body=body))
    assert rcode_of(response) == "FORMERR"
    assert response.id == 0x1234


def test_response_bit_set_is_dropped(server):
    """RFC 1035 §4.1.1: a message with QR=1 is not a query; answering it invites loops."""
    assert server.proc is not None and server.proc.poll() is None, "the server is not running"
    assert exchange_raw(server.addr, raw_query(flags=0x8000), timeout=0.5) is None
    # Silence because it dropped the message, not because nobody listens: the
    # same query without QR is answered at once.
    response = exchange(server.addr, raw_query(), timeout=1.0)
    assert rcode_of(response) == "NOERROR" and response.id == 0x1234


@pytest.mark.parametrize("wire", [b"", b"\x12", b"\x12\x34\x00\x00\x00\x01\x00\x00\x00"],
                         ids=["empty", "one-byte", "eleven-bytes"])
def test_short_header_is_dropped(server, wire):
    assert exchange_raw(server.addr, wire, timeout=0.5) is None
    # ...and the server still answers the next one.
    assert rcode_of(ask(server.addr, "www.example.test.")) == "NOERROR"


def test_garbage_after_the_header_is_formerr(server):
    response = exchange(server.addr, raw_query(body=b"\x03www\x07exam"))
    assert rcode_of(response) == "FORMERR"


# ----------------------------------------------------------------- EDNS

def test_opt_is_echoed_with_our_payload(server):
    """RFC 6891 §6.1.1, §6.2.3: an OPT in the response, version 0, our UDP payload."""
    response = ask(server.addr, "www.example.test.", edns=0, payload=4096)
    assert response.edns == 0
    assert response.payload == 1232


def test_no_opt_without_edns(server):
    assert ask(server.addr, "www.example.test.", edns=False).edns == -1


def test_do_bit_is_echoed(server):
    """RFC 3225 §3: the DO bit is copied into the response's OPT."""
    response = ask(server.addr, "www.example.test.", dnssec=True)
    assert response.ednsflags & dns.flags.DO


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_edns_version_1_is_badvers(server, tcp):
    """RFC 6891 §6.1.3: an unsupported version gets BADVERS with our version 0."""
    response = exchange(server.addr, raw_query(arcount=1, body=wire_name("www.example.test.")
                                               + b"\x00\x01\x00\x01" + opt(version=1)), tcp=tcp)
    assert response.rcode() == dns.rcode.BADVERS
    assert response.edns == 0
    assert response.answer == []


def test_two_opts_are_formerr(server):
    """RFC 6891 §6.1.1: more than one OPT makes the message malformed."""
    body = wire_name("www.example.test.") + b"\x00\x01\x00\x01" + opt() + opt()
    assert rcode_of(exchange(server.addr, raw_query(arcount=2, body=body))) == "FORMERR"


def test_opt_in_the_answer_section_is_formerr(server):
    """RFC 6891 §6.1.1: the OPT belongs in the additional section only."""
    body = wire_name("www.example.test.") + b"\x00\x01\x00\x01" + opt()
    assert rcode_of(exchange(server.addr, raw_query(ancount=1, body=body))) == "FORMERR"


def test_options_running_past_the_opt_are_formerr(server):
    bad_opt = b"\x00" + struct.pack(">HHBBHH", 41, 1232, 0, 0, 0, 4) + b"\x00\x0a\x00\x08"
    body = wire_name("www.example.test.") + b"\x00\x01\x00\x01" + bad_opt
    assert rcode_of(exchange(server.addr, raw_query(arcount=1, body=body))) == "FORMERR"


# ----------------------------------------------------------- truncation

def test_udp_without_edns_is_truncated_at_512(server):
    """RFC 1035 §4.2.1: 512 octets without EDNS; TC=1 when the answer does not fit."""
    raw = exchange_raw(server.addr, dns.message.make_query("big.example.test.", "TXT").to_wire())
    assert raw is not None and len(raw) <= 512
    response = decode_twice(raw)
    assert response.flags & dns.flags.TC


def test_tcp_retry_gets_the_whole_answer(server):
    """RFC 7766 §5: after TC the client asks over TCP and gets every record."""
    response = ask(server.addr, "big.example.test.", "TXT", edns=False, tcp=True)
    assert not response.flags & dns.flags.TC
    assert len(response.answer[0]) == 8
    assert response.flags & dns.flags.AA


def test_medium_answer_fits_with_edns_not_without(server):
    """RFC 6891 §6.2.5: the requester's payload size is the limit."""
    assert ask(server.addr, "mid.example.test.", "TXT", edns=False).flags & dns.flags.TC
    response = ask(server.addr, "mid.example.test.", "TXT", edns=0, payload=1232)
    assert not response.flags & dns.flags.TC and len(response.answer[0]) == 3


def test_our_payload_limit_caps_a_larger_request(server):
    """RFC 6891 §6.2.5: never more than our own limit (1232), whatever the client offers."""
    raw = exchange_raw(server.addr, dns.message.make_query(
        "big.example.test.", "TXT", use_edns=0, payload=4096).to_wire())
    assert raw is not None and len(raw) <= 1232
    response = decode_twice(raw)
    assert response.flags & dns.flags.TC and response.edns == 0


# ------------------------------------------------------------------ TCP

def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} octets")
        data += chunk
    return data


def test_tcp_pipelining(server):
    """RFC 7766 §6.2.1.1: several queries on one connection, all answered."""
    queries = {}
    for index, qname in enumerate(["www", "ns1", "nope", "mid", "big", "www"]):
        query = dns.message.make_query(f"{qname}.example.test.", "TXT" if qname in
                                       ("mid", "big") else "A")
        query.id = 1000 + index
        queries[query.id] = query
    stream = b"".join(len(w).to_bytes(2, "big") + w
                      for w in (q.to_wire() for q in queries.values()))
    with socket.create_connection(server.addr, timeout=5) as sock:
        sock.sendall(stream)
        answered = {}
        for _ in queries:
            size = int.from_bytes(recv_exact(sock, 2), "big")
            response = decode_twice(recv_exact(sock, size))
            answered[response.id] = response
    assert set(answered) == set(queries)
    assert rcode_of(answered[1002]) == "NXDOMAIN"
    assert len(answered[1004].answer[0]) == 8


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the supervisor and its workers)."""
    pids, index = [pid], 0
    while index < len(pids):
        for children in Path(f"/proc/{pids[index]}/task").glob("*/children"):
            try:
                pids += [int(child) for child in children.read_text().split()]
            except OSError:
                continue
        index += 1
    return pids


def connection_holder(root: int, client: socket.socket) -> int | None:
    """The process under ``root`` holding the server end of ``client``'s TCP connection."""
    def hex_addr(addr: tuple[str, int]) -> str:
        return f"{socket.inet_aton(addr[0])[::-1].hex().upper()}:{addr[1]:04X}"

    ours, theirs = hex_addr(client.getsockname()), hex_addr(client.getpeername())
    inodes = {fields[9] for fields in (line.split() for line in
                                       Path("/proc/net/tcp").read_text().splitlines()[1:])
              if fields[1] == theirs and fields[2] == ours}
    targets = {f"socket:[{inode}]" for inode in inodes}
    for pid in process_tree(root):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    return pid
            except OSError:
                continue
    return None


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_tcp_client_that_does_not_read_cannot_grow_our_buffers(server):
    """RFC 7766 §6.2.1.1 pipelining, bounded: 30000 queries for a 1.7 KB answer sent
    without reading would buffer ~50 MB of answers; the server stops reading instead,
    and every answer still arrives once the client reads. Measured in the process
    that holds the connection (a worker, not the supervisor)."""
    wire = dns.message.make_query("big.example.test.", "TXT").to_wire()
    count = 30_000
    stream = (len(wire).to_bytes(2, "big") + wire) * count
    with socket.create_connection(server.addr, timeout=20) as sock:
        holder = wait_for(lambda: connection_holder(server.pid, sock), timeout=5)
        assert holder, "no process of the server holds the connection"
        before = rss_kib(holder)
        sender = threading.Thread(target=sock.sendall, args=(stream,), daemon=True)
        sender.start()
        time.sleep(0.5)  # within the 1 s idle timeout: a client that never reads is closed
        grown = rss_kib(holder) - before
        answers = 0
        pending = bytearray()
        while answers < count:
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {answers} answers"
            pending += chunk
            offset = 0
            while len(pending) - offset >= 2:
                size = int.from_bytes(pending[offset:offset + 2], "big")
                if len(pending) - offset < 2 + size:
                    break
                offset += 2 + size
                answers += 1
            del pending[:offset]
        sender.join(timeout=10)
    print(f"\n[tcp memory] pid {holder} (supervisor {server.pid}) grew by {grown} KiB")
    assert grown < 16 * 1024, f"process {holder} holding the connection grew by {grown} KiB"


def test_tcp_message_split_across_segments(server):
    wire = dns.message.make_query("www.example.test.", "A").to_wire()
    framed = len(wire).to_bytes(2, "big") + wire
    with socket.create_connection(server.addr, timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in framed:
            sock.send(bytes([byte]))
        size = int.from_bytes(recv_exact(sock, 2), "big")
        assert rcode_of(decode_twice(recv_exact(sock, size))) == "NOERROR"


def test_idle_tcp_connection_is_closed(server):
    """RFC 7766 §6.2.3: the server closes a silent connection (here after 1 s)."""
    with socket.create_connection(server.addr, timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert 0.5 < time.monotonic() - started < 4.5


def test_zero_length_tcp_message_closes(server):
    """RFC 7766 §8: nothing sensible follows a zero length; the server closes."""
    with socket.create_connection(server.addr, timeout=5) as sock:
        sock.sendall(b"\x00\x00")
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 0.9  # before the idle timeout


def test_tcp_answers_then_closes_on_client_eof(server):
    wire = dns.message.make_query("www.example.test.", "A").to_wire()
    with socket.create_connection(server.addr, timeout=5) as sock:
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        sock.shutdown(socket.SHUT_WR)
        size = int.from_bytes(recv_exact(sock, 2), "big")
        assert rcode_of(decode_twice(recv_exact(sock, size))) == "NOERROR"
        assert sock.recv(1) == b""


# ----------------------------------------------------------------- IPv6

def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_listener(tmp_path):
    make_server(tmp_path)
    with SeawallProcess(tmp_path, "--listen", "[::1]:0", zones=tmp_path / "zones",
                        env={"PYTHONPATH": str(ROOT)}) as process:
        import dns.query

        query = dns.message.make_query("www.example.test.", "A")
        for send in (dns.query.udp, dns.query.tcp):
            response = send(query, "::1", port=process.addr[1], timeout=3)
            decode_twice(response.to_wire())
            assert rrset_texts(response.answer) == {"www.example.test. 3600 A 192.0.2.80"}


# ------------------------------------------------------ configured limits

def test_configured_identity_and_tcp_message_bound(tmp_path):
    """CHAOS TXT identity (RFC 4892) when the config sets one; TCP messages bounded."""
    process = make_server(tmp_path)
    (tmp_path / "seawall.yaml").write_text(CONFIG + "identity: {version: seawall-test}\n"
                                           "tcp_max_message: 512\n")
    with process:
        response = ask(process.addr, "VERSION.bind.", "TXT", qclass="CH")
        assert rcode_of(response) == "NOERROR" and response.flags & dns.flags.AA
        assert [rd.strings for rd in response.answer[0]] == [(b"seawall-test",)]
        assert response.question[0].name.labels[0] == b"VERSION"
        assert rcode_of(ask(process.addr, "hostname.bind.", "TXT", qclass="CH")) == "REFUSED"
        big = dns.message.make_query("www.example.test.", "A", use_edns=0,
                                     options=[dns.edns.GenericOption(65001, b"x" * 600)])
        wire = big.to_wire()
        with socket.create_connection(process.addr, timeout=5) as sock:
            sock.sendall(len(wire).to_bytes(2, "big") + wire)
            assert sock.recv(1) == b""  # closed, not answered
        assert rcode_of(ask(process.addr, "www.example.test.", tcp=True)) == "NOERROR"


# -------------------------------------------------------------- reloads


def test_broken_zone_on_sighup_keeps_the_old_zone(tmp_path):
    """A broken file never replaces a good zone (DESIGN: fail static); the log says where."""
    with make_server(tmp_path) as process:
        zone_file = tmp_path / "zones" / "example.test.zone"
        zone_file.write_text(ZONE.replace("www   A     192.0.2.80", "www   A     192.0.2.81")
                             + "bad   A     300.1.2.3\n")
        process.signal(signal.SIGHUP)
        assert wait_for(lambda: "zones/example.test.zone:17: " in process.output()), \
            process.output()
        response = ask(process.addr, "www.example.test.")
        assert rrset_texts(response.answer) == {"www.example.test. 3600 A 192.0.2.80"}
        assert response.flags & dns.flags.AA


def test_zone_broken_at_startup_is_not_served_and_the_others_are(tmp_path):
    make_server(tmp_path)
    (tmp_path / "zones" / "broken.test.zone").write_text(
        (ROOT / "tests" / "zones" / "data" / "two-soas.test.zone").read_text())
    # --zones without a config: a zone without an emergency version is allowed.
    with SeawallProcess(tmp_path, zones=tmp_path / "zones",
                        env={"PYTHONPATH": str(ROOT)}) as process:
        assert rcode_of(ask(process.addr, "www.example.test.")) == "NOERROR"
        assert rcode_of(ask(process.addr, "broken.test.", "SOA")) == "REFUSED"
        assert "zones/broken.test.zone:4: second SOA record" in process.output()


def test_good_edit_is_picked_up_on_sighup(tmp_path):
    with make_server(tmp_path) as process:
        assert rrset_texts(ask(process.addr, "www.example.test.").answer) == \
            {"www.example.test. 3600 A 192.0.2.80"}
        zone_file = tmp_path / "zones" / "example.test.zone"
        zone_file.write_text(ZONE.replace(" 1 7200", " 2 7200")
                             .replace("192.0.2.80", "192.0.2.81"))
        process.signal(signal.SIGHUP)

        def updated() -> bool:
            return rrset_texts(ask(process.addr, "www.example.test.").answer) == \
                {"www.example.test. 3600 A 192.0.2.81"}
        assert wait_for(updated), process.output()
        assert ask(process.addr, "example.test.", "SOA").answer[0][0].serial == 2


def test_edit_of_an_included_file_is_picked_up_on_sighup(tmp_path):
    """$INCLUDE (RFC 1035 §5.1): a change to the included file is a change to the zone.

    Only the included file changes, and it holds the SOA, so the serial goes up.
    """
    zone = "$TTL 3600\n$INCLUDE head.inc\n@ NS ns1\nns1 A 192.0.2.53\n"
    head = "@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\napi A 192.0.2.{host}\n"
    process = make_server(tmp_path, zone)
    for where in (tmp_path / "zones", tmp_path / "zones" / "emergency"):
        (where / "head.inc").write_text(head.format(serial=1, host=90))
    with process:
        assert rrset_texts(ask(process.addr, "api.example.test.").answer) == \
            {"api.example.test. 3600 A 192.0.2.90"}
        (tmp_path / "zones" / "head.inc").write_text(head.format(serial=2, host=91))
        process.signal(signal.SIGHUP)

        def updated() -> bool:
            return rrset_texts(ask(process.addr, "api.example.test.").answer) == \
                {"api.example.test. 3600 A 192.0.2.91"}
        assert wait_for(updated), process.output()


def test_sigterm_stops_cleanly(tmp_path):
    process = make_server(tmp_path).start()
    assert rcode_of(ask(process.addr, "www.example.test.")) == "NOERROR"
    assert process.stop() == 0
