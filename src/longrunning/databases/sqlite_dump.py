"""Export a SQLite database as SQL text, and import such text into a new database.

The text is what `sqlite3 db .dump` and `Connection.iterdump()` write (schema, one INSERT per
row, then indexes, triggers and views, in one transaction), written by our own loop so that an
export reports progress by rows and an import by bytes read, and both stop at a cancel within
one row or statement. Imports read dumps of either tool too. Blocking functions, run in a
worker's thread; like sqlite_files.py, they build aside and publish complete files only.

An import runs text a user supplied: it may not ATTACH (nor VACUUM INTO) other files, nor point
SQLite at other directories, and it runs inside one transaction that this module owns.
"""

from __future__ import annotations

import contextlib
import math
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from longrunning.core.errors import Code
from longrunning.core.json_values import JsonObject
from longrunning.databases import errors
from longrunning.databases.sqlite_files import (
    failed,
    is_sqlite_file,
    missing_error,
    publish,
    quote_name,
    remove,
    stop_when,
    translated,
    unbuilt,
    uri,
)
from longrunning.databases.work import ProgressClock, Work
from longrunning.engine.context import OperationFailed

_WRITTEN_SHARE = 99 / 100
"""Of the bar, what rows (or bytes read) earn; indexes, the sync and the name are the rest."""
_REPORTS = 1000
"""Progress is reported about this many times per export or import, whatever its size."""
_REPORT_BYTES = 8 * 1024 * 1024
_BUFFER = 1024 * 1024
_FORBIDDEN_PRAGMAS = {"temp_store_directory", "data_store_directory"}
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.DOTALL)
_KEYWORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Exported:
    bytes: int
    tables: int
    rows: int

    def to_json(self) -> JsonObject:
        return {"bytes": self.bytes, "tables": self.tables, "rows": self.rows}


@dataclass(frozen=True, slots=True)
class Imported:
    bytes: int
    statements: int
    tables: int

    def to_json(self) -> JsonObject:
        return {"bytes": self.bytes, "statements": self.statements, "tables": self.tables}


# Export ----------------------------------------------------------------------------------------


def export_sql(work: Work, source: Path, path: Path, *, database: str, file: str) -> Exported:
    """Dump `source` into the new file `path`, from one read transaction: a consistent snapshot.
    (In rollback-journal mode that read transaction holds writers off until the export ends;
    in WAL mode they go on.)"""
    source_name, name = f"database {database!r}", f"file {file!r}"
    with translated(f"exporting {source_name}", work.checkpoint):
        if not source.exists():
            raise missing_error(source_name)
        built = unbuilt(path, name)
        try:
            with (
                contextlib.closing(
                    sqlite3.connect(uri(source, mode="ro"), uri=True, isolation_level=None)
                ) as conn,
                built.open("xb", buffering=_BUFFER) as out,
            ):
                exported = _export(work, conn, out)
            publish(built, path, name, work.checkpoint)
        except BaseException:
            remove(built)
            raise
    work.report_progress(100, phase="exported")
    return exported


