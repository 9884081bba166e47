"""What a handler sees while it runs: its request, progress reporting, and the cancel token.

Handlers may be async (run as a task on the worker's loop) or plain functions (run in a thread),
so everything here is safe to call from either. No store access here: the execution writes.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from longrunning.core.errors import Code
from longrunning.core.json_values import (
    JsonObject,
    JsonValue,
    check_json,
    check_json_object,
    storable_text,
)
from longrunning.core.operation import DEFAULT_SEVERITY, Failure, Operation, Progress

_T = TypeVar("_T")


class OperationCancelled(Exception):
    """Raised by `checkpoint()` once the operation must stop; let it propagate."""


class OperationFailed(Exception):
    """Raise this from a handler to fail with a structured error instead of a traceback."""

    def __init__(
        self,
        message: str,
        *,
        code: Code = Code.FAILED_PRECONDITION,
        is_user_error: bool = True,
        severity: int = DEFAULT_SEVERITY,
        details: tuple[JsonValue, ...] = (),
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        if isinstance(severity, bool) or not isinstance(severity, int):
            raise TypeError("severity must be an integer")
        details = tuple(check_json(list(details), what="details"))  # type: ignore[arg-type]
        self.failure = Failure(
            code=code,
            message=storable_text(message),
            details=details,
            severity=severity,
            is_user_error=is_user_error,
        )
        self.retryable = retryable


class OperationContext:
    """Handed to every handler call.

    `report_progress` is cheap: the engine coalesces writes, so call it as often as you like.
    `checkpoint()` raises OperationCancelled once a cancel was requested (or the deadline passed);
    call it between steps to stop cooperatively and cleanly.
    """

    def __init__(
        self,
        operation: Operation,
        *,
        loop: asyncio.AbstractEventLoop | None,
        on_progress: Callable[[Progress], None],
        on_metadata: Callable[[JsonObject], None] | None = None,
    ) -> None:
        self._operation = operation
        self._loop = loop
        self._on_progress = on_progress
        self._on_metadata = on_metadata
        # A threading.Event for handlers in threads, an asyncio.Event for `sleep` on the loop.
        self._stop = threading.Event()
        self._stopped = asyncio.Event()

    @property
    def operation_id(self) -> str:
        return self._operation.id

    @property
    def name(self) -> str:
        return self._operation.name

    @property
    def request(self) -> JsonObject:
        return self._operation.request

    @property
    def attempt(self) -> int:
        return self._operation.attempt

    @property
    def labels(self) -> dict[str, str]:
        return self._operation.labels

    @property
    def cancel_requested(self) -> bool:
        """True once the handler should stop (cancel requested or deadline passed)."""
        return self._stop.is_set()

    def checkpoint(self) -> None:
        if self._stop.is_set():
            raise OperationCancelled

    async def sleep(self, seconds: float) -> None:
        """Sleep, but raise OperationCancelled as soon as the operation must stop."""
        self.checkpoint()
        if self._loop is None:
            raise RuntimeError("ctx.sleep needs an async handler; use time.sleep and checkpoint()")
        try:
            async with asyncio.timeout(seconds):
                await self._stopped.wait()
        except TimeoutError:
            return
        raise OperationCancelled

    def update_metadata(self, values: JsonObject) -> None:
        """Merge JSON values into the operation's metadata (coalesced like progress)."""
        checked = check_json_object(values, what="metadata")
        if self._on_metadata is not None:
            self._call(self._on_metadata, checked)

    def report_progress(
        self, percent: float, *, phase: str | None = None, eta: datetime | None = None
    ) -> None:
        # Checked here, in the handler's own call, so a mistake fails loudly where it is made
        # instead of poisoning the write that records the outcome.
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise TypeError("percent must be a number from 0 to 100")
        if not math.isfinite(percent):
            raise ValueError("percent must be finite")
        if phase is not None and (not isinstance(phase, str) or len(phase) > 1024):
            raise TypeError("phase must be a string of at most 1024 characters")
        if phase is not None:
            check_json(phase, what="phase")
        if eta is not None and (not isinstance(eta, datetime) or eta.tzinfo is None):
            raise TypeError("eta must be a timezone-aware datetime, e.g. datetime.now(UTC)")
        self._call(self._on_progress, Progress(percent=float(percent), phase=phase, eta=eta))

    def _call(self, callback: Callable[[_T], None], value: _T) -> None:
        """Run an engine callback on the engine's loop, from the loop or from a handler thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None or running is self._loop:
            callback(value)
        else:
            self._loop.call_soon_threadsafe(callback, value)

    def request_stop(self) -> None:
        """Set the token (engine side, on the loop): the first rung of the cancel ladder."""
        self._stop.set()
        self._stopped.set()
