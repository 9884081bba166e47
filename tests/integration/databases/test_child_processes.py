"""run_child with real child processes (sh, Python): output, exit status, and the cancel ladder
(SIGTERM to the process group, SIGKILL after the grace) down to the last grandchild."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from longrunning.databases import child_processes
from longrunning.databases.child_processes import run_child
from longrunning.engine.context import OperationCancelled
from tests.integration.databases.processes import live_in_group
from tests.recording_work import RecordingWork

WAIT_SECONDS = 10.0


async def test_lines_stdout_and_exit_status() -> None:
    lines: list[str] = []
    script = "echo out; echo one >&2; printf 'two\\r\\nthree' >&2; exit 3"
    result = await run_child(
        RecordingWork(),
        ["sh", "-c", script],
        env=dict(os.environ),
        on_line=lines.append,
        capture_stdout=True,
    )
    assert result.returncode == 3
    assert result.stdout == b"out\n"
    assert lines == ["one", "two", "three"]
    assert result.tail == ("one", "two", "three")


async def test_the_watcher_polls_with_the_child_pid() -> None:
    seen: list[int] = []
    finished = asyncio.Event()

    async def poll(pid: int) -> None:
        seen.append(pid)
        if len(seen) >= 3:
            finished.set()

    # The child lives until the watcher has polled three times (bounded by its own sleep).
    async def run() -> None:
        await run_child(RecordingWork(), ["sleep", "5"], env={}, poll=poll, poll_seconds=0.01)

    work = asyncio.create_task(run())
    await asyncio.wait_for(finished.wait(), WAIT_SECONDS)
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    assert len(set(seen)) == 1 and not live_in_group(seen[0])


async def test_a_cancel_ends_the_whole_group_even_what_ignores_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(child_processes, "KILL_GRACE_SECONDS", 0.3)
    work = RecordingWork()
    ready = asyncio.Event()
    pids: list[int] = []

    def on_line(text: str) -> None:
        pids.append(int(text))
        ready.set()

    # A grandchild that ignores SIGTERM (ignored signals are inherited), in the same group.
    script = "trap '' TERM; sleep 30 & echo $! >&2; wait"
    task = asyncio.create_task(run_child(work, ["sh", "-c", script], env={}, on_line=on_line))
    await asyncio.wait_for(ready.wait(), WAIT_SECONDS)
    pgid = os.getpgid(pids[0])
    assert pgid != os.getpgid(0)
    asked = time.monotonic()
    work.cancel()
    with pytest.raises(OperationCancelled):
        await asyncio.wait_for(task, WAIT_SECONDS)
    assert 0.3 <= time.monotonic() - asked < 3.0  # SIGTERM ignored, SIGKILL after the grace
    assert not live_in_group(pgid)


async def test_a_failing_line_handler_never_blocks_the_child() -> None:
    """Its exception comes once the child is done; meanwhile stderr is still read, so a
    child writing more than a pipe holds does not hang."""

    def on_line(text: str) -> None:
        raise ValueError(f"cannot handle {text[:3]}")

    program = "import sys\nfor _ in range(20000): sys.stderr.write('x' * 100 + '\\n')"
    with pytest.raises(ValueError, match="cannot handle xxx"):
        await asyncio.wait_for(
            run_child(RecordingWork(), [sys.executable, "-c", program], env={}, on_line=on_line),
            WAIT_SECONDS,
        )


async def test_a_missing_program_raises_oserror() -> None:
    with pytest.raises(FileNotFoundError):
        await run_child(RecordingWork(), ["/nonexistent/pg_dump"], env={})
