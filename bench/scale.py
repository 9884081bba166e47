"""How big a benchmark run is: the counts, durations and service addresses every workload reads.

`full_scale` is the run behind the published report; `smoke_scale` is the CI run (seconds, tiny
counts, one repetition, no peers, no wrk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Scale:
    smoke: bool
    """CI: seconds, tiny counts, 1 repetition, no peers, no wrk."""
    repetitions: int
    """>= 3 in a full run."""
    w1_operations: int
    w2_round_trips: int
    w3_cancels: int
    w4_seconds: float
    w4_connections: int
    w4_stored: int
    w5_stored: int
    w5_pages: int
    w6_running: int
    postgres_admin_url: str | None
    """e.g. postgresql://postgres@127.0.0.1:5432/postgres; None: no PostgreSQL runs."""
    redis_url: str
    """e.g. redis://127.0.0.1:6379/0."""
    work_dir: Path
    """Scratch space for this run."""


def full_scale(
    work_dir: Path,
    postgres_admin_url: str | None,
    redis_url: str = "redis://127.0.0.1:6379/0",
    repetitions: int = 3,
) -> Scale:
    return Scale(
        smoke=False,
        repetitions=repetitions,
        w1_operations=5000,
        w2_round_trips=200,
        w3_cancels=50,
        w4_seconds=10.0,
        w4_connections=64,
        w4_stored=10_000,
        w5_stored=1_000_000,
        w5_pages=20,
        w6_running=10_000,
        postgres_admin_url=postgres_admin_url,
        redis_url=redis_url,
        work_dir=work_dir,
    )


def smoke_scale(
    work_dir: Path,
    postgres_admin_url: str | None,
    redis_url: str = "redis://127.0.0.1:6379/0",
    repetitions: int = 1,
) -> Scale:
    return Scale(
        smoke=True,
        repetitions=repetitions,
        w1_operations=100,
        w2_round_trips=20,
        w3_cancels=5,
        w4_seconds=1.0,
        w4_connections=4,
        w4_stored=100,
        w5_stored=1000,
        w5_pages=3,
        w6_running=50,
        postgres_admin_url=postgres_admin_url,
        redis_url=redis_url,
        work_dir=work_dir,
    )
