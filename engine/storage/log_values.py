"""The byte formats of the KV log store's values: log keys, runs, and journal entries.

A *run* is one log value holding the records one room got in one append, keyed by its
last seq::

    b"PSLR" || count (u32) || crc32(body) (u32) || body = CBOR array of the count records

Every record in a run keeps its own checksum and audit fields (seq, user, ts, size); the
run only saves the per-value cost (one B-tree entry, one put). A value that merely starts
with the marker (a single record whose checksum happens to match it) is told apart by the
run's checksum.

A *journal entry* is one append of any rooms, kept whole under one key until it is
folded into the per-room log (see `kv_log`)::

    crc32(body) (u32) || body = CBOR array of [room id, last seq, log value, bytes]
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import NamedTuple

import cbor2

from engine.errors import StorageError
from engine.storage.records import HeadReader, RecordError, unpack

U64 = struct.Struct(">Q")
_ROOM_SEQ = struct.Struct(">QQ")
_RUN = b"PSLR"
_RUN_HEAD = struct.Struct(">4sII")  # marker, count, crc32 of the body
_CRC = struct.Struct(">I")


def log_key(room_id: int, seq: int) -> bytes:
    return _ROOM_SEQ.pack(room_id, seq)


def key_seq(key: bytes) -> int:
    return int(_ROOM_SEQ.unpack(key)[1])


def pack_run(records: list[bytes]) -> bytes:
    body = cbor2.dumps(records)
    return _RUN_HEAD.pack(_RUN, len(records), zlib.crc32(body)) + body


def log_value(records: list[bytes]) -> bytes:
    """What one room's records of one append are stored as: the record, or a run."""
    return records[0] if len(records) == 1 else pack_run(records)


def value_entries(last: int, value: bytes) -> list[tuple[int, bytes]]:
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


def value_views(last: int, value: memoryview) -> list[tuple[int, memoryview]]:
    """`value_entries` without copying: each record a view of `value` (a run's CBOR
    array is walked, not decoded). Whatever does not read as a whole run (a torn one, a
    single record that starts with the marker) goes through `value_entries`, so both
    hand out the same records."""
    if len(value) < _RUN_HEAD.size or value[:4] != _RUN:
        return [(last, value)]
    _, count, crc = _RUN_HEAD.unpack_from(value)
    body = value[_RUN_HEAD.size :]
    records = _run_records(body, count) if zlib.crc32(body) == crc else None
    if records is None:
        return [(seq, memoryview(record)) for seq, record in value_entries(last, bytes(value))]
    first = last - count + 1
    return [(first + i, record) for i, record in enumerate(records)]


def _run_records(body: memoryview, count: int) -> list[memoryview] | None:
    """Views of the `count` byte strings of a run's array (None: not that shape)."""
    reader = HeadReader(body)
    try:
        major, length = reader.head()
        if major != 4 or length != count:
            return None
        records = []
        for _ in range(count):
            major, size = reader.head()
            if major != 2 or reader.at + size > len(body):
                return None
            records.append(body[reader.at : reader.at + size])
            reader.at += size
    except (ValueError, IndexError):
        return None
    return records if reader.at == len(body) else None


def flatten(pairs: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[int, bytes]]:
    for key, value in pairs:
        yield from value_entries(key_seq(key), value)


class JournalItem(NamedTuple):
    """One room's part of one append: its log value, ending at seq `last`."""

    room_id: int
    last: int
    value: bytes
    size: int  # bytes of the updates, for the room's log_bytes


def pack_journal(items: list[JournalItem]) -> bytes:
    body = cbor2.dumps([list(item) for item in items])
    return _CRC.pack(zlib.crc32(body)) + body


def unpack_journal(key: bytes, raw: bytes) -> list[JournalItem]:
    """Raises StorageError for an entry that fails its checksum or shape."""
    body = raw[_CRC.size :]
    if len(raw) < _CRC.size or _CRC.unpack_from(raw)[0] != zlib.crc32(body):
        raise StorageError(f"journal entry {U64.unpack(key)[0]} fails its checksum")
    try:
        return [JournalItem(int(r), int(s), bytes(v), int(n)) for r, s, v, n in cbor2.loads(body)]
    except (cbor2.CBORDecodeError, TypeError, ValueError) as exc:
        raise StorageError(f"journal entry {U64.unpack(key)[0]} is unreadable: {exc}") from exc
