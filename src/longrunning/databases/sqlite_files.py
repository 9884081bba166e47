"""The real work on SQLite database files: create, copy in steps, drop, and describe.

Blocking functions, run in a worker's threads. A database appears under its name only when it
is complete (written aside, then linked into place, never overwriting), and a copy that fails or
is cancelled leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from longrunning.core.errors import Code
from longrunning.engine.context import OperationFailed

_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class DatabaseFile:
    path: Path
    size_bytes: int
    modified: datetime


def describe(path: Path) -> DatabaseFile | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return DatabaseFile(path, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))


def _aside(path: Path) -> Path:
    """Where a database is built before it gets its name: hidden, unique, same directory."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")


def _remove(path: Path) -> None:
    for name in (path, *(path.with_name(path.name + side) for side in _SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            name.unlink()


def _publish(aside: Path, path: Path) -> None:
    """Give a complete file its name, failing rather than replacing a database made meanwhile."""
    _fsync(aside)
    try:
        os.link(aside, path)
    except FileExistsError:
        raise OperationFailed(
            f"database {path.name} was created by someone else meanwhile", code=Code.ALREADY_EXISTS
        ) from None
    finally:
        _remove(aside)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exists_error(path: Path, database: str) -> OperationFailed:
    return OperationFailed(f"database {database!r} already exists", code=Code.ALREADY_EXISTS)


def create_empty(path: Path, database: str) -> None:
    if path.exists():
        raise _exists_error(path, database)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = _aside(path)
    try:
        with contextlib.closing(sqlite3.connect(aside)) as conn:
            conn.execute("PRAGMA user_version = 0")  # writes the header: a valid, empty database
            conn.commit()
        _publish(aside, path)
    except BaseException:
        _remove(aside)
        raise


Progress = Callable[[int, int], None]
"""Told (pages copied, pages in all) after every step; raises to stop the copy."""


def copy(
    source: Path,
    path: Path,
    database: str,
    *,
    pages_per_step: int,
    pause_seconds: float,
    progress: Progress,
    pause: Callable[[float], None] = time.sleep,
) -> int:
    """Copy a live database with SQLite's online backup, `pages_per_step` pages at a time.

    Other connections may keep reading and writing the source meanwhile. Returns the pages
    copied. The caller's `progress` raising (a cancel) stops the copy and removes the partial
    file; the source is only ever read.
    """
    if not source.exists():
        raise OperationFailed(f"source database {source.name} does not exist", code=Code.NOT_FOUND)
    if path.exists():
        raise _exists_error(path, database)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = _aside(path)
    copied = 0

    def step(status: int, remaining: int, total: int) -> None:
        nonlocal copied
        copied = total - remaining
        progress(copied, total)
        if remaining and pause_seconds:
            pause(pause_seconds)

    try:
        with (
            contextlib.closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)) as src,
            contextlib.closing(sqlite3.connect(aside)) as dst,
        ):
            src.backup(dst, pages=pages_per_step, progress=step)
        _publish(aside, path)
    except sqlite3.DatabaseError as exc:
        _remove(aside)
        raise OperationFailed(f"copying {source.name} failed: {exc}", code=Code.INTERNAL) from None
    except BaseException:
        _remove(aside)
        raise
    return copied


def drop(path: Path, database: str) -> None:
    if not path.exists():
        raise OperationFailed(f"database {database!r} does not exist", code=Code.NOT_FOUND)
    _remove(path)
    _fsync(path.parent)
