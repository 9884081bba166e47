"""Engine timings for tests: the same behaviour as production, in tens of milliseconds."""

from __future__ import annotations

from longrunning.engine.config import EngineConfig

FAST_ENGINE = EngineConfig(
    lease_seconds=1.0,
    poll_seconds=0.05,
    cancel_check_seconds=0.01,
    progress_interval_seconds=0.02,
    reaper_interval_seconds=0.05,
    concurrency=4,
    shutdown_grace_seconds=0.5,
)
"""Leases of a second, wake-ups every 50 ms: lease loss, recovery and shutdown in a test."""
