"""RecordingWork: a plain `Work` for backend tests, recording what a backend reports.

It keeps every progress report and the merged metadata, and has a cancel flag a test sets with
`cancel()`; `checkpoint()` and `sleep()` then raise the engine's OperationCancelled, as the
engine's OperationContext does. No engine, store or worker behind it.
"""

from __future__ import annotations

import asyncio
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
    def __init__(self, operation_id: str = "op-test") -> None:
        self._operation_id = operation_id
        self._cancelled = asyncio.Event()
        self.reports: list[Report] = []
        self.metadata: JsonObject = {}

    @property
    def operation_id(self) -> str:
        return self._operation_id

    @property
    def cancel_requested(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def checkpoint(self) -> None:
        if self._cancelled.is_set():
            raise OperationCancelled

    async def sleep(self, seconds: float) -> None:
        self.checkpoint()
        try:
            async with asyncio.timeout(seconds):
                await self._cancelled.wait()
        except TimeoutError:
            return
        raise OperationCancelled

    def report_progress(
        self, percent: float, *, phase: str | None = None, eta: datetime | None = None
    ) -> None:
        self.reports.append(Report(percent, phase, eta))

    def update_metadata(self, values: JsonObject) -> None:
        self.metadata.update(values)

    @property
    def percents(self) -> list[float]:
        return [report.percent for report in self.reports]

    @property
    def last(self) -> Report | None:
        return self.reports[-1] if self.reports else None
