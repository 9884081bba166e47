"""GroupedReplaces' bookkeeping (ADR 0034): every caller is answered, even when its group's task
is cancelled before it ever ran, as a closing store does to writes it gives up on. The grouped
statement itself is tested on a real server in tests/integration/test_postgres_batches.py."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any

import pytest

from longrunning.core.errors import StoreError
from longrunning.core.operation import Operation
from longrunning.stores.postgres_batches import Batch, GroupedReplaces, RowOutcome
from longrunning.testing import make_operation
from tests.hung_tasks import within


async def stored(batch: Batch) -> list[RowOutcome]:
    await asyncio.sleep(0)
    return [dataclasses.replace(op, version=version + 1) for op, version in batch]


async def test_a_group_cancelled_before_it_ran_fails_its_callers_and_frees_the_next() -> None:
    cancel_next = True

    def start(write: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        nonlocal cancel_next
        task = asyncio.create_task(write)
        if cancel_next:
            task.cancel()  # before its first step: its coroutine never runs
            cancel_next = False
        return task

    replaces = GroupedReplaces(stored, start)
    ops = [make_operation() for _ in range(3)]

    async def replace(op: Operation) -> Operation:
        return await replaces.replace(op, 1)

    results = await asyncio.wait_for(
        asyncio.gather(*(replace(op) for op in ops), return_exceptions=True), 5
    )
    assert all(isinstance(r, StoreError) and "closed" in str(r) for r in results)
    # Nothing is left counted in flight: the same operations go through now.
    again = await asyncio.wait_for(asyncio.gather(*(replace(op) for op in ops)), 5)
    assert [op.version for op in again] == [2, 2, 2]


async def test_a_group_that_fails_unexpectedly_hands_its_callers_the_error() -> None:
    async def broken(batch: Batch) -> list[RowOutcome]:
        return []  # fewer outcomes than rows: a bug, not a hang

    replaces = GroupedReplaces(broken, asyncio.create_task)
    first, second = make_operation(), make_operation()
    caller = asyncio.gather(replaces.replace(first, 1), replaces.replace(second, 1))
    with pytest.raises(ValueError, match="zip"):
        await within(5, "the grouped replace", caller)
