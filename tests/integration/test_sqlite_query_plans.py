"""Selective listing filters are served by an index, not a scan over the whole history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from longrunning.core.filtering import parse_filter
from longrunning.stores.sql_filter import where_sql
from longrunning.stores.sqlite import SQLiteStore


@pytest.mark.parametrize(
    "text",
    ["state = RUNNING", "kind = demo.sleep", "done = false", "done = true", "-done = true"],
)
async def test_a_selective_filter_searches_an_index(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plans.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    where, params = where_sql(parse_filter(text))
    query = (
        f"EXPLAIN QUERY PLAN SELECT id FROM operations WHERE {where} "
        "ORDER BY create_time DESC, id DESC LIMIT 51"
    )
    with sqlite3.connect(path) as conn:
        plan = [row[3] for row in conn.execute(query, params)]
    assert plan[0].startswith("SEARCH"), plan
    assert "USING" in plan[0] and "INDEX" in plan[0], plan
