"""NativeClient: an async Python client for the native HTTP API, on httpx.

Imports httpx and the standard library only (never the engine, stores or faces): it speaks the
wire, and returns operations as the JSON dicts the server sent.

Databases: `list_servers`, `list_databases`, `get_database` and `list_files` read what a server
manages; `create_database`, `copy_database`, `export_database` and the other starters start the
`db.*` operations (each returns the operation at once; `wait` or `watch` it).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

API = "/api/v1/operations"
SERVERS_API = "/api/v1/servers"
INDEX_NAME_MAX_BYTES = 63
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_SERVER_WAIT_SECONDS = 30.0
"""Each `:wait` call asks the server to hold for at most this long; `wait` loops over them."""

WATCH_READ_TIMEOUT_SECONDS = 90.0
"""A watch sends a keep-alive at least every 15 s; this much silence means the server is gone."""

Json = dict[str, Any]
Jsons = list[Json]


class ClientError(Exception):
    """The server refused a request, or could not be reached.

    `status` is the HTTP status (0 when unreachable), `code` the google.rpc.Code name the server
    sent (e.g. NOT_FOUND), `reason` its stable machine-readable reason (e.g. OPERATION_NOT_FOUND).
    """

    def __init__(self, status: int, reason: str, message: str, *, code: str = "UNKNOWN") -> None:
        super().__init__(f"{code} ({reason}): {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.code = code


class NativeClient:
    """`async with NativeClient("http://127.0.0.1:8080") as client: op = await client.start(...)`"""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def start(
        self,
        kind: str,
        *,
        parent: str | None = None,
        request: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> Json:
        body: Json = {"kind": kind}
        optional = {
            "parent": parent,
            "request": dict(request) if request is not None else None,
            "requestId": request_id,
            "labels": dict(labels) if labels is not None else None,
            "timeoutSeconds": timeout_seconds,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return await self._json("POST", API, json=body)

    async def start_many(self, requests: Sequence[Mapping[str, Any]]) -> list[Json]:
        """Start up to 1000 operations in one request, all or none; each request is a start
        body as the API takes it (`{"kind": ..., "request": {...}, "requestId": ...}`). Returns
        the operations in the same order."""
        answer = await self._json("POST", f"{API}:batchStart", json={"requests": list(requests)})
        operations: list[Json] = answer["operations"]
        return operations

    async def get(self, op_id: str) -> Json:
        return await self._json("GET", f"{API}/{_quoted(op_id)}")

    async def list(
        self,
        *,
        parent: str | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Json:
        """One page: `{"operations": [...], "nextPageToken": "..."}` (no token on the last)."""
        params = {
            "parent": parent,
            "filter": filter,
            "pageSize": page_size,
            "pageToken": page_token,
        }
        query = {key: value for key, value in params.items() if value is not None}
        return await self._json("GET", API, params=query)

    async def list_all(
        self, *, parent: str | None = None, filter: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[Json]:
        """Every matching operation, following nextPageToken from page to page."""
        token: str | None = None
        while True:
            page = await self.list(
                parent=parent, filter=filter, page_size=page_size, page_token=token
            )
            for op in page.get("operations", []):
                yield op
            token = page.get("nextPageToken")
            if not token:
                return

    async def cancel(self, op_id: str) -> Json:
        """Request cancellation; the operation as it is now (it may still be RUNNING)."""
        return await self._json("POST", f"{API}/{_quoted(op_id)}:cancel")

    async def delete(self, op_id: str) -> None:
        await self._send("DELETE", f"{API}/{_quoted(op_id)}")

    async def wait(self, op_id: str, timeout: float | None = None) -> Json:
        """The operation once done, or as it is after `timeout` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = MAX_SERVER_WAIT_SECONDS if deadline is None else deadline - time.monotonic()
            hold = max(min(left, MAX_SERVER_WAIT_SECONDS), 0.0)
            op = await self._json(
                "POST",
                f"{API}/{_quoted(op_id)}:wait",
                params={"timeout": f"{hold:.3f}s"},
                timeout=hold + DEFAULT_TIMEOUT_SECONDS,
            )
            if op.get("done") or (deadline is not None and time.monotonic() >= deadline):
                return op

    async def watch(self, op_id: str) -> AsyncIterator[Json]:
        """The operation now and after every change, until it is done (server-sent events)."""
        url = f"{API}/{_quoted(op_id)}:watch"
        try:
            async with self._http.stream(
                "GET",
                url,
                headers={"Accept": "text/event-stream"},
                timeout=httpx.Timeout(DEFAULT_TIMEOUT_SECONDS, read=WATCH_READ_TIMEOUT_SECONDS),
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_from(response)
                async for event, data in _server_sent_events(response.aiter_lines()):
                    if event == "operation":
                        yield json.loads(data)
                    elif event == "error":
                        raise _error_body(0, json.loads(data))
                    elif event == "end":
                        return
            raise ClientError(
                0, "STREAM_INTERRUPTED", f"the watch of {op_id} ended before the operation did"
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    async def list_servers(self) -> Jsons:
        """The database servers: `{"name", "kind": "sqlite"|"postgresql", "parent"}` each."""
        return _items(await self._json("GET", SERVERS_API), "servers")

    async def list_databases(self, server: str) -> Jsons:
        """`{"name", "server", "sizeBytes", "createTime" (or None), "databaseId"}` each."""
        return _items(await self._json("GET", f"{_server_url(server)}/databases"), "databases")

    async def get_database(self, server: str, database: str) -> Json:
        return await self._json("GET", f"{_server_url(server)}/databases/{_quoted(database)}")

    async def list_files(self, server: str) -> Jsons:
        """The server's export and backup files: `{"name", "sizeBytes", "modifyTime"}` each."""
        return _items(await self._json("GET", f"{_server_url(server)}/files"), "files")

    async def create_database(
        self, server: str, database: str, *, request_id: str | None = None
    ) -> Json:
        return await self._start_db("db.create", server, database, request_id)

    async def drop_database(
        self, server: str, database: str, *, request_id: str | None = None
    ) -> Json:
        return await self._start_db("db.drop", server, database, request_id)

    async def copy_database(
        self, server: str, source: str, database: str, *, request_id: str | None = None
    ) -> Json:
        """A new database `database` with the content of `source`, on the same server."""
        source_ref = {"server": server, "database": source}
        return await self._start_db("db.copy", server, database, request_id, source=source_ref)

    async def backup_database(
        self, server: str, database: str, file: str, *, request_id: str | None = None
    ) -> Json:
        return await self._start_db("db.backup", server, database, request_id, file=file)

    async def restore_database(
        self, server: str, file: str, database: str, *, request_id: str | None = None
    ) -> Json:
        """A new database `database` from the backup `file`."""
        return await self._start_db("db.restore", server, database, request_id, file=file)

    async def export_database(
        self, server: str, database: str, file: str, *, request_id: str | None = None
    ) -> Json:
        return await self._start_db("db.export", server, database, request_id, file=file)

    async def import_database(
        self, server: str, file: str, database: str, *, request_id: str | None = None
    ) -> Json:
        """A new database `database` from the export `file`."""
        return await self._start_db("db.import", server, database, request_id, file=file)

    async def alter_database(
        self,
        server: str,
        database: str,
        changes: Mapping[str, Any],
        *,
        request_id: str | None = None,
    ) -> Json:
        """`changes` as the server's backend knows them, e.g. `{"vacuum": True}` (see
        docs/reference/databases.md); the server refuses what its backend cannot do."""
        return await self._start_db("db.alter", server, database, request_id, changes=dict(changes))

    async def create_index(
        self,
        server: str,
        database: str,
        table: str,
        columns: Sequence[str],
        *,
        name: str | None = None,
        unique: bool = False,
        request_id: str | None = None,
    ) -> Json:
        """CREATE [UNIQUE] INDEX, named `ix_{table}_{columns}` unless `name` is given."""
        index = {
            "name": name if name is not None else index_name(table, columns),
            "table": table,
            "columns": list(columns),
            "unique": unique,
        }
        return await self._start_db("db.index", server, database, request_id, index=index)

    async def _start_db(
        self, kind: str, server: str, database: str, request_id: str | None, **fields: Any
    ) -> Json:
        request = {"server": server, "database": database, **fields}
        return await self.start(kind, request=request, request_id=request_id)

    async def ready(self) -> Json:
        return await self._json("GET", "/readyz")

    async def _json(self, method: str, url: str, **kwargs: Any) -> Json:
        response = await self._send(method, url, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ClientError(response.status_code, "BAD_RESPONSE", "expected a JSON object")
        return body

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _unreachable(self, exc: httpx.TransportError) -> ClientError:
        detail = str(exc) or type(exc).__name__
        return ClientError(
            0,
            "UNREACHABLE",
            f"cannot reach the longrunning server at {self.base_url} ({detail})",
            code="UNAVAILABLE",
        )


def _quoted(op_id: str) -> str:
    return quote(op_id, safe="")


def _server_url(server: str) -> str:
    return f"{SERVERS_API}/{_quoted(server)}"


def _items(body: Json, key: str) -> Jsons:
    items = body.get(key)
    if not isinstance(items, list):
        raise ClientError(200, "BAD_RESPONSE", f"expected a JSON object with a list {key!r}")
    return items


def index_name(table: str, columns: Sequence[str]) -> str:
    """The default index name, `ix_{table}_{col1}_{col2}`, cut to the longest name allowed."""
    name = "_".join(["ix", table, *columns]).encode()[:INDEX_NAME_MAX_BYTES]
    return name.decode(errors="ignore")


def _error_from(response: httpx.Response) -> ClientError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return _error_body(response.status_code, body)
    text = " ".join(response.text.split())[:200] or response.reason_phrase
    return ClientError(response.status_code, f"HTTP_{response.status_code}", text)


def _error_body(status: int, body: Json) -> ClientError:
    error = body.get("error", {})
    return ClientError(
        int(error.get("code", status)) if status == 0 else status,
        str(error.get("reason", "UNKNOWN")),
        str(error.get("message", "")),
        code=str(error.get("status", "UNKNOWN")),
    )


async def _server_sent_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """(event, data) per event of a text/event-stream; comments and retry fields are skipped."""
    event = "message"
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
