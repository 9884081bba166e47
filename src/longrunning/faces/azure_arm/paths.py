"""ARM resource paths: `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Sql/...`.

ARM matches its fixed segments case-insensitively and keeps the caller's spelling of names in
the ids it returns. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from longrunning.core.errors import InvalidRequest

PROVIDER = "Microsoft.Sql"
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_RESOURCE_GROUP = re.compile(r"[-\w._()]{0,89}[-\w_()]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Scope:
    """The subscription and resource group a request names, spelled as the caller did."""

    subscription: str
    resource_group: str

    @property
    def prefix(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}"
        )

    def server_id(self, server: str) -> str:
        return f"{self.prefix}/servers/{server}"

    def database_id(self, server: str, database: str) -> str:
        return f"{self.server_id(server)}/databases/{database}"


@dataclass(frozen=True, slots=True)
class ArmPath:
    scope: Scope
    rest: tuple[str, ...]
    """The segments after `providers/Microsoft.Sql`, as sent."""

    def shape(self) -> tuple[str, ...]:
        """The fixed segments lowercased, names replaced by `*`: what routing matches on."""
        return tuple(s.lower() if i % 2 == 0 else "*" for i, s in enumerate(self.rest))


class PathNotFound(Exception):
    """No such route under ARM."""


def check_uuid(value: str, what: str, *, reason: str) -> str:
    if not _GUID.fullmatch(value):
        raise InvalidRequest(f"the {what} {value[:80]!r} is not a valid GUID", reason=reason)
    return value


def parse(segments: list[str]) -> ArmPath:
    """`segments` is the decoded path after `/subscriptions/`."""
    if (
        len(segments) < 5
        or segments[1].lower() != "resourcegroups"
        or segments[3].lower() != "providers"
        or segments[4].lower() != PROVIDER.lower()
    ):
        raise PathNotFound
    subscription, resource_group = segments[0], segments[2]
    check_uuid(subscription, "subscription id", reason="InvalidSubscriptionId")
    if not _RESOURCE_GROUP.fullmatch(resource_group):
        raise InvalidRequest(
            f"resource group name {resource_group[:100]!r} is not valid: 1 to 90 letters, "
            "digits, '-', '_', '.', '(' or ')', not ending in '.'",
            reason="InvalidResourceGroupName",
        )
    return ArmPath(Scope(subscription, resource_group), tuple(segments[5:]))
