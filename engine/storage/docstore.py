"""DocStore: rooms' update logs and snapshots on any KV.

Key layout (all integers big-endian, so byte order is numeric order)::

    rooms      name (UTF-8)           -> room id (u64)
    meta       room id                -> RoomMeta       (and b"next-room-id" -> u64)
    log        room id || seq         -> UpdateRecord   (seq starts at 1, per room)
    snapshots  room id || seq         -> Snapshot       (covers log entries 1..seq)

Names map to fixed-width ids, so `doc1` can never scan into `doc10`, and a name never
becomes a path. The DocStore is not thread-safe for writes: one writer at a time (the
server runs all writes on a single thread). Reads may come from any thread.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pycrdt import get_state

from engine.document import RoomDocument
from engine.errors import CorruptRecord, RoomNotFound, StorageError
from engine.names import validate_room_name
from engine.storage.compaction import CompactionPolicy, Retention, should_compact
from engine.storage.kv import KV, Delete, Put
from engine.storage.records import RoomMeta, Snapshot, UpdateRecord, pack, unpack
from engine.yjs import EMPTY_UPDATE, update_clients

log = logging.getLogger(__name__)

_U64 = struct.Struct(">Q")


def rebuild(updates: list[bytes]) -> bytes:
    """Fold updates into one compact update, keeping any that still wait for a
    dependency (see `RoomDocument.encode_snapshot`)."""
    room = RoomDocument()
    for update in updates:
        room.apply(update, "storage")
    return room.encode_snapshot()


_ROOM_SEQ = struct.Struct(">QQ")
_NEXT_ROOM_ID = b"next-room-id"


@dataclass(frozen=True, slots=True)
class Append:
    """One update to append to one room's log."""

    room: str
    update: bytes
    user: str | None = None
    clients: tuple[int, ...] | None = None  # authoring client ids, if already known


@dataclass(frozen=True, slots=True)
class LoadedRoom:
    """What a room is made of: apply `updates` in order to rebuild it."""

    name: str
    updates: list[bytes]
    last_seq: int
    snapshot_seq: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    seq: int
    ts: float
    user: str | None
    bytes: int
    clients: tuple[int, ...]


def _grown(meta: RoomMeta, last_seq: int, updates: int, size: int) -> RoomMeta:
    return replace(
        meta,
        last_seq=last_seq,
        updates_since_snapshot=meta.updates_since_snapshot + updates,
        bytes_since_snapshot=meta.bytes_since_snapshot + size,
        log_bytes=meta.log_bytes + size,
    )


def _key(room_id: int, seq: int) -> bytes:
    return _ROOM_SEQ.pack(room_id, seq)


