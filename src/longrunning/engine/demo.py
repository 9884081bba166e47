"""Built-in operation kinds for trying longrunning out: `demo.sleep` and `demo.fail`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from longrunning.core.errors import Code, InvalidRequest
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.engine.context import OperationContext, OperationFailed
from longrunning.engine.kinds import OperationKind, operation_kind

MAX_DEMO_SECONDS = 86_400.0


def _number(request: JsonObject, key: str, default: float, low: float, high: float) -> float:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(
            f"request.{key} must be a number from {low:g} to {high:g}", reason="INVALID_REQUEST"
        )
    return float(value)


def _check_sleep(request: JsonObject) -> None:
    unknown = set(request) - {"duration_seconds", "steps", "ignore_cancel"}
    if unknown:
        raise InvalidRequest(
            f"demo.sleep does not take {', '.join(sorted(unknown))}", reason="INVALID_REQUEST"
        )
    _number(request, "duration_seconds", 10, 0, MAX_DEMO_SECONDS)
    _number(request, "steps", 100, 1, 100_000)
    if not isinstance(request.get("ignore_cancel", False), bool):
        raise InvalidRequest(
            "request.ignore_cancel must be true or false", reason="INVALID_REQUEST"
        )


@operation_kind("demo.sleep", validate=_check_sleep, idempotent=True, max_attempts=3)
async def demo_sleep(ctx: OperationContext) -> JsonValue:
    """Sleep for duration_seconds in steps, reporting progress; stops at once when cancelled.

    With ignore_cancel it plays a stubborn handler: it never looks at the cancel token and
    swallows task cancellation, so a cancel ends it SUCCEEDED, "completed before cancel".
    """
    duration = _number(ctx.request, "duration_seconds", 10, 0, MAX_DEMO_SECONDS)
    steps = int(_number(ctx.request, "steps", 100, 1, 100_000))
    stubborn = ctx.request.get("ignore_cancel") is True
    step_seconds = duration / steps
    loop = asyncio.get_running_loop()
    started = loop.time()
    for step in range(steps):
        if stubborn:
            await _sleep_ignoring_cancel(step_seconds)
        else:
            await ctx.sleep(step_seconds)
        remaining = (steps - step - 1) * step_seconds
        eta = datetime.now(UTC) + timedelta(seconds=remaining) if remaining > 0 else None
        ctx.report_progress(
            100.0 * (step + 1) / steps, phase=f"step {step + 1} of {steps}", eta=eta
        )
    return {"slept_seconds": round(loop.time() - started, 3), "steps": steps}


async def _sleep_ignoring_cancel(seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            await asyncio.sleep(left)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()


def _check_fail(request: JsonObject) -> None:
    _number(request, "after_seconds", 0, 0, MAX_DEMO_SECONDS)
    code = request.get("code", "FAILED_PRECONDITION")
    if not isinstance(code, str) or code not in Code.__members__ or code == "OK":
        raise InvalidRequest(
            "request.code must be a google.rpc.Code name", reason="INVALID_REQUEST"
        )


@operation_kind("demo.fail", validate=_check_fail)
async def demo_fail(ctx: OperationContext) -> JsonValue:
    """Wait after_seconds, then fail with the given code and message."""
    await ctx.sleep(_number(ctx.request, "after_seconds", 0, 0, MAX_DEMO_SECONDS))
    message = ctx.request.get("message", "demo.fail failed, as asked")
    code = Code[str(ctx.request.get("code", "FAILED_PRECONDITION"))]
    raise OperationFailed(str(message), code=code, is_user_error=True)


DEMO_KINDS: tuple[OperationKind, ...] = (demo_sleep, demo_fail)
