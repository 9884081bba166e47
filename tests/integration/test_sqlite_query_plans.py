"""Selective listing filters and claims are served by an index, not a scan over the whole
history."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from longrunning.core.filtering import parse_filter
from longrunning.core.operation import Operation, State
from longrunning.stores._rows import COLUMNS, SELECT_COLUMNS, to_row
from longrunning.stores.sql_filter import where_sql
from longrunning.stores.sqlite import _CLAIMABLE, SQLiteStore
from longrunning.testing import DEFAULT_KIND, make_operation

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def _store_holding(path: Path, ops: list[Operation]) -> None:
    """A migrated store file at `path`, its rows inserted directly (fast: no engine)."""
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        placeholders = ", ".join("?" * len(COLUMNS))
        sql = f"INSERT INTO operations ({SELECT_COLUMNS}) VALUES ({placeholders})"
        conn.executemany(sql, [to_row(op) for op in ops])


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
    ops = [
        make_operation(
            now=T0 + timedelta(seconds=i),
            kind=f"k{i % 8}",
            state=State.PENDING if i % 20 == 0 else State.SUCCEEDED,
            labels={"team": f"t{i % 4}"},
        )
        for i in range(20_000)
    ]
    await _store_holding(path, ops)
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


async def test_claims_walk_the_pending_rows_not_the_history(tmp_path: Path) -> None:
    """A young store has no statistics; left to itself SQLite served the claim from
    operations_by_kind and walked every finished operation of the kind before the first
    pending one, so each claim grew with the history. The claim walks operations_pending."""
    path = tmp_path / "plans.db"
    ops = [
        make_operation(
            now=T0 + timedelta(seconds=i),
            state=State.PENDING if i >= 4_000 else State.SUCCEEDED,
        )
        for i in range(4_100)
    ]
    await _store_holding(path, ops)
    with sqlite3.connect(path) as conn:
        sql = _CLAIMABLE.format(kinds="?", queues="?")
        params = [DEFAULT_KIND, "default", 0, 16]
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        candidates = conn.execute(sql, params).fetchall()
    assert "INDEX operations_pending" in plan[0], plan
    assert [row[0] for row in candidates] == [op.id for op in ops[4_000:4_016]]
