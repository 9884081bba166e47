"""Export and import of SQLite databases as SQL text, through SqliteBackend on real files:
round trips, progress, a cancel at many points leaving nothing, and structured errors."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import sqlite3
import time
from pathlib import Path

import pytest

from longrunning.core.errors import Code
from longrunning.databases import sqlite_dump
from longrunning.databases.servers import SqliteServer
from longrunning.databases.sqlite_backend import SqliteBackend
from longrunning.engine.context import OperationCancelled, OperationFailed
from tests.recording_work import RecordingWork, Report

ROWS = 5000
VALUES: list[object] = [
    None, 0, -1, 2**63 - 1, -(2**63), 0.1, -0.0, 1e300, 5e-324, float("inf"), float("-inf"),
    "", "it's", 'say "hi"', "semi;colon;\n-- not a comment\n/* nor this */", "ünïcödé ✓",
    "nul\x00inside", "\r\n", b"", b"\x00\x01\xff", b"'; DROP TABLE t; --",
]  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> SqliteServer:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    make_rich(server.path("shop"))
    return server


def make_rich(path: Path, *, rows: int = ROWS) -> None:
    """Every kind of schema object and value an export must carry over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(
            '''
            CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, v ANY, twice INTEGER
                GENERATED ALWAYS AS (id * 2) VIRTUAL) STRICT;
            CREATE TABLE "odd ""name""; x" ("col ""1""" TEXT, [b] BLOB, PRIMARY KEY ("col ""1"""))
                WITHOUT ROWID;
            CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, pad BLOB);
            CREATE TABLE empty (x);
            CREATE UNIQUE INDEX t_name ON t (name);
            CREATE VIEW named AS SELECT id, name FROM t WHERE id % 2 = 0;
            CREATE TRIGGER items_log AFTER INSERT ON items BEGIN
                INSERT INTO empty VALUES ('inserted; ' || new.id); DELETE FROM empty; END;
            CREATE VIRTUAL TABLE docs USING fts5(body);
            PRAGMA user_version = 42;
            '''
        )
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO items (v) VALUES (?)", [(v,) for v in VALUES])
        conn.execute("DELETE FROM items WHERE id = 3")  # sqlite_sequence stays ahead
        conn.executemany(
            'INSERT INTO "odd ""name""; x" VALUES (?, ?)', [("a'b", b"\x01"), ("c\nd", None)]
        )
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, randomblob(64))", [(i, f"row {i}") for i in range(rows)]
        )
        conn.executemany("INSERT INTO docs VALUES (?)", [("hello world",), ("long running",)])
        conn.execute("COMMIT")
        conn.execute("ANALYZE")


def snapshot(path: Path) -> dict[str, object]:
    """What must survive an export and an import, read back through SQLite."""
    uri = f"{path.as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        schema = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        ).fetchall()
        tables = [row[1] for row in schema if row[0] == "table"]
        data = {
            table: conn.execute(f'SELECT * FROM "{table.replace(chr(34), chr(34) * 2)}"').fetchall()
            for table in tables
        }
        return {
            "schema": schema,
            "data": data,
            "types": conn.execute("SELECT typeof(v) FROM items ORDER BY id").fetchall(),
            "sequence": conn.execute("SELECT * FROM sqlite_sequence").fetchall(),
            "stat1": sorted(conn.execute("SELECT * FROM sqlite_stat1").fetchall()),
            "user_version": conn.execute("PRAGMA user_version").fetchone(),
            "match": conn.execute("SELECT body FROM docs WHERE docs MATCH 'running'").fetchall(),
            "view": conn.execute("SELECT count(*) FROM named").fetchone(),
        }


