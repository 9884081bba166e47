"""`longrunning ops ...`: start, get, list, cancel, delete, wait for and watch operations on a
running server, and show them as Azure SQL's sys.dm_operation_status does (`dmv`), through
NativeClient only (no engine, no store). Rich rendering is in render.py.

Exit codes, so that scripts can branch:
    0  done as asked; for wait, watch and start --watch: the operation SUCCEEDED;
       for cancel --wait: it ended CANCELLED
    1  the server refused the request (stderr names its code and reason)
    2  usage error (bad arguments)
    3  the server could not be reached
    4  the operation ended FAILED or CANCELLED (for cancel --wait: it ended otherwise than
       CANCELLED, e.g. it completed before the cancel took effect)
    5  the wait timed out while the operation was still running
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rich.console import Console

from longrunning.cli import render
from longrunning.client import ClientError, NativeClient

DEFAULT_URL = "http://127.0.0.1:8080"
MAX_PAGE_SIZE = 1000
"""The native API's largest page."""
URL_ENV = "LONGRUNNING_URL"

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_UNSUCCESSFUL, EXIT_TIMEOUT = range(6)

Json = dict[str, Any]
ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)


class UsageError(Exception):
    """A bad argument found after parsing (exit 2)."""


def _seconds(text: str) -> float:
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError("seconds must be positive")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """--server and --json, accepted before and after the subcommand. On the subcommands they
    default to SUPPRESS so they never overwrite a value given before the subcommand."""
    parser.add_argument(
        "--server",
        "--url",
        dest="server",
        metavar="URL",
        default=argparse.SUPPRESS if suppress else None,
        help=f"server base URL (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print the raw JSON instead of tables and panels",
    )


def add_ops_commands(subparsers: argparse._SubParsersAction[ParserT]) -> None:
    """Register `ops` and its subcommands; `run_ops` runs the parsed arguments.

    Generic in the parser class, so a main parser's own class (e.g. one with a one-line `error`)
    is used for `ops` and every subcommand too."""
    ops = subparsers.add_parser(
        "ops",
        help="start, inspect, wait for and cancel operations on a server",
        description="Talk to a longrunning server over its native HTTP API.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(ops, suppress=False)
    commands = ops.add_subparsers(dest="ops_command", metavar="COMMAND", required=True)

    def command(name: str, help: str) -> ParserT:
        parser = commands.add_parser(name, help=help, description=help)
        _add_common(parser, suppress=True)
        return parser

    start = command("start", "start an operation")
    start.add_argument("kind", metavar="KIND", help="operation kind, e.g. demo.sleep")
    start.add_argument("--parent", help="parent resource (default: the server's)")
    given = start.add_mutually_exclusive_group()
    given.add_argument("--request", metavar="JSON", help="the request as one JSON object")
    given.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="one request field; VALUE is JSON if it parses, else a string (repeatable)",
    )
    start.add_argument("--request-id", metavar="ID", help="idempotency key")
    start.add_argument(
        "--label", metavar="KEY=VALUE", action="append", default=[], help="(repeatable)"
    )
    start.add_argument("--timeout", metavar="SECONDS", type=_seconds, help="deadline")
    start.add_argument("--watch", action="store_true", help="then watch it until done")

    command("get", "show one operation").add_argument("id", metavar="ID")

    listing = command("list", "list operations, newest first")
    listing.add_argument("--parent", help="only operations under this parent")
    listing.add_argument("--filter", help='AIP-160 filter, e.g. "state=RUNNING"')
    listing.add_argument("--page-size", metavar="N", type=_positive_int)
    listing.add_argument("--page-token", metavar="TOKEN", help="resume a previous listing")
    listing.add_argument("--all", action="store_true", help="follow every page")

    cancel = command("cancel", "request cancellation of an operation")
    cancel.add_argument("id", metavar="ID")
    cancel.add_argument(
        "--wait",
        metavar="SECONDS",
        nargs="?",
        const=math.inf,
        type=_seconds,
        help="then wait until it has ended (at most SECONDS)",
    )

    command("delete", "forget a finished operation").add_argument("id", metavar="ID")

    wait = command("wait", "wait until an operation is done")
    wait.add_argument("id", metavar="ID")
    wait.add_argument("--timeout", metavar="SECONDS", type=_seconds, help="give up after this")

    command("watch", "follow an operation's progress until done").add_argument("id", metavar="ID")

    dmv = command(
        "dmv", "the operations as Azure SQL's sys.dm_operation_status shows them, newest first"
    )
    dmv.add_argument(
        "--limit", metavar="N", type=_positive_int, default=50, help="at most N rows (default: 50)"
    )


def server_url(given: str | None) -> str:
    """The server's base URL: `given` (a flag), else $LONGRUNNING_URL, else the default."""
    url = str(given or os.environ.get(URL_ENV) or DEFAULT_URL)
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"server URL {url!r} must start with http:// or https://")
    return url


Command = Callable[[NativeClient, argparse.Namespace, Console], Awaitable[int]]


