"""The DocStore as the room actors use it: off the event loop, writes on one thread.

Every storage write (group commits, snapshots, deletes, metadata) runs in order on ONE
writer thread, which the KV log store requires and which keeps LMDB's single-writer lock
uncontended; reads run on other threads. Commits go through the group committer: all
updates that arrive while one commit is in flight share the next transaction and fsync.

Snapshots: when the policy says so, the actor hands in its live document's encoding for
exactly the seqs it has applied (`snapshot`), so compaction never replays the log. Where
several processes append to a room (Redis), no actor knows that its document holds exactly
1..seq, so the snapshot is rebuilt from the store instead (`rebuild_snapshot`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.storage import Append, DocStore, HistoryEntry, LoadedRoom, RoomInfo, should_compact
from server.metrics import Metrics
from server.rooms.committer import GroupCommitter, writer_thread

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class _Tail:
    """What a loaded room has appended since its last snapshot (for the policy)."""

    updates: int = 0
    bytes: int = 0
    snapshot_bytes: int = 0


class RoomStore:
    """Async face of a DocStore: group commit, background snapshots, reads in threads."""

    def __init__(self, docs: DocStore, metrics: Metrics, *, shared: bool = False) -> None:
        self.docs = docs
        self.metrics = metrics
        self.shared = shared
        self._writer = writer_thread()
        self.committer = GroupCommitter(self._write_batch, metrics)
        self._tails: dict[str, _Tail] = {}
        self._compacting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.committer.start()

    async def close(self) -> None:
        await self.committer.close()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._writer.shutdown(wait=True)
        self.docs.close()

    async def write(self, func: Callable[..., T], *args: Any) -> T:
        """Run a storage write on the writer thread, in order with every other write."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, func, *args)

    async def read(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(func, *args)

    async def _write_batch(self, batch: list[Append]) -> list[int]:
        return await self.write(self.docs.append_many, batch)

    # ------------------------------------------------------------------ rooms

    async def load(self, room: str) -> LoadedRoom:
        loaded = await self.read(self.docs.load, room)
        snapshot_bytes = len(loaded.updates[0]) if loaded.snapshot_seq else 0
        self._tails[room] = _Tail(loaded.last_seq - loaded.snapshot_seq, 0, snapshot_bytes)
        return loaded

    def unloaded(self, room: str) -> None:
        self._tails.pop(room, None)

    async def commit(self, appends: list[Append]) -> list[int]:
        """Durable on return; raises StorageError with nothing written on failure."""
        seqs = await self.committer.commit(appends)
        for append in appends:
            tail = self._tails.setdefault(append.room, _Tail())
            tail.updates += 1
            tail.bytes += len(append.update)
        return seqs

    def snapshot_due(self, room: str) -> bool:
        tail = self._tails.get(room)
        if tail is None or room in self._compacting:
            return False
        return should_compact(tail.updates, tail.bytes, tail.snapshot_bytes, self.docs.policy)

    def snapshot(self, room: str, seq: int, encoded: bytes) -> None:
        """Write a snapshot of exactly log entries 1..seq in the background."""
        self._spawn(room, self.write(self.docs.compact, room, (seq, encoded), True), len(encoded))

    def rebuild_snapshot(self, room: str) -> None:
        """Write a snapshot rebuilt from the store, in the background."""
        self._spawn(room, self.read(self._compact_from_store, room), None)

    def _compact_from_store(self, room: str) -> Any:
        return self.docs.compact(room, force=True)

    def _spawn(self, room: str, work: Any, size: int | None) -> None:
        self._compacting.add(room)
        task = asyncio.get_running_loop().create_task(self._compact(room, work, size))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compact(self, room: str, work: Any, size: int | None) -> None:
        try:
            snapshot = await work
            if snapshot is not None:
                self.metrics.compactions.inc()
                self._tails[room] = _Tail(0, 0, size or len(snapshot.update))
        except Exception:
            log.exception("room %r: snapshot failed; the log is intact", room)
        finally:
            self._compacting.discard(room)

    # ------------------------------------------------------------------ reads

    async def info(self, room: str) -> RoomInfo | None:
        return await self.read(self.docs.info, room)

    async def rooms(self) -> list[RoomInfo]:
        return await self.read(self.docs.rooms)

    async def state_at(self, room: str, seq: int) -> bytes:
        return await self.read(self.docs.state_at, room, seq)

    async def history(self, room: str, after: int, limit: int) -> list[HistoryEntry]:
        return await self.read(self.docs.history, room, after, limit)

    async def delete_room(self, room: str) -> bool:
        self._tails.pop(room, None)
        return await self.write(self.docs.delete_room, room)
