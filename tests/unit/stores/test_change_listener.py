"""ChangeListener.stop ends the listener even when its first cancel is lost (on Python 3.11 a
cancel that meets a wait just ending, a connect say, can be)."""

from __future__ import annotations

import asyncio

from longrunning.stores.postgres_listen import ChangeListener
from tests.hung_tasks import within


class CancelLosingListener(ChangeListener):
    """Listens to nothing, and loses the first cancel it meets."""

    lost = 0

    async def _listen(self) -> None:
        self.listening.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.lost += 1
        await asyncio.sleep(3600)


async def test_stop_ends_a_listener_that_lost_a_cancel() -> None:
    listener = CancelLosingListener("postgresql://unused", lambda: None, where="nowhere")
    await listener.start(timeout=1)
    await within(5, "the listener's stop", listener.stop())
    assert listener.lost == 1