def row_count(path: Path) -> int:
    """Rows an export writes: every table's but the FTS table's own (its shadows hold them)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name != 'docs' "
            "AND (name NOT LIKE 'sqlite%' OR name = 'sqlite_stat1')"
        ).fetchall()
        return sum(
            conn.execute(f'SELECT count(*) FROM "{n.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
            for (n,) in names
        )


def listing(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir()) if directory.exists() else []


def assert_monotonic_to_100(work: RecordingWork) -> None:
    assert work.percents == sorted(work.percents)
    assert work.percents[-1] == 100 and all(p < 100 for p in work.percents[:-1])


# Export and import --------------------------------------------------------------------------


async def test_export_then_import_gives_the_same_database(server: SqliteServer) -> None:
    backend = SqliteBackend(server)
    work = RecordingWork()
    exported = await backend.export(work, "shop", "shop.sql")
    file = server.files / "shop.sql"
    assert exported == {
        "file": "shop.sql",
        "bytes": file.stat().st_size,
        "tables": 10,  # items, odd, t, empty, docs and the five shadow tables of docs
        "rows": row_count(server.path("shop")),
    }
    assert listing(server.files) == ["shop.sql"]
    assert_monotonic_to_100(work)
    assert work.phases[0] == "counting rows"
    assert len(work.reports) > 100  # by rows, not once at the end

    work = RecordingWork()
    imported = await backend.import_(work, "shop.sql", "copy")
    assert imported["bytes"] == exported["bytes"] and imported["tables"] == 10
    assert_monotonic_to_100(work)
    assert len(work.reports) > 100
    assert snapshot(server.path("copy")) == snapshot(server.path("shop"))
    assert listing(server.directory) == ["copy.sqlite3", "shop.sqlite3"]


async def test_an_export_is_what_sqlite_itself_can_run(server: SqliteServer) -> None:
    await SqliteBackend(server).export(RecordingWork(), "shop", "shop.sql")
    with contextlib.closing(sqlite3.connect(server.path("plain"))) as conn:
        conn.executescript((server.files / "shop.sql").read_bytes().decode())
    assert snapshot(server.path("plain")) == snapshot(server.path("shop"))


async def test_import_reads_what_iterdump_writes(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    source = tmp_path / "plain.sqlite3"
    with contextlib.closing(sqlite3.connect(source)) as conn:
        conn.executescript(
            "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT); "
            "CREATE INDEX a_s ON a (s); CREATE VIEW v AS SELECT s FROM a;"
        )
        conn.executemany("INSERT INTO a (s) VALUES (?)", [("x;y",), ("it's\nmultiline",)])
        conn.commit()
        server.files.mkdir()
        (server.files / "a.sql").write_text("\n".join(conn.iterdump()) + "\n", encoding="utf-8")
        expected = list(conn.iterdump())
    await SqliteBackend(server).import_(RecordingWork(), "a.sql", "a")
    with contextlib.closing(sqlite3.connect(server.path("a"))) as conn:
        assert list(conn.iterdump()) == expected


async def test_an_export_is_one_snapshot_while_others_write(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    path = server.path("live")
    path.parent.mkdir()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(ROWS)])
        conn.execute("COMMIT")
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA synchronous = OFF")
    writes = 0

    def write(report: Report) -> bool:
        nonlocal writes
        if report.phase and report.phase.startswith("exported"):
            writes += 1
            writer.execute("INSERT INTO t VALUES (?)", (ROWS + writes,))
        return False

    try:
        exported = await SqliteBackend(server).export(RecordingWork(cancel_when=write), "live", "l")
    finally:
        writer.close()
    assert writes > 10
    assert exported["rows"] == ROWS
    text = (server.files / "l").read_text()
    assert text.count("INSERT INTO") == ROWS


@pytest.mark.parametrize("cancel_after", [1, 2, 3, 50, 400])
async def test_a_cancelled_export_leaves_no_file(server: SqliteServer, cancel_after: int) -> None:
    work = RecordingWork(cancel_after=cancel_after)
    with pytest.raises(OperationCancelled):
        await SqliteBackend(server).export(work, "shop", "shop.sql")
    assert listing(server.files) == []
    assert len(work.reports) == cancel_after


@pytest.mark.parametrize("cancel_after", [1, 2, 50, 400])
async def test_a_cancelled_import_leaves_no_database(
    server: SqliteServer, cancel_after: int
) -> None:
    backend = SqliteBackend(server)
    await backend.export(RecordingWork(), "shop", "shop.sql")
    work = RecordingWork(cancel_after=cancel_after)
    with pytest.raises(OperationCancelled):
        await backend.import_(work, "shop.sql", "copy")
    assert listing(server.directory) == ["shop.sqlite3"]
    assert listing(server.files) == ["shop.sql"]


async def test_a_cancel_at_the_last_moment_still_wins(server: SqliteServer) -> None:
    backend = SqliteBackend(server)
    work = RecordingWork(cancel_when=lambda report: report.phase == "syncing to disk")
    with pytest.raises(OperationCancelled):
        await backend.export(work, "shop", "shop.sql")
    assert listing(server.files) == []
    await backend.export(RecordingWork(), "shop", "shop.sql")
    work = RecordingWork(cancel_when=lambda report: report.phase == "syncing to disk")
    with pytest.raises(OperationCancelled):
        await backend.import_(work, "shop.sql", "copy")
    assert listing(server.directory) == ["shop.sqlite3"]


async def test_a_cancel_stops_one_long_statement(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    server.files.mkdir()
    (server.files / "slow.sql").write_text(
        "CREATE TABLE n (i);\n"
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1e9)\n"
        "INSERT INTO n SELECT i FROM c;\n"
    )
    work = RecordingWork()
    importing = asyncio.create_task(SqliteBackend(server).import_(work, "slow.sql", "n"))

    def written() -> int:
        return sum(p.stat().st_size for p in server.directory.glob(".*.partial"))

    deadline = time.monotonic() + 10
    while written() < 8 * 1024 * 1024 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # until well inside the billion-row statement
    assert written() >= 8 * 1024 * 1024
    work.cancel()
    cancelled = time.monotonic()
    with pytest.raises(OperationCancelled):
        await importing
    assert time.monotonic() - cancelled < 0.5
    assert listing(server.directory) == []


# Import errors ------------------------------------------------------------------------------


async def import_text(server: SqliteServer, text: str | bytes) -> OperationFailed:
    server.files.mkdir(exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    (server.files / "in.sql").write_bytes(data)
    with pytest.raises(OperationFailed) as caught:
        await SqliteBackend(server).import_(RecordingWork(), "in.sql", "new")
    assert listing(server.directory) == ["shop.sqlite3"]  # nothing half-made
    return caught.value


async def test_invalid_sql_is_invalid_argument_naming_its_line(server: SqliteServer) -> None:
    failure = (
        await import_text(server, "CREATE TABLE a (x);\n\nINSERT INTO a VALUES (1);\nSELEC 1;\n")
    ).failure
    assert failure.code is Code.INVALID_ARGUMENT and failure.is_user_error
    assert "the statement at line 4 failed" in failure.message and "syntax error" in failure.message


async def test_a_truncated_export_fails_on_its_last_statement(server: SqliteServer) -> None:
    failure = (
        await import_text(server, "CREATE TABLE a (x);\nINSERT INTO a VALUES ('a;\n")
    ).failure
    assert failure.code is Code.INVALID_ARGUMENT and "line 2" in failure.message


async def test_a_constraint_violation_fails_the_import(server: SqliteServer) -> None:
    failure = (
        await import_text(
            server,
            "CREATE TABLE a (x UNIQUE);\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES (1);",
        )
    ).failure
    assert failure.code is Code.FAILED_PRECONDITION and "line 3" in failure.message


async def test_an_import_may_not_reach_other_files(server: SqliteServer, tmp_path: Path) -> None:
    for statement in (
        f"ATTACH '{tmp_path / 'elsewhere.db'}' AS other",
        f"PRAGMA temp_store_directory = '{tmp_path}'",
    ):
        failure = (await import_text(server, f"CREATE TABLE a (x);\n{statement};\n")).failure
        assert failure.code is Code.PERMISSION_DENIED, statement
        assert "line 2" in failure.message and "not authorized" in failure.message
    # Refused in the import's transaction; were it not, ATTACH's refusal would stop it.
    failure = (await import_text(server, f"VACUUM INTO '{tmp_path / 'elsewhere.db'}';")).failure
    assert failure.code is Code.INVALID_ARGUMENT and "line 1" in failure.message
    assert not (tmp_path / "elsewhere.db").exists()


async def test_an_export_that_gave_up_is_refused(server: SqliteServer) -> None:
    failure = (
        await import_text(server, "BEGIN;\nCREATE TABLE a (x);\nROLLBACK; -- errors\n")
    ).failure
    assert failure.code is Code.INVALID_ARGUMENT and "line 3" in failure.message


async def test_text_that_is_not_utf8_is_invalid_argument(server: SqliteServer) -> None:
    failure = await import_text(server, b"CREATE TABLE a (x);\nINSERT INTO a VALUES ('\xff');\n")
    assert failure.failure.code is Code.INVALID_ARGUMENT
    assert "line 2" in failure.failure.message and "UTF-8" in failure.failure.message


async def test_import_of_a_backup_or_of_nothing_is_refused(server: SqliteServer) -> None:
    backend = SqliteBackend(server)
    await backend.backup(RecordingWork(), "shop", "shop.bak")
    with pytest.raises(OperationFailed, match="is a SQLite database, not an export") as caught:
        await backend.import_(RecordingWork(), "shop.bak", "new")
    assert caught.value.failure.code is Code.FAILED_PRECONDITION
    with pytest.raises(OperationFailed, match=r"file 'nope\.sql' does not exist") as caught:
        await backend.import_(RecordingWork(), "nope.sql", "new")
    assert caught.value.failure.code is Code.NOT_FOUND
    await backend.export(RecordingWork(), "shop", "shop.sql")
    with pytest.raises(OperationFailed, match="database 'shop' already exists") as caught:
        await backend.import_(RecordingWork(), "shop.sql", "shop")
    assert caught.value.failure.code is Code.ALREADY_EXISTS
    assert listing(server.directory) == ["shop.sqlite3"]


async def test_export_errors_are_structured(server: SqliteServer) -> None:
    backend = SqliteBackend(server)
    with pytest.raises(OperationFailed, match="database 'nope' does not exist") as caught:
        await backend.export(RecordingWork(), "nope", "x.sql")
    assert caught.value.failure.code is Code.NOT_FOUND
    await backend.export(RecordingWork(), "shop", "x.sql")
    with pytest.raises(OperationFailed, match=r"file 'x\.sql' already exists") as caught:
        await backend.export(RecordingWork(), "shop", "x.sql")
    assert caught.value.failure.code is Code.ALREADY_EXISTS
    assert listing(server.files) == ["x.sql"]


# Statements ---------------------------------------------------------------------------------


def split(text: str) -> list[tuple[str, int]]:
    found = sqlite_dump.statements(io.BytesIO(text.encode()), "file 'x'")
    return [(statement.text.strip(), statement.line) for statement in found]


def test_statements_end_only_where_sqlite_says_a_statement_ends() -> None:
    text = (
        "\ufeff-- a comment; not a statement\n"
        "CREATE TABLE a (x); INSERT INTO a VALUES ('a;b');\n"
        "INSERT INTO a VALUES ('multi\n;line'); /* c; */\n"
        "CREATE TRIGGER tr AFTER INSERT ON a BEGIN\n"
        "  SELECT 1; SELECT 2;\n"
        "END;\r\n"
        "\n"
        "SELECT 'no semicolon at the end'"
    )
    assert split(text) == [
        ("-- a comment; not a statement\nCREATE TABLE a (x);", 1),
        ("INSERT INTO a VALUES ('a;b');", 2),
        ("INSERT INTO a VALUES ('multi\n;line');", 3),
        ("/* c; */\nCREATE TRIGGER tr AFTER INSERT ON a BEGIN\n  SELECT 1; SELECT 2;\nEND;", 4),
        ("SELECT 'no semicolon at the end'", 9),
    ]


def test_statements_report_bytes_read() -> None:
    found = list(sqlite_dump.statements(io.BytesIO(b"SELECT 1;\nSELECT 'e\xcc\x81';\n"), "x"))
    assert [s.read for s in found] == [10, 24]


@pytest.mark.parametrize(
    ("statement", "keyword"),
    [
        ("BEGIN TRANSACTION;", "BEGIN"),
        ("  -- c\n /* d */ commit;", "COMMIT"),
        ("-- only a comment\n;", None),
        (";", None),
        ("/* unterminated", None),
        ("end", "END"),
    ],
)
def test_first_keyword(statement: str, keyword: str | None) -> None:
    assert sqlite_dump.first_keyword(statement) == keyword


async def test_export_progress_is_monotonic_by_rows(server: SqliteServer) -> None:
    work = RecordingWork()
    await SqliteBackend(server).export(work, "shop", "shop.sql")
    rows = [r for r in work.reports if r.phase and r.phase.startswith("exported ")]
    counts = [int(r.phase.split()[1]) for r in rows if r.phase]
    assert counts == sorted(counts) and counts[-1] == row_count(server.path("shop"))
    assert max(b - a for a, b in itertools.pairwise(counts)) <= max(1, counts[-1] // 1000)
