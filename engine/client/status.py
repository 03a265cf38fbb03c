"""The client's status, who listens to it, and waits that always end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

from engine.errors import EngineError

log = logging.getLogger(__name__)

Status = Literal["offline", "connecting", "syncing", "synced", "saved"]


class StatusBoard:
    """Holds the status, calls listeners on change, and wakes waiters on any news.

    Args:
        room: named in log lines.
    """

    def __init__(self, room: str) -> None:
        self.room = room
        self.value: Status = "offline"
        self._listeners: list[Callable[[Status], None]] = []
        self._changed = asyncio.Event()

    def subscribe(self, listener: Callable[[Status], None]) -> Callable[[], None]:
        """Call `listener(status)` on every change; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def set(self, status: Status) -> None:
        if status == self.value:
            return
        self.value = status
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log.exception("room %r: status listener failed", self.room)
        self.notify()

    def notify(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(
        self, done: Callable[[], bool], failed: Callable[[], EngineError | None]
    ) -> None:
        """Return once `done()` holds; raise `failed()` as soon as it is not None."""
        while not done():
            error = failed()
            if error is not None:
                raise error
            await self._changed.wait()
