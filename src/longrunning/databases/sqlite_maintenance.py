"""ALTER DATABASE and CREATE INDEX on a SQLite database, in place, cancellable.

Both run long statements (VACUUM, ANALYZE, CREATE INDEX) that SQLite can only stop from
inside: a progress handler looks at the cancel flag every few thousand instructions and makes
the statement fail with SQLITE_INTERRUPT, SQLite rolls it back (the database is as before), and
`work.checkpoint()` turns that into the cancel. Blocking functions, run in a worker's thread.

Progress. CREATE INDEX reports a percent: the instructions SQLite has run against those its plan
needs (the instructions of the plan's per-row loops, from EXPLAIN, times the table's row count);
it stays at 99 until the index exists, and pauses while SQLite sorts, which runs no
instructions. VACUUM and ANALYZE report phases only: half of a VACUUM (writing the rebuilt copy
back) runs no instructions at all, and the other half's cost per row depends on the rows, so no
count we can read ahead would be honest; the percent moves from one phase to the next.
"""

from __future__ import annotations

import contextlib
import sqlite3
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from longrunning.core.errors import Code, InvalidRequest
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.databases.backend import IndexSpec
from longrunning.databases.sqlite_files import (
    INTERRUPT_EVERY,
    failed,
    missing_error,
    quote_name,
    stop_when,
    translated,
    uri,
)
from longrunning.databases.work import ProgressClock, Work
from longrunning.engine.context import OperationFailed

JOURNAL_MODES = ("delete", "truncate", "persist", "wal")
AUTO_VACUUM = ("none", "full", "incremental")
_CHANGES = ("vacuum", "page_size", "auto_vacuum", "journal_mode", "analyze")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_REPORT_SECONDS = 0.2
_LOCK_TIMEOUT_SECONDS = 5.0


def check_alter(changes: JsonObject) -> None:
    """Raise InvalidRequest unless every change is one SQLite can make, with a valid value."""
    for key, value in changes.items():
        if key not in _CHANGES:
            raise _bad(
                key, f"unknown change {key!r}: a SQLite database takes {', '.join(_CHANGES)}"
            )
        if key in ("vacuum", "analyze") and not isinstance(value, bool):
            raise _bad(key, f"changes.{key} must be true or false")
        if key == "page_size" and not (
            isinstance(value, int)
            and not isinstance(value, bool)
            and 512 <= value <= 65536
            and value & (value - 1) == 0
        ):
            raise _bad(key, "changes.page_size must be a power of two from 512 to 65536")
        if key == "auto_vacuum" and value not in AUTO_VACUUM:
            raise _bad(key, f"changes.auto_vacuum must be one of {', '.join(AUTO_VACUUM)}")
        if key == "journal_mode" and value not in JOURNAL_MODES:
            raise _bad(key, f"changes.journal_mode must be one of {', '.join(JOURNAL_MODES)}")


def _bad(key: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, reason="INVALID_CHANGE", metadata={"change": key[:80]})


@dataclass(frozen=True, slots=True)
class Settings:
    page_size: int
    auto_vacuum: str
    journal_mode: str
    page_count: int

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> Settings:
        def pragma(name: str) -> JsonValue:
            value: JsonValue = conn.execute(f"PRAGMA {name}").fetchone()[0]
            return value

        return cls(
            page_size=int(str(pragma("page_size"))),
            auto_vacuum=AUTO_VACUUM[int(str(pragma("auto_vacuum")))],
            journal_mode=str(pragma("journal_mode")),
            page_count=int(str(pragma("page_count"))),
        )

    def to_json(self) -> JsonObject:
        return {
            "page_size": self.page_size,
            "auto_vacuum": self.auto_vacuum,
            "journal_mode": self.journal_mode,
            "page_count": self.page_count,
        }


def _open(path: Path, what: str) -> sqlite3.Connection:
    if not path.exists():
        raise missing_error(what)
    # mode=rw: a database dropped meanwhile is an error, never a new empty file.
    return sqlite3.connect(
        uri(path, mode="rw"), uri=True, isolation_level=None, timeout=_LOCK_TIMEOUT_SECONDS
    )


