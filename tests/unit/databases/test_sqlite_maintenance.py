"""ALTER DATABASE and CREATE INDEX on real SQLite files through SqliteBackend: the settings read
back, progress, a cancel that leaves the database as it was, and structured errors."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from pathlib import Path

import pytest

from longrunning.core.errors import Code, InvalidRequest
from longrunning.core.json_values import JsonObject
from longrunning.databases.backend import IndexSpec
from longrunning.databases.servers import SqliteServer
from longrunning.databases.sqlite_backend import SqliteBackend
from longrunning.engine.context import OperationCancelled, OperationFailed
from tests.recording_work import RecordingWork

ROWS = 20_000


@pytest.fixture
def server(tmp_path: Path) -> SqliteServer:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    fill(server.path("shop"))
    return server


def fill(path: Path, *, rows: int = ROWS, wal: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute('CREATE TABLE "Order ""Lines""" (id INTEGER PRIMARY KEY, "Sku" TEXT, qty INT)')
        conn.execute("BEGIN")
        conn.executemany(
            'INSERT INTO "Order ""Lines""" VALUES (?, ?, ?)',
            [(i, f"sku-{i % 997}", i % 13) for i in range(rows)],
        )
        conn.execute("COMMIT")
        conn.execute('DELETE FROM "Order ""Lines""" WHERE id % 3 = 0 OR id > ?', (rows * 0.9,))


def settings(path: Path) -> dict[str, object]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {
            name: conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_size", "auto_vacuum", "journal_mode", "freelist_count")
        }


def content(path: Path) -> list[object]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [
            *conn.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY name"),
            *conn.execute('SELECT * FROM "Order ""Lines""" ORDER BY id'),
        ]


def row_count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute('SELECT count(*) FROM "Order ""Lines"""').fetchone()[0])


def indexes(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        found = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name")
        return [row[0] for row in found]


# ALTER DATABASE -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"vacuum": True},
        {"page_size": 512, "auto_vacuum": "none", "journal_mode": "wal", "analyze": False},
        {"page_size": 65536},
        {"auto_vacuum": "incremental"},
        {"journal_mode": "truncate"},
    ],
)
def test_check_alter_accepts_what_sqlite_can_do(changes: JsonObject) -> None:
    SqliteBackend(SqliteServer(name="local", directory=Path("d"), files=Path("f"))).check_alter(
        changes
    )


@pytest.mark.parametrize(
    ("changes", "bad"),
    [
        ({"shrink": True}, "shrink"),
        ({"vacuum": "yes"}, "vacuum"),
        ({"analyze": 1}, "analyze"),
        ({"page_size": 1000}, "page_size"),
        ({"page_size": 256}, "page_size"),
        ({"page_size": 131072}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"page_size": 4096.0}, "page_size"),
        ({"auto_vacuum": "sometimes"}, "auto_vacuum"),
        ({"journal_mode": "off"}, "journal_mode"),
        ({"journal_mode": "WAL"}, "journal_mode"),
    ],
)
def test_check_alter_refuses_the_rest(changes: JsonObject, bad: str) -> None:
    backend = SqliteBackend(SqliteServer(name="local", directory=Path("d"), files=Path("f")))
    with pytest.raises(InvalidRequest) as caught:
        backend.check_alter(changes)
    assert caught.value.metadata == {"change": bad}


async def test_vacuum_with_a_new_page_size_and_auto_vacuum(server: SqliteServer) -> None:
    path = server.path("shop")
    before = content(path)
    assert int(str(settings(path)["freelist_count"])) > 0
    work = RecordingWork()
    changes: JsonObject = {"vacuum": True, "page_size": 8192, "auto_vacuum": "full"}
    result = await SqliteBackend(server).alter(work, "shop", changes)
    assert result == {
        "page_size": 8192,
        "auto_vacuum": "full",
        "journal_mode": "delete",
        "page_count": result["page_count"],
        "applied": ["vacuum", "page_size", "auto_vacuum"],
    }
    assert settings(path) == {
        "page_size": 8192,
        "auto_vacuum": 1,
        "journal_mode": "delete",
        "freelist_count": 0,
    }
    assert content(path) == before
    assert work.phases == ["rebuilding the database (VACUUM)", "changing settings", "altered"]
    assert work.percents == [0, 50, 100]
    assert work.metadata == {"applied": ["vacuum", "page_size", "auto_vacuum"]}


