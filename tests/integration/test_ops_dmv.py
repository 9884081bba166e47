"""`longrunning ops dmv` against a real server on a socket over SQLite and PostgreSQL: the rows it
computes from the native API are the rows the store's own `dm_operation_status` view holds,
newest first, cut at `--limit`; and its table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette

from longrunning.cli import ops as ops_cli
from longrunning.cli.ops import add_ops_commands, run_ops
from longrunning.cli.render import dm_row
from longrunning.core.errors import Code
from longrunning.core.operation import Failure, Operation, Progress, State
from longrunning.core.ports import OperationStore
from longrunning.engine.demo import DEMO_KINDS
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.service import OperationService
from longrunning.faces.native.rest import native_routes
from longrunning.stores import SQLiteStore
from longrunning.testing import make_operation
from tests.contract.test_dm_operation_status import view_rows
from tests.store_kinds import fresh_store

# Sub-millisecond times, so that the SQLite view's rounding to milliseconds shows.
T0 = datetime(2026, 3, 1, 12, 0, 0, 471491, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def dm_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OperationStore]:
    opened = await fresh_store(request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def url(dm_store: OperationStore) -> AsyncIterator[str]:
    service = OperationService(dm_store, HandlerRegistry(DEMO_KINDS))
    app = Starlette(routes=native_routes(service))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


async def dmv(url: str, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="lro")
    add_ops_commands(parser.add_subparsers(dest="command"))
    code = await run_ops(parser.parse_args(["ops", "dmv", *argv, "--server", url]))
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def every_state() -> list[Operation]:
    """One operation per dm state, a second apart, the newest last; every other one without a
    title, whose kind then names it."""

    def op(seconds: int, **fields: Any) -> Operation:
        at = T0 + timedelta(seconds=seconds)
        fields.setdefault("target", f"servers/s1/databases/db{seconds}")
        fields.setdefault("title", None if seconds % 2 else f"ALTER DATABASE {seconds}")
        return make_operation(now=at, kind=f"kind.{seconds}", **fields)

    failure = Failure(code=Code.NOT_FOUND, message="no source", severity=20)
    return [
        op(0),
        op(1, state=State.RUNNING, progress=Progress(percent=42.9, phase="copying")),
        op(2, state=State.SUCCEEDED, progress=Progress(percent=60.0)),
        op(3, state=State.FAILED, progress=Progress(percent=12.5), error=failure),
        op(4, state=State.RUNNING, progress=Progress(percent=99.9), cancel_requested_at=T0),
        op(
            5,
            state=State.CANCELLED,
            cancel_requested_at=T0,
            error=Failure(code=Code.CANCELLED, message="Operation was cancelled."),
        ),
        op(6, target="servers/s1"),
        op(7, target=None),
    ]


def as_utc(value: object) -> datetime:
    if isinstance(value, datetime):  # PostgreSQL: a timestamp without time zone, in UTC
        return value.replace(tzinfo=UTC)
    assert isinstance(value, str)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


async def test_the_rows_are_the_views_rows_newest_first(
    dm_store: OperationStore, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    inserted = every_state()
    for operation in inserted:
        await dm_store.insert(operation)

    code, out = await dmv(url, capsys, "--json")

    rows = json.loads(out)
    view = await view_rows(dm_store)
    assert code == 0
    assert [row["session_activity_id"] for row in rows] == [op.id for op in reversed(inserted)]
    assert [row["operation"] for row in rows[-2:]] == ["kind.1", "ALTER DATABASE 0"]
    assert {row["state_desc"] for row in rows} >= {
        "PENDING",
        "IN_PROGRESS",
        "COMPLETED",
        "FAILED",
        "CANCEL_IN_PROGRESS",
        "CANCELLED",
    }
    # SQLite's view keeps milliseconds, PostgreSQL's microseconds.
    slack = timedelta(milliseconds=1) if isinstance(dm_store, SQLiteStore) else timedelta(0)
    for row in rows:
        expected = view[row["session_activity_id"]]
        assert list(row) == list(expected)
        times = ("start_time", "last_modify_time")
        for column in times:
            assert abs(as_utc(row[column]) - as_utc(expected[column])) <= slack, column
        plain = {key: value for key, value in expected.items() if key not in times}
        assert {key: row[key] for key in plain} == plain


async def test_limit_keeps_the_newest_rows_across_pages(
    dm_store: OperationStore,
    url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inserted = every_state()
    for operation in inserted:
        await dm_store.insert(operation)
    monkeypatch.setattr(ops_cli, "MAX_PAGE_SIZE", 2)

    _, out = await dmv(url, capsys, "--limit", "5", "--json")
    _, everything = await dmv(url, capsys, "--limit", "50", "--json")

    newest = [op.id for op in reversed(inserted)]
    assert [row["session_activity_id"] for row in json.loads(out)] == newest[:5]
    assert [row["session_activity_id"] for row in json.loads(everything)] == newest


async def test_the_table_shows_state_names_percent_and_databases(
    dm_store: OperationStore,
    url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inserted = every_state()
    for operation in inserted:
        await dm_store.insert(operation)

    monkeypatch.setenv("COLUMNS", "200")
    code, wide = await dmv(url, capsys)
    monkeypatch.setenv("COLUMNS", "80")
    _, narrow = await dmv(url, capsys)

    assert code == 0
    lines = {op.id: line for op in inserted for line in wide.splitlines() if op.id in line}
    failed = lines[inserted[3].id].split()
    assert failed[1:6] == ["3", "FAILED", "12%", "kind.3", "db3"]
    assert "no source" in lines[inserted[3].id]
    assert lines[inserted[4].id].split()[1:4] == ["4", "CANCEL_IN_PROGRESS", "99%"]
    assert lines[inserted[2].id].split()[1:6] == ["2", "COMPLETED", "100%", "ALTER", "DATABASE"]
    assert all(len(line) <= 80 for line in narrow.splitlines())
    assert all(op.id in narrow for op in inserted)
    assert "CANCEL_IN_PROGRESS " in narrow


async def test_no_operations_says_so(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await dmv(url, capsys) == (0, "no operations\n")
    assert await dmv(url, capsys, "--json") == (0, "[]\n")


def test_a_title_names_the_operation_and_a_database_target_its_resources() -> None:
    row = dm_row(
        {
            "id": "x",
            "kind": "db.create",
            "title": "CREATE DATABASE",
            "state": "RUNNING",
            "cancelRequested": False,
            "progress": {"percent": 0.5},
            "target": "servers/s1/databases/a/b",
        }
    )
    assert (row["operation"], row["major_resource_id"], row["minor_resource_id"]) == (
        "CREATE DATABASE",
        "a/b",
        "s1",
    )
    assert (row["state"], row["percent_complete"], row["error_code"], row["error_desc"]) == (
        1,
        0,
        0,
        None,
    )
