"""Fixtures for every test tier. `store` runs a test once per store kind, on a fresh store.

Keep only broadly shared fixtures here; a tier's own fixtures live in its conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longrunning.core.ports import OperationStore
from longrunning.stores import MemoryStore, SQLiteStore

STORE_KINDS = ["memory", "sqlite"]
"""TODO(#3): add "postgres", skipped with a reason when no server is configured (never in CI)."""


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OperationStore]:
    """An opened, empty store (SQLite: a fresh file in tmp_path), closed after the test."""
    kind: str = request.param
    opened: OperationStore = (
        MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "operations.db")
    )
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
