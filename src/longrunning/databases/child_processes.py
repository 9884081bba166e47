"""A database client tool (pg_dump, pg_restore) run as a child process that a cancel stops.

The child runs in its own process group, so a cancel ends it and anything it started:
SIGTERM to the group, SIGKILL after a short grace, and the child is always reaped before
`run_child` returns or raises. Its stderr is read line by line as it comes (a tool's verbose
output drives progress) and its last lines are kept for error messages; a watcher polls
something (e.g. pg_stat_progress_copy) on a period while the child runs. Nothing here knows
PostgreSQL or builds command lines: callers do, and keep secrets out of argv.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from longrunning.databases.work import Work

CANCEL_POLL_SECONDS = 0.05
KILL_GRACE_SECONDS = 2.0
_REAP_SECONDS = 10.0
_MAX_LINE = 64 * 1024
_TAIL_LINES = 40

LineHandler = Callable[[str], None]
Poll = Callable[[int], Awaitable[None]]
"""Called with the child's pid on the watcher's period while the child runs."""


@dataclass(frozen=True, slots=True)
class ChildResult:
    returncode: int
    stdout: bytes
    """Empty unless the caller asked to capture it."""
    tail: tuple[str, ...]
    """The last lines of stderr, as written (callers remove secrets before showing them)."""


async def run_child(
    work: Work,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    on_line: LineHandler | None = None,
    poll: Poll | None = None,
    poll_seconds: float = 0.2,
    capture_stdout: bool = False,
) -> ChildResult:
    """Run argv to its end; raise what `work.checkpoint()` raises once a cancel stopped it.

    OSError (no such program, fork failure) propagates for the caller to map.
    """
    work.checkpoint()
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if capture_stdout else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    assert process.stderr is not None
    readers: list[asyncio.Task[Any]] = [
        asyncio.create_task(_read_lines(process.stderr, tail, on_line))
    ]
    if capture_stdout:
        assert process.stdout is not None
        readers.append(asyncio.create_task(process.stdout.read()))
    watcher = _Watcher(poll, process.pid, poll_seconds) if poll is not None else None
    waiting = asyncio.create_task(process.wait())
    try:
        while not waiting.done():
            await asyncio.wait({waiting}, timeout=CANCEL_POLL_SECONDS)
            if work.cancel_requested and not waiting.done():
                await _stop(process, KILL_GRACE_SECONDS)
    except BaseException:
        # The task itself was cancelled (the engine's last rung) or something broke: the child
        # must not outlive us, so no grace.
        waiting.cancel()
        await _stop(process, 0.0)
        raise
    finally:
        if watcher is not None:
            await watcher.close()
        stdout = await _drain(readers)
    work.checkpoint()
    return ChildResult(process.returncode or 0, stdout, tuple(tail))


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    """End the child's process group and reap the child."""
    if process.returncode is None and grace > 0:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), grace)
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(process.wait()), _REAP_SECONDS)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _drain(readers: list[asyncio.Task[Any]]) -> bytes:
    """The readers end when the group is gone and the pipes close; bounded all the same. A
    line handler's exception is raised here, once the child is done."""
    done, pending = await asyncio.wait(readers, timeout=_REAP_SECONDS)
    for task in pending:
        task.cancel()
    stdout = b""
    for task in readers:
        if task in done and not task.cancelled():
            if (failure := task.exception()) is not None:
                raise failure
            if isinstance(result := task.result(), bytes):
                stdout = result
    return stdout


async def _read_lines(
    stream: asyncio.StreamReader, tail: deque[str], on_line: LineHandler | None
) -> None:
    """Read to the end whatever a handler does: a child blocked on a full pipe never ends."""
    failure: Exception | None = None
    pending = b""
    while chunk := await stream.read(65536):
        *lines, pending = (pending + chunk).split(b"\n")
        pending = pending[-_MAX_LINE:]
        for raw in lines:
            failure = _line(raw, tail, on_line if failure is None else None) or failure
    if pending:
        failure = _line(pending, tail, on_line if failure is None else None) or failure
    if failure is not None:
        raise failure


def _line(raw: bytes, tail: deque[str], on_line: LineHandler | None) -> Exception | None:
    text = raw[:_MAX_LINE].decode(errors="replace").rstrip("\r")
    tail.append(text)
    if on_line is not None:
        try:
            on_line(text)
        except Exception as exc:
            return exc
    return None


class _Watcher:
    """Calls poll(pid) every `seconds` until closed; a failing poll propagates at close."""

    def __init__(self, poll: Poll, pid: int, seconds: float) -> None:
        self._poll = poll
        self._pid = pid
        self._seconds = seconds
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self._poll(self._pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._seconds)

    async def close(self) -> None:
        """Let a poll in flight finish (a query cancelled midway may spoil its connection)."""
        self._stop.set()
        done, _ = await asyncio.wait({self._task}, timeout=_REAP_SECONDS)
        if not done:
            self._task.cancel()
            # Not `suppress(CancelledError)`: that would swallow a cancel aimed at close() too.
            await asyncio.wait({self._task})
        elif (failure := self._task.exception()) is not None:
            raise failure