# ALTER DATABASE --------------------------------------------------------------------------------


def alter(work: Work, path: Path, database: str, changes: JsonObject) -> JsonObject:
    """Make `changes` (checked by check_alter) in order: the rebuild (VACUUM, with a new page
    size or auto-vacuum mode), the journal mode, ANALYZE. Each is whole or not at all; a cancel
    stops before the next, and `applied` (metadata and result) says which were made."""
    what = f"database {database!r}"
    with (
        translated(f"altering {what}", work.checkpoint),
        contextlib.closing(_open(path, what)) as conn,
    ):
        return _alter(work, conn, what, changes)


def _alter(work: Work, conn: sqlite3.Connection, what: str, changes: JsonObject) -> JsonObject:
    now = Settings.read(conn)
    page_size = int(str(changes.get("page_size", now.page_size)))
    auto_vacuum = str(changes.get("auto_vacuum", now.auto_vacuum))
    journal_mode = str(changes.get("journal_mode", now.journal_mode))
    # Turning auto-vacuum on or off, and a new page size, take effect only through a VACUUM.
    switches_auto_vacuum = auto_vacuum != now.auto_vacuum and "none" in (
        auto_vacuum,
        now.auto_vacuum,
    )
    rebuild = changes.get("vacuum") is True or page_size != now.page_size or switches_auto_vacuum
    phases = [
        *(["rebuilding the database (VACUUM)"] if rebuild else []),
        "changing settings",
        *(["analyzing (ANALYZE)"] if changes.get("analyze") is True else []),
    ]
    applied: list[JsonValue] = []

    def phase(name: str) -> None:
        work.report_progress(100 * phases.index(name) / len(phases), phase=name)

    def made(*names: str) -> None:
        applied.extend(names)
        work.update_metadata({"applied": list(applied)})

    if rebuild:
        work.checkpoint()
        phase(phases[0])
        _rebuild(work, conn, what, now, page_size, auto_vacuum)
        made(*(key for key in ("vacuum", "page_size", "auto_vacuum") if key in changes))
    # No cancel from here until ANALYZE: these are instant, and a rebuild may have left WAL.
    phase("changing settings")
    if auto_vacuum != now.auto_vacuum and not rebuild:
        conn.execute(f"PRAGMA auto_vacuum = {auto_vacuum}")  # full <-> incremental: at once
        made("auto_vacuum")
    if journal_mode != Settings.read(conn).journal_mode:
        _journal_mode(conn, what, journal_mode)
    if "journal_mode" in changes:
        made("journal_mode")
    if changes.get("analyze") is True:
        work.checkpoint()
        phase("analyzing (ANALYZE)")
        with _interruptible(work, conn):
            conn.execute("ANALYZE")
        made("analyze")
    work.report_progress(100, phase="altered")
    return {**Settings.read(conn).to_json(), "applied": applied}


def _rebuild(
    work: Work,
    conn: sqlite3.Connection,
    what: str,
    now: Settings,
    page_size: int,
    auto_vacuum: str,
) -> None:
    """VACUUM, with the new page size and auto-vacuum mode; on failure, as before."""
    # A WAL database keeps its page size: leave WAL for the rebuild (_alter sets it back).
    leaves_wal = page_size != now.page_size and now.journal_mode == "wal"
    try:
        if leaves_wal:
            _journal_mode(conn, what, "delete")
        conn.execute(f"PRAGMA page_size = {page_size}")
        conn.execute(f"PRAGMA auto_vacuum = {auto_vacuum}")
        with _interruptible(work, conn):
            conn.execute("VACUUM")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute(f"PRAGMA auto_vacuum = {now.auto_vacuum}")
            if leaves_wal:
                conn.execute("PRAGMA journal_mode = wal")
        raise


@contextlib.contextmanager
def _interruptible(work: Work, conn: sqlite3.Connection) -> Iterator[None]:
    """Only the long statements stop at a cancel; undoing and settings must run to the end."""
    stop_when(conn, lambda: work.cancel_requested)
    try:
        yield
    finally:
        conn.set_progress_handler(None, 0)


