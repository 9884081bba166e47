"""Supported helpers for testing handlers and code built on longrunning (public API).

Builders and settings only: nothing here starts servers or touches a real store.
"""

from __future__ import annotations

from longrunning.testing.config import FAST_ENGINE
from longrunning.testing.factories import (
    DEFAULT_KIND,
    DEFAULT_PARENT,
    OperationFields,
    make_operation,
)

__all__ = ["DEFAULT_KIND", "DEFAULT_PARENT", "FAST_ENGINE", "OperationFields", "make_operation"]
