"""The native HTTP API end to end in process: the real face, OperationService, MemoryStore and a
running worker, through httpx.ASGITransport (raw HTTP) and NativeClient.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from longrunning.client import ClientError, NativeClient
from longrunning.engine.service import OperationService
from longrunning.stores.memory import MemoryStore
from tests.integration.conftest import MAX_BODY_BYTES

API = "/api/v1/operations"
UNKNOWN_ID = "6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22"
Json = dict[str, Any]


async def until_running(api: NativeClient, op_id: str) -> Json:
    for _ in range(500):
        op = await api.get(op_id)
        if op["state"] != "PENDING":
            return op
        await asyncio.sleep(0.01)
    raise AssertionError(f"{op_id} never started")


def assert_error(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["reason"]) == (status, reason)
    assert set(error) == {"code", "status", "reason", "message"}
    assert error["message"]


@pytest.mark.usefixtures("running_worker")
async def test_started_operation_runs_and_its_watch_ends_succeeded(
    http: httpx.AsyncClient, api: NativeClient
) -> None:
    response = await http.post(
        API, json={"kind": "demo.sleep", "request": {"duration_seconds": 0.3, "steps": 3}}
    )
    assert response.status_code == 201
    op = response.json()
    assert response.headers["location"] == f"{API}/{op['id']}"
    assert (op["state"], op["done"], op["version"]) == ("PENDING", False, 1)

    seen = [event async for event in api.watch(op["id"])]

    assert seen[-1]["state"] == "SUCCEEDED"
    assert seen[-1]["progress"]["percent"] == 100.0
    assert seen[-1]["result"]["steps"] == 3
    versions = [event["version"] for event in seen]
    assert versions == sorted(set(versions))


@pytest.mark.usefixtures("running_worker")
async def test_cancel_mid_way_ends_cancelled_stopped_cooperatively(api: NativeClient) -> None:
    op = await api.start("demo.sleep", request={"duration_seconds": 30})
    await until_running(api, op["id"])

    after = await api.cancel(op["id"])

    assert after["cancelRequested"] is True
    assert after["state"] in ("RUNNING", "CANCELLED")
    final = await api.wait(op["id"], timeout=10)
    assert final["state"] == "CANCELLED"
    assert final["cancelOutcome"] == "STOPPED_COOPERATIVELY"
    assert final["error"]["status"] == "CANCELLED"


async def test_cancel_of_pending_operation_ends_it_at_once(api: NativeClient) -> None:
    op = await api.start("demo.sleep")
    after = await api.cancel(op["id"])
    assert (after["state"], after["cancelOutcome"]) == ("CANCELLED", "NOT_STARTED")


@pytest.mark.usefixtures("running_worker")
async def test_cancel_of_finished_operation_is_a_no_op(
    http: httpx.AsyncClient, api: NativeClient
) -> None:
    op = await api.start("demo.sleep", request={"duration_seconds": 0})
    done = await api.wait(op["id"], timeout=10)
    assert done["state"] == "SUCCEEDED"

    response = await http.post(f"{API}/{op['id']}:cancel")

    assert response.status_code == 200
    assert response.json() == done


async def test_start_with_the_same_request_id_returns_the_same_operation(
    http: httpx.AsyncClient,
) -> None:
    body = {"kind": "demo.sleep", "requestId": "req-1", "request": {"duration_seconds": 1}}
    first = await http.post(API, json=body)
    again = await http.post(API, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]

    other = await http.post(API, json={**body, "request": {"duration_seconds": 2}})
    assert_error(other, 409, "REQUEST_ID_REUSED")


async def send_chunked(http: httpx.AsyncClient, size: int) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"kind": "demo.sleep", "request": {"pad": "'
        yield b"x" * size
        yield b'"}}'

    headers = {"content-type": "application/json"}
    return await http.post(API, content=chunks(), headers=headers)


def raw(content: bytes, content_type: str | None = "application/json") -> dict[str, Any]:
    return {"content": content, "headers": {"content-type": content_type} if content_type else {}}


BAD_STARTS: list[tuple[dict[str, Any], int, str]] = [
    (raw(b'{"kind": '), 400, "INVALID_JSON"),
    (raw(b'{"kind": "demo.sleep", "request": {"x": NaN}}'), 400, "INVALID_JSON"),
    (raw(b"\xff\xfe"), 400, "INVALID_JSON"),
    (raw(b"", None), 400, "INVALID_JSON"),
    (raw(b"[" * 2000 + b"]" * 2000), 400, "INVALID_JSON"),
    (raw(b"[" * 100_000 + b"]" * 100_000), 413, "BODY_TOO_LARGE"),
    ({"json": ["demo.sleep"]}, 400, "INVALID_BODY"),
    (raw(b"kind=demo.sleep", "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    (raw(b"{}", "application/x-www-form-urlencoded"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    ({"json": {"kind": "demo.sleep", "request": {"pad": "x" * MAX_BODY_BYTES}}}, 413,
     "BODY_TOO_LARGE"),
    ({"json": {"kind": "demo.sleep", "colour": "red"}}, 400, "UNKNOWN_FIELD"),
    ({"json": {"kind": "no.such.kind"}}, 400, "UNKNOWN_KIND"),
    ({"json": {"kind": 3}}, 400, "INVALID_FIELD"),
    ({"json": {}}, 400, "MISSING_FIELD"),
    ({"json": {"kind": "demo.sleep", "request": {"duration_seconds": -1}}}, 400,
     "INVALID_REQUEST"),
    ({"json": {"kind": "demo.sleep", "labels": {"Bad Key": "v"}}}, 400, "INVALID_LABELS"),
    ({"json": {"kind": "demo.sleep", "parent": "projects"}}, 400, "INVALID_PARENT"),
    ({"json": {"kind": "demo.sleep", "requestId": "a b"}}, 400, "INVALID_REQUEST_ID"),
    ({"json": {"kind": "demo.sleep", "timeoutSeconds": 0}}, 400, "INVALID_TIMEOUT"),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "status", "reason"), BAD_STARTS)
async def test_bad_start_is_refused_and_stores_nothing(
    http: httpx.AsyncClient,
    native_store: MemoryStore,
    kwargs: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    before = native_store.change_count()
    assert_error(await http.post(API, **kwargs), status, reason)
    assert native_store.change_count() == before
    assert (await http.get(API)).json() == {"operations": []}


async def test_body_over_the_limit_is_refused_while_streaming(
    http: httpx.AsyncClient, native_store: MemoryStore
) -> None:
    assert_error(await send_chunked(http, MAX_BODY_BYTES), 413, "BODY_TOO_LARGE")
    assert native_store.change_count() == 0


@pytest.mark.parametrize(
    "content_type", [None, "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_bodies_are_accepted_with_or_without_charset(
    http: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await http.post(API, content=b'{"kind": "demo.sleep"}', headers=headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("GET", f"{API}/not-a-uuid", 400, "INVALID_OPERATION_ID"),
        ("GET", f"{API}/{UNKNOWN_ID.upper()}", 400, "INVALID_OPERATION_ID"),
        ("GET", f"{API}/{UNKNOWN_ID}", 404, "OPERATION_NOT_FOUND"),
        ("DELETE", f"{API}/{UNKNOWN_ID}", 404, "OPERATION_NOT_FOUND"),
        ("POST", f"{API}/{UNKNOWN_ID}:cancel", 404, "OPERATION_NOT_FOUND"),
        ("POST", f"{API}/{UNKNOWN_ID}:wait?timeout=0", 404, "OPERATION_NOT_FOUND"),
        ("GET", f"{API}/{UNKNOWN_ID}:watch", 404, "OPERATION_NOT_FOUND"),
        ("POST", f"{API}/not-a-uuid:cancel", 400, "INVALID_OPERATION_ID"),
        ("POST", f"{API}/{UNKNOWN_ID}:explode", 404, "UNKNOWN_METHOD"),
        ("POST", f"{API}/{UNKNOWN_ID}:", 404, "UNKNOWN_METHOD"),
        ("POST", f"{API}/{UNKNOWN_ID}:wait?timeout=soon", 400, "INVALID_TIMEOUT"),
        ("GET", f"{API}/{UNKNOWN_ID}:cancel", 405, "METHOD_NOT_ALLOWED"),
        ("PUT", f"{API}/{UNKNOWN_ID}", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", API, 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/healthz", 405, "METHOD_NOT_ALLOWED"),
        ("GET", f"{API}?filter=colour%3Dred", 400, "INVALID_FILTER"),
        ("GET", f"{API}?pageToken=bm9wZQ", 400, "INVALID_PAGE_TOKEN"),
        ("GET", f"{API}?pageSize=ten", 400, "INVALID_PAGE_SIZE"),
        ("GET", f"{API}?pageSize=-2", 400, "INVALID_PAGE_SIZE"),
        ("GET", f"{API}?orderBy=kind", 400, "INVALID_ORDER_BY"),
        ("GET", "/api/v2/nothing", 404, "UNKNOWN_PATH"),
    ],
)
async def test_bad_requests_get_a_clear_error_and_change_nothing(
    http: httpx.AsyncClient, native_store: MemoryStore, method: str, path: str, status: int,
    reason: str,
) -> None:  # fmt: skip
    before = native_store.change_count()
    assert_error(await http.request(method, path), status, reason)
    assert native_store.change_count() == before


async def test_method_not_allowed_names_the_allowed_methods(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{API}/{UNKNOWN_ID}:cancel")
    assert response.headers["allow"] == "POST"


async def test_unexpected_failure_is_a_generic_500_without_details(
    http: httpx.AsyncClient, native_service: OperationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(op_id: str) -> None:
        raise RuntimeError("secret connection string")

    monkeypatch.setattr(native_service, "get", broken)
    response = await http.get(f"{API}/{UNKNOWN_ID}")
    assert_error(response, 500, "INTERNAL")
    assert "secret" not in response.text


async def test_delete_forgets_a_finished_operation_and_refuses_a_live_one(
    http: httpx.AsyncClient, api: NativeClient
) -> None:
    live = await api.start("demo.sleep")
    assert_error(await http.delete(f"{API}/{live['id']}"), 400, "OPERATION_NOT_DONE")
    await api.cancel(live["id"])
    response = await http.delete(f"{API}/{live['id']}")
    assert (response.status_code, response.content) == (204, b"")
    with pytest.raises(ClientError) as caught:
        await api.get(live["id"])
    assert (caught.value.status, caught.value.reason) == (404, "OPERATION_NOT_FOUND")


async def test_listing_pages_through_every_operation_once(
    http: httpx.AsyncClient, api: NativeClient
) -> None:
    ids = [(await api.start("demo.sleep", labels={"n": str(n)}))["id"] for n in range(5)]
    pages = []
    token: str | None = None
    while True:
        page = await api.list(page_size=2, page_token=token)
        pages.append([op["id"] for op in page["operations"]])
        token = page.get("nextPageToken")
        if token is None:
            break
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert [op["id"] async for op in api.list_all(page_size=2)] == ids[::-1]
    oldest = await http.get(API, params={"orderBy": "create_time asc", "pageSize": "3"})
    assert [op["id"] for op in oldest.json()["operations"]] == ids[:3]
    filtered = await api.list(filter="labels.n=3")
    assert [op["id"] for op in filtered["operations"]] == [ids[3]]


async def test_wait_returns_the_operation_as_it_is_when_the_timeout_passes(
    http: httpx.AsyncClient, api: NativeClient
) -> None:
    op = await api.start("demo.sleep")
    response = await http.post(f"{API}/{op['id']}:wait", params={"timeout": "0.05s"})
    assert response.status_code == 200
    assert response.json()["state"] == "PENDING"
    assert (await api.wait(op["id"], timeout=0.1))["done"] is False


@pytest.mark.usefixtures("running_worker")
async def test_watch_sends_keep_alives_while_quiet_and_an_end_event(
    http: httpx.AsyncClient, api: NativeClient
) -> None:
    op = await api.start("demo.sleep", request={"duration_seconds": 0.6, "steps": 1})
    response = await http.get(f"{API}/{op['id']}:watch")
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert ": keep-alive\n\n" in text
    events = [block for block in text.split("\n\n") if block.startswith("event:")]
    assert events[-1].startswith("event: end\n")
    assert json.loads(events[-1].split("data: ", 1)[1]) == {"state": "SUCCEEDED", "done": True}
    last_op = json.loads(events[-2].split("data: ", 1)[1])
    assert last_op["state"] == "SUCCEEDED"


async def test_watch_of_a_finished_operation_sends_it_once_then_ends(api: NativeClient) -> None:
    op = await api.start("demo.sleep")
    cancelled = await api.cancel(op["id"])
    assert [event async for event in api.watch(op["id"])] == [cancelled]


async def test_openapi_document_is_valid_and_covers_every_route(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    validate(document)
    assert set(document["paths"]) == {
        API,
        f"{API}:batchStart",
        f"{API}/{{operationId}}",
        f"{API}/{{operationId}}:cancel",
        f"{API}/{{operationId}}:wait",
        f"{API}/{{operationId}}:watch",
        "/api/v1/servers",
        "/api/v1/servers/{server}/databases",
        "/api/v1/servers/{server}/databases/{database}",
        "/api/v1/servers/{server}/files",
        "/healthz",
        "/readyz",
        "/openapi.json",
    }


async def test_health_is_always_ok_and_readiness_follows_the_store(
    http: httpx.AsyncClient, native_store: MemoryStore
) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).status_code == 200
    await native_store.close()
    assert_error(await http.get("/readyz"), 503, "STORE_UNAVAILABLE")
    assert (await http.get("/healthz")).status_code == 200


async def test_unreachable_server_is_a_client_error_naming_the_url() -> None:
    async with NativeClient("http://127.0.0.1:9") as client:
        with pytest.raises(ClientError) as caught:
            await client.get(UNKNOWN_ID)
    assert caught.value.reason == "UNREACHABLE"
    assert "http://127.0.0.1:9" in caught.value.message


@pytest.mark.usefixtures("running_worker")
async def test_server_stops_watching_once_the_client_goes_away(
    live_url: str, native_service: OperationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = 0
    original = native_service.watch

    def counting_watch(op_id: str, *, timeout: float | None = None) -> AsyncIterator[Any]:
        nonlocal rounds
        rounds += 1
        return original(op_id, timeout=timeout)

    monkeypatch.setattr(native_service, "watch", counting_watch)
    async with NativeClient(live_url) as client:
        op = await client.start("demo.sleep", request={"duration_seconds": 30, "steps": 1})
    async with (
        httpx.AsyncClient(base_url=live_url) as http,
        http.stream("GET", f"{API}/{op['id']}:watch") as response,
    ):
        async for line in response.aiter_lines():
            if line == ": keep-alive":
                break
    await asyncio.sleep(1.0)  # the heartbeat is 0.2 s: the server notices within a round or two
    settled = rounds
    await asyncio.sleep(1.0)  # a watch still running would have gone round about five times
    assert rounds == settled
