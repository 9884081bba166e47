"""How far a pg_dump or pg_restore child has got, from its verbose output and what is polled.

DumpProgress counts rows: the tables' row estimates make the total, the tables pg_dump has
finished (its "dumping contents of table" lines) and the COPY in flight (pg_stat_progress_copy)
make what is done; a table that turns out bigger than its estimate raises the total, so done
never exceeds it. LoadProgress counts the archive's bytes pg_restore has read (its file position,
from /proc), since an archive holds no row counts; where /proc is not readable, the TABLE DATA
entries restored. Both report through ProgressClock (monotonic, with an ETA). No I/O here but
reading /proc.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from longrunning.databases.work import ProgressClock

_DUMPING = re.compile(r'dumping contents of table "(.*)"$')
_PROCESSING = re.compile(r'processing data for table "(.*)"$')
_RESTORING = re.compile(r"^pg_restore: (creating .*|executing .*)$")
_BEFORE_END = 0.99
"""A load's share of the archive read, at most, until pg_restore is done: after the data come
indexes and constraints, which read nothing more."""


@dataclass(slots=True)
class Table:
    oid: int
    label: str
    """As pg_dump names it in its verbose output: `schema.name`, unquoted."""
    estimate: float
    seen: int = 0

    @property
    def rows(self) -> float:
        return max(self.estimate, float(self.seen))


class DumpProgress:
    def __init__(self, clock: ProgressClock, database: str, tables: list[Table]) -> None:
        self._clock = clock
        self._database = database
        self._tables = list(tables)
        self._by_label = {table.label: table for table in tables}
        self._finished: list[Table] = []
        self._current: Table | None = None
        self.started = 0
        self.copy_view = True
        """False once pg_stat_progress_copy cannot be read (PostgreSQL before 14)."""

    @property
    def rows(self) -> int:
        return round(sum(table.rows for table in self._tables))

    def line(self, text: str) -> None:
        match = _DUMPING.search(text)
        if match is None:
            return
        table = self._by_label.get(match[1])
        if table is None:  # not one we estimated (an extension's configuration table)
            table = Table(0, match[1], 0.0)
            self._tables.append(table)
        if self._current is not None:
            self._finished.append(self._current)
        self._current = table
        self.started += 1
        self.report()

    def copied(self, relid: int, tuples: int) -> None:
        # By relid, so a poll racing the next table's start is not counted for it.
        if self._current is not None and relid == self._current.oid:
            self._current.seen = max(self._current.seen, tuples)

    def report(self) -> None:
        total = sum(table.rows for table in self._tables)
        done = sum(table.rows for table in self._finished)
        if self._current is None:
            phase = f"reading the schema of {self._database}"
        else:
            done += self._current.seen
            phase = (
                f"dumping table {self._current.label}, {self.started} of "
                f"{max(len(self._tables), self.started)} "
                f"({round(done):,} of ~{round(total):,} rows)"
            )
        self._clock.report(done, total, phase)

    def finish(self) -> None:
        self._clock.report(1, 1, f"dumped {self.started} tables, ~{self.rows:,} rows")


class LoadProgress:
    def __init__(
        self, clock: ProgressClock, file: str, size: int, entries: int, archive: str
    ) -> None:
        self._clock = clock
        self._file = file
        self._size = size
        self._entries = entries
        self._archive = archive
        self._fd: str | None = None
        self._position: int | None = None
        self._processed = 0
        self._table: str | None = None
        self._tuples = 0
        self._doing = f"reading {file}"
        self.copy_view = True

    def line(self, text: str) -> None:
        if match := _PROCESSING.search(text):
            self._processed += 1
            self._table, self._tuples = match[1], 0
            self.report()
        elif match := _RESTORING.search(text):
            self._table, self._doing = None, match[1]

    def copied(self, tuples: int) -> None:
        if self._table is not None:
            self._tuples = max(self._tuples, tuples)

    def read_position(self, pid: int) -> None:
        """Where pg_restore (pid) is in the archive, from /proc/{pid}/fdinfo (Linux)."""
        try:
            if self._fd is None:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == self._archive:
                        self._fd = fd
                        break
                else:
                    return
            with open(f"/proc/{pid}/fdinfo/{self._fd}", encoding="ascii") as info:
                for line in info:
                    if line.startswith("pos:"):
                        self._position = max(self._position or 0, int(line.split()[1]))
        except (OSError, ValueError):
            self._fd = None

    def report(self) -> None:
        if self._position is not None and self._size > 0:
            done, total = min(float(self._position), _BEFORE_END * self._size), self._size
        else:
            done, total = max(self._processed - 1, 0), max(self._entries, 1)
        if self._table is not None:
            phase = (
                f"restoring table {self._table}, {self._processed} of {self._entries} "
                f"({self._tuples:,} rows so far)"
            )
        else:
            phase = f"restoring {self._file}: {self._doing}"
        self._clock.report(done, total, phase)

    def finish(self) -> None:
        self._clock.report(1, 1, f"restored {self._entries} tables from {self._file}")
