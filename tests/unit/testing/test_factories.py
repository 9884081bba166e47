"""make_operation: defaults a test can rely on, and overrides for every field."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

from longrunning.core.lifecycle import invariant_violations
from longrunning.core.operation import Operation, State
from longrunning.testing import DEFAULT_KIND, DEFAULT_PARENT, OperationFields, make_operation


def test_defaults_are_a_sound_pending_operation_with_a_fresh_uuid() -> None:
    before = datetime.now(UTC)
    op = make_operation()
    assert op.state is State.PENDING
    assert (op.parent, op.kind) == (DEFAULT_PARENT, DEFAULT_KIND)
    assert uuid.UUID(op.id).version == 4
    assert before <= op.create_time == op.update_time <= datetime.now(UTC)
    assert invariant_violations(op) == []
    assert make_operation().id != op.id


def test_the_given_time_sets_create_and_update_time() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    op = make_operation(now=now)
    assert op.create_time == op.update_time == now


def test_overrides_replace_fields() -> None:
    op = make_operation(kind="demo.copy", labels={"a": "b"}, attempt=2)
    assert (op.kind, op.labels, op.attempt) == ("demo.copy", {"a": "b"}, 2)


def test_every_operation_field_can_be_overridden() -> None:
    assert set(OperationFields.__annotations__) == {f.name for f in dataclasses.fields(Operation)}
