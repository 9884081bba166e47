"""Google resource names as the google.longrunning clients send them, parsed into what the
engine needs: which operation a name means, and which operations a ListOperations name lists.

Pure: no protobuf, no I/O. Both the REST and the gRPC transport parse names here, so that one
name means the same thing whichever way it arrives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from longrunning.core.errors import InvalidRequest
from longrunning.core.filtering import And, Comparator, Comparison, Filter, Not
from longrunning.engine.service import check_operation_id, check_parent

VERSION = re.compile(r"v\d+(?:(?:alpha|beta)\d*)?")
"""A REST version prefix: v1, v1beta, v1alpha, v2beta3..."""

ALL_PARENTS = "operations"
"""The proto's default ListOperations name: every operation, whatever its parent."""


@dataclass(frozen=True, slots=True)
class OperationRef:
    """The operation a name means."""

    id: str
    parent: str | None
    """The parent the name puts it under; None for `operations/{id}`, which names any parent;
    a last id of `-` (AIP-159) stands for any (`projects/p/locations/-`)."""
    spelled: str
    """The name as the client sent it, for messages."""

    def covers(self, parent: str) -> bool:
        """Whether an operation living under `parent` is the one this name means."""
        if self.parent is None:
            return True
        base, _, last = self.parent.rpartition("/")
        if last == "-":
            return parent.rpartition("/")[0] == base
        return parent == self.parent


@dataclass(frozen=True, slots=True)
class ListScope:
    """The operations a ListOperations name covers."""

    parent: str | None
    """Exactly this parent; None with `within` (a `-` wildcard) or for every parent."""
    within: Filter | None = None


def bad_name(name: str, why: str) -> InvalidRequest:
    shown = name if len(name) <= 200 else name[:197] + "..."
    return InvalidRequest(
        f"{shown!r} is not a valid name: {why}", reason="INVALID_NAME", metadata={"name": shown}
    )


def operation_ref(name: str) -> OperationRef:
    """`{parent}/operations/{uuid}` (parent: collection/id pairs such as projects/p/locations/l),
    the proto default `operations/{uuid}`, or the legacy `operations/{parent}/operations/{uuid}`.
    """
    spelled = name
    if name.startswith("operations/") and "/operations/" in name[len("operations/") :]:
        name = name[len("operations/") :]
    head, sep, op_id = name.rpartition("operations/")
    if not sep or not op_id or (head and not head.endswith("/")):
        raise bad_name(spelled, "expected {parent}/operations/{id} or operations/{id}")
    try:
        check_operation_id(op_id)
    except InvalidRequest:
        raise bad_name(spelled, "an operation id is a lowercase UUID") from None
    if not head:
        return OperationRef(id=op_id, parent=None, spelled=spelled)
    parent = head[:-1]
    base, _, last = parent.rpartition("/")
    try:
        check_parent(f"{base}/x" if last == "-" else parent)
    except InvalidRequest as exc:
        raise bad_name(spelled, exc.message) from None
    return OperationRef(id=op_id, parent=parent, spelled=spelled)


def list_scope(name: str) -> ListScope:
    """The parent a ListOperations `name` lists: `projects/p/locations/l`, `projects/p`, any other
    collection/id pairs, `operations` for all, the legacy form ending in `/operations`, and `-` as
    an id meaning any (`projects/p/locations/-`)."""
    parent = name.removesuffix("/operations")
    if parent in (ALL_PARENTS, ""):  # also api-core's REST default for it: operations/operations
        return ListScope(parent=None)
    base, slash, last = parent.rpartition("/")
    wild = last == "-"
    if "/-/" in f"/{base}/" or (wild and not slash):
        raise bad_name(name, "only the last id may be '-' (any), as in projects/p/locations/-")
    try:
        check_parent(f"{base}/x" if wild else parent)
    except InvalidRequest as exc:
        raise bad_name(name, exc.message) from None
    if not wild:
        return ListScope(parent=parent)
    # `*` matches any run of characters, `/` included: exclude the deeper parents too.
    pattern = f"{base}/*"
    return ListScope(
        parent=None,
        within=And(
            (
                Comparison("parent", Comparator.EQ, pattern),
                Not(Comparison("parent", Comparator.EQ, pattern + "/*")),
            )
        ),
    )
