"""`POST /api/v1/operations:batchStart` end to end in process: the real face, OperationService,
MemoryStore and (where it runs them) a worker; and NativeClient.start_many."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from longrunning.client import NativeClient
from longrunning.stores.memory import MemoryStore
from tests.integration.test_native_api import assert_error

API = "/api/v1/operations"
BATCH = f"{API}:batchStart"
Json = dict[str, Any]


def sleep(seconds: float = 0, **fields: Any) -> Json:
    return {"kind": "demo.sleep", "request": {"duration_seconds": seconds}, **fields}


async def test_a_batch_starts_every_request_in_order(http: httpx.AsyncClient) -> None:
    requests = [sleep(1), sleep(2, labels={"team": "a"}), sleep(3, requestId="r-3")]
    response = await http.post(BATCH, json={"requests": requests})
    assert response.status_code == 200, response.text
    ops = response.json()["operations"]
    assert [op["request"]["duration_seconds"] for op in ops] == [1, 2, 3]
    assert [op["state"] for op in ops] == ["PENDING"] * 3
    assert ops[1]["labels"] == {"team": "a"}
    listed = (await http.get(API)).json()["operations"]
    assert {op["id"] for op in listed} == {op["id"] for op in ops}


async def test_a_retried_batch_returns_the_same_operations(http: httpx.AsyncClient) -> None:
    requests = [sleep(1, requestId="a"), sleep(2, requestId="b")]
    first = (await http.post(BATCH, json={"requests": requests})).json()["operations"]
    again = (await http.post(BATCH, json={"requests": requests})).json()["operations"]
    assert [op["id"] for op in again] == [op["id"] for op in first]
    assert len((await http.get(API)).json()["operations"]) == 2


BAD_BATCHES: list[tuple[object, int, str, str]] = [
    ({"requests": []}, 400, "INVALID_BATCH_SIZE", "1 to 1000"),
    ({"requests": {"kind": "demo.sleep"}}, 400, "INVALID_FIELD", "array"),
    ({"requests": [sleep()], "extra": 1}, 400, "INVALID_BODY", "requests"),
    ([sleep()], 400, "INVALID_BODY", "requests"),
    ({"requests": [sleep(), sleep(), {"kind": "no.such.kind"}]}, 400, "UNKNOWN_KIND",
     "requests[2]"),
    ({"requests": [sleep(), {"kind": "demo.sleep", "colour": "red"}]}, 400, "UNKNOWN_FIELD",
     "requests[1]"),
    ({"requests": [sleep(), sleep(-1)]}, 400, "INVALID_REQUEST", "requests[1]"),
    ({"requests": [sleep(), "demo.sleep"]}, 400, "INVALID_BODY", "requests[1]"),
    ({"requests": [sleep(1, requestId="x"), sleep(2, requestId="x")]}, 409,
     "REQUEST_ID_REUSED", "x"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "reason", "named"), BAD_BATCHES)
async def test_a_bad_batch_is_refused_whole_and_stores_nothing(
    http: httpx.AsyncClient,
    native_store: MemoryStore,
    body: object,
    status: int,
    reason: str,
    named: str,
) -> None:
    before = native_store.change_count()
    response = await http.post(BATCH, json=body)
    assert_error(response, status, reason)
    assert named in response.json()["error"]["message"]
    assert native_store.change_count() == before
    assert (await http.get(API)).json() == {"operations": []}


async def test_a_batch_reusing_a_request_id_with_other_parameters_stores_nothing(
    http: httpx.AsyncClient,
) -> None:
    earlier = await http.post(API, json=sleep(1, requestId="taken"))
    assert earlier.status_code == 201
    response = await http.post(
        BATCH, json={"requests": [sleep(5), sleep(2, requestId="taken"), sleep(6)]}
    )
    assert_error(response, 409, "REQUEST_ID_REUSED")
    listed = (await http.get(API)).json()["operations"]
    assert [op["id"] for op in listed] == [earlier.json()["id"]]


async def test_batch_started_operations_run_to_the_end(
    api: NativeClient, running_worker: object
) -> None:
    ops = await api.start_many([sleep(0.01) for _ in range(20)])
    assert len({op["id"] for op in ops}) == 20
    for op in ops:
        done = await api.wait(op["id"], timeout=10)
        assert done["state"] == "SUCCEEDED", done
