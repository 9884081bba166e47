"""The `dm_operation_status` view of both SQL stores, read with the database's own driver as an
operator's shell would: state codes and names, whole percent, error columns, the database and
server a target names, the title, times, and no row for a forgotten operation.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from longrunning.core.errors import Code
from longrunning.core.operation import Failure, Operation, Progress, State
from longrunning.core.ports import OperationStore
from longrunning.stores import PostgresStore, SQLiteStore
from longrunning.testing import make_operation
from tests.store_kinds import fresh_store

T0 = datetime(2026, 3, 1, 12, 0, 0, 125000, tzinfo=UTC)
DB = "servers/s1/databases/sales"

NO_ERROR = {"error_code": 0, "error_desc": None, "error_severity": 0, "error_state": 0}
FIXED = {"resource_type": 0, "resource_type_desc": "Database", "phase_code": None}


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OperationStore]:
    opened = await fresh_store(request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def view_rows(store: OperationStore) -> dict[str, dict[str, Any]]:
    """Every row of the view, by session_activity_id."""
    query = "SELECT * FROM dm_operation_status"
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(row) for row in conn.execute(query)]
    else:
        assert isinstance(store, PostgresStore)
        async with await psycopg.AsyncConnection.connect(
            store.conninfo, row_factory=dict_row
        ) as conn:
            rows = await (await conn.execute(query)).fetchall()
    return {str(row["session_activity_id"]): row for row in rows}


def op(seconds: int, **fields: Any) -> Operation:
    defaults: dict[str, Any] = {"kind": "db.create", "title": "CREATE DATABASE", "target": DB}
    return make_operation(now=T0 + timedelta(seconds=seconds), **{**defaults, **fields})


STATES: list[tuple[Operation, dict[str, Any]]] = [
    (
        op(0, state=State.PENDING),
        {"state": 0, "state_desc": "PENDING", "percent_complete": 0, **NO_ERROR},
    ),
    (
        op(1, state=State.RUNNING, progress=Progress(percent=42.9, phase="copying")),
        {"state": 1, "state_desc": "IN_PROGRESS", "percent_complete": 42, **NO_ERROR},
    ),
    (
        op(2, state=State.SUCCEEDED, progress=Progress(percent=60.0)),
        {"state": 2, "state_desc": "COMPLETED", "percent_complete": 100, **NO_ERROR},
    ),
    (
        op(
            3,
            state=State.FAILED,
            progress=Progress(percent=12.5),
            error=Failure(code=Code.NOT_FOUND, message="no source 'x'", severity=20),
        ),
        {
            "state": 3,
            "state_desc": "FAILED",
            "percent_complete": 12,
            "error_code": 5,
            "error_desc": "no source 'x'",
            "error_severity": 20,
            "error_state": 0,
        },
    ),
    (
        op(4, state=State.RUNNING, progress=Progress(percent=99.99), cancel_requested_at=T0),
        {"state": 4, "state_desc": "CANCEL_IN_PROGRESS", "percent_complete": 99, **NO_ERROR},
    ),
    (
        op(
            5,
            state=State.CANCELLED,
            progress=Progress(percent=7.0),
            cancel_requested_at=T0,
            error=Failure(code=Code.CANCELLED, message="Operation was cancelled."),
        ),
        {
            "state": 5,
            "state_desc": "CANCELLED",
            "percent_complete": 7,
            "error_code": 1,
            "error_desc": "Operation was cancelled.",
            "error_severity": 16,
            "error_state": 0,
        },
    ),
]


async def test_every_state_shows_its_dm_code_name_percent_and_error_columns(
    sql_store: OperationStore,
) -> None:
    for operation, _ in STATES:
        await sql_store.insert(operation)

    rows = await view_rows(sql_store)

    assert set(rows) == {operation.id for operation, _ in STATES}
    for operation, expected in STATES:
        row = rows[operation.id]
        shown = {key: row[key] for key in (*expected, *FIXED)}
        assert shown == {**expected, **FIXED}, operation.state
        assert (row["operation"], row["major_resource_id"], row["minor_resource_id"]) == (
            "CREATE DATABASE",
            "sales",
            "s1",
        )
    running = rows[STATES[1][0].id]
    assert (running["phase_desc"], running["phase_info"]) == ("copying", None)


async def test_targets_and_titles_fill_the_resource_and_operation_columns(
    sql_store: OperationStore,
) -> None:
    cases = {
        "servers/s-2/databases/Q3 sales.v2": ("Q3 sales.v2", "s-2"),
        "servers/s1/databases/a/databases/b": ("a/databases/b", "s1"),
        "servers/s1": ("servers/s1", ""),
        "queue/elsewhere": ("queue/elsewhere", ""),
    }
    ids = {}
    for seconds, target in enumerate(cases):
        ids[target] = (await sql_store.insert(op(seconds, target=target))).id
    untitled = await sql_store.insert(op(9, target=None, title=None, kind="demo.sleep"))

    rows = await view_rows(sql_store)

    for target, expected in cases.items():
        row = rows[ids[target]]
        assert (row["major_resource_id"], row["minor_resource_id"]) == expected, target
    row = rows[untitled.id]
    assert (row["operation"], row["major_resource_id"], row["minor_resource_id"]) == (
        "demo.sleep",
        "",
        "",
    )


async def test_the_view_follows_a_replace_and_shows_utc_times(sql_store: OperationStore) -> None:
    stored = await sql_store.insert(op(0))
    later = T0 + timedelta(minutes=5, milliseconds=250)
    running = dataclasses.replace(
        stored, state=State.RUNNING, progress=Progress(percent=50.0), update_time=later
    )
    await sql_store.replace(running, expected_version=stored.version)

    row = (await view_rows(sql_store))[stored.id]

    assert (row["state"], row["state_desc"], row["percent_complete"]) == (1, "IN_PROGRESS", 50)
    if isinstance(sql_store, SQLiteStore):
        assert (row["start_time"], row["last_modify_time"]) == (
            "2026-03-01 12:00:00.125",
            "2026-03-01 12:05:00.375",
        )
    else:
        assert (row["start_time"], row["last_modify_time"]) == (
            T0.replace(tzinfo=None),
            later.replace(tzinfo=None),
        )


async def test_a_forgotten_operation_has_no_row(sql_store: OperationStore) -> None:
    kept = await sql_store.insert(op(0))
    await sql_store.insert(op(1, state=State.RUNNING, forgotten_at=T0))

    assert set(await view_rows(sql_store)) == {kept.id}
