"""The continuous archive (`serve --archive DIR`): one more consumer of the durable log.

Like the on_change hooks and the webhooks (server/delivery.py), it reads each room's
committed entries after its cursor and ships them, here as a sealed segment file, plus the
room's newest snapshot when there is a new one, then rewrites the room's manifest
(format: engine/storage/archive.py); small segments are merged as they pile up, so the
manifest grows with the room's size, not with the number of deliveries. Deliveries of a
room are at most `min_interval` apart, so entries reach the archive within about a
second of their commit, batched; the cursor moves only once the manifest naming them is
durable, so a crash ships them again (the same file names) and never skips one. Files are
written in a thread.

A room deleted in the server has its manifest marked `deleted` (recovery to a time before
that brings it back); `performer_archive_lag_seconds` says how far the archive is behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from engine.errors import EngineError, RoomNotFound
from engine.storage.archive import (
    ArchiveTarget,
    Manifest,
    add_segment,
    add_snapshot,
    generation_dir,
    generations,
    manifest_at,
    mark_deleted,
    merge_small_segments,
    prune_snapshots,
    write_manifest,
)
from engine.storage.records import Snapshot, UpdateRecord, unpack
from engine.storage.tools import LABEL_PREFIX
from server.metrics import Metrics
from server.rooms.fanout import Fanout
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0  # how often rooms deleted by other processes are looked for
SWEEP_LEASE_SECONDS = 120.0


class ArchiveConsumer:
    name = "archive"
    batch_limit = 5000
    min_interval = 0.5  # the archive's delay: entries wait at most this (plus a write)
    max_attempts: int | None = None  # never park: a full disk clears, the archive resumes
    # the delivery retry schedule scaled down: 10 ms first, never more than ~5 min apart
    retry_seconds = 0.01
    probe_seconds: float | None = None  # never parked, so never probed

    def __init__(
        self,
        target: ArchiveTarget,
        store: RoomStore,
        metrics: Metrics | None = None,
        fanout: Fanout | None = None,
    ) -> None:
        self.target = target
        self.store = store
        self.metrics = metrics
        self.fanout = fanout
        self.sweep_seconds = SWEEP_SECONDS
        self._behind: dict[str, float] = {}  # room -> time of its oldest entry not archived
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Watch deletions: this process's at once, other processes' by a sweep."""
        self.store.deleted_listeners.append(self._room_deleted)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())
        if self.metrics is not None:
            self.metrics.archive_lag.set_function(self.lag)

    async def close(self) -> None:
        if self._room_deleted in self.store.deleted_listeners:
            self.store.deleted_listeners.remove(self._room_deleted)
        tasks = [t for t in (self._sweeper, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def lag(self) -> float:
        """Seconds since the oldest committed entry that is not in the archive yet was
        committed (0: caught up). Known from the batches read: entries committed since
        the last read of a room are counted from their next read (within `min_interval`)."""
        oldest = min(self._behind.values(), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    async def deliver(self, room: str, records: list[UpdateRecord]) -> int:
        self._behind[room] = min(self._behind.get(room, records[0].ts), records[0].ts)
        try:
            async with self._locks[room]:
                delivered = await asyncio.to_thread(self._ship, room, records)
        except RoomNotFound:  # deleted meanwhile: nothing of it waits any more
            self._behind.pop(room, None)
            raise
        if self.metrics is not None:
            self.metrics.archive_delay.observe(max(0.0, time.time() - records[0].ts))
        durable = self.store.commits.durable(room)
        if durable is None or delivered >= durable:
            self._behind.pop(room, None)
        else:  # more to read: the next entry was committed after this batch's last
            self._behind[room] = records[-1].ts
        return delivered

    def _ship(self, room: str, records: list[UpdateRecord]) -> int:
        docs = self.store.docs
        created = docs.require(room).created
        where = generation_dir(self.target, room, created)
        manifest = manifest_at(self.target, where)  # read each time: with Redis, another
        if manifest is None:  # process may have shipped this room since (the lease moved)
            mark_deleted(self.target, room, created)  # an earlier room of the name is gone
            manifest = Manifest(room, created, where=where)
        fresh = [r for r in records if r.seq > manifest.last_seq]
        if fresh and fresh[0].seq > manifest.last_seq + 1:
            self._ship_base(manifest, fresh[0].seq - 1)
        if fresh:
            add_segment(self.target, manifest, fresh)
        merged = merge_small_segments(self.target, manifest)
        self._ship_newest_snapshot(manifest)
        merged += prune_snapshots(manifest)
        manifest.labels = {k[len(LABEL_PREFIX) :]: int(v)
                           for k, v in docs.scan_meta(room, LABEL_PREFIX)}  # fmt: skip
        write_manifest(self.target, manifest)
        for name in merged:  # no manifest names them now
            self.target.delete(f"{manifest.dir}/{name}")
        return records[-1].seq

    def _ship_base(self, manifest: Manifest, seq: int) -> None:
        """The log starts past what the archive holds (folded or trimmed before the
        archive began): ship the state the surviving log continues from."""
        if any(s["seq"] == seq for s in manifest.snapshots):
            return
        state = self.store.docs.state_at(manifest.room, seq)
        add_snapshot(self.target, manifest, seq, self.store.docs.clock(), state)

    def _ship_newest_snapshot(self, manifest: Manifest) -> None:
        """The store's newest snapshot, once, if the archive's log already covers it
        (recovery then replays from it instead of from the room's first entry)."""
        newest = self.store.docs.log.newest_snapshot_seq(manifest.room)
        if newest <= manifest.newest_snapshot or newest > manifest.last_seq:
            return
        for seq, raw in self.store.docs.log.snapshots(manifest.room, newest, limit=1):
            snapshot = Snapshot.from_map(unpack(raw))
            add_snapshot(self.target, manifest, seq, snapshot.ts, snapshot.update)

    # ------------------------------------------------------------------ deleted rooms

    def _room_deleted(self, room: str) -> None:
        """A room deleted through this process: its archive is marked at once."""
        self._behind.pop(room, None)
        task = asyncio.get_running_loop().create_task(self.mark_deleted(room, time.time()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def mark_deleted(self, room: str, at: float) -> None:
        try:
            async with self._locks[room]:
                await asyncio.to_thread(mark_deleted, self.target, room, at)
        except (EngineError, OSError) as exc:
            log.warning("archive: marking room %r deleted failed (the sweep retries): %s",
                        room, exc)  # fmt: skip

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                if self.fanout is None or await self.fanout.lease(
                    "archive-sweep", SWEEP_LEASE_SECONDS
                ):
                    await self.sweep()
            except (EngineError, OSError) as exc:
                log.warning("archive: looking for deleted rooms failed: %s", exc)

    async def sweep(self) -> list[str]:
        """Mark the archived rooms the store no longer has (deleted by another process,
        or while no archive ran); the rooms marked. Their deletion time is when this
        noticed (or when the room of the same name that replaced them was created)."""
        archived = await asyncio.to_thread(generations, self.target)
        marked = []
        for manifest in archived:
            if manifest.deleted is not None:
                continue
            info = await self.store.info(manifest.room)
            if info is not None and info.created == manifest.created:
                continue
            at = time.time() if info is None else min(time.time(), info.created)
            if info is None:
                self._behind.pop(manifest.room, None)
            await self.mark_deleted(manifest.room, at)
            marked.append(manifest.room)
        return marked
