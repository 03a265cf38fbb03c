"""The client's status, who listens to it, and waits that always end.

`StatusBoard` is the bare status; `ReplicaStatus` adds what a room's status is made of
(its replica, its sync session, a fatal error, a refusal of our edits) and the `synced`
and `saved` waits, once for `Client` (a socket per room) and `MultiplexedRoom` (many rooms
on one socket).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

from engine.client.errors import ClientClosed, WriteDenied
from engine.client.replica import Replica
from engine.errors import EngineError
from engine.session import SyncSession

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


class ReplicaStatus(StatusBoard):
    """A room's status as its replica and sync session make it, and the waits on it.

    Attributes:
        error: what stopped the room for good (bad token, a close by the server); every
            wait raises it.
        denied: why the server refused our edits (read-only token); `saved` raises it.
    """

    def __init__(self, room: str, replica: Replica) -> None:
        super().__init__(room)
        self.replica = replica
        self.error: EngineError | None = None
        self.denied: str | None = None

    def refresh(self, session: SyncSession | None) -> None:
        """Syncing until both halves of the handshake are done; then synced, or saved
        once every local edit is durable on the server."""
        if session is None:
            return
        if not (session.synced and session.answered):
            self.set("syncing")
        else:
            self.set("saved" if self.replica.saved else "synced")

    def failure(self, *, writes: bool = False) -> EngineError | None:
        """Why a wait must end without success, if it must."""
        if self.error is not None:
            return self.error
        if writes and self.denied is not None:
            return WriteDenied(f"the server refused our edits: {self.denied}")
        if self.replica.closed:
            return ClientClosed("client closed")
        return None

    async def synced(self) -> None:
        await self.wait(lambda: self.value in ("synced", "saved"), self.failure)

    async def saved(self) -> None:
        """Every local edit made so far is durable on the server."""
        target = self.replica.pending_mark
        await self.wait(lambda: self.replica.confirmed >= target, lambda: self.failure(writes=True))
