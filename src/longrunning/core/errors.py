"""The one error tree of longrunning, and the canonical status codes it is expressed in.

Every error carries a `Code` (the `google.rpc.Code` numbering, which every face can map to its
own wire) and a stable machine-readable `reason`. Nothing here knows HTTP, gRPC or XML.

    LongrunningError
    ├── InvalidRequest           INVALID_ARGUMENT   bad filter, page token, name, body
    ├── OperationNotFound        NOT_FOUND
    ├── OperationAlreadyExists   ALREADY_EXISTS     request id reused with other parameters
    ├── FailedPrecondition       FAILED_PRECONDITION
    │   ├── NotCancellable                          the kind cannot be cancelled while running
    │   └── InvalidTransition                       a lifecycle rule forbids the change
    ├── TargetBusy               ABORTED            another operation holds the target
    ├── LeaseLost                ABORTED            a worker's write was fenced off
    └── StoreError               UNAVAILABLE        the store failed (driver error as __cause__)
        └── StoreConflict        ABORTED            compare-and-set lost; the caller retries
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import ClassVar


class Code(IntEnum):
    """Canonical status codes, numbered as `google.rpc.Code`."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class LongrunningError(Exception):
    """Something went wrong in longrunning."""

    code: ClassVar[Code] = Code.UNKNOWN
    default_reason: ClassVar[str] = "UNKNOWN"

    def __init__(
        self,
        message: str | None = None,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})
        """The dynamic values of the message, by lowerCamelCase key (Google's ErrorInfo)."""
        super().__init__(self.message)


class InvalidRequest(LongrunningError):
    """The request is not valid."""

    code = Code.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class OperationNotFound(LongrunningError):
    """No such operation."""

    code = Code.NOT_FOUND
    default_reason = "OPERATION_NOT_FOUND"


class OperationAlreadyExists(LongrunningError):
    """An operation with this request id exists with different parameters."""

    code = Code.ALREADY_EXISTS
    default_reason = "REQUEST_ID_REUSED"


class ResourceNotFound(LongrunningError):
    """No such resource (a database server, a database)."""

    code = Code.NOT_FOUND
    default_reason = "RESOURCE_NOT_FOUND"


class ResourceExists(LongrunningError):
    """The resource exists already."""

    code = Code.ALREADY_EXISTS
    default_reason = "RESOURCE_EXISTS"


class FailedPrecondition(LongrunningError):
    """The operation is not in a state that allows this."""

    code = Code.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class NotCancellable(FailedPrecondition):
    """This operation is running and its kind cannot be cancelled."""

    default_reason = "NOT_CANCELLABLE"


class InvalidTransition(FailedPrecondition):
    """The lifecycle does not allow this change."""

    default_reason = "INVALID_TRANSITION"


class TargetBusy(LongrunningError):
    """Another operation is already working on the same target."""

    code = Code.ABORTED
    default_reason = "TARGET_BUSY"


class LeaseLost(LongrunningError):
    """This worker no longer holds the operation's lease; its write was refused."""

    code = Code.ABORTED
    default_reason = "LEASE_LOST"


class StoreError(LongrunningError):
    """The operation store is unavailable."""

    code = Code.UNAVAILABLE
    default_reason = "STORE_UNAVAILABLE"


class StoreConflict(StoreError):
    """The operation changed since it was read."""

    code = Code.ABORTED
    default_reason = "CONCURRENT_MODIFICATION"
