"""ShieldedWrites: a caller's cancel does not cut a write short, and a closing store does not wait
for ever on a write that never ends."""

from __future__ import annotations

import asyncio
import time

import pytest

from longrunning.core.errors import StoreError
from longrunning.stores.changes import ShieldedWrites


async def test_a_cancelled_caller_leaves_its_write_to_finish() -> None:
    writes = ShieldedWrites()
    finished = asyncio.Event()

    async def write() -> str:
        await asyncio.sleep(0.05)
        finished.set()
        return "committed"

    caller = asyncio.create_task(writes.run(write()))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await writes.settle()
    assert finished.is_set()


async def test_settle_gives_up_on_a_write_that_never_ends_and_tells_its_caller() -> None:
    writes = ShieldedWrites()
    never = asyncio.Event()

    async def stuck_write() -> None:
        await never.wait()  # a server that stopped answering

    caller = asyncio.create_task(writes.run(stuck_write()))
    await asyncio.sleep(0.01)
    began = time.monotonic()
    await writes.settle(timeout=0.2)
    assert time.monotonic() - began < 2.0
    with pytest.raises(StoreError, match="closed before this write was committed"):
        await caller


async def test_settle_waits_for_writes_that_end_in_time() -> None:
    writes = ShieldedWrites()

    async def write() -> int:
        await asyncio.sleep(0.05)
        return 7

    caller = asyncio.create_task(writes.run(write()))
    await asyncio.sleep(0.01)
    await writes.settle(timeout=5.0)
    assert caller.done() and caller.result() == 7


async def test_a_cancel_of_settle_itself_is_not_swallowed() -> None:
    writes = ShieldedWrites()
    never = asyncio.Event()

    async def stuck_write() -> None:
        await never.wait()

    caller = asyncio.create_task(writes.run(stuck_write()))
    await asyncio.sleep(0.01)
    settling = asyncio.create_task(writes.settle(timeout=30.0))
    await asyncio.sleep(0.01)
    settling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settling
    caller.cancel()
    never.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
