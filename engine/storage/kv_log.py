"""The log-store contract on a sorted KV: embedded LMDB for real, memory in tests.

Key layout (integers big-endian, so byte order is numeric order)::

    rooms      name (UTF-8)               -> room id (u64)
    meta       room id                    -> RoomMeta (name, created, last_seq, log_bytes)
    meta       room id || 0x00 || name    -> a metadata value (cursors, labels)
    meta       b"next-room-id"            -> u64
    log        room id || seq             -> record, or a run of records ending at seq
    snapshots  room id || seq             -> record

Names map to fixed-width ids, so `doc1` never scans into `doc10` and a name never becomes
a path.

One append writes one log value per room: the record itself when the room got one update
(the only form stores had before runs existed, so older stores read unchanged), otherwise
a *run* keyed by its last seq::

    b"PSLR" || count (u32) || crc32(body) (u32) || body = CBOR array of the count records

Every record in a run keeps its own checksum and audit fields (seq, user, ts, size); the
run only saves the per-value cost (one B-tree entry, one put) that made a transaction of
1,000 updates cost 1,000 puts. Keyed by the last seq, a run is found by the same
`set_range(after + 1)` as a single record. A value that merely starts with the marker
(a single record whose checksum happens to match it) is told apart by the run's checksum.

Writes must come from one thread at a time (the server has one writer thread):
the compare-and-set checks read, then write, in the same thread.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence

import cbor2

from engine.errors import StorageError
from engine.names import validate_room_name
from engine.storage.contract import RoomInfo
from engine.storage.kv import KV, Delete, Put
from engine.storage.records import RecordError, RoomMeta, pack, unpack

_U64 = struct.Struct(">Q")
_ROOM_SEQ = struct.Struct(">QQ")
_NEXT_ROOM_ID = b"next-room-id"
_META_SEP = b"\x00"
_RUN = b"PSLR"
_RUN_HEAD = struct.Struct(">4sII")  # marker, count, crc32 of the body


def _key(room_id: int, seq: int) -> bytes:
    return _ROOM_SEQ.pack(room_id, seq)


def _seq(key: bytes) -> int:
    return int(_ROOM_SEQ.unpack(key)[1])


def _run(records: list[bytes]) -> bytes:
    body = cbor2.dumps(records)
    return _RUN_HEAD.pack(_RUN, len(records), zlib.crc32(body)) + body


def _entries(last: int, value: bytes) -> list[tuple[int, bytes]]:
    """The (seq, record) pairs one log value holds, the last one at `last`."""
    if value[:4] != _RUN or len(value) < _RUN_HEAD.size:
        return [(last, value)]
    _, count, crc = _RUN_HEAD.unpack_from(value)
    body = value[_RUN_HEAD.size :]
    if zlib.crc32(body) == crc:
        try:
            records = cbor2.loads(body)
        except (cbor2.CBORDecodeError, RecursionError, ValueError):
            records = None
        if isinstance(records, list) and len(records) == count:
            first = last - count + 1
            return [(first + i, bytes(record)) for i, record in enumerate(records)]
    try:
        unpack(value)  # a single record that happens to start with the marker
    except RecordError:
        pass
    else:
        return [(last, value)]
    # A torn run: every seq it held reads as the broken value (which fails its checks).
    count = count if 1 <= count <= last else 1
    return [(seq, value) for seq in range(last - count + 1, last + 1)]


def _flatten(pairs: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[int, bytes]]:
    for key, value in pairs:
        yield from _entries(_seq(key), value)


class KVLogStore:
    """`LogStore` on a `KV`; see the module docstring for the key layout."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv
        self._ids: dict[str, int] = {}
        self._metas: dict[int, RoomMeta] = {}

    # ------------------------------------------------------------------ rooms

    def _room_id(self, room: str) -> int | None:
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
            meta = self._metas[room_id] = RoomMeta.from_map(unpack(raw))
        return meta

    def info(self, room: str) -> RoomInfo | None:
        room_id = self._room_id(room)
        if room_id is None:
            return None
        meta = self._meta(room_id)
        return RoomInfo(meta.name, meta.created, meta.last_seq, meta.log_bytes)

    def rooms(self) -> list[str]:
        return sorted(name.decode("utf-8") for name, _ in self.kv.scan("rooms", b""))

    # ------------------------------------------------------------------ log

    def append(self, entries: Sequence[tuple[str, bytes]], now: float) -> list[int]:
        groups: dict[str, list[bytes]] = {}
        for room, record in entries:
            group = groups.get(room)
            if group is None:
                groups[room] = [record]
            else:
                group.append(record)
        puts: list[Put] = []
        metas: dict[int, RoomMeta] = {}
        new_ids: dict[str, int] = {}
        next_seq: dict[str, int] = {}
        next_id: int | None = None
        for room, records in groups.items():
            room_id = self._ids.get(room)
            if room_id is None:
                room_id = self._room_id(validate_room_name(room))
            if room_id is None:
                room_id = next_id = next_id or self._next_room_id()
                next_id += 1
                new_ids[room] = room_id
                meta = RoomMeta(name=room, created=now)
                puts.append(("rooms", room.encode("utf-8"), _U64.pack(room_id)))
            else:
                meta = self._meta(room_id)
            last = meta.last_seq + len(records)
            value = records[0] if len(records) == 1 else _run(records)
            puts.append(("log", _key(room_id, last), value))
            size = sum(map(len, records))
            metas[room_id] = RoomMeta(meta.name, meta.created, last, meta.log_bytes + size)
            next_seq[room] = meta.last_seq + 1
        puts += [("meta", _U64.pack(i), pack(m.to_map())) for i, m in metas.items()]
        if next_id is not None:
            puts.append(("meta", _NEXT_ROOM_ID, _U64.pack(next_id)))
        self.kv.write(puts)
        self._metas.update(metas)
        self._ids.update(new_ids)
        seqs: list[int] = []
        for room, _ in entries:
            seq = next_seq[room]
            seqs.append(seq)
            next_seq[room] = seq + 1
        return seqs

    def _next_room_id(self) -> int:
        raw = self.kv.get("meta", _NEXT_ROOM_ID)
        return 1 if raw is None else int(_U64.unpack(raw)[0])

    def read(
        self, room: str, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        room_id = self._room_id(room)
        if room_id is None:
            return []
        out: list[tuple[int, bytes]] = []
        # Each value holds at least one entry past `after`, so `limit` values are enough.
        pairs = self.kv.scan("log", _U64.pack(room_id), start=_key(room_id, after + 1), limit=limit)
        for seq, value in _flatten(pairs):
            if seq <= after:
                continue
            if (upto is not None and seq > upto) or (limit is not None and len(out) >= limit):
                break
            out.append((seq, value))
        return out

    def first_seq(self, room: str) -> int | None:
        room_id = self._room_id(room)
        if room_id is None:
            return None
        first = self.kv.scan("log", _U64.pack(room_id), limit=1)
        return next(iter(_flatten(first)))[0] if first else None

    # ------------------------------------------------------------------ snapshots

    def snapshots(self, room: str, upto: int | None = None) -> list[tuple[int, bytes]]:
        room_id = self._room_id(room)
        if room_id is None:
            return []
        start = None if upto is None else _key(room_id, upto)
        pairs = self.kv.scan("snapshots", _U64.pack(room_id), start=start, reverse=True)
        return [(_seq(key), value) for key, value in pairs]

    def put_snapshot(
        self, room: str, seq: int, record: bytes, *, expect: int, keep: int, trim_log: bool
    ) -> bool:
        room_id = self._room_id(room)
        if room_id is None:
            raise StorageError(f"room {room!r} does not exist")
        prefix = _U64.pack(room_id)
        newest = self.kv.scan("snapshots", prefix, reverse=True, limit=1)
        if (_seq(newest[0][0]) if newest else 0) != expect:
            return False
        deletes: list[Delete] = []
        if keep:
            older = self.kv.scan("snapshots", prefix, start=_key(room_id, seq - 1), reverse=True)
            deletes += [("snapshots", key) for key, _ in older[keep - 1 :]]
        if trim_log:
            trimmed = self.kv.scan("log", prefix, start=_key(room_id, seq), reverse=True)
            deletes += [("log", key) for key, _ in trimmed]
        self.kv.write([("snapshots", _key(room_id, seq), record)], deletes)
        return True

    # ------------------------------------------------------------------ metadata

    def _meta_key(self, room: str, name: str) -> bytes:
        room_id = self._room_id(room)
        if room_id is None:
            raise StorageError(f"room {room!r} does not exist")
        return _U64.pack(room_id) + _META_SEP + name.encode("utf-8")

    def get_meta(self, room: str, name: str) -> bytes | None:
        if self._room_id(room) is None:
            return None
        return self.kv.get("meta", self._meta_key(room, name))

    def set_meta(
        self, room: str, name: str, value: bytes | None, *, only_new: bool = False
    ) -> bool:
        key = self._meta_key(room, name)
        if only_new and self.kv.get("meta", key) is not None:
            return False
        if value is None:
            self.kv.write([], [("meta", key)])
        else:
            self.kv.write([("meta", key, value)])
        return True

    def scan_meta(self, room: str, prefix: str) -> list[tuple[str, bytes]]:
        if self._room_id(room) is None:
            return []
        base = self._meta_key(room, "")
        pairs = self.kv.scan("meta", base + prefix.encode("utf-8"))
        return [(key[len(base) :].decode("utf-8"), value) for key, value in pairs]

    def delete_room(self, room: str) -> bool:
        room_id = self._room_id(room)
        if room_id is None:
            return False
        prefix = _U64.pack(room_id)
        deletes: list[Delete] = [("rooms", room.encode("utf-8"))]
        for db in ("meta", "log", "snapshots"):
            deletes += [(db, key) for key, _ in self.kv.scan(db, prefix)]
        self.kv.write([], deletes)
        self._ids.pop(room, None)
        self._metas.pop(room_id, None)
        return True

    def close(self) -> None:
        self.kv.close()
