"""Bounded teardown for fixtures that wait on background work: on a hang, print what every task
is awaiting (the whole chain, innermost last) and fail, instead of waiting for pytest-timeout,
whose dump shows only the idle event loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable


def dump_tasks() -> None:
    for each in asyncio.all_tasks():
        print(f"--- task {each.get_name()}", file=sys.stderr)
        awaited: object = each.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else ""
            print(f"    {awaited!r} {where}", file=sys.stderr)
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)


async def within(seconds: float, what: str, work: Awaitable[object]) -> None:
    """Await `work` for at most `seconds`; past that, dump every task and fail."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        dump_tasks()
        task.cancel()
        raise AssertionError(f"{what} did not finish within {seconds} s (tasks dumped to stderr)")
    task.result()
