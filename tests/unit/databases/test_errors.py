"""Database errors become structured failures: code, user-error flag, severity, ErrorInfo."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from pathlib import Path

import psycopg
import pytest

from longrunning.core.errors import Code
from longrunning.databases import errors
from tests.postgres_servers import require_admin_url


def raised(sql: str, path: Path) -> sqlite3.Error:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT OR IGNORE INTO t VALUES (1)")
        try:
            conn.execute(sql)
        except sqlite3.Error as exc:
            return exc
    raise AssertionError(f"{sql} did not fail")


@pytest.mark.parametrize(
    ("sql", "code", "user", "name"),
    [
        ("SELEKT 1", Code.INVALID_ARGUMENT, True, "SQLITE_ERROR"),
        ("SELECT * FROM missing", Code.INVALID_ARGUMENT, True, "SQLITE_ERROR"),
        (
            "INSERT INTO t VALUES (1)",
            Code.FAILED_PRECONDITION,
            True,
            "SQLITE_CONSTRAINT_PRIMARYKEY",
        ),
    ],
)
def test_sqlite_errors_of_the_user(
    tmp_path: Path, sql: str, code: Code, user: bool, name: str
) -> None:
    failed = errors.from_sqlite(raised(sql, tmp_path / "db.sqlite3"), "running it")
    failure = failed.failure
    assert failure.code is code and failure.is_user_error is user
    assert failure.severity == errors.USER_SEVERITY
    assert failure.message.startswith("running it failed: ")
    [detail] = failure.details
    assert detail == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": name,
        "domain": "longrunning.databases",
        "metadata": {"sqliteError": name},
    }


def test_a_locked_database_is_retryable_and_not_the_users_fault(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with (
        contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder,
        contextlib.closing(sqlite3.connect(path, timeout=0)) as other,
    ):
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError) as caught:
            other.execute("SELECT * FROM t")
        holder.execute("ROLLBACK")
    failed = errors.from_sqlite(caught.value, "reading")
    assert failed.failure.code is Code.UNAVAILABLE and not failed.failure.is_user_error
    assert failed.failure.severity == errors.RESOURCE_SEVERITY and failed.retryable


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "text.sqlite3"
    path.write_bytes(b"not a database at all, just text" * 100)
    with (
        contextlib.closing(sqlite3.connect(path)) as conn,
        pytest.raises(sqlite3.DatabaseError) as caught,
    ):
        conn.execute("SELECT * FROM sqlite_master")
    failed = errors.from_sqlite(caught.value, "opening")
    assert failed.failure.code is Code.FAILED_PRECONDITION and failed.failure.is_user_error


async def test_postgres_errors_by_sqlstate() -> None:
    url = require_admin_url()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cases = [
            ("SELECT * FROM no_such_table_here", Code.NOT_FOUND, True, "42P01"),
            ("SELEKT 1", Code.INVALID_ARGUMENT, True, "42601"),
            ("SELECT 1/0", Code.INVALID_ARGUMENT, True, "22012"),
            ("CREATE DATABASE postgres", Code.ALREADY_EXISTS, True, "42P04"),
        ]
        for sql, code, user, sqlstate in cases:
            with pytest.raises(psycopg.Error) as caught:
                await conn.execute(sql)
            failure = errors.from_postgres(caught.value, "running it").failure
            assert (failure.code, failure.is_user_error) == (code, user), sql
            assert failure.message.startswith("running it failed: ")
            [detail] = failure.details
            assert isinstance(detail, dict)
            assert detail["reason"] == f"SQLSTATE_{sqlstate}"
            assert detail["metadata"] == {"sqlstate": sqlstate, "postgresSeverity": "ERROR"}


def test_postgres_errors_without_a_sqlstate_are_the_servers() -> None:
    failure = errors.from_postgres(psycopg.OperationalError("connection refused"), "x").failure
    assert failure.code is Code.INTERNAL and not failure.is_user_error
    assert failure.severity == errors.SERVER_SEVERITY


@pytest.mark.parametrize(
    ("number", "code", "user"),
    [
        (errno.ENOSPC, Code.RESOURCE_EXHAUSTED, False),
        (errno.EACCES, Code.PERMISSION_DENIED, True),
        (errno.ENOENT, Code.NOT_FOUND, True),
        (errno.EIO, Code.UNAVAILABLE, False),
    ],
)
def test_os_errors(number: int, code: Code, user: bool) -> None:
    failure = errors.from_os(OSError(number, "it went wrong"), "writing x").failure
    assert (failure.code, failure.is_user_error) == (code, user)
    assert failure.message == "writing x failed: it went wrong"
    [detail] = failure.details
    assert isinstance(detail, dict) and detail["reason"] == errno.errorcode[number]
