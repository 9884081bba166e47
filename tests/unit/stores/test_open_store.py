"""open_store: which store each URL names, and clear refusals for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from longrunning.core.errors import InvalidRequest
from longrunning.stores import MemoryStore, PostgresStore, SQLiteStore, open_store


@pytest.mark.parametrize("url", ["memory://", "memory:", "MEMORY://"])
def test_memory_urls_open_a_fresh_memory_store(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, MemoryStore)
    assert store is not open_store(url)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/lro/ops.db", "/var/lib/lro/ops.db"),
        ("sqlite:////var/lib/ops.db", "//var/lib/ops.db"),
        ("sqlite:ops.db", "ops.db"),
        ("sqlite:data/ops.db", "data/ops.db"),
        ("data/ops.db", "data/ops.db"),
        ("/abs/ops.db", "/abs/ops.db"),
        ("./ops.db", "ops.db"),
        ("C:\\lro\\ops.db", "C:\\lro\\ops.db"),
    ],
)
def test_sqlite_urls_and_plain_paths_open_a_sqlite_store(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert store.path == Path(path)
    assert store.migrate


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "POSTGRESQL"])
def test_postgresql_urls_open_a_postgres_store_without_connecting(scheme: str) -> None:
    store = open_store(f"{scheme}://lro:secret@db.example:6543/ops", migrate=False)
    assert isinstance(store, PostgresStore)
    assert not store.migrate
    assert store.where == "postgresql://lro@db.example:6543/ops"  # never the password
    assert "connect_timeout=5" in store.conninfo
    assert "application_name=longrunning" in store.conninfo


def test_postgresql_url_settings_win_over_our_defaults() -> None:
    store = open_store("postgresql://db/ops?connect_timeout=30&application_name=billing")
    assert isinstance(store, PostgresStore)
    assert "connect_timeout=30" in store.conninfo
    assert "application_name=billing" in store.conninfo


def test_migrate_false_gives_a_check_only_store() -> None:
    store = open_store("sqlite:ops.db", migrate=False)
    assert isinstance(store, SQLiteStore)
    assert not store.migrate


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user:secret@db/lro", "unsupported store URL scheme 'mysql'"),
        ("postgresql://user:secret@db/lro?nonsense=1", "invalid URI query parameter"),
        ("postgresql://user:secret@[db/lro", "invalid PostgreSQL URL"),
        ("redis://localhost", "unsupported store URL scheme 'redis'"),
        ("sqlite://relative.db", "sqlite:// needs an absolute path"),
        ("sqlite:", "names no file"),
        ("memory://somewhere", "memory:// takes no path"),
        ("", "empty"),
        ("sqlite::memory:", "memory://"),
        ("host=db dbname=ops password=secret", "looks like a PostgreSQL conninfo"),
        ("dbname=ops", "looks like a PostgreSQL conninfo"),
    ],
)
def test_other_urls_are_refused_saying_what_is_supported(url: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        open_store(url)
    assert "secret" not in caught.value.message


def test_the_refusal_lists_the_supported_schemes() -> None:
    with pytest.raises(InvalidRequest) as caught:
        open_store("mysql://localhost/lro")
    assert caught.value.reason == "INVALID_STORE_URL"
    for scheme in ("postgresql://", "memory://", "sqlite:///", "file path"):
        assert scheme in caught.value.message
