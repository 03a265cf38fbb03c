"""The DocStore as the room actors use it: off the event loop, writes on one thread.

Every storage write (group commits, snapshots, deletes, metadata) runs in order on ONE
writer thread, which the KV log store requires and which keeps LMDB's single-writer lock
uncontended; reads run on other threads. Commits go through the group committer: all
updates that arrive while one commit is in flight share the next transaction and fsync.

Snapshots: when the policy says so, the actor hands in its live document's encoder for
exactly the seqs it has applied (`snapshot`), so compaction never replays the log. Where
several processes append to a room (Redis), no actor knows that its document holds exactly
1..seq, so the snapshot is rebuilt from the store instead (`rebuild_snapshot`).

A big room's snapshot is built in the compute worker process on either path: pycrdt holds
the GIL for the whole of a call, so encoding 100 MB stalls the event loop (and every other
room) for hundreds of milliseconds, in a thread as much as on the loop. The stored pieces
are read in a thread (reading records is cheap), folded by `rebuild` in the worker, and the
result written on the writer thread. Small rooms stay in-process: a process round trip
costs more than encoding a few kilobytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from engine.document import rebuild_whole
from engine.storage import Append, DocStore, HistoryEntry, LoadedRoom, RoomInfo, should_compact
from engine.storage.records import Snapshot, UpdateRecord
from server.compute import Compute
from server.metrics import Metrics
from server.rooms.committer import WriterThread

log = logging.getLogger(__name__)
T = TypeVar("T")

# Past this many stored bytes (snapshot + log since), a room's snapshot is built in the
# compute worker; below it, one encoding costs well under a millisecond in-process.
BIG_ROOM_BYTES = 1 << 20


class Commits:
    """Tells waiters that a room's log grew durably (locally committed, or relayed from
    another process), and remembers the highest durable seq seen per room, so readers of
    the log (change feed, hooks, webhooks) never serve an entry before it is durable."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._durable: dict[str, int] = {}
        self.listeners: list[Callable[[str, int], None]] = []

    def notify(self, room: str, seq: int) -> None:
        if seq > self._durable.get(room, 0):
            self._durable[room] = seq
        event = self._events.pop(room, None)
        if event is not None:
            event.set()
        for listener in self.listeners:
            listener(room, seq)

    def durable(self, room: str) -> int | None:
        """The highest seq known durable (None: nothing committed since start)."""
        return self._durable.get(room)

    def forget(self, room: str) -> None:
        self._durable.pop(room, None)

    async def wait(self, room: str, after: int, seconds: float) -> bool:
        """Wait until the room has a durable seq past `after` (at once if it already
        has: a commit between a reader's last read and this call is not missed); False
        after `seconds` without one."""
        if self._durable.get(room, 0) > after:
            return True
        event = self._events.setdefault(room, asyncio.Event())
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return False
        return True


@dataclass(slots=True)
class _Tail:
    """What a loaded room has appended since its last snapshot (for the policy), and
    what the log held past that snapshot when the room was loaded (for its size only:
    the policy counts from the load, as it always has)."""

    updates: int = 0
    bytes: int = 0
    snapshot_bytes: int = 0
    loaded_bytes: int = 0

    @property
    def stored_bytes(self) -> int:
        """What the room's stored pieces weigh: about what building its snapshot costs."""
        return self.snapshot_bytes + self.loaded_bytes + self.bytes


