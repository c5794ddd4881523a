"""Latency and losses while Seawall swaps in a new version of a big zone.

A steady stream of queries (``--rate`` per second, A hits on the zone) goes
to Seawall pinned to CPU 1 from this process pinned to CPU 0; halfway through,
the zone file gets a new serial and a changed record, and the server is told
to reload (SIGHUP). Every query's latency is recorded; the report gives p50,
p99 and max over the whole run and over the switch window (from the SIGHUP
until the new data is served, plus one second), the queries lost, and how
long the switch took to show. dnsperf has no percentiles, hence this client.

Example::

    .venv/bin/python bench/switch.py                 # 100k records, 5000 q/s, 20 s, 2 workers
    .venv/bin/python bench/switch.py --workers 1     # one process loads and serves
    .venv/bin/python bench/switch.py --records 20000 --rate 2000 --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import Seawall  # noqa: E402
from zonegen import ORIGIN, write_zone  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CHANGED = "h0"          # the record whose address changes in the new version
NEW_ADDRESS = "192.0.2.222"
NEW_RDATA = socket.inet_aton(NEW_ADDRESS)


def query(qname: str, qid: int) -> bytes:
    labels = b"".join(bytes((len(p),)) + p.encode() for p in qname.rstrip(".").split("."))
    return qid.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + \
        b"\x00\x00\x01\x00\x01"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def new_version(zone: Path) -> None:
    """Bump the serial and change one address, as a deploy would."""
    text = zone.read_text()
    text = text.replace(" 2024010101 ", " 2024010102 ", 1)
    text = text.replace(f"\n{CHANGED} IN A 10.0.0.0\n", f"\n{CHANGED} IN A {NEW_ADDRESS}\n", 1)
    tmp = zone.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(zone)


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="seawall-switch-"))
    zone_dir = work / "zones"
    zone_dir.mkdir()
    zone = zone_dir / f"{ORIGIN}zone"
    shape = write_zone(zone, args.records)
    server = Seawall("seawall", zone, ORIGIN, work / "seawall", cpu=args.server_cpu,
                     extra=("--workers", str(args.workers)))
    try:
        os.sched_setaffinity(0, {args.client_cpu})
    except OSError:
        pass
    rng = random.Random(7)
    names = [f"h{rng.randrange(shape.a)}.{ORIGIN}" for _ in range(4096)]
    probe_name = f"{CHANGED}.{ORIGIN}"
    try:
        server.start(timeout=args.timeout)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.connect(("127.0.0.1", server.port))
        sock.settimeout(0.2)
        total = int(args.rate * args.duration)
        sent = [0.0] * total
        got = [0.0] * total
        new_seen = [0.0]
        stop = threading.Event()

        def receive() -> None:
            while not stop.is_set():
                try:
                    data = sock.recv(4096)
                except OSError:
                    continue
                now = time.monotonic()
                qid = int.from_bytes(data[:2], "big")
                # The newest query sent with this ID (IDs wrap every 65536 queries).
                seq = qid
                while seq + 65536 < total and sent[seq + 65536]:
                    seq += 65536
                if seq < total and not got[seq]:
                    got[seq] = now
                if not new_seen[0] and data.endswith(NEW_RDATA):
                    new_seen[0] = now

        receiver = threading.Thread(target=receive, daemon=True)
        receiver.start()
        start = time.monotonic()
        switch_at = 0.0
        interval = 1.0 / args.rate
        for seq in range(total):
            due = start + seq * interval
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not switch_at and seq >= total // 2:
                new_version(zone)
                os.kill(server.pid, signal.SIGHUP)
                switch_at = time.monotonic()
            qname = probe_name if seq % 50 == 0 else names[seq % len(names)]
            sent[seq] = time.monotonic()
            try:
                sock.send(query(qname, seq & 0xFFFF))
            except OSError:
                pass
        time.sleep(2.0)
        stop.set()
        receiver.join(timeout=2)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    latencies = [(g - s) * 1000 for s, g in zip(sent, got) if g]
    shown = new_seen[0] - switch_at if new_seen[0] else None
    window_end = (new_seen[0] or switch_at + 5) + 1.0
    in_window = [(g - s) * 1000 for s, g in zip(sent, got)
                 if g and switch_at - 0.5 <= s <= window_end]
    sent_in_window = sum(1 for s in sent if switch_at - 0.5 <= s <= window_end)
    return {
        "records": args.records, "rate": args.rate, "duration": args.duration,
        "sent": total, "answered": len(latencies), "lost": total - len(latencies),
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "switch_shown_after_s": shown,
        "window_sent": sent_in_window, "window_lost": sent_in_window - len(in_window),
        "window_p50_ms": percentile(in_window, 50), "window_p99_ms": percentile(in_window, 99),
        "window_max_ms": max(in_window, default=float("nan")),
        "command": " ".join(sys.argv),
        "workers": args.workers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--server-cpu", default="1", help="taskset -c list for the server")
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--workers", type=int, default=2,
                        help="seawall serve --workers (1: one process loads and serves)")
    args = parser.parse_args()
    result = run(args)
    shown = result["switch_shown_after_s"]
    print(f"switch: {result['records']} records, {result['rate']} q/s for {result['duration']} s, "
          f"workers {args.workers}, reload (SIGHUP) halfway\n"
          f"  all:    sent {result['sent']}  lost {result['lost']}  "
          f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
          f"max {result['max_ms']:.1f} ms\n"
          f"  switch: new data served after {shown if shown is None else round(shown, 2)} s; "
          f"in the window sent {result['window_sent']}  lost {result['window_lost']}  "
          f"p50 {result['window_p50_ms']:.2f} ms  p99 {result['window_p99_ms']:.2f} ms  "
          f"max {result['window_max_ms']:.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"switch-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
