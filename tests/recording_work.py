"""RecordingWork: a plain `Work` for database backend tests (unit and integration), recording what a
backend reports.

Not a mock of the engine: it implements the small protocol backends see (databases/work.py),
with a cancel flag a test sets directly, or that trips itself after a number of progress
reports or at a chosen phase, so that a test can stop the work at a precise point.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from longrunning.core.json_values import JsonObject
from longrunning.engine.context import OperationCancelled


@dataclass(frozen=True, slots=True)
class Report:
    percent: float
    phase: str | None
    eta: datetime | None


class RecordingWork:
    def __init__(
        self,
        operation_id: str = "op-test",
        *,
        cancel_after: int | None = None,
        cancel_when: Callable[[Report], bool] | None = None,
    ) -> None:
        self._operation_id = operation_id
        self.reports: list[Report] = []
        self.metadata: JsonObject = {}
        self.metadata_updates = 0
        self.checkpoints = 0
        self._cancel = threading.Event()
        self._cancel_after = cancel_after
        self._cancel_when = cancel_when

    @property
    def operation_id(self) -> str:
        return self._operation_id

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def checkpoint(self) -> None:
        self.checkpoints += 1
        if self._cancel.is_set():
            raise OperationCancelled

    async def sleep(self, seconds: float) -> None:
        self.checkpoint()
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(min(left, 0.01))
            self.checkpoint()

    def report_progress(
        self, percent: float, *, phase: str | None = None, eta: datetime | None = None
    ) -> None:
        report = Report(percent, phase, eta)
        self.reports.append(report)
        if self._cancel_after is not None and len(self.reports) >= self._cancel_after:
            self._cancel.set()
        if self._cancel_when is not None and self._cancel_when(report):
            self._cancel.set()

    def update_metadata(self, values: JsonObject) -> None:
        self.metadata.update(values)
        self.metadata_updates += 1

    @property
    def percents(self) -> list[float]:
        return [report.percent for report in self.reports]

    @property
    def phases(self) -> list[str | None]:
        return [report.phase for report in self.reports]

    @property
    def last(self) -> Report | None:
        return self.reports[-1] if self.reports else None
