"""Operation kinds: a handler plus the rules the engine applies to it, and the registry of them.

Users declare kinds in their own modules with `@operation_kind(...)` and load them with
`longrunning serve --handlers mypkg.ops`, in the manner of `celery -A`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from longrunning.core.errors import InvalidRequest
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.engine.context import OperationContext

AsyncHandler = Callable[[OperationContext], Awaitable[JsonValue]]
BlockingHandler = Callable[[OperationContext], JsonValue]
Handler = AsyncHandler | BlockingHandler


class ConflictPolicy(StrEnum):
    """What happens when an operation starts on a target another live operation holds."""

    QUEUE = "queue"
    """Wait: it is claimed once the other one has finished."""
    REJECT = "reject"
    """Refuse at start with ABORTED."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationKind:
    name: str
    handler: Handler
    description: str = ""
    title: str | None = None
    """What it does, for people, e.g. `CREATE DATABASE`; the operations it starts carry it
    (Azure's operationFriendlyName, the `operation` column of dm_operation_status). Default:
    the kind's name."""
    cancellable: bool = True
    """Whether a running operation may be cancelled (Azure's isCancellable)."""
    idempotent: bool = False
    """Safe to run again from the start after its worker was lost mid-way."""
    max_attempts: int = 1
    """Opt-in retries: attempts in all, for unexpected errors and lost workers."""
    retry_backoff_seconds: float = 1.0
    """Delay before the second attempt; doubles for each attempt after it."""
    conflict: ConflictPolicy = ConflictPolicy.QUEUE
    timeout_seconds: float | None = None
    """Default deadline, from the start; a start request may give its own."""
    cooperative_grace_seconds: float = 5.0
    """After the cancel token is set, how long before the handler is interrupted."""
    process_isolated: bool = False
    """Run in a child process leading its own process group, so that a cancel can end with
    SIGTERM and then SIGKILL to the group. The handler must be a module-level function."""
    kill_grace_seconds: float = 5.0
    """For process-isolated handlers: how long after SIGTERM before SIGKILL."""
    validate: Callable[[JsonObject], None] | None = None
    """Checks a start request; raises InvalidRequest (nothing is stored then)."""
    target: Callable[[JsonObject], str | None] | None = None
    """Derives the target resource from the request, for conflict control."""

    @property
    def blocking(self) -> bool:
        """A plain function runs in a thread, off the event loop."""
        return not inspect.iscoroutinefunction(self.handler)


def operation_kind(name: str, **options: object) -> Callable[[Handler], OperationKind]:
    """Declare a handler as an operation kind: `@operation_kind("acme.resize", idempotent=True)`."""

    def declare(handler: Handler) -> OperationKind:
        return OperationKind(
            name=name,
            handler=handler,
            description=(inspect.getdoc(handler) or "").split("\n\n")[0],
            **options,  # type: ignore[arg-type]
        )

    return declare


class HandlerRegistry:
    """The operation kinds a node knows, by name."""

    def __init__(self, kinds: Iterable[OperationKind] = ()) -> None:
        self._kinds: dict[str, OperationKind] = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: OperationKind) -> None:
        if kind.name in self._kinds and self._kinds[kind.name] is not kind:
            raise ValueError(f"operation kind {kind.name!r} is declared twice")
        if kind.max_attempts < 1:
            raise ValueError(f"operation kind {kind.name!r}: max_attempts must be at least 1")
        self._kinds[kind.name] = kind

    def add_module(self, module_name: str) -> None:
        """Import a module and add every OperationKind it defines at top level."""
        module = importlib.import_module(module_name)
        found = [v for v in vars(module).values() if isinstance(v, OperationKind)]
        if not found:
            raise ValueError(f"module {module_name!r} declares no @operation_kind handlers")
        for kind in found:
            self.add(kind)

    def get(self, name: str) -> OperationKind:
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(sorted(self._kinds)) or "none"
            raise InvalidRequest(
                f"unknown operation kind {name!r}; this server knows: {known}",
                reason="UNKNOWN_KIND",
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[OperationKind]:
        return iter(sorted(self._kinds.values(), key=lambda k: k.name))

    def names(self) -> list[str]:
        return sorted(self._kinds)
