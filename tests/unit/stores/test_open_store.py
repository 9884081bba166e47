"""open_store: which store each URL names, and clear refusals for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from longrunning.core.errors import InvalidRequest
from longrunning.stores import MemoryStore, SQLiteStore, open_store


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


def test_migrate_false_gives_a_check_only_store() -> None:
    store = open_store("sqlite:ops.db", migrate=False)
    assert isinstance(store, SQLiteStore)
    assert not store.migrate


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://user:secret@db/lro", "unsupported store URL scheme 'postgresql'"),
        ("redis://localhost", "unsupported store URL scheme 'redis'"),
        ("sqlite://relative.db", "sqlite:// needs an absolute path"),
        ("sqlite:", "names no file"),
        ("memory://somewhere", "memory:// takes no path"),
        ("", "empty"),
        ("sqlite::memory:", "memory://"),
    ],
)
def test_other_urls_are_refused_saying_what_is_supported(url: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        open_store(url)
    assert "secret" not in caught.value.message


def test_the_refusal_lists_the_supported_schemes() -> None:
    with pytest.raises(InvalidRequest) as caught:
        open_store("postgresql://localhost/lro")
    assert caught.value.reason == "INVALID_STORE_URL"
    for scheme in ("memory://", "sqlite:///", "file path"):
        assert scheme in caught.value.message
