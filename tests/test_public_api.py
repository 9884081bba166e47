"""The public API is exactly `longrunning.__all__`, sorted, and every name in it exists."""

from __future__ import annotations

import types

import longrunning


def test_all_is_sorted_and_complete() -> None:
    assert longrunning.__all__ == sorted(longrunning.__all__)
    for name in longrunning.__all__:
        assert getattr(longrunning, name) is not None, name
    public = {
        name
        for name, value in vars(longrunning).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - {"annotations"} == set(longrunning.__all__)


def test_a_handler_declared_through_the_public_api_is_a_kind() -> None:
    @longrunning.operation_kind("example.echo", idempotent=True)
    async def echo(ctx: longrunning.OperationContext) -> longrunning.JsonValue:
        """Echo the request."""
        return ctx.request

    assert isinstance(echo, longrunning.OperationKind)
    assert (echo.name, echo.idempotent, echo.description) == (
        "example.echo",
        True,
        "Echo the request.",
    )
    assert not echo.blocking
