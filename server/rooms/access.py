"""In-process access to live rooms: `rooms.edit(room, user=...)` for server-side edits.

A bot, an AI assistant or an embedding app edits a room like any client would: the block
gets a pycrdt Doc holding the room's current content; what the block changes becomes ONE
update, submitted through the room's actor (durable, broadcast, in the history under
`user`) when the block ends. An exception in the block submits nothing.

The Doc is a copy of the live document, not the document itself: the actor alone touches
the live one, so nothing the block does is visible to any client before it is durable,
and a block that fails leaves no trace. Edits to one room are serialized, so one client id
per process can author all of them without two edits ever claiming the same clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pycrdt import Doc, merge_updates

from engine.live_doc import LiveDoc
from server.rooms.registry import RoomRegistry


class Rooms:
    """The handle `Hooks.on_start` receives (and `app[ROOMS]` holds for embedding apps)."""

    def __init__(self, registry: RoomRegistry) -> None:
        self.registry = registry
        self.client_id = random.getrandbits(31)
        self._locks: dict[str, asyncio.Lock] = {}
        self.last_seq: dict[str, int] = {}

    @asynccontextmanager
    async def edit(self, room: str, user: str | None = None) -> AsyncIterator[Doc[Any]]:
        """`async with rooms.edit("lobby", user="bot") as doc:` edit `doc`; on leaving the
        block its changes are committed as one update (seq in `rooms.last_seq[room]`).

        Raises:
            RoomNameError, Unavailable: the room cannot be opened.
            UpdateRejected / QuotaExceeded: the edit is larger than the room allows.
        """
        lock = self._locks.setdefault(room, asyncio.Lock())
        async with lock:
            actor = await self.registry.acquire(room)
            actor.hold()
            try:
                copy = LiveDoc(Doc(client_id=self.client_id))
                copy.apply(actor.doc.encode_snapshot())
                doc = copy.doc
                changes: list[bytes] = []
                subscription = doc.observe(lambda event: changes.append(bytes(event.update)))
                try:
                    yield doc
                finally:
                    doc.unobserve(subscription)
                if changes:
                    update = changes[0] if len(changes) == 1 else merge_updates(*changes)
                    self.last_seq[room] = await actor.post_update(bytes(update), user, server=True)
            finally:
                actor.release()
