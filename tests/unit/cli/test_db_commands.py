"""`longrunning db`'s parsing: DB and SERVER/DB, the alter flags into `changes`, usage errors
before any request, and the one-line accounts of an operation. No server here.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from longrunning.cli import build_parser, db_render
from longrunning.cli.db import alter_changes, database_ref, run_db
from longrunning.cli.ops import EXIT_USAGE, UsageError


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["db", *argv])


@pytest.mark.parametrize(
    ("text", "server", "expected"),
    [
        ("sales", None, (None, "sales")),
        ("sales", "pg", ("pg", "sales")),
        ("pg/sales", None, ("pg", "sales")),
        ("pg/sales", "pg", ("pg", "sales")),
        ("pg/a b.c", None, ("pg", "a b.c")),
    ],
)
def test_databases_are_db_or_server_slash_db(
    text: str, server: str | None, expected: tuple[str | None, str]
) -> None:
    assert database_ref(text, server) == expected


@pytest.mark.parametrize(("text", "server"), [("/sales", None), ("pg/", None), ("pg/x", "local")])
def test_malformed_or_contradicting_databases_are_usage_errors(
    text: str, server: str | None
) -> None:
    with pytest.raises(UsageError):
        database_ref(text, server)


def test_alter_passes_only_the_changes_given() -> None:
    args = parse(
        "alter", "sales", "--vacuum", "--page-size", "8192", "--journal-mode", "WAL",
        "--set", "work_mem=64MB", "--set", "search_path=a,b", "--reset", "timezone",
    )  # fmt: skip
    assert alter_changes(args) == {
        "vacuum": True,
        "page_size": 8192,
        "journal_mode": "wal",
        "settings": {"work_mem": "64MB", "search_path": "a,b", "timezone": None},
    }
    assert alter_changes(parse("alter", "x", "--vacuum-full", "--analyze")) == {
        "vacuum_full": True,
        "analyze": True,
    }
    assert alter_changes(parse("alter", "x", "--auto-vacuum", "INCREMENTAL")) == {
        "auto_vacuum": "incremental"
    }


@pytest.mark.parametrize(
    "argv",
    [
        ("alter", "x"),
        ("alter", "x", "--set", "novalue"),
        ("alter", "x", "--set", "a=1", "--reset", "a"),
    ],
)
def test_alter_without_a_valid_change_is_a_usage_error(argv: tuple[str, ...]) -> None:
    with pytest.raises(UsageError):
        alter_changes(parse(*argv))


def test_flags_go_before_or_after_the_subcommand() -> None:
    args = parse("--url", "http://h:1", "--json", "index", "pg/s", "t", "a", "b", "--unique")
    assert (args.url, args.json, args.database, args.columns) == (
        "http://h:1",
        True,
        "pg/s",
        ["a", "b"],
    )
    assert (args.unique, args.name, args.no_wait) == (True, None, False)
    later = parse("copy", "a", "b", "--url", "http://h:2", "--no-wait", "--server", "pg")
    assert (later.url, later.no_wait, later.server, later.json) == ("http://h:2", True, "pg", False)


async def test_usage_errors_exit_2_in_one_line_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Port 9 (discard) is never listened on: a request would exit 3, not 2.
    code = await run_db(parse("--url", "http://127.0.0.1:9", "copy", "a/x", "b/y"))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.count("\n") == 1
    assert err.startswith("error: a copy stays on its server")
    assert await run_db(parse("--url", "ftp://x", "servers")) == EXIT_USAGE


def op(**fields: Any) -> dict[str, Any]:
    return {
        "id": "6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22",
        "name": "projects/p/locations/l/operations/6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22",
        "kind": "db.copy",
        "title": "DATABASE COPY",
        "request": {"server": "local", "database": "b", "source": {}},
        "startTime": "2026-11-21T10:00:00Z",
        "endTime": "2026-11-21T10:00:02.5Z",
        **fields,
    }


def test_lines_say_what_happened_to_which_database() -> None:
    assert db_render.started(op()) == (
        "DATABASE COPY local/b: operation projects/p/locations/l/operations/"
        "6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22"
    )
    done = op(state="SUCCEEDED", result={"server": "local", "database": "b", "pages": 12})
    assert db_render.succeeded(done) == "DATABASE COPY local/b SUCCEEDED after 2.5s: pages=12"
    failed = op(state="FAILED", error={"code": 5, "status": "NOT_FOUND", "message": "gone"})
    assert db_render.unsuccessful(failed) == (
        "DATABASE COPY local/b FAILED after 2.5s: NOT_FOUND (5): gone"
    )
    cancelled = op(state="CANCELLED", cancelOutcome="STOPPED_COOPERATIVELY")
    assert db_render.unsuccessful(cancelled) == (
        "DATABASE COPY local/b CANCELLED after 2.5s (STOPPED_COOPERATIVELY)"
    )


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (4096, "4.0 KiB"), (3 * 1024**2 + 1, "3.0 MiB"), (None, "")],
)
def test_sizes_are_human(size: int | None, shown: str) -> None:
    assert db_render.size(size) == shown


def test_ops_takes_url_too_so_both_commands_agree() -> None:
    args = build_parser().parse_args(["ops", "list", "--url", "http://h:3"])
    assert args.server == "http://h:3"
