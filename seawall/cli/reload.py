"""``seawall reload``: make a running server look at every backend now (like SIGHUP)."""

from __future__ import annotations

import argparse

from .failover import client_for, connection_options


def register(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("reload", parents=[connection_options()],
                              help="look at every backend now",
                              description="Ask a running server, over its control channel, "
                                          "to look at every backend now (as SIGHUP does).")
    cmd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    client_for(args).call("reload")
    print("reload requested: every backend is looked at now")
    return 0
