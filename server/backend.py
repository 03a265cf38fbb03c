"""The storage-and-fan-out boundary under the room actors.

A room actor only needs: load a room, commit a batch durably, hear about updates that
other server processes committed, and share presence with them. `LmdbBackend` is the
embedded single-process default (nothing to hear from anyone); `RedisBackend`
(server/redis_backend.py) lets several processes share rooms through Redis Streams.
The actor does not know which one it has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from engine.storage import Append, DocStore, HistoryEntry, LoadedRoom, should_compact
from engine.storage.records import RoomMeta
from server.committer import GroupCommitter, writer_thread
from server.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


class RemoteSink(Protocol):
    """A loaded room, as the backend sees it: where other processes' news goes."""

    def remote_updates(self, updates: list[bytes], last_seq: int) -> None:
        """Durable updates committed by another process (apply and relay locally)."""
        ...

    def remote_awareness(self, payload: bytes) -> None:
        """An awareness update from another process's clients."""
        ...


class Backend(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def load(self, room: str) -> LoadedRoom: ...

    async def commit(self, appends: list[Append]) -> list[int]:
        """Durable on return; raises StorageError with nothing written on failure."""
        ...

    def after_commit(self, room: str) -> None:
        """A commit for `room` landed: compact in the background if the policy says so."""
        ...

    def follow(self, room: str, last_seq: int, sink: RemoteSink) -> None: ...

    def unfollow(self, room: str) -> None: ...

    def publish_awareness(self, room: str, payload: bytes) -> None: ...

    async def meta(self, room: str) -> RoomMeta | None: ...

    async def state_at(self, room: str, seq: int) -> bytes: ...

    async def history(self, room: str, after: int, limit: int) -> list[HistoryEntry]: ...

    async def rooms(self) -> list[RoomMeta]: ...

    async def delete_room(self, room: str) -> bool: ...


class LmdbBackend:
    """Embedded LMDB through a DocStore: writes on one thread, reads on others."""

    def __init__(self, store: DocStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        self._writer = writer_thread()
        self.committer = GroupCommitter(self._write_batch, metrics)
        self._compacting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.committer.start()

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self.committer.close()
        self._writer.shutdown(wait=True)
        self.store.kv.close()

    async def _in_writer(self, func: Callable[..., T], *args: Any) -> T:
        """Storage writes run in order on the one writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, func, *args)

    async def _write_batch(self, batch: list[Append]) -> list[int]:
        return await self._in_writer(self.store.append_many, batch)

    async def load(self, room: str) -> LoadedRoom:
        return await asyncio.to_thread(self.store.load, room)

    async def commit(self, appends: list[Append]) -> list[int]:
        return await self.committer.commit(appends)

    def after_commit(self, room: str) -> None:
        meta = self.store.meta(room)
        if room in self._compacting or meta is None:
            return
        if not should_compact(meta, self.store.policy):
            return
        self._compacting.add(room)
        task = asyncio.get_running_loop().create_task(self._compact(room))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compact(self, room: str) -> None:
        try:
            if await self._in_writer(self.store.compact, room) is not None:
                self.metrics.compactions.inc()
        except Exception:
            log.exception("room %r: compaction failed; the log is intact", room)
        finally:
            self._compacting.discard(room)

    def follow(self, room: str, last_seq: int, sink: RemoteSink) -> None:
        """One process owns the store: there is nobody else to hear from."""

    def unfollow(self, room: str) -> None:
        pass

    def publish_awareness(self, room: str, payload: bytes) -> None:
        pass

    async def meta(self, room: str) -> RoomMeta | None:
        return await asyncio.to_thread(self.store.meta, room)

    async def state_at(self, room: str, seq: int) -> bytes:
        return await asyncio.to_thread(self.store.state_at, room, seq)

    async def history(self, room: str, after: int, limit: int) -> list[HistoryEntry]:
        return await asyncio.to_thread(self.store.history, room, after, limit)

    async def rooms(self) -> list[RoomMeta]:
        return await asyncio.to_thread(self.store.rooms)

    async def delete_room(self, room: str) -> bool:
        return await self._in_writer(self.store.delete_room, room)