class RoomStore:
    """Async face of a DocStore: group commit, background snapshots, reads in threads.

    Args:
        compute: the worker pool big rooms' snapshots are built in; None builds every
            snapshot in-process.
        big_room_bytes: from this many stored bytes on, a room counts as big.
    """

    def __init__(
        self,
        docs: DocStore,
        metrics: Metrics,
        *,
        shared: bool = False,
        compute: Compute | None = None,
        big_room_bytes: int = BIG_ROOM_BYTES,
    ) -> None:
        self.docs = docs
        self.metrics = metrics
        self.shared = shared
        self.compute = compute
        self.big_room_bytes = big_room_bytes
        self.committer = WriterThread(docs.append_many, metrics)
        self.commits = Commits()
        self.deleted_listeners: list[Callable[[str], None]] = []
        self._tails: dict[str, _Tail] = {}
        self._compacting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.committer.start()

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self.committer.close()
        self.docs.close()

    async def write(self, func: Callable[..., T], *args: Any) -> T:
        """Run a storage write on the writer thread, in order with every other write."""
        return await self.committer.call(func, *args)

    async def write_unordered(self, func: Callable[..., T], *args: Any) -> T:
        """A write that needs no place in the order of the others (client-id bindings:
        set-if-absent, and their room's commits are awaited around them anyway). Where
        the store is shared (Redis), each command is atomic on its own and several
        processes write side by side already, so it runs in a thread of its own: many
        rooms binding at once (a socket carrying many rooms, each room's first edit) then
        wait for Redis together, not each behind the others' round trips on the writer
        thread. LMDB has one writer: there it queues on the writer thread like the rest."""
        if self.shared:
            return await self.read(func, *args)
        return await self.write(func, *args)

    async def read(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(func, *args)

    # ------------------------------------------------------------------ rooms

    async def load(self, room: str) -> LoadedRoom:
        loaded = await self.read(self.docs.load, room)
        snapshot_bytes = len(loaded.updates[0]) if loaded.snapshot_seq else 0
        tail_bytes = sum(map(len, loaded.updates)) - snapshot_bytes
        self._tails[room] = _Tail(
            loaded.last_seq - loaded.snapshot_seq, 0, snapshot_bytes, tail_bytes
        )
        return loaded

    def unloaded(self, room: str) -> None:
        self._tails.pop(room, None)

    async def commit(self, appends: list[Append]) -> list[int]:
        """Durable on return; raises StorageError with nothing written on failure."""
        seqs = await self.committer.commit(appends)
        last: dict[str, int] = {}
        for append, seq in zip(appends, seqs, strict=True):
            tail = self._tails.setdefault(append.room, _Tail())
            tail.updates += 1
            tail.bytes += len(append.update)
            last[append.room] = seq
        for room, seq in last.items():
            self.commits.notify(room, seq)
        return seqs

    def snapshot_due(self, room: str) -> bool:
        tail = self._tails.get(room)
        if tail is None or room in self._compacting:
            return False
        return should_compact(tail.updates, tail.bytes, tail.snapshot_bytes, self.docs.policy)

    def snapshot(self, room: str, seq: int, encode: Callable[[], bytes]) -> None:
        """Write a snapshot of exactly log entries 1..seq in the background; `encode`
        gives the live document's encoding of them, and is called (on the loop, at once)
        only for a small room: a big one is rebuilt in the worker from what the store
        holds (1..seq, or further if more has been committed since)."""
        if self._big(room):
            self._spawn(room, self._rebuild_in_worker(room), None)
            return
        encoded = encode()
        work = self.write(partial(self.docs.compact, room, state=(seq, encoded), force=True))
        self._spawn(room, work, len(encoded))

    def rebuild_snapshot(self, room: str) -> None:
        """Write a snapshot rebuilt from the store, in the background."""
        if self._big(room):
            self._spawn(room, self._rebuild_in_worker(room), None)
        else:
            self._spawn(room, self.read(self._compact_from_store, room), None)

    def _big(self, room: str) -> bool:
        tail = self._tails.get(room)
        return (
            self.compute is not None
            and tail is not None
            and tail.stored_bytes >= self.big_room_bytes
        )

    def _compact_from_store(self, room: str) -> Snapshot | None:
        return self.docs.compact(room, force=True)

    async def _rebuild_in_worker(self, room: str) -> Snapshot | None:
        """The stored pieces (newest snapshot + log after it) are read in a thread, folded
        in the worker process, and written compare-and-set on the writer thread. They
        cover the log up to its newest durable seq, which is at least what the caller
        applied; anything another writer snapshots meanwhile wins the compare-and-set."""
        assert self.compute is not None
        loaded = await self.read(self.docs.load, room)
        if loaded.last_seq == loaded.snapshot_seq:
            return None
        encoded, whole = await self.compute.run(rebuild_whole, loaded.updates)
        state = (loaded.last_seq, encoded)
        compact = partial(self.docs.compact, room, state=state, force=True, whole=whole)
        return await self.write(compact)

    def _spawn(self, room: str, work: Awaitable[Snapshot | None], size: int | None) -> None:
        self._compacting.add(room)
        task = asyncio.get_running_loop().create_task(self._compact(room, work, size))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compact(self, room: str, work: Awaitable[Snapshot | None], size: int | None) -> None:
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

    async def require(self, room: str) -> RoomInfo:
        """The room's counters; RoomNotFound if it was never written."""
        return await self.read(self.docs.require, room)

    async def rooms(self) -> list[RoomInfo]:
        return await self.read(self.docs.rooms)

    async def state_at(self, room: str, seq: int) -> bytes:
        return await self.read(self.docs.state_at, room, seq)

    async def updates_at(self, room: str, seq: int) -> list[bytes]:
        """`DocStore.updates_at`: the reads in a thread, no merging in this process."""
        return await self.read(self.docs.updates_at, room, seq)

    async def updates_and_whole_at(self, room: str, seq: int) -> tuple[list[bytes], bool]:
        """`DocStore.updates_and_whole_at`, read as `updates_at` is."""
        return await self.read(self.docs.updates_and_whole_at, room, seq)

    async def entries(
        self,
        room: str,
        after: int,
        limit: int,
        *,
        durable_only: bool = True,
        max_bytes: int | None = None,
    ) -> list[UpdateRecord]:
        """Log records after `after`; with `durable_only`, none past the highest seq this
        process knows to be durable (entries stored before it started are); with
        `max_bytes`, no more than about that many bytes of them (at least one)."""
        upto = self.commits.durable(room) if durable_only else None
        if upto is not None and upto <= after:
            return []
        return await self.read(self.docs.entries, room, after, upto, limit, max_bytes)

    async def history(
        self, room: str, after: int, limit: int, max_bytes: int | None = None
    ) -> list[HistoryEntry]:
        return await self.read(self.docs.history, room, after, limit, max_bytes)

    async def delete_room(self, room: str) -> bool:
        self._tails.pop(room, None)
        deleted = await self.write(self.docs.delete_room, room)
        self.commits.forget(room)
        for listener in self.deleted_listeners:
            listener(room)
        return deleted
