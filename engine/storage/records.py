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
    """One entry of a room's log: an update as received, and who sent it when.

    The seq is the entry's position in the log (its key), not part of the stored map
    (a store may number entries only as it appends them).
    """

    seq: int
    ts: float
    user: str | None
    clients: tuple[int, ...]
    update: bytes
    restore_of: int | None = None  # set on the edit a restore to that seq made

    def to_map(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "ts": self.ts,
            "user": self.user,
            "clients": list(self.clients),
            "u": self.update,
        }
        if self.restore_of is not None:
            fields["restore_of"] = self.restore_of
        return fields

    @classmethod
    def from_map(cls, data: dict[str, Any], seq: int) -> UpdateRecord:
        restore_of = data.get("restore_of")
        return cls(
            seq,
            float(data["ts"]),
            data["user"],
            tuple(data["clients"]),
            bytes(data["u"]),
            None if restore_of is None else int(restore_of),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The merged state of a room up to and including log position `seq`.

    Args:
        log_bytes: the room's log size when the snapshot was taken (for the policy's
            "bytes since the last snapshot").
    """

    seq: int
    ts: float
    update: bytes
    state_vector: bytes
    log_bytes: int = 0

    def to_map(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "u": self.update,
            "sv": self.state_vector,
            "log_bytes": self.log_bytes,
        }

    @classmethod
    def from_map(cls, data: dict[str, Any]) -> Snapshot:
        return cls(
            int(data["seq"]),
            float(data["ts"]),
            bytes(data["u"]),
            bytes(data["sv"]),
            int(data.get("log_bytes", 0)),
        )


@dataclass(frozen=True, slots=True)
class RoomMeta:
    """Per-room counters kept by a KV log store, so appends need no scans."""

    name: str
    created: float
    last_seq: int = 0
    log_bytes: int = 0

    def to_map(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "last_seq": self.last_seq,
            "log_bytes": self.log_bytes,
        }

    @classmethod
    def from_map(cls, data: dict[str, Any]) -> RoomMeta:
        return cls(
            str(data["name"]), float(data["created"]), int(data["last_seq"]), int(data["log_bytes"])
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
