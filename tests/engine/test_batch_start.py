"""OperationService.start_many on every store: all or none, in request order, idempotent per
request id, checked before anything is stored; and a worker claiming several at once runs them
all."""

from __future__ import annotations

import pytest

from longrunning.core.errors import InvalidRequest, OperationAlreadyExists, TargetBusy
from longrunning.core.json_values import JsonObject
from longrunning.core.listing import OperationQuery
from longrunning.core.operation import State
from longrunning.core.ports import OperationStore
from longrunning.engine.service import MAX_BATCH_START, OperationService, StartRequest
from tests.engine.conftest import WorkerFactory
from tests.engine.test_execution import until_state


def sleep(seconds: float, request_id: str | None = None) -> StartRequest:
    request: JsonObject = {"duration_seconds": seconds}
    return StartRequest(kind="demo.sleep", request=request, request_id=request_id)


async def stored_ids(service: OperationService) -> set[str]:
    return {op.id for op in (await service.list(OperationQuery(page_size=500))).operations}


async def test_start_many_stores_all_in_order(service: OperationService) -> None:
    started = await service.start_many([sleep(1), sleep(2, request_id="b"), sleep(3)])
    assert [s.operation.request["duration_seconds"] for s in started] == [1, 2, 3]
    assert all(s.created and s.operation.state is State.PENDING for s in started)
    assert await stored_ids(service) == {s.operation.id for s in started}


async def test_start_many_returns_earlier_starts_of_a_request_id(service: OperationService) -> None:
    earlier = (await service.start(sleep(1, request_id="a"))).operation
    started = await service.start_many([sleep(1, request_id="a"), sleep(2)])
    assert (started[0].created, started[0].operation.id) == (False, earlier.id)
    assert started[1].created
    again = await service.start_many([sleep(2, request_id="c"), sleep(2, request_id="c")])
    assert again[0].operation.id == again[1].operation.id


@pytest.mark.parametrize("size", [0, MAX_BATCH_START + 1])
async def test_a_batch_of_the_wrong_size_is_refused(service: OperationService, size: int) -> None:
    with pytest.raises(InvalidRequest, match="1 to 1000") as caught:
        await service.start_many([sleep(0)] * size)
    assert caught.value.reason == "INVALID_BATCH_SIZE"
    assert await stored_ids(service) == set()


async def test_a_bad_request_fails_the_batch_naming_its_position(
    service: OperationService, store: OperationStore
) -> None:
    before = store.change_count()
    with pytest.raises(InvalidRequest, match=r"^requests\[1\]: ") as caught:
        await service.start_many([sleep(1), sleep(-1), sleep(2)])
    assert caught.value.metadata["position"] == "1"
    assert store.change_count() == before
    assert await stored_ids(service) == set()


async def test_a_conflict_in_the_store_stores_nothing(service: OperationService) -> None:
    held = (await service.start(StartRequest(kind="test.exclusive", target="db/1"))).operation
    with pytest.raises(TargetBusy):
        await service.start_many(
            [sleep(1), StartRequest(kind="test.exclusive", target="db/1"), sleep(2)]
        )
    earlier = (await service.start(sleep(1, request_id="r"))).operation
    with pytest.raises(OperationAlreadyExists):
        await service.start_many([sleep(5), sleep(2, request_id="r")])
    assert await stored_ids(service) == {held.id, earlier.id}


async def test_a_worker_runs_a_whole_batch(
    service: OperationService, start_worker: WorkerFactory
) -> None:
    started = await service.start_many([sleep(0.01) for _ in range(40)])
    async with start_worker():
        for one in started:
            await until_state(service, one.operation.id, State.SUCCEEDED)
