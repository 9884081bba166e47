"""The classic (RDFE) codec: ServiceResource XML read back with a strict, namespace-aware parser
the way the .NET client reads it (every element in the windowsazure namespace, int fields
through int.Parse), the state mapping, escaping, errors and request value checks.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from longrunning.core.errors import (
    Code,
    InvalidRequest,
    LongrunningError,
    OperationNotFound,
    StoreError,
    TargetBusy,
)
from longrunning.core.operation import Failure, Operation, Progress, State
from longrunning.faces.azure_classic import codec
from longrunning.testing import make_operation

NS = "{http://schemas.microsoft.com/windowsazure}"
NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
SUB = "00000000-1111-2222-3333-444444444444"
SCOPE = codec.ServerScope(SUB, "testsvr")
OP_ID = "6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22"
T0 = datetime(2026, 11, 21, 13, 17, 49, 938257, tzinfo=UTC)
ORDER = [
    "Name",
    "Type",
    "State",
    "SelfLink",
    "ParentLink",
    "Id",
    "StateId",
    "SessionActivityId",
    "DatabaseName",
    "PercentComplete",
    "ErrorCode",
    "Error",
    "ErrorSeverity",
    "ErrorState",
    "StartTime",
    "LastModifyTime",
]
INT_FIELDS = ("StateId", "PercentComplete", "ErrorCode", "ErrorSeverity", "ErrorState")
DOTNET_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z")


def db_op(**changes: Any) -> Operation:
    base = make_operation(
        id=OP_ID,
        kind="db.alter",
        title="ALTER DATABASE",
        state=State.RUNNING,
        target="servers/testsvr/databases/testdb",
        progress=Progress(percent=40.9),
        create_time=T0,
        update_time=T0 + timedelta(minutes=5, microseconds=8),
    )
    return dataclasses.replace(base, **changes)


def strict_fields(element: ET.Element) -> dict[str, str | None]:
    """Children by local name, in the windowsazure namespace only; None for `i:nil`. The int
    fields must parse as .NET int.Parse would, the times as round-trip DateTimes."""
    names = [child.tag for child in element]
    assert names == [NS + name for name in ORDER]
    out: dict[str, str | None] = {}
    for child in element:
        name = child.tag.removeprefix(NS)
        assert len(child) == 0
        if child.get(NIL) == "true":
            assert child.text is None
            out[name] = None
        else:
            out[name] = child.text or ""
    for name in INT_FIELDS:
        assert re.fullmatch(r"-?\d+", out[name] or ""), (name, out[name])
    for name in ("StartTime", "LastModifyTime"):
        assert DOTNET_TIME.fullmatch(out[name] or ""), (name, out[name])
    return out


def single(op: Operation) -> dict[str, str | None]:
    root = ET.fromstring(codec.service_resource(op, SCOPE))
    assert root.tag == NS + "ServiceResource"
    return strict_fields(root)


def test_a_running_database_operation_reads_back_field_for_field() -> None:
    fields = single(db_op())

    link = f"https://management.core.windows.net:8443/{SUB}/services/sqlservers/servers/testsvr"
    assert fields == {
        "Name": "ALTER DATABASE",
        "Type": "Microsoft.SqlAzure.DatabaseOperation",
        "State": "IN_PROGRESS",
        "SelfLink": f"{link}/databaseoperations/{OP_ID}",
        "ParentLink": link,
        "Id": OP_ID,
        "StateId": "1",
        "SessionActivityId": OP_ID,
        "DatabaseName": "testdb",
        "PercentComplete": "40",
        "ErrorCode": "0",
        "Error": None,
        "ErrorSeverity": "0",
        "ErrorState": "0",
        "StartTime": "2026-11-21T13:17:49.9382570Z",
        "LastModifyTime": "2026-11-21T13:22:49.9382650Z",
    }


def test_the_root_declares_the_default_namespace_and_xmlns_i_as_rdfe_does() -> None:
    text = codec.service_resource(db_op(), SCOPE)
    assert text.startswith(
        '<ServiceResource xmlns="http://schemas.microsoft.com/windowsazure" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Name>'
    )
    assert '<Error i:nil="true"/>' in text


@pytest.mark.parametrize(
    ("state", "cancel_requested", "percent", "state_id", "state_name", "shown_percent"),
    [
        (State.PENDING, False, 0.0, 0, "PENDING", "0"),
        (State.RUNNING, False, 99.99, 1, "IN_PROGRESS", "99"),
        (State.SUCCEEDED, False, 40.0, 2, "COMPLETED", "100"),
        (State.FAILED, False, 12.5, 3, "FAILED", "12"),
        (State.RUNNING, True, 63.0, 4, "CANCEL_IN_PROGRESS", "63"),
        (State.CANCELLED, True, 7.9, 5, "CANCELLED", "7"),
    ],
)
def test_every_state_maps_to_the_dm_state_code_and_name(
    state: State,
    cancel_requested: bool,
    percent: float,
    state_id: int,
    state_name: str,
    shown_percent: str,
) -> None:
    op = db_op(
        state=state,
        progress=Progress(percent=percent),
        cancel_requested_at=T0 if cancel_requested else None,
    )

    fields = single(op)

    assert (fields["StateId"], fields["State"]) == (str(state_id), state_name)
    assert fields["PercentComplete"] == shown_percent
    assert codec.dm_state(op) == state_id
    assert codec.percent_complete(op) == int(shown_percent)


def test_a_failure_fills_the_error_fields_with_its_code_message_and_severity() -> None:
    failure = Failure(code=Code.NOT_FOUND, message="no such source database", severity=20)

    fields = single(db_op(state=State.FAILED, error=failure))

    assert (fields["ErrorCode"], fields["Error"]) == ("5", "no such source database")
    assert (fields["ErrorSeverity"], fields["ErrorState"]) == ("20", "0")


def test_text_is_escaped_and_characters_xml_cannot_hold_are_replaced() -> None:
    message = "a < b && c > d \"q\" 'q' ]]> line\r\nnext\x01\x1f tab\t ünï 😀"
    failure = Failure(code=Code.INTERNAL, message=message)

    fields = single(db_op(state=State.FAILED, title="<x>&amp;", error=failure))

    assert fields["Name"] == "<x>&amp;"
    assert fields["Error"] == message.replace("\x01", "\ufffd").replace("\x1f", "\ufffd")


def test_without_a_title_the_name_is_the_kind() -> None:
    assert single(db_op(title=None, kind="demo.sleep"))["Name"] == "demo.sleep"


def test_an_operation_on_the_server_itself_has_a_nil_database_name() -> None:
    assert single(db_op(target="servers/testsvr"))["DatabaseName"] is None


def test_times_are_utc_with_seven_fractional_digits_whatever_their_zone() -> None:
    east = timezone(timedelta(hours=5, minutes=30))
    assert codec.dotnet_datetime(datetime(2026, 1, 2, 5, 30, 0, tzinfo=east)) == (
        "2026-01-02T00:00:00.0000000Z"
    )
    assert codec.dotnet_datetime(datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.0000070Z"
    )


def test_a_list_holds_one_service_resource_per_operation_in_the_given_order() -> None:
    first = db_op(id="11111111-1111-1111-1111-111111111111", title="DROP DATABASE")
    second = db_op(id="22222222-2222-2222-2222-222222222222", state=State.PENDING)

    root = ET.fromstring(codec.service_resources([first, second], SCOPE))

    assert root.tag == NS + "ServiceResources"
    assert [child.tag for child in root] == [NS + "ServiceResource"] * 2
    items = [strict_fields(child) for child in root]
    assert [(item["Id"], item["Name"], item["State"]) for item in items] == [
        (first.id, "DROP DATABASE", "IN_PROGRESS"),
        (second.id, "ALTER DATABASE", "PENDING"),
    ]


def test_an_empty_list_is_an_empty_service_resources_element() -> None:
    root = ET.fromstring(codec.service_resources([], SCOPE))
    assert (root.tag, len(root)) == (NS + "ServiceResources", 0)


def test_error_xml_is_an_rdfe_error_in_the_namespace() -> None:
    root = ET.fromstring(codec.error_xml("ResourceNotFound", "no <such> thing & more"))

    assert root.tag == NS + "Error"
    assert [(child.tag, child.text) for child in root] == [
        (NS + "Code", "ResourceNotFound"),
        (NS + "Message", "no <such> thing & more"),
    ]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidRequest("bad database name"), 400, "BadRequest"),
        (OperationNotFound("gone"), 404, "ResourceNotFound"),
        (TargetBusy("busy"), 409, "ConflictError"),
        (StoreError("down"), 503, "ServiceUnavailable"),
        (LongrunningError("odd"), 500, "InternalError"),
    ],
)
def test_errors_map_to_an_http_status_and_an_rdfe_code(
    error: LongrunningError, status: int, code: str
) -> None:
    got_status, body = codec.error_for(error)

    root = ET.fromstring(body)
    assert got_status == status
    assert [child.text for child in root] == [code, error.message]


def test_a_cancelled_code_is_no_499_for_a_classic_client() -> None:
    class Cancelled(LongrunningError):
        code = Code.CANCELLED

    assert codec.error_for(Cancelled("stopped"))[0] == 500


@pytest.mark.parametrize(
    ("header", "supported"),
    [
        ("2012-03-01", True),
        ("2014-10-01", True),
        (" 2099-12-31 ", True),
        ("2012-02-29", False),
        ("2011-12-31", False),
        ("2014-02-30", False),
        ("2014-10-1", False),
        ("2014-10-01-preview", False),
        ("latest", False),
        ("", False),
        (None, False),
    ],
)
def test_x_ms_version_must_be_a_date_from_2012_03_01_on(
    header: str | None, supported: bool
) -> None:
    assert codec.supported_version(header) is supported


def test_guids_are_accepted_in_either_case_and_returned_lowercase() -> None:
    assert codec.check_guid(OP_ID.upper(), "operation id") == OP_ID


@pytest.mark.parametrize(
    "value", ["", "xyz", OP_ID.replace("-", ""), "{" + OP_ID + "}", OP_ID + "0", OP_ID[:-1] + "g"]
)
def test_anything_but_a_36_character_guid_is_refused(value: str) -> None:
    with pytest.raises(InvalidRequest, match=r"subscription id .* is not a valid GUID"):
        codec.check_guid(value, "subscription id")


@pytest.mark.parametrize(
    ("target", "held"),
    [
        ("servers/testsvr", True),
        ("servers/testsvr/databases/db1", True),
        ("servers/testsvr2/databases/db1", False),
        ("servers/other/databases/testsvr", False),
        ("db/testsvr", False),
        (None, False),
    ],
)
def test_a_server_holds_its_own_operations_and_those_under_it(
    target: str | None, held: bool
) -> None:
    assert SCOPE.holds(db_op(target=target)) is held
