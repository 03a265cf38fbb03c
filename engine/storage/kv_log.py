"""The log-store contract on a sorted KV: embedded LMDB for real, memory in tests.

Key layout (integers big-endian, so byte order is numeric order)::

    rooms      name (UTF-8)               -> room id (u64)
    meta       room id                    -> RoomMeta (name, created, last_seq, log_bytes)
    meta       room id || 0x00 || name    -> a metadata value (cursors, labels)
    meta       b"next-room-id"            -> u64
    log        room id || seq             -> record
    snapshots  room id || seq             -> record

Names map to fixed-width ids, so `doc1` never scans into `doc10` and a name never becomes
a path. Writes must come from one thread at a time (the server has one writer thread):
the compare-and-set checks read, then write, in the same thread.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import replace

from engine.errors import StorageError
from engine.names import validate_room_name
from engine.storage.contract import RoomInfo
from engine.storage.kv import KV, Delete, Put
from engine.storage.records import RoomMeta, pack, unpack

_U64 = struct.Struct(">Q")
_ROOM_SEQ = struct.Struct(">QQ")
_NEXT_ROOM_ID = b"next-room-id"
_META_SEP = b"\x00"


def _key(room_id: int, seq: int) -> bytes:
    return _ROOM_SEQ.pack(room_id, seq)


def _seq(key: bytes) -> int:
    return int(_ROOM_SEQ.unpack(key)[1])


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
        puts: list[Put] = []
        metas: dict[int, RoomMeta] = {}
        new_ids: dict[str, int] = {}
        next_id: int | None = None
        seqs: list[int] = []
        for room, record in entries:
            room_id = self._ids.get(room) or new_ids.get(room)
            if room_id is None:
                room_id = self._room_id(validate_room_name(room))
            if room_id is None:
                room_id = next_id = next_id or self._next_room_id()
                next_id += 1
                new_ids[room] = room_id
                metas[room_id] = RoomMeta(name=room, created=now)
                puts.append(("rooms", room.encode("utf-8"), _U64.pack(room_id)))
            meta = metas.get(room_id) or self._meta(room_id)
            meta = metas[room_id] = replace(
                meta, last_seq=meta.last_seq + 1, log_bytes=meta.log_bytes + len(record)
            )
            puts.append(("log", _key(room_id, meta.last_seq), record))
            seqs.append(meta.last_seq)
        puts += [("meta", _U64.pack(i), pack(m.to_map())) for i, m in metas.items()]
        if next_id is not None:
            puts.append(("meta", _NEXT_ROOM_ID, _U64.pack(next_id)))
        self.kv.write(puts)
        self._metas.update(metas)
        self._ids.update(new_ids)
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
        out = []
        pairs = self.kv.scan("log", _U64.pack(room_id), start=_key(room_id, after + 1), limit=limit)
        for key, value in pairs:
            seq = _seq(key)
            if upto is not None and seq > upto:
                break
            out.append((seq, value))
        return out

    def first_seq(self, room: str) -> int | None:
        room_id = self._room_id(room)
        if room_id is None:
            return None
        first = self.kv.scan("log", _U64.pack(room_id), limit=1)
        return _seq(first[0][0]) if first else None

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
