"""Operation kinds that exercise the engine's edges: blocking, stubborn, flaky, chatty, targets."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time

from longrunning.core.errors import Code
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.engine.context import OperationContext, OperationFailed
from longrunning.engine.kinds import ConflictPolicy, OperationKind, operation_kind

STEPS_AFTER_STOP: dict[str, int] = {}
"""Steps a handler took after its cancel token was set, by operation id."""
RUNNING_NOW: set[str] = set()
PEAK_RUNNING: list[int] = [0]
_lock = threading.Lock()


def _seconds(request: JsonObject, key: str = "seconds", default: float = 5.0) -> float:
    value = request.get(key, default)
    assert isinstance(value, int | float)
    return float(value)


@operation_kind("test.blocking")
def blocking(ctx: OperationContext) -> JsonValue:
    """A plain function in a thread that checks the token between 10 ms steps."""
    end = time.monotonic() + _seconds(ctx.request)
    while time.monotonic() < end:
        ctx.checkpoint()
        time.sleep(0.01)
        ctx.report_progress(50.0)
    return "done"


@operation_kind("test.blocking_stubborn", cooperative_grace_seconds=0.1)
def blocking_stubborn(ctx: OperationContext) -> JsonValue:
    """A plain function in a thread that never looks at the token: it cannot be interrupted."""
    end = time.monotonic() + _seconds(ctx.request)
    while time.monotonic() < end:
        if ctx.cancel_requested:
            with _lock:
                STEPS_AFTER_STOP[ctx.operation_id] = STEPS_AFTER_STOP.get(ctx.operation_id, 0) + 1
        time.sleep(0.01)
    return "finished anyway"


@operation_kind("test.blocking_idempotent", idempotent=True, max_attempts=3)
def blocking_idempotent(ctx: OperationContext) -> JsonValue:
    """An uninterruptible thread that may run again: 0.4 s on its first attempt, 1.5 s after."""
    time.sleep(0.4 if ctx.attempt == 1 else 1.5)
    return ctx.attempt


@operation_kind("test.async_stubborn", cooperative_grace_seconds=0.2)
async def async_stubborn(ctx: OperationContext) -> JsonValue:
    """Async, ignores the token, but lets task cancellation through: it gets interrupted."""
    await asyncio.sleep(_seconds(ctx.request))
    return "never"


@operation_kind("test.flaky", max_attempts=3, retry_backoff_seconds=0.01)
async def flaky(ctx: OperationContext) -> JsonValue:
    """Raises an unexpected error until its attempt reaches request.succeed_on."""
    succeed_on = ctx.request.get("succeed_on", 3)
    if ctx.attempt < (succeed_on if isinstance(succeed_on, int) else 3):
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


@operation_kind("test.user_error")
async def user_error(ctx: OperationContext) -> JsonValue:
    raise OperationFailed(
        "the table is locked", code=Code.ABORTED, severity=16, is_user_error=False
    )


@operation_kind("test.chatty")
async def chatty(ctx: OperationContext) -> JsonValue:
    """Reports progress 10,000 times as fast as it can."""
    for i in range(10_000):
        ctx.report_progress(i / 100)
        if i % 1000 == 0:
            await asyncio.sleep(0)
    return i


@operation_kind("test.metadata")
async def metadata(ctx: OperationContext) -> JsonValue:
    """Sets metadata in two steps; the second replaces one key and adds another."""
    ctx.update_metadata({"rows_total": 1000, "table": "orders"})
    await asyncio.sleep(0.05)
    ctx.update_metadata({"rows_total": 2000, "source": "backup-7"})
    return None


@operation_kind("test.naive_eta")
async def naive_eta(ctx: OperationContext) -> JsonValue:
    """A common mistake: an ETA without a time zone."""
    from datetime import datetime

    ctx.report_progress(10, eta=datetime.now())
    return "unreachable"


@operation_kind("test.invoice")
async def invoice(ctx: OperationContext) -> JsonValue:
    await asyncio.sleep(0.05)
    return {"invoice": 42}


@operation_kind("test.uncancellable", cancellable=False)
async def uncancellable(ctx: OperationContext) -> JsonValue:
    await asyncio.sleep(_seconds(ctx.request, default=0.3))
    return "kept going"


@operation_kind("test.process_cooperative", process_isolated=True)
def process_cooperative(ctx: OperationContext) -> JsonValue:
    """In a child process: reports progress, stops at its checkpoint."""
    end = time.monotonic() + _seconds(ctx.request)
    step = 0
    while time.monotonic() < end:
        ctx.checkpoint()
        step += 1
        ctx.report_progress(min(99.0, step))
        ctx.update_metadata({"child_pid": os.getpid()})
        time.sleep(0.01)
    return {"pid": os.getpid(), "steps": step}


@operation_kind(
    "test.process_stubborn",
    process_isolated=True,
    cooperative_grace_seconds=0.2,
    kill_grace_seconds=0.3,
)
def process_stubborn(ctx: OperationContext) -> JsonValue:
    """In a child process: ignores the token and SIGTERM, and runs a grandchild. Only SIGKILL to
    the process group ends it; request.pid_file receives the grandchild's pid."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen(["sleep", "60"])
    pid_file = ctx.request.get("pid_file")
    assert isinstance(pid_file, str)
    with open(pid_file, "w") as out:
        out.write(str(grandchild.pid))
    ctx.report_progress(10.0, phase="stubborn")
    while True:
        time.sleep(0.01)


async def _tracked(ctx: OperationContext) -> JsonValue:
    with _lock:
        RUNNING_NOW.add(ctx.operation_id)
        PEAK_RUNNING[0] = max(PEAK_RUNNING[0], len(RUNNING_NOW))
    try:
        await ctx.sleep(_seconds(ctx.request, default=0.2))
    finally:
        with _lock:
            RUNNING_NOW.discard(ctx.operation_id)
    return "ok"


tracked = OperationKind(name="test.tracked", handler=_tracked)
exclusive = OperationKind(name="test.exclusive", handler=_tracked, conflict=ConflictPolicy.REJECT)
queued = OperationKind(
    name="test.queued",
    handler=_tracked,
    target=lambda request: str(request.get("db")) if "db" in request else None,
)

TEST_KINDS = (
    blocking,
    blocking_stubborn,
    blocking_idempotent,
    async_stubborn,
    flaky,
    user_error,
    chatty,
    metadata,
    naive_eta,
    invoice,
    uncancellable,
    process_cooperative,
    process_stubborn,
    tracked,
    exclusive,
    queued,
)