async def run_ops(args: argparse.Namespace) -> int:
    """Run one parsed `ops` command; print results to stdout and one error line to stderr."""
    return await run_command(_COMMANDS[args.ops_command], args.server, args)


async def run_command(command: Command, url: str | None, args: argparse.Namespace) -> int:
    """Run a command against the server at `url` (or the default); a refusal or an unreachable
    server is one error line on stderr and its exit code."""
    try:
        async with NativeClient(server_url(url)) as client:
            return await command(client, args, Console(highlight=False))
    except UsageError as exc:
        _fail(f"error: {exc}")
        return EXIT_USAGE
    except ClientError as exc:
        _fail(f"error: {exc}")
        return EXIT_UNREACHABLE if exc.reason == "UNREACHABLE" else EXIT_REFUSED


def _fail(line: str) -> None:
    print(" ".join(line.split()), file=sys.stderr)


def _print_json(value: object, *, indent: int | None = 2) -> None:
    print(json.dumps(value, indent=indent), flush=True)


def _show(args: argparse.Namespace, console: Console, op: Json) -> None:
    if args.json:
        _print_json(op)
    else:
        console.print(render.operation_panel(op))


def _pairs(items: list[str], what: str, *, json_values: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r} must look like KEY=VALUE")
        if json_values:
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out


def _start_request(args: argparse.Namespace) -> dict[str, Any]:
    if args.request is None:
        return _pairs(args.param, "--param", json_values=True)
    try:
        request = json.loads(args.request)
    except ValueError as exc:
        raise UsageError(f"--request is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise UsageError("--request must be a JSON object")
    return request


def _exit_for(op: Json, *, wanted: str = "SUCCEEDED") -> int:
    if not op.get("done"):
        return EXIT_TIMEOUT
    return EXIT_OK if op.get("state") == wanted else EXIT_UNSUCCESSFUL


async def _start(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    request = _start_request(args)
    labels = _pairs(args.label, "--label", json_values=False)
    op = await client.start(
        args.kind,
        parent=args.parent,
        request=request,
        request_id=args.request_id,
        labels=labels or None,
        timeout_seconds=args.timeout,
    )
    if args.watch:
        return await _follow(client, str(op["id"]), args, console)
    _show(args, console, op)
    return EXIT_OK


async def _get(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    _show(args, console, await client.get(args.id))
    return EXIT_OK


async def _list(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    query = {"parent": args.parent, "filter": args.filter, "page_size": args.page_size}
    if args.all:
        page: Json = {"operations": [op async for op in client.list_all(**query)]}
    else:
        page = await client.list(**query, page_token=args.page_token)
    if args.json:
        _print_json(page)
        return EXIT_OK
    ops = page.get("operations", [])
    if ops:
        console.print(render.operations_table(ops, width=console.width))
    else:
        console.print("no operations")
    if page.get("nextPageToken"):
        console.print(f"more: --page-token {page['nextPageToken']}", soft_wrap=True)
    return EXIT_OK


async def _cancel(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    op = await client.cancel(args.id)
    if args.wait is None:
        _show(args, console, op)
        return EXIT_OK
    op = await client.wait(args.id, None if math.isinf(args.wait) else args.wait)
    _show(args, console, op)
    return _exit_for(op, wanted="CANCELLED")


async def _delete(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    await client.delete(args.id)
    if args.json:
        _print_json({"deleted": args.id})
    else:
        console.print(f"deleted {args.id}", soft_wrap=True)
    return EXIT_OK


async def _wait(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    op = await client.wait(args.id, args.timeout)
    _show(args, console, op)
    return _exit_for(op)


async def _watch(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    return await _follow(client, args.id, args, console)


async def _follow(
    client: NativeClient, op_id: str, args: argparse.Namespace, console: Console
) -> int:
    last: Json | None = None
    if args.json:
        async for op in client.watch(op_id):
            last = op
            _print_json(op, indent=None)
    else:
        last = await render.live_watch(console, client.watch(op_id))
    return EXIT_TIMEOUT if last is None else _exit_for(last)


async def _dmv(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    """The rows of the store's dm_operation_status view, computed from the native listing with
    the view's own mapping: `ops` reaches the server over HTTP only, never its store."""
    rows: list[Json] = []
    token: str | None = None
    while len(rows) < args.limit:
        size = min(args.limit - len(rows), MAX_PAGE_SIZE)
        page = await client.list(page_size=size, page_token=token)
        rows += [render.dm_row(op) for op in page.get("operations", [])]
        token = page.get("nextPageToken")
        if not token:
            break
    if args.json:
        _print_json(rows)
    elif rows:
        console.print(render.dm_table(rows, width=console.width))
    else:
        console.print("no operations")
    return EXIT_OK


_COMMANDS: dict[str, Command] = {
    "start": _start,
    "get": _get,
    "list": _list,
    "cancel": _cancel,
    "delete": _delete,
    "wait": _wait,
    "watch": _watch,
    "dmv": _dmv,
}