class DocStore:
    """Rooms' logs and snapshots, with group commit, compaction, history and time travel.

    Args:
        kv: where the bytes live (`LmdbKV` for real, `MemoryKV` in tests).
        clock: seconds since the epoch, injected so tests control time. Only the audit
            trail uses it; ordering always comes from per-room sequence numbers.
    """

    def __init__(
        self,
        kv: KV,
        *,
        clock: Callable[[], float] = time.time,
        policy: CompactionPolicy | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.kv = kv
        self.clock = clock
        self.policy = policy or CompactionPolicy()
        self.retention = retention or Retention()
        self._ids: dict[str, int] = {}
        self._metas: dict[int, RoomMeta] = {}

    # ------------------------------------------------------------------ room ids

    def room_id(self, room: str) -> int | None:
        """The numeric id of a room, or None if it was never written."""
        cached = self._ids.get(room)
        if cached is not None:
            return cached
        raw = self.kv.get("rooms", room.encode("utf-8"))
        if raw is None:
            return None
        self._ids[room] = _U64.unpack(raw)[0]
        return self._ids[room]

    def _meta(self, room_id: int) -> RoomMeta:
        meta = self._metas.get(room_id)
        if meta is None:
            raw = self.kv.get("meta", _U64.pack(room_id))
            if raw is None:
                raise StorageError(f"room id {room_id} has no metadata")
            meta = RoomMeta.from_map(unpack(raw))
            self._metas[room_id] = meta
        return meta

    def meta(self, room: str) -> RoomMeta | None:
        room_id = self.room_id(room)
        return None if room_id is None else self._meta(room_id)

    # ------------------------------------------------------------------ writes

    def append(self, room: str, update: bytes, user: str | None = None) -> int:
        """Append one update durably; returns its seq."""
        return self.append_many([Append(room, update, user)])[0]

    def append_many(self, batch: Sequence[Append]) -> list[int]:
        """Append updates of any rooms in ONE atomic, durable transaction (group commit).

        Returns the seq given to each update, in batch order. On failure nothing is
        written and the in-memory counters are left as they were.
        """
        now = self.clock()
        puts: list[Put] = []
        base: dict[int, RoomMeta] = {}
        growth: dict[int, list[int]] = {}  # room id -> [last seq, updates, bytes]
        new_ids: dict[str, int] = {}
        next_id = None
        seqs: list[int] = []
        for item in batch:
            room_id = self._ids.get(item.room) or new_ids.get(item.room)
            if room_id is None:
                room_id = self.room_id(validate_room_name(item.room))
            if room_id is None:
                if next_id is None:
                    next_id = self._next_room_id()
                room_id = next_id
                next_id += 1
                new_ids[item.room] = room_id
                base[room_id] = RoomMeta(name=item.room, created=now)
                puts.append(("rooms", item.room.encode("utf-8"), _U64.pack(room_id)))
            counters = growth.get(room_id)
            if counters is None:
                meta = base.get(room_id) or self._meta(room_id)
                base[room_id] = meta
                counters = growth[room_id] = [meta.last_seq, 0, 0]
            counters[0] += 1
            counters[1] += 1
            counters[2] += len(item.update)
            seq = counters[0]
            clients = item.clients if item.clients is not None else update_clients(item.update)
            record = UpdateRecord(seq, now, item.user, clients, item.update)
            puts.append(("log", _key(room_id, seq), pack(record.to_map())))
            seqs.append(seq)
        metas = {room_id: _grown(base[room_id], *counters) for room_id, counters in growth.items()}
        for room_id, meta in metas.items():
            puts.append(("meta", _U64.pack(room_id), pack(meta.to_map())))
        if next_id is not None:
            puts.append(("meta", _NEXT_ROOM_ID, _U64.pack(next_id)))
        self.kv.write(puts)
        self._metas.update(metas)
        self._ids.update(new_ids)
        return seqs

    def _next_room_id(self) -> int:
        raw = self.kv.get("meta", _NEXT_ROOM_ID)
        return 1 if raw is None else _U64.unpack(raw)[0]

    # ------------------------------------------------------------------ reads

    def load(self, room: str) -> LoadedRoom:
        """Newest readable snapshot + the log after it.

        A torn or corrupt snapshot is skipped for the one before it (or the full log);
        never an empty document in place of a broken one.

        Raises:
            CorruptRecord: a log record in the needed range is unreadable, or the log was
                trimmed past every readable snapshot.
        """
        room_id = self.room_id(room)
        if room_id is None:
            return LoadedRoom(room, [], 0, 0)
        snapshot = self._snapshot_at_or_before(room, room_id, None)
        base_seq = snapshot.seq if snapshot else 0
        tail = self._log_range(room, room_id, base_seq, None)
        updates = ([snapshot.update] if snapshot else []) + [r.update for r in tail]
        last_seq = tail[-1].seq if tail else base_seq
        return LoadedRoom(room, updates, last_seq, base_seq)

    def _snapshot_at_or_before(self, room: str, room_id: int, seq: int | None) -> Snapshot | None:
        start = _key(room_id, seq) if seq is not None else None
        for key, value in self.kv.scan("snapshots", _U64.pack(room_id), start=start, reverse=True):
            snap_seq = _ROOM_SEQ.unpack(key)[1]
            try:
                return Snapshot.from_map(unpack(value))
            except (StorageError, KeyError, TypeError, ValueError) as exc:
                log.warning(
                    "room %r: skipping unreadable snapshot at seq %d: %s", room, snap_seq, exc
                )
        return None

    def _log_range(
        self, room: str, room_id: int, after: int, upto: int | None
    ) -> list[UpdateRecord]:
        """Log records after `after` (up to `upto`), checking that none is missing."""
        records: list[UpdateRecord] = []
        expected = after + 1
        for key, value in self.kv.scan("log", _U64.pack(room_id), start=_key(room_id, expected)):
            seq = _ROOM_SEQ.unpack(key)[1]
            if upto is not None and seq > upto:
                break
            if seq != expected:
                raise CorruptRecord(
                    room, "log", expected, "entry is missing (trimmed by retention or lost)"
                )
            try:
                records.append(UpdateRecord.from_map(unpack(value)))
            except (StorageError, KeyError, TypeError, ValueError) as exc:
                raise CorruptRecord(room, "log record", seq, str(exc)) from exc
            expected += 1
        if upto is not None and expected <= upto:
            raise CorruptRecord(room, "log", expected, "entry is missing")
        return records

    def log_records(self, room: str, after: int = 0, upto: int | None = None) -> list[UpdateRecord]:
        """Full log records after `after` (up to `upto`), checked for gaps."""
        room_id = self.room_id(room)
        if room_id is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        return self._log_range(room, room_id, after, upto)

    def check_records(self, room: str) -> list[str]:
        """Decode every log and snapshot record of a room; a description per bad one."""
        room_id = self.room_id(room)
        if room_id is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        problems = []
        for db, kind in (("log", UpdateRecord), ("snapshots", Snapshot)):
            for key, value in self.kv.scan(db, _U64.pack(room_id)):
                seq = _ROOM_SEQ.unpack(key)[1]
                try:
                    kind.from_map(unpack(value))
                except (StorageError, KeyError, TypeError, ValueError) as exc:
                    problems.append(f"room {room!r}: {db} record at seq {seq}: {exc}")
        return problems

    def history(self, room: str, after: int = 0, limit: int = 100) -> list[HistoryEntry]:
        """The audit trail: who changed the room when, and how much."""
        room_id = self.room_id(room)
        if room_id is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        entries = []
        for key, value in self.kv.scan(
            "log", _U64.pack(room_id), start=_key(room_id, after + 1), limit=limit
        ):
            seq = _ROOM_SEQ.unpack(key)[1]
            try:
                record = UpdateRecord.from_map(unpack(value))
            except (StorageError, KeyError, TypeError, ValueError) as exc:
                raise CorruptRecord(room, "log record", seq, str(exc)) from exc
            entries.append(
                HistoryEntry(seq, record.ts, record.user, len(record.update), record.clients)
            )
        return entries

    def state_at(self, room: str, seq: int) -> bytes:
        """The room as it was right after log entry `seq`, as one Yjs update."""
        room_id = self.room_id(room)
        if room_id is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        seq = min(seq, self._meta(room_id).last_seq)
        if seq <= 0:
            return EMPTY_UPDATE
        snapshot = self._snapshot_at_or_before(room, room_id, seq)
        base_seq = snapshot.seq if snapshot else 0
        tail = self._log_range(room, room_id, base_seq, seq)
        updates = ([snapshot.update] if snapshot else []) + [r.update for r in tail]
        return rebuild(updates)

    def rooms(self) -> list[RoomMeta]:
        """Every stored room's metadata."""
        out = []
        for _name, raw_id in self.kv.scan("rooms", b""):
            out.append(self._meta(_U64.unpack(raw_id)[0]))
        return out

    # ------------------------------------------------------------------ compaction

    def compact(self, room: str, *, force: bool = False) -> Snapshot | None:
        """Fold the log tail into a new snapshot if the policy says so (or `force`).

        The snapshot merges raw updates, so updates still waiting for a dependency are
        kept. Writing the snapshot, updating the counters and any trimming the retention
        allows happen in one transaction: a crash leaves either the old or the new state.
        """
        room_id = self.room_id(room)
        if room_id is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        meta = self._meta(room_id)
        if meta.last_seq == meta.snapshot_seq:
            return None
        if not force and not should_compact(meta, self.policy):
            return None
        loaded = self.load(room)
        merged = rebuild(loaded.updates)
        snapshot = Snapshot(loaded.last_seq, self.clock(), merged, get_state(merged))
        new_meta = replace(
            meta,
            snapshot_seq=snapshot.seq,
            snapshot_bytes=len(merged),
            updates_since_snapshot=0,
            bytes_since_snapshot=0,
        )
        puts: list[Put] = [
            ("snapshots", _key(room_id, snapshot.seq), pack(snapshot.to_map())),
            ("meta", _U64.pack(room_id), pack(new_meta.to_map())),
        ]
        self.kv.write(puts, self._retention_deletes(room_id, snapshot.seq))
        self._metas[room_id] = new_meta
        return snapshot

    def _retention_deletes(self, room_id: int, snapshot_seq: int) -> list[Delete]:
        deletes: list[Delete] = []
        prefix = _U64.pack(room_id)
        if not self.retention.keep_log:
            deletes += [
                ("log", key)
                for key, _ in self.kv.scan(
                    "log", prefix, start=_key(room_id, snapshot_seq), reverse=True
                )
            ]
        keep = self.retention.keep_snapshots
        if keep:
            older = self.kv.scan(
                "snapshots", prefix, start=_key(room_id, snapshot_seq - 1), reverse=True
            )
            deletes += [("snapshots", key) for key, _ in older[keep - 1 :]]
        return deletes

    def delete_room(self, room: str) -> bool:
        """Remove a room and everything stored for it."""
        room_id = self.room_id(room)
        if room_id is None:
            return False
        prefix = _U64.pack(room_id)
        deletes: list[Delete] = [("rooms", room.encode("utf-8")), ("meta", prefix)]
        for db in ("log", "snapshots"):
            deletes += [(db, key) for key, _ in self.kv.scan(db, prefix)]
        self.kv.write([], deletes)
        self._ids.pop(room, None)
        self._metas.pop(room_id, None)
        return True
