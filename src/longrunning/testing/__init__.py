"""Supported helpers for testing handlers and code built on longrunning (public API).

Builders only: nothing here starts servers or touches a real store.
"""

from __future__ import annotations

from longrunning.testing.factories import (
    DEFAULT_KIND,
    DEFAULT_PARENT,
    OperationFields,
    make_operation,
)

__all__ = ["DEFAULT_KIND", "DEFAULT_PARENT", "OperationFields", "make_operation"]
