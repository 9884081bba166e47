"""Sample SQLite databases and looks at them, for the tests of sqlite_files.py."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from longrunning.core.json_values import JsonObject
from longrunning.engine.context import OperationFailed

ROWS = 3000


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def rows(path: Path) -> list[tuple[int, str, bytes]]:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT id, name, pad FROM t ORDER BY id").fetchall()


def make_source(path: Path, *, wal: bool = False, rows: int = ROWS) -> None:
    """A database of many pages (rows of ~300 bytes: a few hundred 4 KiB pages)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, pad BLOB)")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, randomblob(256))", [(i, f"row {i}") for i in range(rows)]
        )
        conn.execute("COMMIT")


def page_count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def listing(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


def error_info(failed: OperationFailed) -> JsonObject:
    (detail,) = failed.failure.details
    assert isinstance(detail, dict) and str(detail["@type"]).endswith("ErrorInfo")
    return detail
