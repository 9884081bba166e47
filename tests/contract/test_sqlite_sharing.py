"""SQLite files shared between processes (a server and its workers): a second SQLiteStore on the
same file stands in for another process, and one test uses a real child process."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import StoreConflict
from longrunning.core.operation import Operation
from longrunning.stores import SQLiteStore
from longrunning.testing import make_operation

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)

CHILD = """
import asyncio, sys
from longrunning.stores import SQLiteStore
from longrunning.testing import make_operation

async def main() -> None:
    store = SQLiteStore(sys.argv[1])
    await store.open()
    try:
        await store.insert(make_operation(id=sys.argv[2]))
    finally:
        await store.close()

asyncio.run(main())
"""


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteStore]]:
    """Two stores on one file, as a `serve` process and a `worker` process would open it."""
    first, second = SQLiteStore(tmp_path / "shared.db"), SQLiteStore(tmp_path / "shared.db")
    await asyncio.gather(first.open(), second.open())
    try:
        yield first, second
    finally:
        await asyncio.gather(first.close(), second.close())


async def claim(store: SQLiteStore, owner: str) -> Operation | None:
    return await store.claim(
        kinds=["demo.sleep"],
        queues=["default"],
        now=NOW,
        claim=lambda op: lifecycle.claim(op, owner=owner, lease_until=NOW, now=NOW),
    )


async def test_a_second_store_sees_the_first_ones_writes(
    pair: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = pair
    op = await first.insert(make_operation(now=T0))
    assert await second.get(op.id) == op
    changed = await second.replace(dataclasses.replace(op, kind="k"), expected_version=1)
    assert await first.get(op.id) == changed


async def test_a_wait_wakes_on_a_write_by_another_store(
    pair: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = pair
    seen = second.change_count()
    waiter = asyncio.create_task(second.wait_for_change(seen, 10))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    started = time.monotonic()
    await first.insert(make_operation(now=T0))
    assert await waiter > seen
    assert time.monotonic() - started < 1


async def test_a_write_while_nobody_waits_still_wakes_the_next_waiter(
    pair: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = pair
    seen = second.change_count()
    await first.insert(make_operation(now=T0))
    assert await second.wait_for_change(seen, 10) > seen


async def test_claims_from_two_stores_never_take_the_same_operation(
    pair: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = pair
    ops = [await first.insert(make_operation(now=T0 + timedelta(seconds=i))) for i in range(20)]
    attempts = [claim(store, f"w{n}-{i}") for i in range(15) for n, store in enumerate(pair)]
    claimed = [op for op in await asyncio.gather(*attempts) if op is not None]
    assert sorted(op.id for op in claimed) == sorted(op.id for op in ops)
    for op in claimed:
        assert await second.get(op.id) == op


async def test_compare_and_set_holds_across_stores(
    pair: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = pair
    op = await first.insert(make_operation(now=T0))
    await first.replace(dataclasses.replace(op, kind="first"), expected_version=1)
    with pytest.raises(StoreConflict):
        await second.replace(dataclasses.replace(op, kind="second"), expected_version=1)
    assert (await second.get(op.id)).kind == "first"


async def test_request_ids_are_deduplicated_across_stores(
    pair: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = pair
    results = await asyncio.gather(
        *(store.insert(make_operation(now=T0, request_id="r")) for store in pair * 5)
    )
    assert len({op.id for op in results}) == 1
    assert await first.get(results[0].id) == await second.get(results[0].id)


async def test_a_write_by_another_process_wakes_a_waiter(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        seen = store.change_count()
        waiter = asyncio.create_task(store.wait_for_change(seen, 30))
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, str(path), "x1")
        assert await child.wait() == 0
        assert await waiter > seen
        assert (await store.get("x1")).version == 1
    finally:
        await store.close()
