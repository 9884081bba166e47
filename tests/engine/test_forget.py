"""Forgetting a live operation (Google's DeleteOperation): gone for every reader, while its work
goes on, holds its target, and is purged once it ends. On every store."""

from __future__ import annotations

import asyncio

import pytest

from longrunning.core.errors import OperationNotFound, TargetBusy
from longrunning.core.listing import OperationQuery
from longrunning.core.operation import State
from longrunning.core.ports import OperationStore
from longrunning.engine.config import EngineConfig
from longrunning.engine.recovery import LeaseReaper
from longrunning.engine.service import OperationService, StartRequest
from longrunning.engine.worker import Worker
from tests.engine.test_execution import until_state


async def test_a_forgotten_operation_runs_on_unseen_and_is_purged_when_it_ends(
    service: OperationService, store: OperationStore, worker: Worker
) -> None:
    start = StartRequest(
        kind="test.exclusive", request={"seconds": 3.0}, target="db/1", request_id="r-1"
    )
    op = (await service.start(start)).operation
    await until_state(service, op.id, State.RUNNING)
    await service.forget(op.id)

    for read in (service.get, service.cancel, service.forget):
        with pytest.raises(OperationNotFound):
            await read(op.id)
    with pytest.raises(OperationNotFound):
        await service.wait(op.id, 1)
    assert (await service.list(OperationQuery())).operations == []
    # Its work goes on and still holds its target...
    with pytest.raises(TargetBusy):
        await service.start(StartRequest(kind="test.exclusive", target="db/1"))
    # ...while its request id is free again.
    again = await service.start(StartRequest(kind="test.tracked", request_id="r-1"))
    assert again.created and again.operation.id != op.id

    async with asyncio.timeout(15):
        while (ended := await store.get(op.id)).state is State.RUNNING:
            await asyncio.sleep(0.02)
    assert ended.state is State.SUCCEEDED and ended.cancel_outcome is None  # not cancelled
    await LeaseReaper(store, config=EngineConfig()).purge_once()
    with pytest.raises(OperationNotFound):
        await store.get(op.id)


async def test_forgetting_a_finished_operation_deletes_it(service: OperationService) -> None:
    op = (await service.start(StartRequest(kind="demo.sleep"))).operation
    await service.cancel(op.id)  # pending: cancelled at once
    await service.forget(op.id)
    for read in (service.get, service.forget):
        with pytest.raises(OperationNotFound):
            await read(op.id)
