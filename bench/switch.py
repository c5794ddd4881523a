"""Queries/s, latency and losses while Seawall switches, and from start to full speed.

``--mode saturate`` (the default): dnsperf on CPU 0 keeps Seawall (CPU 1)
saturated with the mixed query set while the script, every ``--phase``
seconds, reloads the zone with a changed record (SIGHUP), forces it to its
emergency version (the request ``seawall failover force emergency`` sends, sent
from this process) and releases it.
dnsperf reports queries/s every second (``-S 1``); a probe in this process
(``--probe-rate`` A queries a second for the changed name) measures the
latency of each second and sees which version answers. The report gives
every second's queries/s as a share of the steady figure (the median of the
seconds before the first switch), the probe's p50/p99/max, and the worst
second around each switch.

``--mode start``: how soon each server answers and reaches full speed. The
server is started (Seawall, NSD and Knot in turn, each pinned to CPU 1); once
its zone answers, dnsperf saturates it for ``--start-seconds`` and reports
each second's queries/s; *full speed* is the first second at 90% or more of
the last seconds' median.

``--mode rate``: the older fixed-rate run. A steady stream of queries
(``--rate`` per second, A hits on the zone) goes
to Seawall pinned to CPU 1 from this process pinned to CPU 0; halfway through,
the zone file gets a new serial and a changed record, and the server is told
to reload (SIGHUP). Every query's latency is recorded; the report gives p50,
p99 and max over the whole run and over the switch window (from the SIGHUP
until the new data is served, plus one second), the queries lost, and how
long the switch took to show. dnsperf has no percentiles, hence this client.

Example::

    .venv/bin/python bench/switch.py                         # saturate: 100k records
    .venv/bin/python bench/switch.py --quick                 # 4 s phases
    .venv/bin/python bench/switch.py --mode start --records 100000
    .venv/bin/python bench/switch.py --mode rate --workers 1 --rate 2000 --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # seawall, for control()

from servers import KINDS, Seawall, cpu_seconds, memory_kib  # noqa: E402
from zonegen import ORIGIN, mixed_queries, write_queries, write_zone  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CHANGED = "h0"          # the record whose address changes in the new version
NEW_ADDRESS = "192.0.2.222"
NEW_RDATA = socket.inet_aton(NEW_ADDRESS)
EMERGENCY_ADDRESS = "192.0.2.66"
EMERGENCY_RDATA = socket.inet_aton(EMERGENCY_ADDRESS)
FULL_SPEED = 0.9        # a second at this share of the steady queries/s is at full speed


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


def run_rate(args: argparse.Namespace) -> dict:
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


def emergency_version(zone: Path, emergency: Path) -> None:
    """The same zone with an older serial and another address for the probed name."""
    text = zone.read_text().replace(" 2024010101 ", " 2024010001 ", 1)
    text = text.replace(f"\n{CHANGED} IN A 10.0.0.0\n", f"\n{CHANGED} IN A {EMERGENCY_ADDRESS}\n", 1)
    emergency.write_text(text)


def dnsperf(port: int, queries: Path, seconds: float, cpu: int, outstanding: int
            ) -> subprocess.Popen:
    argv = ["taskset", "-c", str(cpu), "dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", str(queries), "-l", str(seconds), "-q", str(outstanding), "-t", "2", "-S", "1"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def per_second(output: str) -> list[tuple[float, float]]:
    """dnsperf -S 1: (wall-clock time, queries/s) of each second."""
    return [(float(t), float(q)) for t, q in re.findall(r"^(\d+\.\d+): ([\d.]+)$", output, re.M)]


def totals(output: str) -> dict:
    def number(label: str) -> int:
        match = re.search(rf"{label}:\s+(\d+)", output)
        return int(match.group(1)) if match else 0
    return {"sent": number("Queries sent"), "answered": number("Queries completed"),
            "lost": number("Queries lost")}


class Probe:
    """A few A queries a second for the changed name: latency, and which version answers."""

    def __init__(self, port: int, rate: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.rate = rate
        self.sent: dict[int, float] = {}
        self.samples: list[tuple[float, float, bytes]] = []   # (wall time sent, ms, rdata)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._receive, daemon=True)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _send(self) -> None:
        seq = 0
        interval = 1.0 / self.rate
        start = time.monotonic()
        while not self.stop.is_set():
            delay = start + seq * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            qid = seq & 0xFFFF
            self.sent[qid] = time.monotonic()
            self.sent_wall = time.time()
            try:
                self.sock.send(query(f"{CHANGED}.{ORIGIN}", qid))
            except OSError:
                pass
            seq += 1
        self.count = seq

    def _receive(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(4096)
            except OSError:
                continue
            now = time.monotonic()
            sent = self.sent.pop(int.from_bytes(data[:2], "big"), None)
            if sent is not None:
                self.samples.append((time.time() - (now - sent), (now - sent) * 1000, data[-4:]))

    def finish(self) -> None:
        time.sleep(0.5)
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=2)
        self.sock.close()


def run_saturate(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="seawall-switch-"))
    zone_dir = work / "zones"
    (zone_dir / "emergency").mkdir(parents=True)
    zone = zone_dir / f"{ORIGIN}zone"
    shape = write_zone(zone, args.records)
    emergency_version(zone, zone_dir / "emergency" / f"{ORIGIN}zone")
    queries = work / "mixed.txt"
    write_queries(queries, mixed_queries(shape, 200_000))
    server = Seawall("seawall", zone, ORIGIN, work / "seawall", cpu=args.server_cpu,
                     extra=("--workers", str(args.workers)))
    state_dir = work / "seawall" / ".seawall"
    phase = args.phase
    events: list[tuple[str, float]] = []
    try:
        os.sched_setaffinity(0, {args.client_cpu})
    except OSError:
        pass
    try:
        server.start(timeout=args.timeout)
        chosen = args.steps.split(",")
        perf = dnsperf(server.port, queries, (len(chosen) + 1) * phase, args.client_cpu,
                       args.outstanding)
        probe = Probe(server.port, args.probe_rate)
        probe.start()
        cpu_before, began = cpu_seconds(server.pid), time.time()
        steps = [("reload", lambda: (new_version(zone), os.kill(server.pid, signal.SIGHUP))),
                 ("force emergency", lambda: control(state_dir, "force", mode="emergency",
                                                     zones=[ORIGIN], reason="bench")),
                 ("release", lambda: control(state_dir, "release", zones=[ORIGIN]))]
        steps = [(name, step) for name, step in steps if name.split()[0] in chosen]
        for name, step in steps:
            time.sleep(max(0.0, began + phase * (len(events) + 1) - time.time()))
            events.append((name, time.time()))
            step()
        output = perf.communicate(timeout=(len(chosen) + 1) * phase + 60)[0]
        probe.finish()
        cpu = cpu_seconds(server.pid) - cpu_before
        memory = memory_kib(server.pid)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    seconds = per_second(output)
    first_switch = events[0][1]
    steady = statistics.median([q for t, q in seconds[1:] if t <= first_switch] or [0.0])
    rows = []
    for t, qps in seconds:
        in_second = [(ms, rdata) for sent, ms, rdata in probe.samples if t - 1 <= sent < t]
        latencies = [ms for ms, _ in in_second]
        versions = {"new" if r == NEW_RDATA else "emergency" if r == EMERGENCY_RDATA else "old"
                    for _, r in in_second}
        rows.append({"t": t, "qps": qps, "share": qps / steady if steady else 0.0,
                     "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
                     "max_ms": max(latencies, default=float("nan")),
                     "versions": sorted(versions),
                     "events": [name for name, at in events if t - 1 <= at < t]})
    worst = {}
    for name, at in events:
        around = [r for r in rows if at - 1 <= r["t"] - 1 < at + phase - 1]
        if around:
            low = min(around, key=lambda r: r["share"])
            worst[name] = {"share": low["share"], "qps": low["qps"],
                           "p99_ms": max(r["p99_ms"] for r in around),
                           "max_ms": max(r["max_ms"] for r in around)}
    return {"mode": "saturate", "records": args.records, "workers": args.workers,
            "phase": phase, "steady_qps": steady, "dnsperf": totals(output),
            "probe_sent": getattr(probe, "count", 0), "probe_answered": len(probe.samples),
            "cpu_s": cpu, "memory": memory, "seconds": rows, "worst": worst,
            "command": " ".join(sys.argv)}


def control(state_dir: Path, command: str, **fields: object) -> None:
    """A control request sent from this process. Not ``seawall failover`` in a
    process of its own: its Python start-up (~0.5 s of CPU) would run on
    dnsperf's core and show as a dip of the server's queries/s."""
    from seawall.failover.control_client import ControlClient
    try:
        ControlClient(state_dir=state_dir, timeout=60).call(command, **fields)
    except Exception as exc:   # reported, the run goes on: the table shows what it did
        print(f"control {command}: {exc}", file=sys.stderr)


def run_start(args: argparse.Namespace) -> dict:
    """Each server: start, first answer, then per-second queries/s under dnsperf."""
    work = Path(tempfile.mkdtemp(prefix="seawall-start-"))
    zone_dir = work / "zones"
    zone_dir.mkdir()
    zone = zone_dir / f"{ORIGIN}zone"
    shape = write_zone(zone, args.records)
    queries = work / "mixed.txt"
    write_queries(queries, mixed_queries(shape, 200_000))
    results = {}
    try:
        os.sched_setaffinity(0, {args.client_cpu})
    except OSError:
        pass
    runs = []
    for name in args.servers:
        runs.append((name, name))
        if name == "seawall":
            runs.append(("seawall-image", name))   # the same server started again
    servers: dict[str, object] = {}
    for label, name in runs:
        kind = KINDS[name]
        extra = ("--workers", str(args.workers)) if name == "seawall" else ()
        server = servers.get(name) or kind(name, zone, ORIGIN, work / name, cpu=args.server_cpu,
                                           extra=extra)
        servers[name] = server
        if not server.available():
            continue
        settle = type(server).settle
        server.settle = lambda started, deadline: None   # measure from the first answer
        try:
            server.start(timeout=args.timeout)
            output = dnsperf(server.port, queries, args.start_seconds, args.client_cpu,
                             args.outstanding).communicate(timeout=args.start_seconds + 60)[0]
            memory = memory_kib(server.pid)
            if label == "seawall":
                # Let it finish building (and writing its zone image) before the restart.
                settle(server, time.monotonic() - server.load_seconds,
                       time.monotonic() + args.timeout)
        finally:
            server.stop()
        seconds = [q for _, q in per_second(output)]
        results[label] = {"first_answer_s": server.load_seconds, "qps": seconds,
                          "steady_qps": statistics.median(seconds[-3:]) if seconds else 0.0,
                          "memory": memory, "dnsperf": totals(output)}
    # Full speed: 90% of the server's steady queries/s; for Seawall the better of
    # its two runs (a start that is still building its tables is not steady).
    best = max((r["steady_qps"] for k, r in results.items() if k.startswith("seawall")),
               default=0.0)
    for label, r in results.items():
        steady = best if label.startswith("seawall") else r["steady_qps"]
        seconds = r["qps"]
        full = next((i for i, q in enumerate(seconds) if q >= FULL_SPEED * steady), None)
        r["reference_qps"] = steady
        r["full_speed_s"] = r["first_answer_s"] + full + 1 if full is not None else None
        r["first_second_share"] = seconds[0] / steady if seconds and steady else 0.0
    shutil.rmtree(work, ignore_errors=True)
    return {"mode": "start", "records": args.records, "workers": args.workers,
            "servers": results, "command": " ".join(sys.argv)}


def print_saturate(result: dict) -> None:
    print(f"switch under saturation: {result['records']} records, workers {result['workers']}, "
          f"phases of {result['phase']} s: reload, force emergency, release\n"
          f"  steady {result['steady_qps']:.0f} q/s; dnsperf sent {result['dnsperf']['sent']} "
          f"lost {result['dnsperf']['lost']}; probe sent {result['probe_sent']} "
          f"answered {result['probe_answered']}")
    print("   s      q/s   share  p50 ms  p99 ms  max ms  served     event")
    start = result["seconds"][0]["t"] if result["seconds"] else 0
    for row in result["seconds"]:
        print(f"  {row['t'] - start + 1:3.0f} {row['qps']:8.0f} {row['share']:6.0%} "
              f"{row['p50_ms']:7.2f} {row['p99_ms']:7.2f} {row['max_ms']:7.1f}  "
              f"{','.join(row['versions']):10s} {', '.join(row['events'])}")
    for name, worst in result["worst"].items():
        print(f"  {name}: worst second {worst['share']:.0%} of steady ({worst['qps']:.0f} q/s), "
              f"p99 up to {worst['p99_ms']:.2f} ms, max {worst['max_ms']:.1f} ms")


def print_start(result: dict) -> None:
    print(f"start to full speed: {result['records']} records (Seawall: workers "
          f"{result['workers']}), dnsperf from the first answer")
    print("  server         first answer s  full speed s  1st second  steady q/s  PSS MiB   "
          "q/s by second")
    for name, r in result["servers"].items():
        full = f"{r['full_speed_s']:.2f}" if r["full_speed_s"] is not None else "-"
        print(f"  {name:13s} {r['first_answer_s']:10.2f} {full:>13s} {r['first_second_share']:10.0%} "
              f"{r['reference_qps']:11.0f} {r['memory']['pss_kib'] / 1024:8.1f}   "
              + " ".join(f"{q / 1000:.0f}k" for q in r["qps"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("saturate", "start", "rate"), default="saturate")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=5000, help="rate mode: queries a second")
    parser.add_argument("--duration", type=float, default=20.0, help="rate mode: seconds")
    parser.add_argument("--phase", type=float, default=8.0,
                        help="saturate mode: seconds before and between the switches")
    parser.add_argument("--steps", default="reload,force,release",
                        help="saturate mode: which switches, in this order of the three")
    parser.add_argument("--probe-rate", type=int, default=200)
    parser.add_argument("--outstanding", type=int, default=100, help="dnsperf -q")
    parser.add_argument("--start-seconds", type=float, default=10.0,
                        help="start mode: dnsperf seconds from the first answer")
    parser.add_argument("--servers", nargs="+", default=["seawall", "nsd", "knot"],
                        help="start mode: servers to start")
    parser.add_argument("--quick", action="store_true", help="4 s phases; 6 s of start")
    parser.add_argument("--server-cpu", default="1", help="taskset -c list for the server")
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--workers", type=int, default=0,
                        help="seawall serve --workers (0, the default: one per core the "
                        "server may use, one here; 1: one process loads and serves)")
    args = parser.parse_args()
    if args.quick:
        args.phase, args.start_seconds = 4.0, 6.0
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    if args.mode == "saturate":
        result = run_saturate(args)
        print_saturate(result)
        path.write_text(json.dumps(result, indent=1))
        print(f"JSON: {path}")
        return 0
    if args.mode == "start":
        result = run_start(args)
        print_start(result)
        path.write_text(json.dumps(result, indent=1))
        print(f"JSON: {path}")
        return 0
    result = run_rate(args)
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
    path.write_text(json.dumps(result, indent=1))
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