def _export(work: Work, conn: sqlite3.Connection, out: BinaryIO) -> Exported:
    conn.text_factory = _text
    stop_when(conn, lambda: work.cancel_requested)
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # the snapshot starts here
    tables: list[tuple[str, str]] = conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql NOT NULL ORDER BY name"
    ).fetchall()
    work.report_progress(0, phase="counting rows")
    counts: dict[str, int] = {}
    for table, sql in tables:
        if _has_rows_to_dump(table, sql):
            counts[table] = conn.execute(f"SELECT count(*) FROM {quote_name(table)}").fetchone()[0]
    total = sum(counts.values())
    clock = ProgressClock(work)
    written = 0
    done = 0
    every = max(1, total // _REPORTS)
    last_report = (0, 0)

    def put(statement: str) -> None:
        nonlocal written
        data = statement.encode("utf-8", "surrogateescape")  # as stored, even if not UTF-8
        out.write(data)
        written += len(data)

    def report() -> None:
        nonlocal last_report
        work.checkpoint()
        clock.report(done * _WRITTEN_SHARE, total, f"exported {done} of {total} rows")
        last_report = (done, written)

    put("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
    writable_schema = False
    sequence: list[str] = []
    for table, sql in tables:
        if table == "sqlite_sequence":
            sequence = ['DELETE FROM "sqlite_sequence";\n'] + [
                f'INSERT INTO "sqlite_sequence" VALUES({_literal(n)},{_literal(s)});\n'
                for n, s in conn.execute('SELECT name, seq FROM "sqlite_sequence"')
            ]
            continue
        if table == "sqlite_stat1":
            put('ANALYZE "sqlite_master";\n')
        elif table.startswith("sqlite_"):
            continue
        elif sql.upper().startswith("CREATE VIRTUAL TABLE"):
            # As the sqlite3 shell does: the entry only; its shadow tables hold the data.
            if not writable_schema:
                writable_schema = True
                put("PRAGMA writable_schema=ON;\n")
            put(
                "INSERT INTO sqlite_master(type,name,tbl_name,rootpage,sql) VALUES"
                f"('table',{_literal(table)},{_literal(table)},0,{_literal(sql)});\n"
            )
            continue
        else:
            put(f"{sql};\n")
        columns = [
            row[0] for row in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))
        ]
        insert = f"INSERT INTO {quote_name(table)} VALUES("
        select = f"SELECT {','.join(map(quote_name, columns))} FROM {quote_name(table)}"
        for row in conn.execute(select):
            put(insert + ",".join(map(_literal, row)) + ");\n")
            done += 1
            if done - last_report[0] >= every or written - last_report[1] >= _REPORT_BYTES:
                report()
    report()
    work.report_progress(clock_percent(done, total), phase="indexes, triggers and views")
    for (sql,) in conn.execute(
        "SELECT sql FROM sqlite_schema WHERE sql NOT NULL AND type IN ('index', 'trigger', "
        "'view') ORDER BY rowid"
    ):
        put(f"{sql};\n")
    for pragma in ("user_version", "application_id"):
        value = conn.execute(f"PRAGMA {pragma}").fetchone()[0]
        if value:
            put(f"PRAGMA {pragma}={int(value)};\n")
    if writable_schema:
        put("PRAGMA writable_schema=OFF;\n")
    for statement in sequence:
        put(statement)
    put("COMMIT;\n")
    conn.execute("COMMIT")
    work.report_progress(clock_percent(done, total), phase="syncing to disk")
    tables_dumped = sum(1 for table, _ in tables if not table.startswith("sqlite_"))
    return Exported(bytes=written, tables=tables_dumped, rows=done)


def clock_percent(done: int, total: int) -> float:
    return 100 * _WRITTEN_SHARE * (done / total if total else 1.0)


def _has_rows_to_dump(table: str, sql: str) -> bool:
    ordinary = not table.startswith("sqlite_") or table == "sqlite_stat1"
    return ordinary and not sql.upper().startswith("CREATE VIRTUAL TABLE")


def _text(value: bytes) -> str:
    """Text as stored: invalid UTF-8 survives (as surrogates) and is written back as bytes."""
    return value.decode("utf-8", "surrogateescape")


