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
"""

from __future__ import annotations

import asyncio
import logging

from engine.storage.archive import (
    ArchiveTarget,
    Manifest,
    add_segment,
    add_snapshot,
    merge_small_segments,
    read_manifest,
    room_dir,
    write_manifest,
)
from engine.storage.records import Snapshot, UpdateRecord, unpack
from engine.storage.tools import LABEL_PREFIX
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)


class ArchiveConsumer:
    name = "archive"
    batch_limit = 5000
    min_interval = 0.5  # the archive's delay: entries wait at most this (plus a write)
    max_attempts: int | None = None  # never park: a full disk clears, the archive resumes
    # the delivery retry schedule scaled down: 10 ms first, never more than ~5 min apart
    retry_seconds = 0.01
    probe_seconds: float | None = None  # never parked, so never probed

    def __init__(self, target: ArchiveTarget, store: RoomStore) -> None:
        self.target = target
        self.store = store

    async def deliver(self, room: str, records: list[UpdateRecord]) -> int:
        return await asyncio.to_thread(self._ship, room, records)

    def _ship(self, room: str, records: list[UpdateRecord]) -> int:
        docs = self.store.docs
        manifest = read_manifest(self.target, room)  # read each time: with Redis, another
        if manifest is None:  # process may have shipped this room since (the lease moved)
            manifest = Manifest(room, docs.require(room).created)
        fresh = [r for r in records if r.seq > manifest.last_seq]
        if fresh and fresh[0].seq > manifest.last_seq + 1:
            self._ship_base(manifest, fresh[0].seq - 1)
        if fresh:
            add_segment(self.target, manifest, fresh)
        merged = merge_small_segments(self.target, manifest)
        self._ship_newest_snapshot(manifest)
        manifest.labels = {k[len(LABEL_PREFIX) :]: int(v)
                           for k, v in docs.scan_meta(room, LABEL_PREFIX)}  # fmt: skip
        write_manifest(self.target, manifest)
        for name in merged:  # no manifest names them now
            self.target.delete(f"{room_dir(room)}/{name}")
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
