"""``seawall convert FILE``: one zone from RFC 1035 to octoDNS YAML, or back.

For a team moving its zones to code (or away from it): the zone is read and
checked as ``seawall check`` would, then written in the other format, exact or
not at all (records octoDNS cannot express are listed, exit 1). The output
loads to the same RRsets, so ``seawall diff`` of the two shows no difference.

Example::

    seawall convert zones/example.com.zone > zones/example.com.yaml
    seawall convert --to rfc1035 zones/example.org.yaml -o example.org.zone
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..zones.export import ExportError, to_master_file, to_octodns_yaml
from ..zones.loader import load_zone_file
from ..zones.octodns import SUFFIXES


def register(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("convert", help="convert a zone between RFC 1035 and octoDNS YAML",
                              description="Write one zone file in the other format Seawall "
                                          "reads, exactly or not at all.")
    cmd.add_argument("path", type=Path, metavar="FILE", help="a zone file (.zone or .yaml)")
    cmd.add_argument("--to", choices=("octodns", "rfc1035"),
                     help="the format to write (default: the other one)")
    cmd.add_argument("--no-soa", action="store_true",
                     help="octodns: leave the SOA out (octoDNS 1.x has no SOA type; Seawall "
                          "then synthesizes one, with another serial)")
    cmd.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    cmd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.path.is_file():
        print(f"seawall convert: {args.path}: no such file", file=sys.stderr)
        return 2
    loaded = load_zone_file(args.path, include_root=args.path.parent)
    for problem in loaded.problems:
        print(problem, file=sys.stderr)
    if loaded.zone is None or loaded.errors:
        print(f"seawall convert: {args.path} has errors; nothing written", file=sys.stderr)
        return 1
    target = args.to or ("rfc1035" if args.path.name.lower().endswith(SUFFIXES) else "octodns")
    try:
        text = (to_octodns_yaml(loaded.zone, include_soa=not args.no_soa)
                if target == "octodns" else to_master_file(loaded.zone))
    except ExportError as exc:
        print(f"seawall convert: {exc}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
