"""Operation kinds the Google face tests start, loaded with `serve --handlers`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from longrunning import JsonValue, OperationContext, operation_kind


@operation_kind("test.point_of_no_return", cancellable=False)
async def point_of_no_return(ctx: OperationContext) -> JsonValue:
    """Runs request.seconds and cannot be cancelled once running."""
    seconds = ctx.request.get("seconds", 5)
    assert isinstance(seconds, int | float)
    await asyncio.sleep(seconds)
    return {"finished": True}


@operation_kind("test.numbers")
async def numbers(ctx: OperationContext) -> JsonValue:
    """Returns a JSON array, not an object (packed as google.protobuf.Value)."""
    return [1, 2, 3]


@operation_kind("test.marker")
async def marker(ctx: OperationContext) -> JsonValue:
    """Sleeps request.seconds, then writes request.path: proof that the work ran to its end."""
    seconds, path = ctx.request["seconds"], ctx.request["path"]
    assert isinstance(seconds, int | float) and isinstance(path, str)
    await ctx.sleep(seconds)
    await asyncio.to_thread(Path(path).write_text, ctx.operation_id)
    return {"path": path}
