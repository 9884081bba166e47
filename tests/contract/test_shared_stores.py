"""Stores shared between processes and machines (API nodes and workers): a second store on the same
SQLite file or PostgreSQL database stands in for another node, and one test uses a real child
process. The memory store is not shared, so it is not here."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import StoreConflict, TargetBusy
from longrunning.core.listing import OperationQuery
from longrunning.core.operation import Operation, State
from longrunning.core.ports import OperationStore
from longrunning.engine.recovery import LeaseReaper
from longrunning.stores import open_store
from longrunning.testing import make_operation
from tests.postgres_servers import fresh_database

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)

CHILD = """
import asyncio, sys
from longrunning.engine.recovery import LeaseReaper
from longrunning.stores import open_store
from longrunning.testing import make_operation

async def main() -> None:
    store = open_store(sys.argv[1])
    await store.open()
    try:
        await store.insert(make_operation(id=sys.argv[2]))
    finally:
        await store.close()

asyncio.run(main())
"""


Pair = tuple[OperationStore, OperationStore]


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty SQLite file or PostgreSQL database that several stores may open."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/shared.db"
        return
    with fresh_database("longrunning_shared") as url:
        yield url


@pytest.fixture
async def pair(shared_url: str) -> AsyncIterator[Pair]:
    """Two stores on one database, as an API node and a worker would open it; both open at
    once on an empty database, so both try to migrate it."""
    first, second = open_store(shared_url), open_store(shared_url)
    await asyncio.gather(first.open(), second.open())
    try:
        yield first, second
    finally:
        await asyncio.gather(first.close(), second.close())


async def claim(store: OperationStore, owner: str, kind: str = "demo.sleep") -> Operation | None:
    return await store.claim(
        kinds=[kind],
        queues=["default"],
        now=NOW,
        claim=lambda op: lifecycle.claim(op, owner=owner, lease_until=NOW, now=NOW),
    )


async def test_a_second_store_sees_the_first_ones_writes(
    pair: Pair,
) -> None:
    first, second = pair
    op = await first.insert(make_operation(now=T0))
    assert await second.get(op.id) == op
    changed = await second.replace(dataclasses.replace(op, kind="k"), expected_version=1)
    assert await first.get(op.id) == changed


async def test_a_wait_wakes_on_a_write_by_another_store(
    pair: Pair,
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
    pair: Pair,
) -> None:
    first, second = pair
    seen = second.change_count()
    await first.insert(make_operation(now=T0))
    assert await second.wait_for_change(seen, 10) > seen


async def test_claims_from_two_stores_never_take_the_same_operation(
    pair: Pair,
) -> None:
    first, second = pair
    ops = [await first.insert(make_operation(now=T0 + timedelta(seconds=i))) for i in range(20)]
    attempts = [claim(store, f"w{n}-{i}") for i in range(15) for n, store in enumerate(pair)]
    claimed = [op for op in await asyncio.gather(*attempts) if op is not None]
    assert sorted(op.id for op in claimed) == sorted(op.id for op in ops)
    for op in claimed:
        assert await second.get(op.id) == op


async def test_compare_and_set_holds_across_stores(
    pair: Pair,
) -> None:
    first, second = pair
    op = await first.insert(make_operation(now=T0))
    await first.replace(dataclasses.replace(op, kind="first"), expected_version=1)
    with pytest.raises(StoreConflict):
        await second.replace(dataclasses.replace(op, kind="second"), expected_version=1)
    assert (await second.get(op.id)).kind == "first"


async def test_request_ids_are_deduplicated_across_stores(
    pair: Pair,
) -> None:
    first, second = pair
    results = await asyncio.gather(
        *(store.insert(make_operation(now=T0, request_id="r")) for store in pair * 5)
    )
    assert len({op.id for op in results}) == 1
    assert await first.get(results[0].id) == await second.get(results[0].id)


async def test_a_write_by_another_process_wakes_a_waiter(shared_url: str) -> None:
    store = open_store(shared_url)
    await store.open()
    try:
        seen = store.change_count()
        waiter = asyncio.create_task(store.wait_for_change(seen, 30))
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, shared_url, "x1")
        assert await child.wait() == 0
        assert await waiter > seen
        assert (await store.get("x1")).version == 1
    finally:
        await store.close()


async def test_claims_from_two_stores_never_start_two_operations_on_one_target(pair: Pair) -> None:
    first, _ = pair
    for i in range(6):
        await first.insert(make_operation(now=T0 + timedelta(seconds=i), target="db/1"))
    attempts = [claim(store, f"w{n}-{i}") for i in range(4) for n, store in enumerate(pair)]
    claimed = [op for op in await asyncio.gather(*attempts) if op is not None]
    assert len(claimed) == 1


async def test_exclusive_inserts_from_two_stores_let_one_hold_a_target(pair: Pair) -> None:
    attempts = [
        store.insert(make_operation(now=T0, target="db/1"), exclusive_target=True)
        for store in pair * 4
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(isinstance(r, Operation) for r in results) == 1, results
    assert all(isinstance(r, Operation | TargetBusy) for r in results), results


async def test_reapers_on_two_nodes_recover_each_expired_lease_once(pair: Pair) -> None:
    first, _ = pair
    for i in range(20):
        op = await first.insert(
            make_operation(now=T0 + timedelta(seconds=i), idempotent=True, max_attempts=3)
        )
        claimed = lifecycle.claim(op, owner="lost", lease_until=T0, now=T0)
        await first.replace(claimed, expected_version=op.version)
    reapers = [LeaseReaper(store, clock=FixedClock(NOW)) for store in pair for _ in range(3)]
    recovered = await asyncio.gather(*(reaper.recover_once() for reaper in reapers))
    assert sum(recovered) == 20
    listed = await first.list_page(OperationQuery(page_size=50))
    assert {(op.state, op.version) for op in listed.operations} == {(State.PENDING, 3)}


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now
