"""Work: what a database backend sees of the operation it runs, and progress with an ETA.

The slice of the engine's OperationContext the backends use, as a Protocol, so that backends
are tested with a plain recorder and never depend on how the engine runs them. Callable from the
event loop and from a backend's threads alike (OperationContext is).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from longrunning.core.json_values import JsonObject


class Work(Protocol):
    @property
    def operation_id(self) -> str: ...

    @property
    def cancel_requested(self) -> bool: ...

    def checkpoint(self) -> None:
        """Raise (the engine's OperationCancelled) once the work must stop."""

    async def sleep(self, seconds: float) -> None:
        """Sleep, raising as `checkpoint` does as soon as the work must stop."""

    def report_progress(
        self, percent: float, *, phase: str | None = None, eta: datetime | None = None
    ) -> None: ...

    def update_metadata(self, values: JsonObject) -> None: ...


class ProgressClock:
    """Reports `done` of `total` units as a percent with an ETA extrapolated from the pace."""

    def __init__(self, work: Work) -> None:
        self._work = work
        self._started = time.monotonic()
        self._last = -1.0

    def report(self, done: float, total: float, phase: str) -> None:
        """Monotonic by construction: a smaller estimate than before (totals are often
        estimates, e.g. PostgreSQL's reltuples) never moves the bar backwards."""
        fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
        percent = max(100 * fraction, self._last)
        self._last = percent
        eta = None
        elapsed = time.monotonic() - self._started
        if 0 < fraction < 1:
            eta = datetime.now(UTC) + timedelta(seconds=elapsed * (1 - fraction) / fraction)
        self._work.report_progress(percent, phase=phase, eta=eta)
