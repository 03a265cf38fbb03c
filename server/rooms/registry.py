"""RoomRegistry: which rooms are in memory, loaded once however many clients race.

A room that fails to load is refused (Unavailable), never replaced by an empty
document that a later save could write over the real one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from engine.document import RoomDocument
from engine.errors import Close, Unavailable
from engine.names import validate_room_name
from server.config import Config
from server.hooks import Hooks
from server.metrics import Metrics
from server.rooms.actor import RoomActor, RoomState
from server.rooms.fanout import Fanout
from server.rooms.memory import MemoryReleaser
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)


# A fresh client gets the stored pieces as they are when there are few of them; past
# this, one encoding (made once, in the loading thread) is cheaper for every client than
# hundreds of separate updates, each its own transaction on the client.
MAX_STORED_PIECES = 32


def _build(
    updates: list[bytes],
    *,
    max_update_bytes: int | None,
    max_doc_bytes: int | None,
    whole_snapshot: bool,
) -> tuple[RoomDocument, list[bytes]]:
    """The room's document, and what a client with nothing gets as its first sync."""
    doc = RoomDocument.from_stored(
        updates,
        max_update_bytes=max_update_bytes,
        max_doc_bytes=max_doc_bytes,
        whole_snapshot=whole_snapshot,
    )
    if len(updates) <= MAX_STORED_PIECES:
        return doc, updates
    return doc, [doc.encode_snapshot()]


class RoomRegistry:
    def __init__(
        self,
        store: RoomStore,
        fanout: Fanout,
        config: Config,
        metrics: Metrics,
        hooks: Hooks | None = None,
    ) -> None:
        self.hooks = hooks or Hooks()
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self.store = store
        self.fanout = fanout
        self.config = config
        self.metrics = metrics
        self.rooms: dict[str, RoomActor] = {}
        self._loading: dict[str, asyncio.Future[RoomActor]] = {}
        self.closing = False
        self._memory = MemoryReleaser()

    async def acquire(self, name: str) -> RoomActor:
        """The running actor for `name`, loading it (once) if needed.

        Raises:
            RoomNameError: the name is not allowed.
            Unavailable: loading failed, or the server is shutting down.
        """
        validate_room_name(name)
        if self.closing:
            raise Unavailable("server is shutting down")
        actor = self.rooms.get(name)
        if actor is not None and actor.state is RoomState.RUNNING:
            return actor
        pending = self._loading.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RoomActor] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._loading[name] = future
        try:
            actor = await self._load(name)
        except Exception as exc:
            log.exception("room %r failed to load", name)
            error = Unavailable(f"room {name!r} failed to load: {exc}")
            future.set_exception(error)
            raise error from exc
        finally:
            del self._loading[name]
        self.rooms[name] = actor
        self.metrics.rooms_loaded.set(len(self.rooms))
        future.set_result(actor)
        return actor

    async def _load(self, name: str) -> RoomActor:
        loaded = await self.store.load(name)
        limits = self.config.limits
        # Off the event loop: a 17 MB room takes ~250 ms to rebuild, during which every
        # other room would wait. The loop takes the document over once it is built.
        doc, first_sync = await self.store.read(
            partial(
                _build,
                loaded.updates,
                max_update_bytes=limits.max_update_bytes,
                max_doc_bytes=limits.max_doc_bytes,
                whole_snapshot=loaded.snapshot_whole,
            )
        )
        actor = RoomActor(
            name,
            doc,
            loaded.last_seq,
            first_sync=first_sync,
            store=self.store,
            fanout=self.fanout,
            config=self.config,
            metrics=self.metrics,
            on_close=self._forget,
            check=self.hooks.check if self.hooks.checks else None,
        )
        self.fanout.follow(name, loaded.last_seq, actor)
        self._lifecycle_hook(self.hooks.on_load, name)
        return actor

    def _lifecycle_hook(self, hook: Callable[[str], Awaitable[None]], room: str) -> None:
        """Run on_load / on_unload beside the room: a failing hook is logged, never fatal."""

        async def run() -> None:
            try:
                await hook(room)
            except Exception:
                log.exception("room %r: %s hook failed", room, hook.__name__)

        task = asyncio.get_running_loop().create_task(run())
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    def _forget(self, actor: RoomActor) -> None:
        if self.rooms.get(actor.name) is actor:
            del self.rooms[actor.name]
            self.fanout.unfollow(actor.name)
            self.store.unloaded(actor.name)
            self._lifecycle_hook(self.hooks.on_unload, actor.name)
            if not self.closing:
                self._memory.soon()
            self.metrics.rooms_loaded.set(len(self.rooms))

    async def delete(self, name: str) -> bool:
        """Close the room's clients and remove everything stored for it."""
        actor = self.rooms.get(name)
        if actor is not None:
            await actor.drain()
            for peer in list(actor.peers.values()):
                peer.close(Close.UNAVAILABLE, "room deleted")
            actor.close()
        return await self.store.delete_room(name)

    async def close(self, drain_seconds: float) -> None:
        """Shutdown: finish queued work in every room, then close every client."""
        self.closing = True
        self._memory.cancel()
        actors = list(self.rooms.values())
        try:
            async with asyncio.timeout(drain_seconds):
                await asyncio.gather(*(a.drain() for a in actors))
        except TimeoutError:
            log.error("shutdown: rooms still busy after %.1f s", drain_seconds)
        for actor in actors:
            for peer in list(actor.peers.values()):
                peer.close(Close.GOING_AWAY)
            actor.close()
