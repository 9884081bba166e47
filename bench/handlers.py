"""Operation kinds the benchmarks run (`longrunning serve --handlers bench.handlers`).

- `bench.noop` returns at once (W1, W2, W4, W6).
- `bench.steps` works in steps of `step_seconds` (5 ms by default): between steps it calls
  `ctx.checkpoint()`, and each step is an uninterruptible `asyncio.sleep` standing for real work
  (with `"cooperative_sleep": true` it waits with `ctx.sleep` instead, which a cancel wakes).
  When the request names a `trace_dir`, the handler appends one line per step to
  `trace_dir/<operation id>`: `step <monotonic> <wall clock>`, and a last line `exit ...` when
  the handler returns or raises. `time.monotonic()` is CLOCK_MONOTONIC, shared by every process
  on the machine, so the harness can compare it with the moment the client saw the terminal
  state: a step after that moment is the lie W3 looks for.
- `bench.sleep` sleeps `seconds` cooperatively (W6: many operations running at once).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from longrunning import OperationContext, operation_kind
from longrunning.core.errors import InvalidRequest
from longrunning.core.json_values import JsonObject, JsonValue

MAX_STEPS = 1_000_000


def _number(request: JsonObject, key: str, default: float, low: float, high: float) -> float:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(f"request.{key} must be a number from {low:g} to {high:g}")
    return float(value)


def _check_steps(request: JsonObject) -> None:
    unknown = set(request) - {"steps", "step_seconds", "trace_dir", "cooperative_sleep"}
    if unknown:
        raise InvalidRequest(f"bench.steps does not take {', '.join(sorted(unknown))}")
    _number(request, "steps", 100, 1, MAX_STEPS)
    _number(request, "step_seconds", 0.005, 0, 60)
    trace_dir = request.get("trace_dir")
    if trace_dir is not None and (not isinstance(trace_dir, str) or not Path(trace_dir).is_dir()):
        raise InvalidRequest("request.trace_dir must name an existing directory")


def _check_sleep(request: JsonObject) -> None:
    _number(request, "seconds", 1, 0, 86_400)


@operation_kind("bench.noop")
async def noop(ctx: OperationContext) -> JsonValue:
    """Return at once."""
    return None


@operation_kind("bench.steps", validate=_check_steps)
async def steps(ctx: OperationContext) -> JsonValue:
    """Work in short steps, checking for a cancel between them; optionally trace every step."""
    count = int(_number(ctx.request, "steps", 100, 1, MAX_STEPS))
    step_seconds = _number(ctx.request, "step_seconds", 0.005, 0, 60)
    cooperative = ctx.request.get("cooperative_sleep") is True
    trace_dir = ctx.request.get("trace_dir")
    fd = None
    if isinstance(trace_dir, str):
        path = Path(trace_dir) / ctx.operation_id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for _ in range(count):
            ctx.checkpoint()
            if fd is not None:
                os.write(fd, f"step {time.monotonic():.6f} {time.time():.6f}\n".encode())
            if cooperative:
                await ctx.sleep(step_seconds)
            else:
                await asyncio.sleep(step_seconds)
        return {"steps": count}
    finally:
        if fd is not None:
            os.write(fd, f"exit {time.monotonic():.6f} {time.time():.6f}\n".encode())
            os.close(fd)


@operation_kind("bench.sleep", validate=_check_sleep)
async def sleep(ctx: OperationContext) -> JsonValue:
    """Sleep `seconds`; a cancel wakes it at once."""
    await ctx.sleep(_number(ctx.request, "seconds", 1, 0, 86_400))
    return None
