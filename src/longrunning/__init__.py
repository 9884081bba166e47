"""longrunning: run, track and truthfully cancel long-running operations.

The public API for handler authors and embedders; everything else is internal.
"""

from __future__ import annotations

from longrunning.core.errors import Code, LongrunningError
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.engine.context import OperationCancelled, OperationContext, OperationFailed
from longrunning.engine.kinds import ConflictPolicy, HandlerRegistry, OperationKind, operation_kind

__all__ = [
    "CancelOutcome",
    "Code",
    "ConflictPolicy",
    "Failure",
    "HandlerRegistry",
    "JsonObject",
    "JsonValue",
    "LongrunningError",
    "Operation",
    "OperationCancelled",
    "OperationContext",
    "OperationFailed",
    "OperationKind",
    "Progress",
    "State",
    "operation_kind",
]
