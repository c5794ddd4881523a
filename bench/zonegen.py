"""Seeded zone and dnsperf query files for the side-by-side benchmark.

The zone has ``records`` records under ``ORIGIN``: 80% A, 10% AAAA (on the
first A names), 10% CNAME to A names, a wildcard, and an apex with SOA, NS
and MX. The mixed query set is the one of the issue: 70% A hits, 10% AAAA
hits, 10% NXDOMAIN (random names), 5% wildcard, 5% CNAME.

Example::

    python bench/zonegen.py --records 100000 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import random
import string
from dataclasses import dataclass
from pathlib import Path

ORIGIN = "bench.example."
ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Shape:
    """How many names of each kind a zone of ``records`` records holds."""

    records: int

    @property
    def a(self) -> int:
        return max(1, self.records * 8 // 10)

    @property
    def aaaa(self) -> int:
        return max(1, self.records // 10)

    @property
    def cname(self) -> int:
        return max(1, self.records - self.a - self.aaaa)


def write_zone(path: Path, records: int) -> Shape:
    """Write the zone file; the same ``records`` always gives the same file."""
    shape = Shape(records)
    with open(path, "w", encoding="ascii") as out:
        out.write(f"$ORIGIN {ORIGIN}\n$TTL 3600\n"
                  f"@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300\n"
                  f"@ IN NS ns1\n@ IN NS ns2\n@ IN MX 10 mail\n"
                  f"ns1 IN A 192.0.2.53\nns2 IN A 192.0.2.54\nmail IN A 192.0.2.25\n"
                  f"*.w IN A 192.0.2.80\n*.w IN AAAA 2001:db8::80\n")
        lines = []
        for i in range(shape.a):
            lines.append(f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            if len(lines) >= 10000:
                out.writelines(lines)
                lines.clear()
        for i in range(shape.aaaa):
            lines.append(f"h{i} IN AAAA 2001:db8::{i >> 16:x}:{i & 0xffff:x}\n")
            if len(lines) >= 10000:
                out.writelines(lines)
                lines.clear()
        for i in range(shape.cname):
            lines.append(f"c{i} 300 IN CNAME h{(i * 7919) % shape.a}\n")
            if len(lines) >= 10000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
    return shape


def random_label(rng: random.Random, size: int = 12) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(size))


def mixed_queries(shape: Shape, count: int, seed: int = 1) -> list[str]:
    """dnsperf lines ``name type`` for the mixed set, in a shuffled order."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.70:
            out.append(f"h{rng.randrange(shape.a)}.{ORIGIN} A")
        elif roll < 0.80:
            out.append(f"h{rng.randrange(shape.aaaa)}.{ORIGIN} AAAA")
        elif roll < 0.90:
            out.append(f"{random_label(rng)}.{ORIGIN} A")
        elif roll < 0.95:
            out.append(f"{random_label(rng, 8)}.w.{ORIGIN} A")
        else:
            out.append(f"c{rng.randrange(shape.cname)}.{ORIGIN} A")
    return out


def flood_queries(count: int, seed: int = 2) -> list[str]:
    """A random-subdomain flood: every line a different name that does not exist."""
    rng = random.Random(seed)
    bits = rng.getrandbits
    return [f"x{bits(64):016x}.{ORIGIN} A" for _ in range(count)]


def write_queries(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shape = write_zone(args.out / f"{ORIGIN}zone", args.records)
    write_queries(args.out / "mixed.txt", mixed_queries(shape, args.queries))


if __name__ == "__main__":
    main()
