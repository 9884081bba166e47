"""In-process signals from the service to the workers of the same process.

A cancel accepted by this process reaches a handler running here at once, without waiting for
the store poll; other processes learn of it from the store. No store access here.
"""

from __future__ import annotations

from collections.abc import Callable


class CancelSignals:
    def __init__(self) -> None:
        self._listeners: dict[str, Callable[[], None]] = {}

    def subscribe(self, op_id: str, listener: Callable[[], None]) -> None:
        self._listeners[op_id] = listener

    def unsubscribe(self, op_id: str, listener: Callable[[], None]) -> None:
        """Remove `listener`, unless a newer claim of the same operation replaced it."""
        if self._listeners.get(op_id) is listener:
            del self._listeners[op_id]

    def publish(self, op_id: str) -> None:
        listener = self._listeners.get(op_id)
        if listener is not None:
            listener()
