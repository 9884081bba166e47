"""SQLiteStore on real files: migrations (apply, record, check-only), packaging of the .sql
files, durability settings, directory creation and wrapping of driver errors."""

from __future__ import annotations

import asyncio
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from longrunning.core.errors import InvalidRequest, StoreError
from longrunning.stores import SQLiteStore
from longrunning.stores.migrate import load_migrations
from longrunning.testing import make_operation


def recorded(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_the_migration_files_ship_inside_the_package() -> None:
    folder = resources.files("longrunning.stores").joinpath("migrations", "sqlite")
    assert folder.joinpath("0001_initial.sql").is_file()
    migrations = load_migrations("sqlite")
    assert (migrations[0].version, migrations[0].name) == (1, "initial")
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})


async def test_open_applies_every_migration_once_and_records_it(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    for _ in range(2):
        store = SQLiteStore(path)
        await store.open()
        await store.close()
    expected = [(m.version, m.name) for m in load_migrations("sqlite")]
    assert recorded(path) == expected
    with sqlite3.connect(path) as conn:
        (applied_at,) = conn.execute("SELECT applied_at FROM schema_migrations").fetchone()
    assert str(applied_at).endswith("Z")


async def test_stores_opening_a_new_file_together_migrate_it_once(tmp_path: Path) -> None:
    stores = [SQLiteStore(tmp_path / "ops.db") for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    await asyncio.gather(*(store.close() for store in stores))
    assert len(recorded(tmp_path / "ops.db")) == len(load_migrations("sqlite"))


async def test_check_only_mode_names_the_missing_migrations(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    with pytest.raises(StoreError, match="0001_initial") as caught:
        await SQLiteStore(path, migrate=False).open()
    assert caught.value.reason == "SCHEMA_OUT_OF_DATE"
    assert "operations" not in tables(path)


async def test_check_only_mode_opens_a_migrated_file(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    migrated = SQLiteStore(path)
    await migrated.open()
    op = await migrated.insert(make_operation())
    await migrated.close()
    checked = SQLiteStore(path, migrate=False)
    await checked.open()
    try:
        assert await checked.get(op.id) == op
    finally:
        await checked.close()


async def test_open_creates_missing_directories_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ops.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_file_that_is_not_a_database_gives_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 100)
    with pytest.raises(StoreError) as caught:
        await SQLiteStore(path).open()
    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_a_directory_in_the_way_gives_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "ops.db").mkdir()
    with pytest.raises(StoreError) as caught:
        await SQLiteStore(tmp_path / "ops.db").open()
    assert isinstance(caught.value.__cause__, sqlite3.Error | OSError)


async def test_a_closed_store_answers_with_store_errors(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ops.db")
    await store.open()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()
    with pytest.raises(StoreError):
        await store.insert(make_operation())
    await store.close()


async def test_a_cancelled_caller_leaves_the_write_whole(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ops.db")
    await store.open()
    try:
        ops = [make_operation() for _ in range(20)]
        tasks = [asyncio.create_task(store.insert(op)) for op in ops]
        await asyncio.sleep(0)
        for task in tasks[::2]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Cancelled or not, every insert either landed whole or not at all, and the writer
        # connection is usable (not stuck inside a transaction).
        later = await store.insert(make_operation())
        assert await store.get(later.id) == later
        for op in ops:
            assert (await store.get(op.id)).version == 1
    finally:
        await store.close()


def test_an_in_memory_sqlite_path_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="memory://"):
        SQLiteStore(":memory:")


async def test_text_sqlite_cannot_store_is_an_invalid_request(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ops.db")
    await store.open()
    try:
        with pytest.raises(InvalidRequest) as caught:
            await store.insert(make_operation(labels={"k": "\ud800"}))
        assert caught.value.reason == "INVALID_TEXT"
        with pytest.raises(InvalidRequest):
            await store.get("\ud800")
        await store.ping()
    finally:
        await store.close()