def _journal_mode(conn: sqlite3.Connection, what: str, mode: str) -> None:
    got = str(conn.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0])
    if got != mode:
        raise failed(
            f"the journal mode of {what} stays {got!r}, not {mode!r}: close the other "
            "connections to it and try again",
            Code.FAILED_PRECONDITION,
            "DATABASE_IN_USE",
            journalMode=got,
        )


# CREATE INDEX ----------------------------------------------------------------------------------


def create_index(work: Work, path: Path, database: str, index: IndexSpec) -> JsonObject:
    """Build the index; a cancel or failure leaves none (SQLite rolls the statement back)."""
    what = f"database {database!r}"
    with (
        translated(f"creating index {index.name!r} in {what}", work.checkpoint),
        contextlib.closing(_open(path, what)) as conn,
    ):
        return _create_index(work, conn, what, index)


def _create_index(work: Work, conn: sqlite3.Connection, what: str, index: IndexSpec) -> JsonObject:
    _check_index(conn, what, index)
    expected = 0.0
    ticks = 0
    clock = ProgressClock(work)
    reported = (0.0, time.monotonic())

    def tick() -> None:
        nonlocal ticks, reported
        ticks += 1
        if not expected:
            return
        done = min(ticks * INTERRUPT_EVERY, 0.99 * expected)
        now = time.monotonic()
        if done - reported[0] >= expected / 100 or now - reported[1] >= _REPORT_SECONDS:
            reported = (done, now)
            clock.report(done, expected, f"building index {index.name!r}")

    stop_when(conn, lambda: work.cancel_requested, tick)
    work.report_progress(0, phase=f"counting the rows of {index.table!r}")
    rows = int(conn.execute(f"SELECT count(*) FROM {quote_name(index.table)}").fetchone()[0])
    work.checkpoint()
    columns = ", ".join(map(quote_name, index.columns))
    unique = "UNIQUE " if index.unique else ""
    sql = f"CREATE {unique}INDEX {quote_name(index.name)} ON {quote_name(index.table)} ({columns})"
    per_row = sum(
        addr - jump + 1
        for addr, opcode, _, jump, *_ in conn.execute(f"EXPLAIN {sql}")
        if opcode in ("Next", "SorterNext") and 0 < jump <= addr
    )
    work.report_progress(0, phase=f"building index {index.name!r}")
    ticks = 0
    expected = float(max(rows, 1) * max(per_row, 1))
    try:
        conn.execute(sql)
    except sqlite3.OperationalError as exc:
        if "already exists" not in str(exc):
            raise
        work.checkpoint()
        raise _name_taken(what, index.name) from None
    work.report_progress(100, phase="built")
    return {**index.to_json(), "rows": rows}


def _check_index(conn: sqlite3.Connection, what: str, index: IndexSpec) -> None:
    """Name what is missing or taken before SQLite would say only "SQL error"."""
    taken = conn.execute(
        "SELECT name FROM sqlite_schema WHERE name = ? COLLATE NOCASE", (index.name,)
    ).fetchone()
    if taken is not None:
        raise _name_taken(what, taken[0])
    table = conn.execute(
        "SELECT type FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ? "
        "COLLATE NOCASE",
        (index.table,),
    ).fetchone()
    if table is None or table[0] != "table":
        kind = "a view, not a table" if table else "not a table of it"
        raise failed(
            f"{index.table!r} is {kind}: {what} has no table {index.table!r}",
            Code.NOT_FOUND,
            "TABLE_NOT_FOUND",
            table=index.table,
        )
    known = {
        str(row[0]).translate(_ASCII_LOWER)
        for row in conn.execute("SELECT name FROM pragma_table_xinfo(?)", (index.table,))
    }
    for column in index.columns:
        if column.translate(_ASCII_LOWER) not in known:
            raise failed(
                f"table {index.table!r} of {what} has no column {column!r}",
                Code.NOT_FOUND,
                "COLUMN_NOT_FOUND",
                table=index.table,
                column=column,
            )


def _name_taken(what: str, name: str) -> OperationFailed:
    return failed(
        f"{what} already has an index, table, view or trigger named {name!r}",
        Code.ALREADY_EXISTS,
        "INDEX_EXISTS",
        index=name,
    )
