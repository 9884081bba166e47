"""A user's handler module, loaded with `serve --handlers tests.acceptance.example_handlers`."""

from __future__ import annotations

from longrunning import JsonValue, OperationContext, operation_kind


@operation_kind("example.add")
async def add(ctx: OperationContext) -> JsonValue:
    """Add request.a and request.b."""
    a, b = ctx.request["a"], ctx.request["b"]
    assert isinstance(a, int) and isinstance(b, int)
    ctx.report_progress(50, phase="adding")
    return {"sum": a + b}
