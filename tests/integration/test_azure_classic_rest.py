"""The classic XML routes in process (httpx over ASGI, a real service on MemoryStore): the list
cap over several pages, query parameter spelling, awkward database names, methods and refusals.
Microsoft's own client drives the same routes in tests/acceptance/azure/test_classic.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette

from longrunning.engine.demo import DEMO_KINDS
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.service import OperationService
from longrunning.faces.azure_classic import rest
from longrunning.faces.azure_classic.rest import classic_routes
from longrunning.stores.memory import MemoryStore
from longrunning.testing import make_operation

NS = "{http://schemas.microsoft.com/windowsazure}"
SUB = "00000000-1111-2222-3333-444444444444"
OPS = f"/{SUB}/services/sqlservers/servers/srv/databaseoperations"
VERSION = {"x-ms-version": "2012-03-01"}
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    opened = MemoryStore()
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def http(store: MemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=classic_routes(OperationService(store, HandlerRegistry(DEMO_KINDS))))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def ids_in(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    root = ET.fromstring(reply.content)
    assert root.tag == NS + "ServiceResources"
    return [item.findtext(NS + "Id") or "" for item in root]


def error_code(reply: httpx.Response) -> str | None:
    assert reply.headers["content-type"] == "application/xml; charset=utf-8"
    return ET.fromstring(reply.content).findtext(NS + "Code")


async def test_a_list_stops_at_1000_newest_first_over_several_pages(
    store: MemoryStore, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest, "MAX_PAGE_SIZE", 300)
    inserted = [
        await store.insert(
            make_operation(now=T0 + timedelta(seconds=n), target="servers/srv/databases/big")
        )
        for n in range(1003)
    ]

    listed = ids_in(await http.get(OPS, params={"databaseName": "big"}, headers=VERSION))

    assert listed == [op.id for op in reversed(inserted)][:1000]


@pytest.mark.parametrize("name", ["Q3 sales+v2", "a#b", "ünï.côdé", "x'y\"z"])
async def test_database_names_with_awkward_characters_are_found_by_their_name(
    store: MemoryStore, http: httpx.AsyncClient, name: str
) -> None:
    mine = await store.insert(make_operation(target=f"servers/srv/databases/{name}"))
    await store.insert(make_operation(target="servers/srv/databases/other"))

    reply = await http.get(f"{OPS}?databaseName={quote(name, safe='')}", headers=VERSION)

    assert ids_in(reply) == [mine.id]
    item = ET.fromstring(reply.content)[0]
    assert item.findtext(NS + "DatabaseName") == name


async def test_parameter_names_and_the_fixed_segments_ignore_case(
    store: MemoryStore, http: httpx.AsyncClient
) -> None:
    op = await store.insert(make_operation(target="servers/srv/databases/db"))
    path = f"/{SUB}/services/sqlservers/Servers//SRV/DatabaseOperations"

    by_database = await http.get(f"{path}?DATABASENAME=db", headers=VERSION)
    by_server = await http.get(f"{path}?ContentView=Generic", headers=VERSION)
    one = await http.get(f"{path}/{op.id.upper()}/", headers=VERSION)

    assert ids_in(by_database) == ids_in(by_server) == [op.id]
    assert one.status_code == 200
    root = ET.fromstring(one.content)
    assert (root.tag, root.findtext(NS + "Id")) == (NS + "ServiceResource", op.id)
    assert root.findtext(NS + "ParentLink", "").endswith("/servers/srv")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (OPS, 400, "BadRequest"),  # neither databaseName nor contentview=generic
        (f"{OPS}?contentview=summary", 400, "BadRequest"),
        (f"{OPS}?databaseName=bad%2Fname", 400, "BadRequest"),
        (f"{OPS}?databaseName=", 400, "BadRequest"),
        (f"/{SUB}/services/sqlservers/servers/Bad_Server/databaseoperations/x", 400, "BadRequest"),
        (f"/{SUB}/services/sqlservers/servers/srv/databases?contentview=generic", 404, None),
        (f"/{SUB}/services/sqlservers/servers/srv/databaseoperations/a/b", 404, None),
        (f"/{SUB}/services/sqlservers/servers", 404, None),
    ],
)
async def test_malformed_requests_are_refused_in_xml(
    http: httpx.AsyncClient, path: str, status: int, code: str | None
) -> None:
    reply = await http.get(path, headers=VERSION)

    assert reply.status_code == status
    assert error_code(reply) == (code or "ResourceNotFound")
    assert len(reply.headers["x-ms-request-id"]) == 32


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_only_reads_are_allowed(http: httpx.AsyncClient, method: str) -> None:
    reply = await http.request(method, f"{OPS}?contentview=generic", headers=VERSION)

    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET, HEAD"
    assert error_code(reply) == "MethodNotAllowed"


async def test_a_head_answers_like_a_get_without_a_body(http: httpx.AsyncClient) -> None:
    reply = await http.head(f"{OPS}?contentview=generic", headers=VERSION)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/xml; charset=utf-8"
