"""`longrunning db ...`: list a running server's database servers, databases and files, and
start database operations on them (create, drop, copy, backup, restore, export, import, alter,
index), following each until it is done, through NativeClient only (no engine, no store).

A database is `DB` on the server given by --server (default: local), or `SERVER/DB`. A command
that starts an operation prints the operation's name, then follows it with a progress bar
(plain lines when not on a terminal) until it is done; Ctrl-C asks the server to cancel it and
goes on showing progress until it has ended, a second Ctrl-C stops waiting. --no-wait returns
at once; --json prints the operation's JSON (the final one, or the started one with --no-wait).

Exit codes, as for `ops`:
    0  done as asked: the operation SUCCEEDED (with --no-wait: it was started)
    1  the server refused the request (stderr names its code and reason)
    2  usage error (bad arguments)
    3  the server could not be reached
    4  the operation ended FAILED or CANCELLED (stderr says how, in one line)
    130  a second Ctrl-C stopped the wait; the operation goes on (its cancel requested)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rich.console import Console

from longrunning.cli import db_render
from longrunning.cli.follow import follow
from longrunning.cli.ops import (
    DEFAULT_URL,
    EXIT_OK,
    EXIT_UNSUCCESSFUL,
    URL_ENV,
    Command,
    UsageError,
    run_command,
)
from longrunning.client import NativeClient
from longrunning.databases.servers import DEFAULT_SERVER

EXIT_DETACHED = 130

Json = dict[str, Any]
ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """--url and --json, before and after the subcommand (as `ops` takes --server and --json;
    here --server names a database server)."""
    parser.add_argument(
        "--url",
        dest="url",
        metavar="URL",
        default=argparse.SUPPRESS if suppress else None,
        help=f"longrunning server base URL (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON instead of tables, lines and progress",
    )


def add_db_commands(subparsers: argparse._SubParsersAction[ParserT]) -> None:
    """Register `db` and its subcommands; `run_db` runs the parsed arguments."""
    db = subparsers.add_parser(
        "db",
        help="list databases and create, copy, export, import, alter... them on a server",
        description="Databases of the servers a longrunning server manages.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(db, suppress=False)
    commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)

    def command(name: str, help: str, *, starts: bool = True) -> ParserT:
        parser = commands.add_parser(name, help=help, description=help)
        _add_common(parser, suppress=True)
        if name != "servers":
            parser.add_argument(
                "--server",
                metavar="NAME",
                help=f"the database server (default: SERVER of SERVER/DB, else {DEFAULT_SERVER})",
            )
        if starts:
            parser.add_argument(
                "--no-wait", action="store_true", help="print the started operation and return"
            )
            parser.add_argument("--request-id", metavar="ID", help="idempotency key")
        return parser

    command("servers", "list the database servers", starts=False)
    for name, help in (
        ("list", "list a server's databases"),
        ("files", "list a server's export and backup files"),
    ):
        command(name, help, starts=False).add_argument("target", metavar="SERVER", nargs="?")
    command("create", "create an empty database").add_argument("database", metavar="DB")
    command("drop", "drop a database").add_argument("database", metavar="DB")
    copy = command("copy", "copy a live database into a new one on the same server")
    copy.add_argument("source", metavar="SOURCE")
    copy.add_argument("database", metavar="DB")
    for name, help, first, second in (
        ("backup", "back a database up into a file of its server", "database", "file"),
        ("restore", "restore a backup file into a new database", "file", "database"),
        ("export", "export a database into a portable file of its server", "database", "file"),
        ("import", "import an export file into a new database", "file", "database"),
    ):
        parser = command(name, help)
        parser.add_argument(first, metavar="DB" if first == "database" else "FILE")
        parser.add_argument(second, metavar="DB" if second == "database" else "FILE")
    _alter_arguments(command("alter", "change a database's settings or rebuild it"))
    index = command("index", "build an index on a table of a database")
    index.add_argument("database", metavar="DB")
    index.add_argument("table", metavar="TABLE")
    index.add_argument("columns", metavar="COLUMN", nargs="+")
    index.add_argument("--name", help="the index's name (default: ix_TABLE_COLUMNS)")
    index.add_argument("--unique", action="store_true", help="CREATE UNIQUE INDEX")


def _alter_arguments(alter: argparse.ArgumentParser) -> None:
    """Each flag is one change; the server checks that its backend can make it (see
    docs/reference/databases.md for which flags SQLite and PostgreSQL servers take)."""
    alter.add_argument("database", metavar="DB")
    alter.add_argument("--vacuum", action="store_true", help="rebuild it (VACUUM)")
    alter.add_argument("--vacuum-full", action="store_true", help="VACUUM FULL (PostgreSQL)")
    alter.add_argument("--analyze", action="store_true", help="refresh planner statistics")
    alter.add_argument("--page-size", metavar="N", type=int, help="page size (SQLite)")
    alter.add_argument("--auto-vacuum", metavar="MODE", help="none, full or incremental (SQLite)")
    alter.add_argument(
        "--journal-mode", metavar="MODE", help="delete, truncate, persist or wal (SQLite)"
    )
    alter.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="ALTER DATABASE SET NAME = VALUE (PostgreSQL; repeatable)",
    )
    alter.add_argument(
        "--reset",
        metavar="NAME",
        action="append",
        default=[],
        help="ALTER DATABASE RESET NAME (PostgreSQL; repeatable)",
    )


async def run_db(args: argparse.Namespace) -> int:
    """Run one parsed `db` command; results on stdout, one error line on stderr."""
    return await run_command(_COMMANDS[args.db_command], args.url, args)


def _fail(line: str) -> None:
    print(" ".join(line.split()), file=sys.stderr, flush=True)


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2), flush=True)


def _server_of(args: argparse.Namespace, given: str | None) -> str:
    """The database server of a listing: SERVER, else --server, else the default."""
    option: str | None = args.server
    if given and option and given != option:
        raise UsageError(f"server {given!r} and --server {option!r} disagree")
    return given or option or DEFAULT_SERVER


def database_ref(text: str, server: str | None) -> tuple[str | None, str]:
    """(server or None, database) of `DB` or `SERVER/DB`."""
    named, slash, database = text.partition("/")
    if not slash:
        return server, text
    if not named or not database:
        raise UsageError(f"{text!r} must be DB or SERVER/DB")
    if server is not None and server != named:
        raise UsageError(f"{text!r} is on server {named!r}, but --server says {server!r}")
    return named, database


def _one(args: argparse.Namespace) -> tuple[str, str]:
    server, database = database_ref(args.database, args.server)
    return server or DEFAULT_SERVER, database


async def _servers(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    servers = await client.list_servers()
    if args.json:
        _print_json(servers)
    else:
        console.print(db_render.servers_table(servers))
    return EXIT_OK


async def _list(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    server = _server_of(args, args.target)
    databases = await client.list_databases(server)
    if args.json:
        _print_json(databases)
    elif databases:
        console.print(db_render.databases_table(databases))
    else:
        print(f"no databases on server {server}")
    return EXIT_OK


async def _files(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
    server = _server_of(args, args.target)
    files = await client.list_files(server)
    if args.json:
        _print_json(files)
    elif files:
        console.print(db_render.files_table(files))
    else:
        print(f"no files on server {server}")
    return EXIT_OK


Starter = Callable[[NativeClient, argparse.Namespace], Awaitable[Json]]


def _starting(
    start: Starter,
) -> Callable[[NativeClient, argparse.Namespace, Console], Awaitable[int]]:
    """A command that starts an operation, then (unless --no-wait) follows it until done."""

    async def run(client: NativeClient, args: argparse.Namespace, console: Console) -> int:
        op = await start(client, args)
        if args.no_wait:
            if args.json:
                _print_json(op)
            else:
                print(db_render.started(op))
                print(f"{op.get('state')}; follow it with: longrunning ops watch {op['id']}")
            return EXIT_OK
        header = None if args.json else db_render.started(op)
        followed = await follow(client, op, console, quiet=args.json, header=header)
        last = followed.op or op
        if args.json:
            _print_json(last)
        if followed.detached:
            _fail(
                f"error: stopped waiting for {db_render.subject(last)} "
                f"({last.get('state')}, cancel requested); it goes on: "
                f"longrunning ops watch {last['id']}"
            )
            return EXIT_DETACHED
        if last.get("state") == "SUCCEEDED":
            if not args.json:
                print(db_render.succeeded(last), flush=True)
            return EXIT_OK
        _fail(f"error: {db_render.unsuccessful(last)}")
        return EXIT_UNSUCCESSFUL

    return run


async def _create(client: NativeClient, args: argparse.Namespace) -> Json:
    return await client.create_database(*_one(args), request_id=args.request_id)


async def _drop(client: NativeClient, args: argparse.Namespace) -> Json:
    return await client.drop_database(*_one(args), request_id=args.request_id)


async def _copy(client: NativeClient, args: argparse.Namespace) -> Json:
    source_server, source = database_ref(args.source, args.server)
    server, database = database_ref(args.database, args.server)
    if source_server and server and source_server != server:
        raise UsageError(
            "a copy stays on its server: to move a database to another server, export it "
            "there and import it here"
        )
    on = server or source_server or DEFAULT_SERVER
    return await client.copy_database(on, source, database, request_id=args.request_id)


async def _backup(client: NativeClient, args: argparse.Namespace) -> Json:
    server, database = _one(args)
    return await client.backup_database(server, database, args.file, request_id=args.request_id)


async def _restore(client: NativeClient, args: argparse.Namespace) -> Json:
    server, database = _one(args)
    return await client.restore_database(server, args.file, database, request_id=args.request_id)


async def _export(client: NativeClient, args: argparse.Namespace) -> Json:
    server, database = _one(args)
    return await client.export_database(server, database, args.file, request_id=args.request_id)


async def _import(client: NativeClient, args: argparse.Namespace) -> Json:
    server, database = _one(args)
    return await client.import_database(server, args.file, database, request_id=args.request_id)


def alter_changes(args: argparse.Namespace) -> Json:
    """Only the changes asked for, keyed as the db.alter request takes them."""
    changes: Json = {}
    for flag in ("vacuum", "vacuum_full", "analyze"):
        if getattr(args, flag):
            changes[flag] = True
    if args.page_size is not None:
        changes["page_size"] = args.page_size
    for mode in ("auto_vacuum", "journal_mode"):  # SQL keywords: WAL is wal
        if getattr(args, mode) is not None:
            changes[mode] = getattr(args, mode).lower()
    settings: dict[str, str | None] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--set {item!r} must look like NAME=VALUE")
        settings[name] = value
    for name in args.reset:
        if name in settings:
            raise UsageError(f"setting {name!r} is both --set and --reset")
        settings[name] = None  # null resets it
    if settings:
        changes["settings"] = settings
    if not changes:
        raise UsageError("say what to change, e.g. --vacuum or --analyze (see --help)")
    return changes


async def _alter(client: NativeClient, args: argparse.Namespace) -> Json:
    changes = alter_changes(args)
    server, database = _one(args)
    return await client.alter_database(server, database, changes, request_id=args.request_id)


async def _index(client: NativeClient, args: argparse.Namespace) -> Json:
    server, database = _one(args)
    return await client.create_index(
        server,
        database,
        args.table,
        args.columns,
        name=args.name,
        unique=args.unique,
        request_id=args.request_id,
    )


_COMMANDS: dict[str, Command] = {
    "servers": _servers,
    "list": _list,
    "files": _files,
    "create": _starting(_create),
    "drop": _starting(_drop),
    "copy": _starting(_copy),
    "backup": _starting(_backup),
    "restore": _starting(_restore),
    "export": _starting(_export),
    "import": _starting(_import),
    "alter": _starting(_alter),
    "index": _starting(_index),
}
