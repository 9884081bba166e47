"""Engine settings as frozen dataclasses, and the system clock. No I/O beyond reading the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    lease_seconds: float = 10.0
    """How long a claim holds without renewal; a lost worker is recovered within about this."""
    heartbeat_seconds: float | None = None
    """How often leases are renewed; default a third of the lease."""
    poll_seconds: float = 1.0
    """Fallback wake-up when no change notification arrives."""
    cancel_check_seconds: float = 0.05
    """Shortest interval between re-reads of running operations after a store change."""
    progress_interval_seconds: float = 0.2
    """Progress writes per operation are coalesced to at most one per interval."""
    reaper_interval_seconds: float | None = None
    """How often expired leases are looked for; default a quarter of the lease, at most 1 s."""
    retention: timedelta = timedelta(days=30)
    """Finished operations are purged this long after they ended."""
    purge_interval_seconds: float = 60.0
    concurrency: int = 16
    """Operations one worker runs at once."""
    queues: tuple[str, ...] = ("default",)
    shutdown_grace_seconds: float = 10.0

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 3

    @property
    def reaper_interval(self) -> float:
        return self.reaper_interval_seconds or min(1.0, self.lease_seconds / 4)
