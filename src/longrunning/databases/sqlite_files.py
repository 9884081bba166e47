"""The real work on SQLite database files: create, copy in steps, drop, describe; and the rules
every SQLite file operation shares (sqlite_dump.py and sqlite_maintenance.py use them).

Blocking functions, run in a worker's threads. A database or file appears under its name only
when it is complete (written aside under a hidden name, synced, then linked into place, never
overwriting), and work that fails or is cancelled leaves no file behind. Errors leave here as
structured `OperationFailed` (errors.py), never as raw sqlite3 or OS errors. No asyncio here.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from longrunning.core.errors import Code
from longrunning.core.json_values import JsonObject
from longrunning.databases import errors
from longrunning.engine.context import OperationFailed

_SIDE_FILES = ("-wal", "-shm", "-journal")
HEADER = b"SQLite format 3\x00"
STEPS_PER_COPY = 200
"""A copy is cut into at least this many steps, so it reports (and can stop) every 0.5 %."""
INTERRUPT_EVERY = 1000
"""SQLite virtual-machine instructions between two looks at the cancel flag (tens of µs)."""
_FREE_LATER_BYTES = 64 * 1024 * 1024


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


# Shared rules ----------------------------------------------------------------------------------


def failed(message: str, code: Code, reason: str, **metadata: str) -> OperationFailed:
    """A structured failure the user can act on (a missing database, an existing file)."""
    detail: JsonObject = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": errors.DOMAIN,
        "metadata": dict(metadata),
    }
    return OperationFailed(
        message, code=code, is_user_error=True, severity=errors.USER_SEVERITY, details=(detail,)
    )


def exists_error(what: str) -> OperationFailed:
    """`what`: "database 'sales'", "file 'sales.sql'"."""
    return failed(f"{what} already exists", Code.ALREADY_EXISTS, "ALREADY_EXISTS", name=what)


def missing_error(what: str) -> OperationFailed:
    return failed(f"{what} does not exist", Code.NOT_FOUND, "NOT_FOUND", name=what)


@contextlib.contextmanager
def translated(doing: str, cancelled: Callable[[], None] | None = None) -> Iterator[None]:
    """sqlite3 and OS errors as structured failures. `cancelled` (a `work.checkpoint`) goes
    first: SQLite reports an interrupt by a cancel as an error, and it is a cancel."""
    try:
        yield
    except sqlite3.Error as exc:
        if cancelled is not None:
            cancelled()
        raise errors.from_sqlite(exc, doing) from None
    except OSError as exc:
        raise errors.from_os(exc, doing) from None


def uri(path: Path, **params: str) -> str:
    """A file: URI for sqlite3.connect(..., uri=True): `mode="ro"`, `immutable="1"`."""
    return f"{path.absolute().as_uri()}?{urlencode(params)}" if params else path.absolute().as_uri()


def stop_when(
    conn: sqlite3.Connection, stop: Callable[[], bool], tick: Callable[[], None] | None = None
) -> None:
    """Make a long statement (VACUUM, CREATE INDEX, a scan) end with SQLITE_INTERRUPT once
    `stop()` is true; SQLite then rolls the statement back. `tick` runs at every look."""

    def handler() -> int:
        if tick is not None:
            tick()
        return 1 if stop() else 0

    conn.set_progress_handler(handler, INTERRUPT_EVERY)


def is_sqlite_file(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(HEADER)) == HEADER


def aside(path: Path) -> Path:
    """Where a database or file is built before it gets its name: hidden, unique, same dir."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")


def remove(path: Path) -> None:
    """Remove a file and its SQLite side files. The name goes at once; the blocks of a big file
    are freed by a background thread (freeing a GB takes the kernel ~0.1 s), so that a cancel
    ends promptly and still leaves nothing to see."""
    for name in (path, *(path.with_name(path.name + side) for side in _SIDE_FILES)):
        try:
            fd = os.open(name, os.O_RDONLY)
        except FileNotFoundError:
            continue
        except OSError:  # unreadable: then the kernel frees it here and now
            with contextlib.suppress(FileNotFoundError):
                name.unlink()
            continue
        try:
            with contextlib.suppress(FileNotFoundError):
                name.unlink()
        finally:
            stat = os.fstat(fd)
            if stat.st_nlink == 0 and stat.st_size >= _FREE_LATER_BYTES:
                threading.Thread(
                    target=os.close, args=(fd,), name="free-space", daemon=True
                ).start()
            else:
                os.close(fd)


