"""Seawall side by side with NSD and Knot, in one run, on one machine.

Every server is pinned to one core (``--server-cpu``, default 1) and dnsperf
to another (``--client-cpu``, default 0). One dnsperf process saturates its
core near 90-100k queries/s, so queries/s mostly measures the load generator;
the figure that compares servers is the **server CPU time per answered
query**: utime+stime of the server's process tree (``/proc/PID/stat``) over
the run, divided by the answers dnsperf got back (docs: /work/shared/PEERS.md).

Modes (``--mode``, repeatable; default ``mixed flood scaling load``):

* ``mixed``: the issue's query mix on a zone of ``--records`` records
  (70% A hits, 10% AAAA, 10% NXDOMAIN of random names, 5% wildcard, 5% CNAME).
* ``flood``: a random-subdomain flood, every query a new non-existent name.
* ``scaling``: Seawall with ``--workers 1`` and ``--workers 2`` (and NSD with
  one and two server processes for scale), server and dnsperf both allowed on
  every core: how queries/s grows with workers. On a 2-core machine dnsperf
  competes for the same cores, so this shows the direction, not the ceiling.
* ``load``: time until the zone answers (``load s``), until the server is idle
  (``idle s``: Seawall builds its answers in the background after loading), and
  RSS/PSS/peak RSS then, for each of ``--load-records`` (default 100000; add
  1000000 for the big one).

Before the query runs every server is left to go idle, so the figures are
the steady state.

Every run is bounded: ``--duration`` seconds per dnsperf run (default 10),
``--rounds`` rounds interleaved across servers, a timeout on every start.
Results are printed as a table and written as JSON to ``bench/results/``.

Examples::

    .venv/bin/python bench/compare.py                       # full, ~3 min
    .venv/bin/python bench/compare.py --quick               # 5 s runs, 1 round
    .venv/bin/python bench/compare.py --mode load --load-records 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import KINDS, Server, cpu_seconds, memory_kib  # noqa: E402
from zonegen import ORIGIN, flood_queries, mixed_queries, write_queries, write_zone  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def run_dnsperf(port: int, queries: Path, duration: float, cpu: int | str, outstanding: int,
                edns: bool) -> dict:
    argv = ["taskset", "-c", str(cpu), "dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", str(queries), "-l", str(duration), "-q", str(outstanding), "-t", "2"]
    if edns:
        argv.append("-e")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    return parse_dnsperf(out)


def parse_dnsperf(text: str) -> dict:
    def number(label: str) -> float:
        match = re.search(rf"{label}:\s+([\d.]+)", text)
        return float(match.group(1)) if match else 0.0
    latency = re.search(r"Average Latency \(s\):\s+([\d.]+)\s+\(min ([\d.]+), max ([\d.]+)\)", text)
    rcodes = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+) \(", text.split("Response codes:")[-1].splitlines()[0])) \
        if "Response codes:" in text else {}
    return {"sent": int(number("Queries sent")), "answered": int(number("Queries completed")),
            "lost": int(number("Queries lost")), "qps": number("Queries per second"),
            "latency_ms": float(latency.group(1)) * 1000 if latency else 0.0,
            "latency_max_ms": float(latency.group(3)) * 1000 if latency else 0.0,
            "rcodes": rcodes}


def measure(server: Server, queries: Path, args: argparse.Namespace) -> dict:
    """One bounded dnsperf run; server CPU over exactly that run."""
    before = cpu_seconds(server.pid)
    result = run_dnsperf(server.port, queries, args.duration, args.client_cpu,
                         args.outstanding, args.edns)
    result["server_cpu_s"] = cpu_seconds(server.pid) - before
    result["cpu_us_per_answer"] = (result["server_cpu_s"] * 1e6 / result["answered"]
                                   if result["answered"] else float("inf"))
    return result


def make_servers(names: list[str], zone: Path, work: Path, cpu: int,
                 seawall_args: tuple[str, ...]) -> list[Server]:
    servers = []
    for name in names:
        server = KINDS[name](name, zone, ORIGIN, work / name, cpu=cpu,
                             extra=seawall_args if name == "seawall" else ())
        if server.available():
            servers.append(server)
        else:
            print(f"skipping {name}: not installed", file=sys.stderr)
    return servers


def bench_queries(mode: str, zone: Path, queries: Path, names: list[str], work: Path,
                  args: argparse.Namespace) -> dict:
    """Rounds of dnsperf runs, interleaved across servers (all started once)."""
    servers = make_servers(names, zone, work, args.server_cpu, tuple(args.seawall_arg))
    runs: dict[str, list[dict]] = {s.name: [] for s in servers}
    try:
        for server in servers:
            server.start()
        # A short warm-up per server: first-touch costs are not the steady state.
        for server in servers:
            run_dnsperf(server.port, queries, min(2.0, args.duration), args.client_cpu,
                        args.outstanding, args.edns)
        for round_no in range(args.rounds):
            for server in servers:
                result = measure(server, queries, args)
                runs[server.name].append(result)
                print(f"  {mode} round {round_no + 1} {server.name:8s} "
                      f"qps={result['qps']:9.0f} cpu/answer={result['cpu_us_per_answer']:6.2f} µs "
                      f"lost={result['lost']}", file=sys.stderr)
        memory = {s.name: memory_kib(s.pid) for s in servers}
    finally:
        for server in servers:
            server.stop()
    summary = {}
    for name, results in runs.items():
        summary[name] = {
            "qps": statistics.median(r["qps"] for r in results),
            "answered": sum(r["answered"] for r in results),
            "lost": sum(r["lost"] for r in results),
            "cpu_us_per_answer": statistics.median(r["cpu_us_per_answer"] for r in results),
            "latency_ms": statistics.median(r["latency_ms"] for r in results),
            "rcodes": results[-1]["rcodes"],
            **memory[name],
            "runs": results,
        }
    add_ratios(summary, "cpu_us_per_answer")
    return summary


def bench_scaling(zone: Path, queries: Path, names: list[str], work: Path,
                  args: argparse.Namespace) -> dict:
    """Queries/s with one and with two workers, nothing pinned apart."""
    cpus = ",".join(str(c) for c in sorted({args.server_cpu, args.client_cpu}))
    results = {}
    for name in names:
        if name not in ("seawall", "nsd"):
            continue
        for count in (1, 2):
            label = f"{name}-{count}w"
            extra = ("--workers", str(count)) if name == "seawall" else ()
            server = KINDS[name](label, zone, ORIGIN, work / label, cpu=cpus, extra=extra,
                                 processes=count)
            if not server.available():
                continue
            try:
                server.start()
                run_dnsperf(server.port, queries, min(2.0, args.duration), cpus,
                            args.outstanding, args.edns)
                runs = []
                for _ in range(args.rounds):
                    before = cpu_seconds(server.pid)
                    result = run_dnsperf(server.port, queries, args.duration, cpus,
                                         args.outstanding, args.edns)
                    result["server_cpu_s"] = cpu_seconds(server.pid) - before
                    runs.append(result)
                    print(f"  scaling {label:10s} qps={result['qps']:9.0f} "
                          f"lost={result['lost']}", file=sys.stderr)
            finally:
                server.stop()
            results[label] = {"qps": statistics.median(r["qps"] for r in runs),
                              "lost": sum(r["lost"] for r in runs),
                              "server_cpu_s": statistics.median(r["server_cpu_s"] for r in runs),
                              "runs": runs}
    return results


def add_ratios(summary: dict, key: str) -> None:
    for ref in ("nsd", "knot"):
        if ref in summary and summary[ref][key]:
            for name in summary:
                summary[name][f"ratio_to_{ref}"] = summary[name][key] / summary[ref][key]


def bench_load(records: int, names: list[str], work: Path, args: argparse.Namespace) -> dict:
    """Start each server on a fresh zone of ``records`` records: load time and memory."""
    zone_dir = work / f"load-{records}" / "zones"
    zone_dir.mkdir(parents=True)
    zone = zone_dir / f"{ORIGIN}zone"
    write_zone(zone, records)
    out = {}
    for server in make_servers(names, zone, work / f"load-{records}", args.server_cpu,
                               tuple(args.seawall_arg)):
        try:
            server.start(timeout=args.load_timeout)
            time.sleep(0.5)  # let a forked child settle
            out[server.name] = {"load_s": server.load_seconds,
                                "idle_s": server.settled_seconds, **memory_kib(server.pid)}
        except (TimeoutError, RuntimeError) as exc:
            out[server.name] = {"load_s": None, "error": str(exc)[:300]}
        finally:
            server.stop()
        print(f"  load {records} {server.name:8s} {out[server.name]}", file=sys.stderr)
    return out


# ------------------------------------------------------------------ output

def table(results: dict) -> str:
    lines = []
    for mode in ("mixed", "flood"):
        if mode not in results:
            continue
        lines.append(f"\n{mode}: {results['config']['records']} records, "
                     f"{results['config']['duration']} s x {results['config']['rounds']} rounds "
                     f"(median), server on CPU {results['config']['server_cpu']}, "
                     f"dnsperf on CPU {results['config']['client_cpu']}")
        lines.append(f"{'server':10s} {'qps':>9s} {'answered':>10s} {'lost':>6s} "
                     f"{'CPU µs/ans':>11s} {'vs NSD':>7s} {'vs Knot':>8s} {'lat ms':>7s} "
                     f"{'RSS MiB':>8s}")
        for name, r in results[mode].items():
            lines.append(f"{name:10s} {r['qps']:9.0f} {r['answered']:10d} {r['lost']:6d} "
                         f"{r['cpu_us_per_answer']:11.2f} {r.get('ratio_to_nsd', 0):7.2f} "
                         f"{r.get('ratio_to_knot', 0):8.2f} {r['latency_ms']:7.3f} "
                         f"{r['rss_kib'] / 1024:8.1f}")
    if "mixed" in results and "flood" in results and "seawall" in results["flood"]:
        hit = results["mixed"].get("seawall", {}).get("cpu_us_per_answer")
        if hit:
            lines.append(f"\nSeawall flood / mixed CPU per answer: "
                         f"{results['flood']['seawall']['cpu_us_per_answer'] / hit:.2f}")
    if "scaling" in results:
        lines.append(f"\nscaling: server and dnsperf on the same cores, "
                     f"{results['config']['duration']} s runs (median)")
        lines.append(f"{'server':12s} {'qps':>9s} {'lost':>6s} {'server CPU s':>13s}")
        for name, r in results["scaling"].items():
            lines.append(f"{name:12s} {r['qps']:9.0f} {r['lost']:6d} {r['server_cpu_s']:13.2f}")
    for records, per_server in results.get("load", {}).items():
        lines.append(f"\nzone load: {records} records")
        lines.append(f"{'server':10s} {'load s':>8s} {'idle s':>7s} {'RSS MiB':>8s} "
                     f"{'PSS MiB':>8s} {'peak MiB':>9s}")
        for name, r in per_server.items():
            if r.get("load_s") is None:
                lines.append(f"{name:10s} failed: {r.get('error', '')[:60]}")
                continue
            lines.append(f"{name:10s} {r['load_s']:8.2f} {r.get('idle_s', 0):7.2f} "
                         f"{r['rss_kib'] / 1024:8.1f} "
                         f"{r['pss_kib'] / 1024:8.1f} {r['peak_rss_kib'] / 1024:9.1f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--mode", action="append", choices=("mixed", "flood", "scaling", "load"))
    parser.add_argument("--servers", default="seawall,nsd,knot")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200_000,
                        help="lines in the mixed query file (dnsperf loops over it)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--outstanding", type=int, default=100,
                        help="dnsperf -q (PEERS.md: 1000 overflows socket buffers)")
    parser.add_argument("--edns", action="store_true", help="dnsperf -e: queries carry OPT")
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--load-records", type=int, nargs="+", default=[100_000])
    parser.add_argument("--load-timeout", type=float, default=300.0)
    parser.add_argument("--seawall-arg", action="append", default=[],
                        help="extra argument for `seawall serve` (repeatable)")
    parser.add_argument("--quick", action="store_true", help="5 s runs, one round")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 5.0, 1
    modes = args.mode or ["mixed", "flood", "scaling", "load"]
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    if shutil.which("dnsperf") is None and set(modes) - {"load"}:
        sys.exit("dnsperf is not installed (apt-get install dnsperf)")

    work = Path(tempfile.mkdtemp(prefix="seawall-bench-"))
    results: dict = {"config": {"records": args.records, "duration": args.duration,
                                "rounds": args.rounds, "server_cpu": args.server_cpu,
                                "client_cpu": args.client_cpu, "edns": args.edns,
                                "outstanding": args.outstanding, "servers": names,
                                "command": " ".join(sys.argv),
                                "started": time.strftime("%Y-%m-%dT%H:%M:%S")}}
    try:
        if modes and set(modes) & {"mixed", "flood", "scaling"}:
            zone_dir = work / "zones"
            zone_dir.mkdir()
            zone = zone_dir / f"{ORIGIN}zone"
            shape = write_zone(zone, args.records)
            if "mixed" in modes:
                mixed = work / "mixed.txt"
                write_queries(mixed, mixed_queries(shape, args.queries))
                results["mixed"] = bench_queries("mixed", zone, mixed, names, work, args)
            if "flood" in modes:
                flood = work / "flood.txt"
                # More lines than any run can send: every query is a new name.
                write_queries(flood, flood_queries(int(min(130_000 * args.duration, 2_000_000))))
                results["flood"] = bench_queries("flood", zone, flood, names, work, args)
            if "scaling" in modes:
                scaling = work / "scaling.txt"
                write_queries(scaling, mixed_queries(shape, args.queries))
                results["scaling"] = bench_scaling(zone, scaling, names, work, args)
        if "load" in modes:
            results["load"] = {str(n): bench_load(n, names, work, args)
                               for n in args.load_records}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}", file=sys.stderr)
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"compare-{stamp}.json"
    path.write_text(json.dumps(results, indent=1))
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "latest.txt").write_text(table(results) + "\n")
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
