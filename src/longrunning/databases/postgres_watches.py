"""Progress of long PostgreSQL statements, read from the server while they run.

Watches for `run_statement` (postgres_sessions.py), polled from a second session:
`IndexProgress` reads pg_stat_progress_create_index, `VacuumProgress` pg_stat_progress_cluster,
and `CopyProgress` estimates a CREATE DATABASE ... TEMPLATE from the WAL it writes (PostgreSQL
has no progress view for it). The mapping from a progress row to a percent is pure
(`index_percent`, `cluster_fraction`); the statements themselves are the backend's. Progress of
pg_dump and pg_restore is not here (postgres_dump_progress.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from longrunning.core.json_values import JsonObject
from longrunning.databases.postgres_sessions import Connection
from longrunning.databases.work import ProgressClock, Work

# CREATE INDEX CONCURRENTLY's phases, in order, as ranges of the whole build's percent. The two
# table scans and the tree loading are where the time goes; waits are short unless writers hold
# the table, and then their own counts move.
_INDEX_PHASES: tuple[tuple[str, float, float], ...] = (
    ("initializing", 0, 2),
    ("waiting for writers before build", 2, 5),
    ("building index: scanning table", 5, 45),
    ("building index: sorting live tuples", 45, 55),
    ("building index: loading tuples in tree", 55, 70),
    ("building index", 5, 70),  # another access method's own sub-phases
    ("waiting for writers before validation", 70, 72),
    ("index validation: scanning index", 72, 80),
    ("index validation: sorting tuples", 80, 83),
    ("index validation: scanning table", 83, 97),
    ("waiting for old snapshots", 97, 99),
    ("waiting for readers before marking dead", 99, 100),
    ("waiting for readers before dropping", 99, 100),
)

_INDEX_QUERY = (
    "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total,"
    " lockers_done, lockers_total FROM pg_stat_progress_create_index WHERE pid = %s"
)


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One row of pg_stat_progress_create_index."""

    phase: str
    blocks_done: int = 0
    blocks_total: int = 0
    tuples_done: int = 0
    tuples_total: int = 0
    lockers_done: int = 0
    lockers_total: int = 0

    def to_json(self, pid: int) -> JsonObject:
        return {
            "pid": pid,
            "phase": self.phase,
            "blocksDone": self.blocks_done,
            "blocksTotal": self.blocks_total,
            "tuplesDone": self.tuples_done,
            "tuplesTotal": self.tuples_total,
            "lockersDone": self.lockers_done,
            "lockersTotal": self.lockers_total,
        }


def _ratio(done: int, total: int) -> float | None:
    return min(max(done / total, 0.0), 1.0) if total > 0 else None


def index_percent(row: IndexRow) -> tuple[float, str]:
    """The whole build's percent at this row, and the phase text saying where it is. An
    unknown phase maps to 0: the ProgressClock keeps the bar where it was."""
    start, end = 0.0, 0.0
    for name, low, high in _INDEX_PHASES:
        if row.phase == name or row.phase.startswith(name + ":"):
            start, end = low, high
            break
    fraction: float | None
    if row.phase.startswith("waiting"):
        fraction = _ratio(row.lockers_done, row.lockers_total)
        detail = f" ({row.lockers_done} of {row.lockers_total} transactions)" if fraction else ""
    elif "scanning" in row.phase:
        fraction = _ratio(row.blocks_done, row.blocks_total)
        detail = f" ({100 * fraction:.0f}% of blocks)" if fraction is not None else ""
    else:
        fraction = _ratio(row.tuples_done, row.tuples_total)
        detail = f" ({100 * fraction:.0f}% of tuples)" if fraction is not None else ""
    return start + (end - start) * (fraction or 0.0), row.phase + detail


class IndexProgress:
    """Reports a CREATE INDEX CONCURRENTLY's progress, and its raw counters as metadata."""

    def __init__(self, work: Work, clock: ProgressClock) -> None:
        self._work = work
        self._clock = clock
        self._last: IndexRow | None = None

    async def __call__(self, monitor: Connection, pid: int) -> None:
        cursor = await monitor.execute(_INDEX_QUERY, (pid,))
        found = await cursor.fetchone()
        if found is None:  # not started yet, or just ended
            return
        phase, *counters = found
        row = IndexRow(str(phase), *(int(value or 0) for value in counters))
        percent, text = index_percent(row)
        self._clock.report(percent, 100, text)
        if row != self._last:
            self._work.update_metadata({"postgres": row.to_json(pid)})
            self._last = row


_CLUSTER_QUERY = (
    "SELECT phase, heap_blks_scanned, heap_blks_total FROM pg_stat_progress_cluster WHERE pid = %s"
)
# VACUUM FULL: the scan writes the new heap as it goes; what follows is a fixed share.
_CLUSTER_AFTER_SCAN = {
    "sorting tuples": 0.70,
    "writing new heap": 0.75,
    "swapping relation files": 0.80,
    "rebuilding index": 0.85,
    "performing final cleanup": 0.98,
}
_CLUSTER_SCAN_SHARE = 0.70


def cluster_fraction(phase: str, scanned: int, total: int) -> float:
    """How far one table's VACUUM FULL is, from 0 to 1."""
    if phase in _CLUSTER_AFTER_SCAN:
        return _CLUSTER_AFTER_SCAN[phase]
    if phase.endswith("scanning heap"):
        return _CLUSTER_SCAN_SHARE * (_ratio(scanned, total) or 0.0)
    return 0.0


@dataclass(slots=True)
class VacuumProgress:
    """One table's VACUUM FULL within an ALTER DATABASE over many: this table moves the bar of
    the whole (`whole` units) from `start` by `share`, its size's part of the run."""

    clock: ProgressClock
    whole: float
    start: float
    share: float
    title: str

    async def __call__(self, monitor: Connection, pid: int) -> None:
        cursor = await monitor.execute(_CLUSTER_QUERY, (pid,))
        found = await cursor.fetchone()
        if found is None:
            return
        phase, scanned, total_blocks = str(found[0]), int(found[1] or 0), int(found[2] or 0)
        fraction = cluster_fraction(phase, scanned, total_blocks)
        blocks = _ratio(scanned, total_blocks)
        detail = f" ({100 * blocks:.0f}% of blocks)" if blocks is not None else ""
        self.clock.report(
            self.start + fraction * self.share, self.whole, f"{self.title}: {phase}{detail}"
        )


_WAL_QUERY = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)"
_COPY_CAP = 0.95
"""Of the estimate: other writers add WAL too, so the bar stops short of the end."""


@dataclass(slots=True)
class CopyProgress:
    """CREATE DATABASE ... TEMPLATE (PostgreSQL 15+ copies with WAL_LOG, logging every block
    it copies): the WAL written since the start, against the source's size, is an estimate."""

    clock: ProgressClock
    start_lsn: str
    source_bytes: int
    title: str

    async def __call__(self, monitor: Connection, pid: int) -> None:
        if self.source_bytes <= 0:
            return
        cursor = await monitor.execute(_WAL_QUERY, (self.start_lsn,))
        found = await cursor.fetchone()
        written = float(found[0]) if found and found[0] is not None else 0.0
        done = min(written, _COPY_CAP * self.source_bytes)
        self.clock.report(
            done,
            self.source_bytes,
            f"{self.title}: about {_megabytes(done)} of {_megabytes(self.source_bytes)} "
            "(estimated from the WAL written)",
        )


def _megabytes(size: float) -> str:
    return f"{size / 1_048_576:.1f} MB"
