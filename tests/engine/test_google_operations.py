"""The Google face's methods over every store: its filters and wildcard parents are evaluated in
the store, and give the same answers on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from google.longrunning import operations_pb2

from longrunning.core.errors import InvalidRequest, OperationNotFound
from longrunning.engine.service import OperationService, StartRequest
from longrunning.faces.google.operations import GoogleOperations

PARENTS = [
    "projects/p/locations/a",
    "projects/p/locations/b",
    "projects/p/locations/a/instances/i",
    "projects/q/locations/a",
    "projects/p",
]


async def listed(google: GoogleOperations, name: str, flt: str = "") -> set[str]:
    found: set[str] = set()
    token = ""
    for _ in range(20):
        page = await google.list(
            operations_pb2.ListOperationsRequest(
                name=name, filter=flt, page_size=2, page_token=token
            )
        )
        found |= {op.name for op in page.operations}
        token = page.next_page_token
        if not token:
            return found
    raise AssertionError("the pages never ended")


@pytest.fixture
async def started(service: OperationService) -> dict[str, str]:
    """One pending demo.sleep per parent, and a cancelled one under projects/p/locations/b."""
    names = {}
    for parent in PARENTS:
        op = (await service.start(StartRequest(kind="demo.sleep", parent=parent))).operation
        names[parent] = op.name
    cancelled = await service.start(
        StartRequest(kind="demo.sleep", parent="projects/p/locations/b", labels={"team": "x"})
    )
    await service.cancel(cancelled.operation.id)
    names["cancelled"] = cancelled.operation.name
    return names


async def test_parents_and_wildcards(service: OperationService, started: dict[str, str]) -> None:
    google = GoogleOperations(service)
    assert await listed(google, "projects/p/locations/a") == {started["projects/p/locations/a"]}
    assert await listed(google, "projects/p/locations/-") == {
        started["projects/p/locations/a"],
        started["projects/p/locations/b"],
        started["cancelled"],
    }
    assert await listed(google, "projects/p/locations/a/operations") == {
        started["projects/p/locations/a"]
    }
    assert await listed(google, "operations") == set(started.values())


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("done = true", {"cancelled"}),
        ("done:false", {"b"}),
        ("error.code = 1", {"cancelled"}),
        ("error.code = CANCELLED", {"cancelled"}),
        ("error:*", {"cancelled"}),
        ("-error:*", {"b"}),
        ("metadata.requested_cancellation = true", {"cancelled"}),
        ('metadata.verb = "demo.*"', {"b", "cancelled"}),
        ("metadata.labels.team = x", {"cancelled"}),
        ("metadata.labels:team", {"cancelled"}),
        (
            'metadata.state = "CANCELLED" OR metadata.state = PENDING',
            {"b", "cancelled"},
        ),
        ('metadata.create_time > "2000-01-01T00:00:00Z"', {"b", "cancelled"}),
        ('metadata.end_time < "2000-01-01T00:00:00Z"', set()),
        ("NOT (done = true OR metadata.attempt > 0)", {"b"}),
    ],
)
async def test_filters(
    service: OperationService, started: dict[str, str], flt: str, expected: set[str]
) -> None:
    google = GoogleOperations(service)
    wanted = {
        started[key if key == "cancelled" else f"projects/p/locations/{key}"] for key in expected
    }
    assert await listed(google, "projects/p/locations/b", flt) == wanted


async def test_names_resolve_only_under_their_parent(
    service: OperationService, started: dict[str, str]
) -> None:
    google = GoogleOperations(service)
    name = started["projects/q/locations/a"]
    op_id = name.rsplit("/", 1)[1]
    assert (await google.get(name)).name == name
    assert (await google.get(f"operations/{op_id}")).name == name  # the proto's default shape
    assert (await google.get(f"projects/q/locations/-/operations/{op_id}")).name == name
    with pytest.raises(OperationNotFound):
        await google.get(f"projects/p/locations/-/operations/{op_id}")
    with pytest.raises(OperationNotFound):
        await google.get(f"projects/p/locations/a/operations/{op_id}")
    with pytest.raises(OperationNotFound):
        await google.cancel(f"projects/p/locations/a/operations/{op_id}")
    assert not (await google.get(name)).done  # the refused cancel changed nothing
    with pytest.raises(InvalidRequest):
        await google.get(f"projects/q/locations/a/operations/{op_id}x")
