"""What a benchmark measures and how results are kept: one `Result` per (workload, system,
metric), with the raw samples of every repetition. Pure data; no I/O but JSON (de)serialising.

Systems are named `longrunning-sqlite`, `longrunning-postgres`, a peer (`celery-redis`,
`dramatiq-redis`, `arq-redis`, `rq-redis`, `procrastinate-postgres`, `dbos-postgres`,
`dbos-sqlite`) or a ceiling (`ceiling-<what>`, e.g. `ceiling-sqlite-wal-normal`,
`ceiling-asgi-hello`). Workloads are `W1`..`W6` of issue 7, with a variant after a dot where a
workload has several (`W1.workers2`, `W4.google-grpc`).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "unsupported", "failed"]
Role = Literal["longrunning", "peer", "ceiling"]


def role_of(system: str) -> Role:
    if system.startswith("longrunning"):
        return "longrunning"
    if system.startswith("ceiling"):
        return "ceiling"
    return "peer"


@dataclass(frozen=True)
class Result:
    workload: str
    """`W1`, `W2.sequential`...: what was done."""
    system: str
    metric: str
    """e.g. `ops_per_second`, `p99_ms`, `peak_rss_mb`, `cancelled_fraction`."""
    unit: str
    higher_is_better: bool
    samples: list[float] = field(default_factory=list)
    """One value per repetition (at least 3 in a full run)."""
    status: Status = "ok"
    note: str = ""
    """Why unsupported or failed, or what a reader must know (the setup used)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (counts, per-repetition details)."""

    @property
    def role(self) -> Role:
        return role_of(self.system)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def spread(self) -> tuple[float, float] | None:
        """(min, max) of the samples."""
        return (min(self.samples), max(self.samples)) if self.samples else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Result:
        return cls(**value)


def dump(results: list[Result]) -> str:
    return json.dumps([r.to_json() for r in results], indent=1)


def load(text: str) -> list[Result]:
    return [Result.from_json(item) for item in json.loads(text)]


def unsupported(workloads: list[str], system: str, metric: str, note: str) -> list[Result]:
    """One `unsupported` Result per workload, saying why in `note`."""
    return [
        Result(
            workload=w,
            system=system,
            metric=metric,
            unit="",
            higher_is_better=metric.endswith("per_second"),
            status="unsupported",
            note=note,
        )
        for w in workloads
    ]
