"""The classic face's codec: operations as RDFE `ServiceResource` XML, errors as RDFE `<Error>`
XML, the `sys.dm_operation_status` reading of an operation (state codes, whole percent), and the
checks of request values (`x-ms-version`, GUIDs). Pure functions: no I/O, no Starlette.

The XML is written as escaped text rather than through ElementTree: RDFE puts the default
namespace and `xmlns:i` on the root, which ElementTree only writes unprefixed after a
process-wide `register_namespace`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import IntEnum

from longrunning.core.errors import Code, InvalidRequest, LongrunningError
from longrunning.core.operation import Operation, State
from longrunning.databases.names import DatabaseRef, server_target
from longrunning.faces.statuses import HTTP_STATUS

NAMESPACE = "http://schemas.microsoft.com/windowsazure"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CONTENT_TYPE = "application/xml; charset=utf-8"
RESOURCE_TYPE = "Microsoft.SqlAzure.DatabaseOperation"
LINK_BASE = "https://management.core.windows.net:8443"
"""Where RDFE's SelfLink and ParentLink point; no client follows them."""

_ROOT_ATTRIBUTES = f'xmlns="{NAMESPACE}" xmlns:i="{XSI}"'
# Characters XML 1.0 cannot carry at all, even as references: a handler's error message with a
# stray control character must not make the whole document unparsable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
"""`\\r` as a reference, since parsers turn a literal one into `\\n`."""


class DmState(IntEnum):
    """`sys.dm_operation_status.state`, and the classic `StateId`; the name is `state_desc`."""

    PENDING = 0
    IN_PROGRESS = 1
    COMPLETED = 2
    FAILED = 3
    CANCEL_IN_PROGRESS = 4
    CANCELLED = 5


_DM_STATES = {
    State.PENDING: DmState.PENDING,
    State.SUCCEEDED: DmState.COMPLETED,
    State.FAILED: DmState.FAILED,
    State.CANCELLED: DmState.CANCELLED,
}


def dm_state(op: Operation) -> DmState:
    if op.state is State.RUNNING:
        return DmState.CANCEL_IN_PROGRESS if op.cancel_requested else DmState.IN_PROGRESS
    return _DM_STATES[op.state]


def percent_complete(op: Operation) -> int:
    """Whole percent, as the view truncates it; a success is 100 whatever its handler said."""
    if op.state is State.SUCCEEDED:
        return 100
    return min(max(int(op.progress.percent), 0), 100)


def dotnet_datetime(value: datetime) -> str:
    """.NET's round-trip format in UTC: seven fractional digits and a Z, as RDFE sends."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass(frozen=True, slots=True)
class ServerScope:
    """The subscription and server a classic request names; the links RDFE returns use them."""

    subscription: str
    server: str

    @property
    def target(self) -> str:
        return server_target(self.server)

    @property
    def server_link(self) -> str:
        return f"{LINK_BASE}/{self.subscription}/services/sqlservers/servers/{self.server}"

    def operation_link(self, op_id: str) -> str:
        return f"{self.server_link}/databaseoperations/{op_id}"

    def holds(self, op: Operation) -> bool:
        """Whether the operation works on this server or on something under it."""
        target = op.target or ""
        return target == self.target or target.startswith(self.target + "/")


def escape(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text).translate(_ESCAPES)


def _element(name: str, value: str | int | None) -> str:
    if value is None:
        return f'<{name} i:nil="true"/>'
    return f"<{name}>{escape(str(value))}</{name}>"


def _resource_body(op: Operation, scope: ServerScope) -> str:
    database = DatabaseRef.from_target(op.target)
    error = op.error
    fields: list[tuple[str, str | int | None]] = [
        ("Name", op.display_title),
        ("Type", RESOURCE_TYPE),
        ("State", dm_state(op).name),
        ("SelfLink", scope.operation_link(op.id)),
        ("ParentLink", scope.server_link),
        ("Id", op.id),
        ("StateId", int(dm_state(op))),
        ("SessionActivityId", op.id),
        ("DatabaseName", None if database is None else database.database),
        ("PercentComplete", percent_complete(op)),
        # .NET reads the int fields with int.Parse: they always hold digits, 0 for none.
        ("ErrorCode", 0 if error is None else int(error.code)),
        ("Error", None if error is None else error.message),
        ("ErrorSeverity", 0 if error is None else error.severity),
        ("ErrorState", 0),
        ("StartTime", dotnet_datetime(op.create_time)),
        ("LastModifyTime", dotnet_datetime(op.update_time)),
    ]
    return "".join(_element(name, value) for name, value in fields)


def service_resource(op: Operation, scope: ServerScope) -> str:
    """The answer to a GET of one operation: a root `<ServiceResource>`."""
    return f"<ServiceResource {_ROOT_ATTRIBUTES}>{_resource_body(op, scope)}</ServiceResource>"


def service_resources(ops: Iterable[Operation], scope: ServerScope) -> str:
    """The answer to a list: `<ServiceResources>` holding one `<ServiceResource>` each."""
    items = "".join(f"<ServiceResource>{_resource_body(op, scope)}</ServiceResource>" for op in ops)
    return f"<ServiceResources {_ROOT_ATTRIBUTES}>{items}</ServiceResources>"


def error_xml(code: str, message: str) -> str:
    return (
        f"<Error {_ROOT_ATTRIBUTES}>{_element('Code', code)}{_element('Message', message)}</Error>"
    )


_RDFE_CODES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "Forbidden",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    409: "ConflictError",
    429: "TooManyRequests",
    501: "NotImplemented",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
"""RDFE's error codes by HTTP status; anything else is an InternalError."""


def rdfe_code(status: int) -> str:
    return _RDFE_CODES.get(status, "InternalError")


def error_for(exc: LongrunningError) -> tuple[int, str]:
    """The HTTP status and `<Error>` body of a refusal."""
    status = HTTP_STATUS.get(exc.code, 500)
    if exc.code is Code.CANCELLED:  # 499 is no status a classic client knows
        status = 500
    return status, error_xml(rdfe_code(status), exc.message)


MIN_VERSION = date(2012, 3, 1)
"""The oldest `x-ms-version` the operation-status API knows (the .NET client's)."""
_VERSION = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def supported_version(header: str | None) -> bool:
    """Whether an `x-ms-version` header names a real date on or after 2012-03-01."""
    match = _VERSION.fullmatch((header or "").strip())
    if match is None:
        return False
    try:
        return date(int(match[1]), int(match[2]), int(match[3])) >= MIN_VERSION
    except ValueError:  # 2014-02-30
        return False


def check_guid(value: str, what: str) -> str:
    """A GUID in its 36-character form, in either case, as the canonical lowercase UUID."""
    if not _GUID.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidRequest(f"The {what} '{shown}' is not a valid GUID.", reason="INVALID_GUID")
    return value.lower()
