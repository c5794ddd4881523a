"""``seawall``: serve zones, check them, drive failover."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import SeawallError
from . import check, config, convert, diff, failover, fleet, reload, serve, watch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seawall",
        description="An authoritative DNS server that keeps answering when its backend fails.")
    parser.add_argument("--version", action="version", version=f"seawall {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve.register(commands)
    check.register(commands)
    diff.register(commands)
    convert.register(commands)
    config.register(commands)
    failover.register(commands)
    reload.register(commands)
    watch.register(commands)
    fleet.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SeawallError as exc:
        print(f"seawall: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
