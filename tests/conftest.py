"""Fixtures for every test tier. `store` runs a test once per store kind, on a fresh store.

Keep only broadly shared fixtures here; a tier's own fixtures live in its conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longrunning.core.ports import OperationStore
from tests.hung_tasks import within
from tests.store_kinds import STORE_KINDS, drop_session_database, fresh_store

pytest_plugins = ["tests.no_skips_in_ci"]


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OperationStore]:
    """An opened, empty store (SQLite: a fresh file in tmp_path), closed after the test."""
    opened = await fresh_store(request.param, tmp_path)
    try:
        yield opened
    finally:
        await within(30, f"closing the {request.param} store", opened.close())


def pytest_sessionfinish(session: pytest.Session) -> None:
    drop_session_database()
