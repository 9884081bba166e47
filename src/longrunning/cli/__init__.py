"""The `longrunning` (alias `lro`) command line. The only place that calls asyncio.run.

Every failure prints one line to stderr and exits non-zero: 1 for an error reported by the
store or the server, 2 for bad usage, 3 when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import NoReturn

from longrunning.cli.db import add_db_commands, run_db
from longrunning.cli.ops import add_ops_commands, run_ops
from longrunning.cli.server import add_server_commands, run_migrate, run_serve, run_worker
from longrunning.core.errors import LongrunningError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="longrunning",
        description="A server for long-running operations: run, track and truthfully cancel them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_server_commands(sub)
    add_ops_commands(sub)
    add_db_commands(sub)
    return parser


_COMMANDS = {
    "serve": run_serve,
    "worker": run_worker,
    "migrate": run_migrate,
    "ops": run_ops,
    "db": run_db,
}


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = build_parser().parse_args(argv)
    try:
        code = asyncio.run(_COMMANDS[args.command](args))
    except KeyboardInterrupt:
        code = 130
    except (LongrunningError, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, LongrunningError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
        code = 1
    sys.exit(code)