def _literal(value: object) -> str:
    """An SQL literal that reads back as exactly `value` (floats to the last bit)."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NULL"  # SQLite itself stores NaN as NULL
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    assert isinstance(value, str)
    if "\x00" in value or (not value.isascii() and not _valid_utf8(value)):
        return f"CAST(X'{value.encode('utf-8', 'surrogateescape').hex()}' AS TEXT)"
    return "'" + value.replace("'", "''") + "'"


def _valid_utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


# Import ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    line: int
    """Where it starts, counting from 1."""
    read: int
    """Bytes of the file read once it is complete."""


def import_sql(work: Work, source: Path, path: Path, *, database: str, file: str) -> Imported:
    """Run the SQL text in `source` in a new database `path`, all or nothing."""
    source_name, name = f"file {file!r}", f"database {database!r}"
    with translated(f"importing {source_name}", work.checkpoint):
        if not source.exists():
            raise missing_error(source_name)
        if is_sqlite_file(source):
            raise failed(
                f"{source_name} is a SQLite database, not an export: restore it instead",
                Code.FAILED_PRECONDITION,
                "NOT_AN_EXPORT",
                file=file,
            )
        built = unbuilt(path, name)
        try:
            with (
                contextlib.closing(sqlite3.connect(built, isolation_level=None)) as conn,
                source.open("rb") as text,
            ):
                imported = _import(work, conn, text, source.stat().st_size, source_name)
            publish(built, path, name, work.checkpoint)
        except BaseException:
            remove(built)
            raise
    work.report_progress(100, phase="imported")
    return imported


def _import(
    work: Work, conn: sqlite3.Connection, text: BinaryIO, size: int, source_name: str
) -> Imported:
    # Thrown away whole on any failure: no journal is needed, and none is written.
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.set_authorizer(_authorize)
    stop_when(conn, lambda: work.cancel_requested)
    clock = ProgressClock(work)
    every = max(1, size // _REPORTS)
    reported = 0
    executed = 0
    conn.execute("BEGIN")
    for statement in statements(text, source_name):
        work.checkpoint()
        keyword = first_keyword(statement.text)
        if keyword is None or keyword in ("BEGIN", "COMMIT", "END"):
            continue  # the import is one transaction, its own
        if keyword == "ROLLBACK":
            raise _invalid(f"{source_name} gives up at line {statement.line} (ROLLBACK)", statement)
        try:
            conn.execute(statement.text)
        except sqlite3.Error as exc:
            work.checkpoint()
            doing = f"importing {source_name}, the statement at line {statement.line}"
            raise errors.from_sqlite(exc, doing) from None
        executed += 1
        if statement.read - reported >= every:
            reported = statement.read
            clock.report(reported * _WRITTEN_SHARE, size, f"read {reported} of {size} bytes")
    conn.execute("COMMIT")
    tables = conn.execute(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' "
        "ESCAPE '!'"
    ).fetchone()[0]
    work.report_progress(100 * _WRITTEN_SHARE, phase="syncing to disk")
    return Imported(bytes=size, statements=executed, tables=tables)


def statements(text: BinaryIO, source_name: str) -> Iterator[Statement]:
    """The statements of an SQL file, read line by line: each ends at a `;` that ends a
    complete statement for SQLite (not one in a string, a comment or a trigger's body)."""
    pending: list[str] = []
    has_text = False
    start = read = 0
    for line_no, raw in enumerate(text, start=1):
        read += len(raw)
        try:
            line = raw.decode()
        except UnicodeDecodeError:
            raise _invalid(f"line {line_no} of {source_name} is not UTF-8 text", line_no) from None
        if line_no == 1:
            line = line.removeprefix("\ufeff")
        if not has_text:
            pending, start = [], line_no
        begin = 0
        at = line.find(";")
        while at >= 0:
            candidate = "".join(pending) + line[begin : at + 1]
            if sqlite3.complete_statement(candidate):
                yield Statement(candidate, start, read)
                pending, has_text, begin, start = [], False, at + 1, line_no
            at = line.find(";", at + 1)
        rest = line[begin:]
        pending.append(rest)
        has_text = has_text or bool(rest.strip())
    if has_text:
        yield Statement("".join(pending), start, read)  # the last one may lack its `;`


def first_keyword(statement: str) -> str | None:
    """The statement's first word, upper case, past comments; None for an empty statement."""
    leading = _LEADING.match(statement)
    word = _KEYWORD.match(statement, leading.end() if leading else 0)
    return word.group().upper() if word else None


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, _: object) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY  # ATTACH, DETACH and VACUUM INTO reach other files
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _FORBIDDEN_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _invalid(message: str, where: Statement | int) -> OperationFailed:
    line = where if isinstance(where, int) else where.line
    return failed(message, Code.INVALID_ARGUMENT, "INVALID_EXPORT", line=str(line))
