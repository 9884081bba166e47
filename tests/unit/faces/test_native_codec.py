"""The native codec: operation JSON in every state, start request parsing, listing parameters,
durations and the error table. Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from longrunning.core.errors import (
    Code,
    InvalidRequest,
    LongrunningError,
    NotCancellable,
    OperationAlreadyExists,
    OperationNotFound,
    StoreError,
    TargetBusy,
)
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.engine.service import DEFAULT_PARENT
from longrunning.faces.native import codec
from longrunning.faces.statuses import HTTP_STATUS

T0 = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
OP_ID = "6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22"


def make_op(**changes: Any) -> Operation:
    base = Operation(
        id=OP_ID,
        parent=DEFAULT_PARENT,
        kind="demo.sleep",
        state=State.PENDING,
        create_time=T0,
        update_time=T0,
        request={"duration_seconds": 5},
        request_hash="abc123",
        version=1,
    )
    return dataclasses.replace(base, **changes)


def running(**changes: Any) -> Operation:
    return make_op(
        state=State.RUNNING,
        start_time=T0 + timedelta(seconds=1),
        attempt=1,
        lease_owner="host:1:abcd",
        lease_epoch=3,
        lease_expires_at=T0 + timedelta(seconds=30),
        progress=Progress(percent=40.0, phase="step 2 of 5", eta=T0 + timedelta(seconds=9)),
        **changes,
    )


def test_pending_operation_has_the_base_fields_and_omits_unset_ones() -> None:
    body = codec.operation_to_json(make_op())
    assert body == {
        "id": OP_ID,
        "name": f"{DEFAULT_PARENT}/operations/{OP_ID}",
        "parent": DEFAULT_PARENT,
        "kind": "demo.sleep",
        "title": "demo.sleep",
        "state": "PENDING",
        "done": False,
        "cancellable": True,
        "cancelRequested": False,
        "progress": {"percent": 0.0},
        "metadata": {},
        "request": {"duration_seconds": 5},
        "createTime": "2026-11-21T10:00:00Z",
        "updateTime": "2026-11-21T10:00:00Z",
        "attempt": 0,
        "maxAttempts": 1,
        "labels": {},
        "queue": "default",
        "version": 1,
    }


def test_running_operation_shows_progress_with_phase_and_eta_but_no_lease() -> None:
    body = codec.operation_to_json(running())
    assert body["state"] == "RUNNING"
    assert body["progress"] == {
        "percent": 40.0,
        "phase": "step 2 of 5",
        "estimatedCompletionTime": "2026-11-21T10:00:09Z",
    }
    assert body["startTime"] == "2026-11-21T10:00:01Z"
    assert "endTime" not in body
    assert "result" not in body
    text = json.dumps(body)
    assert "lease" not in text.lower()
    assert "abc123" not in text  # the request fingerprint stays inside


def test_running_operation_with_cancel_requested_is_not_done_and_has_no_outcome() -> None:
    body = codec.operation_to_json(running(cancel_requested_at=T0 + timedelta(seconds=3)))
    assert body["cancelRequested"] is True
    assert body["cancelRequestTime"] == "2026-11-21T10:00:03Z"
    assert body["done"] is False
    assert "cancelOutcome" not in body


def test_succeeded_operation_carries_its_result_even_when_null() -> None:
    done = make_op(state=State.SUCCEEDED, end_time=T0 + timedelta(seconds=5), result={"n": 1})
    assert codec.operation_to_json(done)["result"] == {"n": 1}
    assert codec.operation_to_json(done)["done"] is True
    null_result = codec.operation_to_json(dataclasses.replace(done, result=None))
    assert "result" in null_result
    assert null_result["result"] is None


def test_failed_operation_carries_a_structured_error() -> None:
    failure = Failure(
        code=Code.FAILED_PRECONDITION,
        message="disk full",
        details=({"free": 0},),
        severity=17,
        is_user_error=True,
    )
    body = codec.operation_to_json(
        make_op(state=State.FAILED, end_time=T0, error=failure, labels={"team": "a"})
    )
    assert body["error"] == {
        "code": 9,
        "status": "FAILED_PRECONDITION",
        "message": "disk full",
        "details": [{"free": 0}],
        "severity": 17,
        "isUserError": True,
    }
    assert "result" not in body
    assert body["labels"] == {"team": "a"}


def test_cancelled_operation_names_its_outcome_and_the_cancelled_error() -> None:
    op = make_op(
        state=State.CANCELLED,
        cancel_requested_at=T0,
        cancel_outcome=CancelOutcome.STOPPED_COOPERATIVELY,
        error=Failure(code=Code.CANCELLED, message="cancelled"),
        end_time=T0 + timedelta(seconds=2),
    )
    body = codec.operation_to_json(op)
    assert body["cancelOutcome"] == "STOPPED_COOPERATIVELY"
    error = body["error"]
    assert isinstance(error, dict)
    assert error["status"] == "CANCELLED"
    assert body["endTime"] == "2026-11-21T10:00:02Z"


def test_optional_identity_fields_appear_when_set() -> None:
    body = codec.operation_to_json(
        make_op(request_id="req-1", target="db/1", queue="slow", deadline=T0 + timedelta(hours=1))
    )
    assert body["requestId"] == "req-1"
    assert body["target"] == "db/1"
    assert body["queue"] == "slow"
    assert body["deadline"] == "2026-11-21T11:00:00Z"


def test_start_request_takes_every_field() -> None:
    start = codec.start_request_from_json(
        {
            "kind": "demo.sleep",
            "parent": "projects/p/locations/l",
            "request": {"duration_seconds": 1},
            "requestId": "r-1",
            "labels": {"team": "a"},
            "target": "db/1",
            "queue": "slow",
            "timeoutSeconds": 60,
        }
    )
    assert start.kind == "demo.sleep"
    assert start.parent == "projects/p/locations/l"
    assert start.request == {"duration_seconds": 1}
    assert start.request_id == "r-1"
    assert dict(start.labels) == {"team": "a"}
    assert (start.target, start.queue, start.timeout_seconds) == ("db/1", "slow", 60.0)


def test_start_request_defaults_and_nulls() -> None:
    start = codec.start_request_from_json({"kind": "demo.sleep", "requestId": None})
    assert start.parent == DEFAULT_PARENT
    assert start.request == {}
    assert start.request_id is None
    assert start.queue == "default"
    assert start.timeout_seconds is None


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        ([1, 2], "INVALID_BODY", "JSON object"),
        ("demo.sleep", "INVALID_BODY", "JSON object"),
        ({"kind": "demo.sleep", "colour": "red", "zz": 1}, "UNKNOWN_FIELD", "'colour', 'zz'"),
        ({}, "MISSING_FIELD", "kind is required"),
        ({"kind": 7}, "INVALID_FIELD", "kind must be a string"),
        ({"kind": "k", "request": [1]}, "INVALID_FIELD", "request must be a JSON object"),
        ({"kind": "k", "labels": {"a": 1}}, "INVALID_FIELD", "labels"),
        ({"kind": "k", "labels": ["a"]}, "INVALID_FIELD", "labels"),
        ({"kind": "k", "parent": 5}, "INVALID_FIELD", "parent must be a string"),
        ({"kind": "k", "requestId": 5}, "INVALID_FIELD", "requestId must be a string"),
        ({"kind": "k", "timeoutSeconds": "60"}, "INVALID_FIELD", "timeoutSeconds"),
        ({"kind": "k", "timeoutSeconds": True}, "INVALID_FIELD", "timeoutSeconds"),
        ({"kind": "k", "timeoutSeconds": 0}, "INVALID_TIMEOUT", "positive"),
        ({"kind": "k", "timeoutSeconds": -3.5}, "INVALID_TIMEOUT", "positive"),
    ],
)
def test_start_request_rejections_name_the_problem(body: object, reason: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        codec.start_request_from_json(body)
    assert caught.value.reason == reason
    assert words in caught.value.message


def test_list_parameters_build_a_query() -> None:
    query = codec.list_query_from_params(
        {
            "parent": "projects/p",
            "filter": "state=RUNNING",
            "pageSize": "5",
            "orderBy": "create_time",
        }
    )
    assert query.parent == "projects/p"
    assert query.filter is not None
    assert query.page_size == 5
    assert query.newest_first is False
    default = codec.list_query_from_params({})
    assert (default.parent, default.newest_first) == (None, True)
    assert codec.list_query_from_params({"orderBy": "CREATE_TIME  DESC"}).newest_first is True


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"pageSize": "ten"}, "INVALID_PAGE_SIZE"),
        ({"pageSize": "1.5"}, "INVALID_PAGE_SIZE"),
        ({"pageSize": "-1"}, "INVALID_PAGE_SIZE"),
        ({"orderBy": "kind"}, "INVALID_ORDER_BY"),
        ({"filter": "colour=red"}, "INVALID_FILTER"),
        ({"pageToken": "garbage!"}, "INVALID_PAGE_TOKEN"),
        ({"parent": "not a parent"}, "INVALID_PARENT"),
    ],
)
def test_bad_list_parameters_are_rejected(params: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        codec.list_query_from_params(params)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("text", "seconds"), [(None, 30.0), ("", 30.0), ("30", 30.0), ("30s", 30.0), ("1.5s", 1.5)]
)
def test_wait_durations(text: str | None, seconds: float) -> None:
    assert codec.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["-1s", "abc", "1m", "1.5.2s", "s"])
def test_bad_wait_durations_are_rejected(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        codec.parse_duration(text)
    assert caught.value.reason == "INVALID_TIMEOUT"


@pytest.mark.parametrize("code", list(Code))
def test_every_code_has_an_http_status(code: Code) -> None:
    assert code in HTTP_STATUS
    assert 200 <= HTTP_STATUS[code] <= 599


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("bad"), 400),
        (OperationNotFound(), 404),
        (OperationAlreadyExists(), 409),
        (NotCancellable(), 400),
        (TargetBusy(), 409),
        (StoreError(), 503),
        (LongrunningError(), 500),
    ],
)
def test_errors_map_to_the_canonical_http_status(error: LongrunningError, status: int) -> None:
    http_status, body = codec.error_to_json(error)
    assert http_status == status
    assert body == {
        "error": {
            "code": status,
            "status": error.code.name,
            "reason": error.reason,
            "message": error.message,
        }
    }
