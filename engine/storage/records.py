"""Stored records: CBOR maps with a schema version, behind a CRC32 of the CBOR bytes.

    value = crc32(cbor) as 4 big-endian bytes || cbor({"v": 1, ...})

The checksum catches torn and bit-flipped writes before CBOR sees them; the version makes
a record written by a newer schema an error (`SchemaVersionError`), never a silent misread.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import cbor2

from engine.errors import SchemaVersionError, StorageError

SCHEMA_VERSION = 1
_CRC = struct.Struct(">I")


class RecordError(StorageError):
    """A record that fails its checksum or does not decode (no room context yet)."""


@dataclass(frozen=True, slots=True)
class UpdateRecord:
    """One entry of a room's log: an update as received, and who sent it when."""

    seq: int
    ts: float
    user: str | None
    clients: tuple[int, ...]
    update: bytes

    def to_map(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "user": self.user,
            "clients": list(self.clients),
            "u": self.update,
        }

    @classmethod
    def from_map(cls, data: dict[str, Any]) -> UpdateRecord:
        return cls(
            int(data["seq"]),
            float(data["ts"]),
            data["user"],
            tuple(data["clients"]),
            bytes(data["u"]),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The merged state of a room up to and including log position `seq`."""

    seq: int
    ts: float
    update: bytes
    state_vector: bytes

    def to_map(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "u": self.update, "sv": self.state_vector}

    @classmethod
    def from_map(cls, data: dict[str, Any]) -> Snapshot:
        return cls(int(data["seq"]), float(data["ts"]), bytes(data["u"]), bytes(data["sv"]))


@dataclass(frozen=True, slots=True)
class RoomMeta:
    """Per-room counters, so appends and compaction need no scans."""

    name: str
    created: float
    last_seq: int = 0
    snapshot_seq: int = 0
    snapshot_bytes: int = 0
    updates_since_snapshot: int = 0
    bytes_since_snapshot: int = 0
    log_bytes: int = 0

    def to_map(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "last_seq": self.last_seq,
            "snapshot_seq": self.snapshot_seq,
            "snapshot_bytes": self.snapshot_bytes,
            "updates_since": self.updates_since_snapshot,
            "bytes_since": self.bytes_since_snapshot,
            "log_bytes": self.log_bytes,
        }

    @classmethod
    def from_map(cls, data: dict[str, Any]) -> RoomMeta:
        return cls(
            str(data["name"]),
            float(data["created"]),
            int(data["last_seq"]),
            int(data["snapshot_seq"]),
            int(data["snapshot_bytes"]),
            int(data["updates_since"]),
            int(data["bytes_since"]),
            int(data["log_bytes"]),
        )


def pack(fields: dict[str, Any]) -> bytes:
    """Encode a record map, adding the schema version and the checksum."""
    body = cbor2.dumps({"v": SCHEMA_VERSION, **fields})
    return _CRC.pack(zlib.crc32(body)) + body


def unpack(value: bytes) -> dict[str, Any]:
    """Check and decode a stored record.

    Raises:
        RecordError: torn, bit-flipped or undecodable bytes.
        SchemaVersionError: a version this code does not know.
    """
    if len(value) < _CRC.size:
        raise RecordError(f"record of {len(value)} bytes is truncated")
    (expected,) = _CRC.unpack_from(value)
    body = value[_CRC.size :]
    if zlib.crc32(body) != expected:
        raise RecordError("checksum mismatch (torn or corrupted write)")
    try:
        data = cbor2.loads(body)
    except (cbor2.CBORDecodeError, RecursionError, ValueError) as exc:
        raise RecordError(f"CBOR does not decode: {exc}") from exc
    if not isinstance(data, dict) or "v" not in data:
        raise RecordError("record is not a versioned map")
    if data["v"] != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"record schema version {data['v']!r} is not supported (this code reads "
            f"version {SCHEMA_VERSION}); upgrade performer-sync to read this store"
        )
    return data
