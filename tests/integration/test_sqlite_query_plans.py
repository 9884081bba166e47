"""Selective listing filters are served by an index, not a scan over the whole history."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from longrunning.core.filtering import parse_filter
from longrunning.core.operation import State
from longrunning.stores._rows import COLUMNS, SELECT_COLUMNS, to_row
from longrunning.stores.sql_filter import where_sql
from longrunning.stores.sqlite import SQLiteStore
from longrunning.testing import make_operation

T0 = datetime(2026, 3, 1, tzinfo=UTC)


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


async def test_live_listings_walk_the_live_indexes_in_order(tmp_path: Path) -> None:
    """W5's filters at scale: with statistics (ANALYZE at open), `done = false` with a kind or a
    label walks a partial index of the live rows newest first, never sorting afterwards."""
    path = tmp_path / "plans.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    rows = [
        to_row(
            make_operation(
                now=T0 + timedelta(seconds=i),
                kind=f"k{i % 8}",
                state=State.PENDING if i % 20 == 0 else State.SUCCEEDED,
                labels={"team": f"t{i % 4}"},
            )
        )
        for i in range(20_000)
    ]
    with sqlite3.connect(path) as conn:
        placeholders = ", ".join("?" * len(COLUMNS))
        conn.executemany(f"INSERT INTO operations ({SELECT_COLUMNS}) VALUES ({placeholders})", rows)
    store = SQLiteStore(path)
    await store.open()  # analyzes
    await store.close()
    plans = {}
    for text in ['done = false AND kind = "k1"', 'done = false AND labels.team = "t2"']:
        where, params = where_sql(parse_filter(text))
        query = (
            f"EXPLAIN QUERY PLAN SELECT id FROM operations WHERE {where} "
            "ORDER BY create_time DESC, id DESC LIMIT 101"
        )
        with sqlite3.connect(path) as conn:
            plans[text] = [row[3] for row in conn.execute(query, params)]
    kind, label = plans.values()
    assert "INDEX operations_live_by_kind" in kind[0], kind
    assert "INDEX operations_live " in label[0] + " ", label
    assert not any("TEMP B-TREE" in step for step in kind + label), plans
