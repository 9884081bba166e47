"""The work on SQLite files: create, drop, describe, and the rules every SQLite file operation
shares (structured errors, hidden partial files, publishing without overwriting). The copy has
its own tests: test_sqlite_copy.py."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from longrunning.core.errors import Code
from longrunning.databases import sqlite_files
from longrunning.engine.context import OperationCancelled, OperationFailed
from tests.unit.databases.sqlite_samples import error_info, integrity, listing, make_source

# Create -------------------------------------------------------------------------------------


def test_create_empty_makes_a_valid_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "sales.sqlite3"
    sqlite_files.create_empty(path, "sales")
    assert path.stat().st_size > 0  # a real header, not an empty file
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert integrity(path) == "ok"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_schema").fetchone() == (0,)
        conn.execute("CREATE TABLE t (x)")  # writable
    assert listing(path.parent) == ["sales.sqlite3"]  # nothing aside is left


def test_create_empty_refuses_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "sales.sqlite3"
    make_source(path)
    before = path.read_bytes()
    with pytest.raises(OperationFailed, match="'sales' already exists") as caught:
        sqlite_files.create_empty(path, "sales")
    assert caught.value.failure.code is Code.ALREADY_EXISTS
    assert caught.value.failure.is_user_error
    assert error_info(caught.value)["reason"] == "ALREADY_EXISTS"
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["sales.sqlite3"]


# Shared rules -------------------------------------------------------------------------------


def test_publish_never_replaces_a_file_made_meanwhile(tmp_path: Path) -> None:
    built, path = tmp_path / ".x.partial", tmp_path / "x.sql"
    built.write_text("mine")
    path.write_text("theirs")
    with pytest.raises(OperationFailed, match=r"file 'x\.sql' was created by someone else") as e:
        sqlite_files.publish(built, path, "file 'x.sql'")
    assert e.value.failure.code is Code.ALREADY_EXISTS
    assert listing(tmp_path) == ["x.sql"]
    assert path.read_text() == "theirs"


def test_remove_takes_a_big_file_s_name_at_once(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with big.open("wb") as file:
        file.truncate(100 * 1024 * 1024)
    (tmp_path / "big-journal").write_bytes(b"j")
    sqlite_files.remove(big)
    assert listing(tmp_path) == []


def test_translated_errors_are_structured_and_a_cancel_comes_first() -> None:
    with pytest.raises(OperationFailed) as caught, sqlite_files.translated("reading x"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert caught.value.failure.code is Code.RESOURCE_EXHAUSTED
    assert "reading x failed" in caught.value.failure.message

    with pytest.raises(OperationFailed) as caught, sqlite_files.translated("reading x"):
        sqlite3.connect(":memory:").execute("SELECT * FROM nowhere")
    assert caught.value.failure.code is Code.INVALID_ARGUMENT

    def cancelled() -> None:
        raise OperationCancelled

    with pytest.raises(OperationCancelled), sqlite_files.translated("reading x", cancelled):
        raise sqlite3.OperationalError("interrupted")


def test_quote_name_quotes_anything() -> None:
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        for name in ["plain", 'with "quotes"', "semi;colon", "sp ace", "ünï", '"']:
            conn.execute(f"CREATE TABLE {sqlite_files.quote_name(name)} (x)")
            found = conn.execute("SELECT name FROM sqlite_schema WHERE name = ?", (name,))
            assert found.fetchone() == (name,)


# Drop and describe --------------------------------------------------------------------------


def test_drop_removes_the_file_and_its_side_files(tmp_path: Path) -> None:
    path = tmp_path / "sales.sqlite3"
    make_source(path, wal=True)
    for side in ("-wal", "-shm", "-journal"):
        (tmp_path / f"sales.sqlite3{side}").write_bytes(b"x")
    (tmp_path / "other.sqlite3").write_bytes(b"")
    (tmp_path / "other.sqlite3-wal").write_bytes(b"")
    sqlite_files.drop(path, "sales")
    assert listing(tmp_path) == ["other.sqlite3", "other.sqlite3-wal"]


def test_drop_of_a_missing_database_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "sales.sqlite3-wal").write_bytes(b"x")  # a stray side file is not a database
    with pytest.raises(OperationFailed, match="'sales' does not exist") as caught:
        sqlite_files.drop(tmp_path / "sales.sqlite3", "sales")
    assert caught.value.failure.code is Code.NOT_FOUND
    assert listing(tmp_path) == ["sales.sqlite3-wal"]


def test_describe(tmp_path: Path) -> None:
    path = tmp_path / "sales.sqlite3"
    assert sqlite_files.describe(path) is None
    sqlite_files.create_empty(path, "sales")
    found = sqlite_files.describe(path)
    assert found is not None
    assert found.path == path and found.size_bytes == path.stat().st_size > 0
    assert found.modified.tzinfo is UTC
    assert abs(found.modified - datetime.now(UTC)) < timedelta(minutes=1)
