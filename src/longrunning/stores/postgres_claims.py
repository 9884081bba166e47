"""How the PostgreSQL store claims operations, and the target locks that claims share with inserts.

Candidates are the oldest claimable rows, locked FOR UPDATE SKIP LOCKED so that claimers pass each
other by; a transaction-scoped advisory lock per target keeps two claimers (or a claimer and an
exclusive insert) from both acting on one target. The store supplies the transaction and the
write (its version compare-and-set); no lifecycle rules here.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from longrunning.core.operation import Operation
from longrunning.stores._rows import ACTIVE_STATES, DATETIME, SELECT_COLUMNS, from_row

Connection = psycopg.AsyncConnection[TupleRow]
Take = Callable[[list[Operation]], Awaitable[list[Operation]]]
"""Stores the claim transition for candidates this transaction has locked (in one statement);
returns them as stored."""

_RUNNING_ON_TARGET = (
    f"SELECT 1 FROM operations WHERE target = %s AND state IN {ACTIVE_STATES}"
    " AND state = 'RUNNING' AND id <> %s LIMIT 1"
)
# Candidates whose target another claimer holds right now are skipped over, up to this many.
_CLAIM_CANDIDATES = 8
_CLAIMABLE = (
    f"SELECT {SELECT_COLUMNS} FROM operations AS o"
    " WHERE o.state = 'PENDING' AND o.cancel_requested_at IS NULL"
    " AND o.kind = ANY(%s) AND o.queue = ANY(%s) AND NOT (o.id = ANY(%s))"
    " AND (o.not_before IS NULL OR o.not_before <= %s)"
    " AND (o.target IS NULL OR NOT EXISTS (SELECT 1 FROM operations AS r"
    f" WHERE r.target = o.target AND r.state IN {ACTIVE_STATES} AND r.state = 'RUNNING'))"
    " ORDER BY o.create_time, o.id LIMIT {limit} FOR UPDATE OF o SKIP LOCKED"
)
_CLAIMABLE_MANY = _CLAIMABLE.format(limit="%s")
_CLAIMABLE_ONE = _CLAIMABLE.format(limit="1")


async def claim_batch(
    conn: Connection, kinds: list[str], queues: list[str], now: datetime, take: Take, *, limit: int
) -> list[Operation]:
    """Inside the caller's transaction, claim up to `limit` operations, oldest first."""
    # No transaction waits for a second target lock, or two claimers could each hold a target
    # the other waits for: once this one holds a target's lock, the batch ends at the next
    # candidate with a target (a later batch takes it). Operations without a target keep
    # coming, so a batch may stop short of `limit` with more still claimable.
    # The claim must walk operations_pending in order and stop at the first row. Until
    # autovacuum has analyzed a freshly filled table, the planner believes a handful of rows
    # are pending and sorts them all instead: 11 ms a claim at 5,000 pending rather than 0.2.
    await conn.execute("SET LOCAL enable_sort = off")
    claimed: list[Operation] = []
    holds_target = False
    while len(claimed) < limit:
        # Up to the rest of the batch at once: the leading candidates without a target are
        # taken as they come (one query for many claims); one with a target goes through
        # _next_candidate, which takes its lock.
        wanted = limit - len(claimed)
        rows = await _fetch(conn, _CLAIMABLE_MANY, (kinds, queues, [], now, wanted))
        candidates = [from_row(row, DATETIME) for row in rows]
        untargeted = list(itertools.takewhile(lambda op: op.target is None, candidates))
        if untargeted:
            claimed += await take(untargeted)
        if len(untargeted) == len(candidates):
            if len(candidates) < wanted:
                break  # nothing more is claimable
            continue
        if untargeted:
            continue  # the next round starts at the candidate with a target
        current, locked = await _next_candidate(
            conn, kinds, queues, now, may_lock_target=not holds_target
        )
        holds_target = holds_target or locked
        if current is None:
            break
        claimed += await take([current])
    return claimed


async def lock_target(conn: Connection, target: str) -> None:
    """Hold `target`'s lock until the transaction ends (waiting for it if another holds it)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (target,))


async def _next_candidate(
    conn: Connection, kinds: list[str], queues: list[str], now: datetime, *, may_lock_target: bool
) -> tuple[Operation | None, bool]:
    """The oldest claimable operation, its row locked, or None (also at a candidate with a
    target, unless `may_lock_target`); and whether a target lock was taken."""
    passed: list[str] = []
    locked = False
    for _ in range(_CLAIM_CANDIDATES):
        row = await _first(conn, _CLAIMABLE_ONE, (kinds, queues, passed, now))
        if row is None:
            break
        current = from_row(row, DATETIME)
        if current.target is not None:
            if not may_lock_target:
                break
            # Two claimers must not both start work on one target: whoever takes the
            # target's lock second sees the first's claim once it has committed.
            await lock_target(conn, current.target)
            locked = True
            if await _first(conn, _RUNNING_ON_TARGET, (current.target, current.id)):
                passed.append(current.id)
                continue
        return current, locked
    return None, locked


async def _first(conn: Connection, sql: str, params: Any) -> TupleRow | None:
    cursor = await conn.execute(sql.encode(), params)
    return await cursor.fetchone()


async def _fetch(conn: Connection, sql: str, params: Any) -> list[TupleRow]:
    cursor = await conn.execute(sql.encode(), params)
    return await cursor.fetchall()