def publish(
    built: Path, path: Path, what: str, checkpoint: Callable[[], None] = lambda: None
) -> None:
    """Give a complete file its name, failing rather than replacing one made meanwhile.
    `checkpoint` (raising to stop) runs last before the name is given: syncing a GB to disk
    takes seconds, and a cancel meanwhile still wins."""
    fsync(built)
    checkpoint()
    try:
        os.link(built, path)
    except FileExistsError:
        raise failed(
            f"{what} was created by someone else meanwhile",
            Code.ALREADY_EXISTS,
            "ALREADY_EXISTS",
            name=what,
        ) from None
    finally:
        remove(built)
    fsync(path.parent)


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unbuilt(path: Path, what: str) -> Path:
    """Check `path` is free, make its directory, and name the hidden file to build it in."""
    if path.exists():
        raise exists_error(what)
    path.parent.mkdir(parents=True, exist_ok=True)
    return aside(path)


def quote_name(name: str) -> str:
    """An SQL identifier, whatever it holds: double quotes, inner ones doubled."""
    return '"' + name.replace('"', '""') + '"'


# Create, copy, drop ----------------------------------------------------------------------------


def create_empty(path: Path, database: str) -> None:
    what = f"database {database!r}"
    with translated(f"creating {what}"):
        built = unbuilt(path, what)
        try:
            with contextlib.closing(sqlite3.connect(built)) as conn:
                conn.execute("PRAGMA user_version = 0")  # writes the header: a valid, empty db
                conn.commit()
            publish(built, path, what)
        except BaseException:
            remove(built)
            raise


Progress = Callable[[int, int], None]
"""Told (pages copied, pages in all) after every step; raises to stop the copy."""


@dataclass(frozen=True, slots=True)
class Copied:
    pages: int
    pages_per_step: int
    steps: int
    """How many times `progress` was told."""


def pages_per_step(limit: int, page_count: int) -> int:
    """At most `limit`, and small enough for STEPS_PER_COPY steps: progress every 0.5 %."""
    return max(1, min(limit, page_count // STEPS_PER_COPY))


def copy(
    source: Path,
    path: Path,
    *,
    source_name: str,
    name: str,
    max_pages_per_step: int,
    pause_seconds: float,
    progress: Progress,
    pause: Callable[[float], None] = time.sleep,
    immutable_source: bool = False,
    checkpoint: Callable[[], None] = lambda: None,
) -> Copied:
    """Copy a live database (or a backup file) with SQLite's online backup, step by step.

    `source_name` and `name` say what they are ("database 'orders'", "file 'o.bak'"). Other
    connections may keep reading and writing the source meanwhile. In WAL mode the copy holds
    one read transaction, so it is the source as it was when the copy began, and never starts
    over; in rollback-journal mode that would block every writer for the whole copy, so there
    each write by another connection makes SQLite start the copy over (progress then waits at
    its highest point). The caller's `progress` raising (a cancel) stops the copy within a step
    and removes the partial file; the source is only ever read. `immutable_source`: a file
    nobody writes (a backup), read without locks or side files. `checkpoint`: see publish.
    """
    params = {"mode": "ro", "immutable": "1"} if immutable_source else {"mode": "ro"}
    with translated(f"copying {source_name}"):
        if not source.exists():
            raise missing_error(source_name)
        if not is_sqlite_file(source) and source.stat().st_size > 0:
            raise failed(
                f"{source_name} is not a SQLite database",
                Code.FAILED_PRECONDITION,
                "NOT_A_DATABASE",
                name=source_name,
            )
        built = unbuilt(path, name)
        try:
            copied = _backup(
                source, built, params, max_pages_per_step, pause_seconds, progress, pause
            )
            publish(built, path, name, checkpoint)
        except BaseException:
            remove(built)
            raise
    return copied


def _backup(
    source: Path,
    built: Path,
    params: dict[str, str],
    max_pages_per_step: int,
    pause_seconds: float,
    progress: Progress,
    pause: Callable[[float], None],
) -> Copied:
    steps = 0

    def step(status: int, remaining: int, total: int) -> None:
        nonlocal steps
        steps += 1
        progress(total - remaining, total)
        if remaining and pause_seconds:
            pause(pause_seconds)

    with (
        contextlib.closing(sqlite3.connect(uri(source, **params), uri=True)) as src,
        contextlib.closing(sqlite3.connect(built, isolation_level=None)) as dst,
    ):
        # The copy is thrown away whole if anything goes wrong: no journal to write, and no
        # rollback that would first have to truncate a GB (a cancel ends in milliseconds).
        dst.execute("PRAGMA journal_mode = OFF")
        dst.execute("PRAGMA synchronous = OFF")
        src.isolation_level = None
        if src.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            src.execute("BEGIN")  # one snapshot for the whole copy; writers go on meanwhile
            src.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        page_count = int(src.execute("PRAGMA page_count").fetchone()[0])
        per_step = pages_per_step(max_pages_per_step, page_count)
        src.backup(dst, pages=per_step, progress=step)
        if src.in_transaction:
            src.execute("COMMIT")
        pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
    return Copied(pages=pages, pages_per_step=per_step, steps=steps)


def drop(path: Path, database: str) -> None:
    what = f"database {database!r}"
    with translated(f"dropping {what}"):
        if not path.exists():
            raise missing_error(what)
        remove(path)
        fsync(path.parent)