async def test_a_wal_database_gets_a_new_page_size_and_stays_wal(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    fill(server.path("shop"), wal=True)
    before = content(server.path("shop"))
    result = await SqliteBackend(server).alter(RecordingWork(), "shop", {"page_size": 16384})
    assert (result["page_size"], result["journal_mode"]) == (16384, "wal")
    assert result["applied"] == ["page_size"]
    assert content(server.path("shop")) == before


async def test_journal_mode_auto_vacuum_switch_and_analyze(server: SqliteServer) -> None:
    backend = SqliteBackend(server)
    await backend.alter(RecordingWork(), "shop", {"auto_vacuum": "full"})
    work = RecordingWork()
    changes: JsonObject = {"auto_vacuum": "incremental", "journal_mode": "wal", "analyze": True}
    result = await backend.alter(work, "shop", changes)
    assert (result["auto_vacuum"], result["journal_mode"]) == ("incremental", "wal")
    assert result["applied"] == ["auto_vacuum", "journal_mode", "analyze"]  # no VACUUM needed
    assert work.phases == ["changing settings", "analyzing (ANALYZE)", "altered"]
    with contextlib.closing(sqlite3.connect(server.path("shop"))) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0


@pytest.mark.parametrize("wal", [False, True])
async def test_a_cancelled_rebuild_leaves_the_database_as_it_was(tmp_path: Path, wal: bool) -> None:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    fill(server.path("shop"), wal=wal)
    before, was = content(server.path("shop")), settings(server.path("shop"))
    work = RecordingWork(cancel_when=lambda r: r.phase == "rebuilding the database (VACUUM)")
    changes: JsonObject = {"page_size": 1024, "auto_vacuum": "full", "journal_mode": "persist"}
    with pytest.raises(OperationCancelled):
        await SqliteBackend(server).alter(work, "shop", changes)
    assert settings(server.path("shop")) == was
    assert content(server.path("shop")) == before
    assert "applied" not in work.metadata


async def test_a_cancelled_analyze_keeps_what_was_applied_before(server: SqliteServer) -> None:
    with contextlib.closing(sqlite3.connect(server.path("shop"))) as conn:
        conn.execute('CREATE INDEX by_sku ON "Order ""Lines""" ("Sku")')  # work for ANALYZE
    work = RecordingWork(cancel_when=lambda r: r.phase == "analyzing (ANALYZE)")
    with pytest.raises(OperationCancelled):
        await SqliteBackend(server).alter(work, "shop", {"journal_mode": "wal", "analyze": True})
    assert work.metadata == {"applied": ["journal_mode"]}
    assert settings(server.path("shop"))["journal_mode"] == "wal"
    with contextlib.closing(sqlite3.connect(server.path("shop"))) as conn:
        stat1 = conn.execute("SELECT name FROM sqlite_schema WHERE name = 'sqlite_stat1'")
        assert stat1.fetchall() == []


async def test_alter_of_a_missing_database_is_not_found(server: SqliteServer) -> None:
    with pytest.raises(OperationFailed, match="database 'nope' does not exist") as caught:
        await SqliteBackend(server).alter(RecordingWork(), "nope", {"vacuum": True})
    assert caught.value.failure.code is Code.NOT_FOUND
    assert not server.path("nope").exists()


async def test_leaving_wal_while_others_read_is_a_retryable_failure(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    fill(server.path("shop"), wal=True)
    with contextlib.closing(sqlite3.connect(server.path("shop"))) as reader:
        reader.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        with pytest.raises(OperationFailed) as caught:
            await SqliteBackend(server).alter(RecordingWork(), "shop", {"journal_mode": "delete"})
    assert caught.value.failure.code is Code.UNAVAILABLE and caught.value.retryable
    assert settings(server.path("shop"))["journal_mode"] == "wal"


# CREATE INDEX -------------------------------------------------------------------------------


async def test_create_index_quotes_names_and_reports_a_bounded_percent(
    server: SqliteServer,
) -> None:
    work = RecordingWork()
    spec = IndexSpec('by "sku"; drop', 'order "lines"', ("sku", "QTY"), unique=False)
    result = await SqliteBackend(server).create_index(work, "shop", spec)
    assert result == {**spec.to_json(), "rows": row_count(server.path("shop"))}
    assert indexes(server.path("shop")) == ['by "sku"; drop']
    percents = work.percents
    assert percents == sorted(percents) and percents[-1] == 100
    assert all(p <= 99 for p in percents[:-1])
    assert work.phases[0] == "counting the rows of 'order \"lines\"'"
    with contextlib.closing(sqlite3.connect(server.path("shop"))) as conn:
        plan = conn.execute(
            'EXPLAIN QUERY PLAN SELECT qty FROM "Order ""Lines""" WHERE "Sku" = ?', ("sku-1",)
        ).fetchall()
    assert 'by "sku"; drop' in str(plan)


async def test_a_big_index_build_reports_a_percent_along_the_way(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    fill(server.path("big"), rows=400_000)
    work = RecordingWork()
    spec = IndexSpec("by_sku", 'Order "Lines"', ("Sku", "qty", "id"))
    await SqliteBackend(server).create_index(work, "big", spec)
    building = [r.percent for r in work.reports if r.phase == "building index 'by_sku'"]
    assert len(building) >= 2 and 0 < max(building) <= 99
    assert max(b - a for a, b in itertools.pairwise([*building, 100])) < 100


async def test_a_cancelled_index_build_leaves_no_index(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path / "dbs", files=tmp_path / "files")
    fill(server.path("big"), rows=400_000)
    before = content(server.path("big"))
    work = RecordingWork(cancel_when=lambda r: r.phase == "building index 'ix'" and r.percent > 0)
    with pytest.raises(OperationCancelled):
        await SqliteBackend(server).create_index(
            work, "big", IndexSpec("ix", 'Order "Lines"', ("Sku", "qty", "id"))
        )
    assert 0 < work.percents[-1] < 100
    assert indexes(server.path("big")) == []
    assert content(server.path("big")) == before


@pytest.mark.parametrize("when", ["counting", "building"])
async def test_a_cancel_before_the_build_leaves_no_index(server: SqliteServer, when: str) -> None:
    work = RecordingWork(cancel_when=lambda r: bool(r.phase and r.phase.startswith(when)))
    with pytest.raises(OperationCancelled):
        await SqliteBackend(server).create_index(
            work, "shop", IndexSpec("ix", 'Order "Lines"', ("Sku",))
        )
    assert indexes(server.path("shop")) == []


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        (IndexSpec("ix", "nope", ("a",)), Code.NOT_FOUND, "has no table 'nope'"),
        (IndexSpec("ix", 'Order "Lines"', ("nope",)), Code.NOT_FOUND, "has no column 'nope'"),
        (IndexSpec('Order "Lines"', 'Order "Lines"', ("qty",)), Code.ALREADY_EXISTS, "named"),
        (IndexSpec("IX_SKU", 'Order "Lines"', ("qty",)), Code.ALREADY_EXISTS, "named 'ix_sku'"),
        (IndexSpec("ix", "v", ("qty",)), Code.NOT_FOUND, "'v' is a view, not a table"),
        (
            IndexSpec("ix", 'Order "Lines"', ("qty",), unique=True),
            Code.FAILED_PRECONDITION,
            "UNIQUE",
        ),
        (IndexSpec("sqlite_x", 'Order "Lines"', ("qty",)), Code.INVALID_ARGUMENT, "reserved"),
    ],
)
async def test_create_index_errors_are_structured(
    server: SqliteServer, spec: IndexSpec, code: Code, message: str
) -> None:
    with contextlib.closing(sqlite3.connect(server.path("shop"))) as conn:
        conn.execute('CREATE INDEX ix_sku ON "Order ""Lines""" ("Sku")')
        conn.execute('CREATE VIEW v AS SELECT * FROM "Order ""Lines"""')
    with pytest.raises(OperationFailed, match=message) as caught:
        await SqliteBackend(server).create_index(RecordingWork(), "shop", spec)
    assert caught.value.failure.code is code and caught.value.failure.is_user_error
    assert indexes(server.path("shop")) == ["ix_sku"]
    assert content(server.path("shop"))  # intact


async def test_create_index_on_a_missing_database_is_not_found(server: SqliteServer) -> None:
    with pytest.raises(OperationFailed, match="database 'nope' does not exist") as caught:
        await SqliteBackend(server).create_index(
            RecordingWork(), "nope", IndexSpec("i", "t", ("a",))
        )
    assert caught.value.failure.code is Code.NOT_FOUND
    assert not server.path("nope").exists()
