"""A bounded soak: mixed load plus a random-subdomain flood; memory must stay flat.

Seawall serves a generated zone; two dnsperf processes run side by side for
``--minutes`` (default 5): the mixed query set, and a flood of unique names
that do not exist. Every ``--every`` seconds the server's RSS is sampled;
the start, end and peak are printed, with the growth from the first sample
after warm-up to the last. Every cache in the server is bounded, so the
growth should be near zero once the caches have filled.

    .venv/bin/python bench/soak.py                  # 5 minutes
    .venv/bin/python bench/soak.py --minutes 1      # a shorter look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import Seawall, memory_kib  # noqa: E402
from zonegen import ORIGIN, flood_queries, mixed_queries, write_queries, write_zone  # noqa: E402


def dnsperf(port: int, queries: Path, seconds: float, cpu: int, qps: int) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", str(cpu), "dnsperf", "-s", "127.0.0.1", "-p",
                             str(port), "-d", str(queries), "-l", str(seconds), "-Q", str(qps),
                             "-t", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--mixed-qps", type=int, default=20_000)
    parser.add_argument("--flood-qps", type=int, default=10_000)
    parser.add_argument("--every", type=float, default=10.0, help="RSS sample interval (s)")
    parser.add_argument("--json", type=Path, help="write the samples here")
    args = parser.parse_args()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="seawall-soak-") as tmp:
        work = Path(tmp)
        zone = work / "zones" / f"{ORIGIN.rstrip('.')}.zone"
        zone.parent.mkdir()
        shape = write_zone(zone, args.records)
        mixed, flood = work / "mixed.txt", work / "flood.txt"
        write_queries(mixed, mixed_queries(shape, 200_000))
        write_queries(flood, flood_queries(1_000_000))
        server = Seawall("seawall", zone, ORIGIN, work / "seawall", cpu=1)
        server.start()
        try:
            loads = [dnsperf(server.port, mixed, seconds, 0, args.mixed_qps),
                     dnsperf(server.port, flood, seconds, 0, args.flood_qps)]
            samples = []
            started = time.monotonic()
            while any(p.poll() is None for p in loads):
                rss = memory_kib(server.pid)["rss_kib"] / 1024
                samples.append((round(time.monotonic() - started, 1), round(rss, 1)))
                print(f"{samples[-1][0]:7.1f} s  RSS {rss:8.1f} MiB", flush=True)
                time.sleep(args.every)
            outputs = [p.communicate()[0] for p in loads]
            samples.append((round(time.monotonic() - started, 1),
                            round(memory_kib(server.pid)["rss_kib"] / 1024, 1)))
        finally:
            server.stop()
    warm = samples[min(len(samples) - 1, max(1, len(samples) // 5))][1]
    end = samples[-1][1]
    print(f"\nRSS start {samples[0][1]:.1f} MiB, after warm-up {warm:.1f} MiB, "
          f"end {end:.1f} MiB, peak {max(s[1] for s in samples):.1f} MiB; "
          f"growth after warm-up {end - warm:+.1f} MiB over {samples[-1][0]:.0f} s")
    for name, out in zip(("mixed", "flood"), outputs):
        lines = [x for x in out.splitlines() if "Queries completed" in x or "Queries lost" in x]
        print(f"{name}: " + "; ".join(x.strip() for x in lines))
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "warm": warm, "end": end}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
