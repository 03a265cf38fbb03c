"""Stored records: CBOR maps with a schema version, behind a CRC32 of the CBOR bytes.

    value = crc32(cbor) as 4 big-endian bytes || cbor({"v": 1, ...})

The checksum catches torn and bit-flipped writes before CBOR sees them; the version makes
a record written by a newer schema an error (`SchemaVersionError`), never a silent misread.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
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
    # set on an entry a rule or Hooks.check partly undid: who, by what, why (the entry
    # holds the attempt merged with its undo; this record is written in the same value)
    rejected: dict[str, Any] | None = None

    def to_map(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "ts": self.ts,
            "user": self.user,
            "clients": list(self.clients),
            "u": self.update,
        }
        if self.restore_of is not None:
            fields["restore_of"] = self.restore_of
        if self.rejected is not None:
            fields["rejected"] = self.rejected
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
            _rejected(data.get("rejected")),
        )


def _rejected(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The merged state of a room up to and including log position `seq`.

    Args:
        log_bytes: the room's log size when the snapshot was taken (for the policy's
            "bytes since the last snapshot").
        whole: every struct in it integrates (it carries no update still waiting for a
            dependency), so a load may apply it without scanning it first.
    """

    seq: int
    ts: float
    update: bytes
    state_vector: bytes
    log_bytes: int = 0
    whole: bool = False

    def to_map(self) -> dict[str, Any]:
        fields = {
            "seq": self.seq,
            "ts": self.ts,
            "u": self.update,
            "sv": self.state_vector,
            "log_bytes": self.log_bytes,
        }
        return {**fields, "whole": True} if self.whole else fields

    @classmethod
    def from_map(cls, data: dict[str, Any]) -> Snapshot:
        return cls(
            int(data["seq"]),
            float(data["ts"]),
            bytes(data["u"]),
            bytes(data["sv"]),
            int(data.get("log_bytes", 0)),
            data.get("whole") is True,
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


_F64 = struct.Struct(">d")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
# {"v": 1, "ts": <float64 follows>: the map's head with 5 or 6 entries (restore_of).
_UPDATE_HEAD = {
    False: bytes((0xA5, 0x61)) + b"v" + bytes((0x01, 0x62)) + b"ts" + bytes((0xFB,)),
    True: bytes((0xA6, 0x61)) + b"v" + bytes((0x01, 0x62)) + b"ts" + bytes((0xFB,)),
}
_USER_KEY = bytes((0x64,)) + b"user"
_CLIENTS_KEY = bytes((0x67,)) + b"clients"
_UPDATE_KEY = bytes((0x61,)) + b"u"
_RESTORE_KEY = bytes((0x6A,)) + b"restore_of"
_NULL = bytes((0xF6,))


_BIG = 1 << 64
_SMALL = {major: [bytes((major | n,)) for n in range(24)] for major in (0x00, 0x40, 0x60, 0x80)}
_BYTES_HEADS = [bytes((0x40 | n,)) if n < 24 else bytes((0x58, n)) for n in range(256)]
_UNSET: Any = object()


def _head(major: int, n: int) -> bytes:
    """A CBOR item head: major type and length (or value), shortest form."""
    if n < 24:
        return _SMALL[major][n]
    if n < 0x100:
        return _U8.pack(major | 24) + _U8.pack(n)
    if n < 0x10000:
        return _U8.pack(major | 25) + _U16.pack(n)
    if n < 0x100000000:
        return _U8.pack(major | 26) + _U32.pack(n)
    return _U8.pack(major | 27) + _U64.pack(n)


def pack_update(
    ts: float,
    user: str | None,
    clients: tuple[int, ...],
    update: bytes,
    restore_of: int | None = None,
) -> bytes:
    """`pack(UpdateRecord(...).to_map())`, byte for byte, without building the map."""
    return pack_updates(ts, [(user, clients, update, restore_of)])[0]


def pack_updates(
    ts: float, items: Sequence[tuple[str | None, tuple[int, ...], bytes, int | None]]
) -> list[bytes]:
    """Records for (user, clients, update, restore_of) appended at one time `ts`; each
    is `pack(UpdateRecord(...).to_map())` byte for byte. The log's hot path: the map's
    head, the timestamp, each user's name and each set of client ids are encoded once per
    batch, not per update, and the checksum runs over the parts (no joined copy first)."""
    stamp = _F64.pack(ts)
    heads = {flag: head + stamp + _USER_KEY for flag, head in _UPDATE_HEAD.items()}
    users: dict[str | None, bytes] = {None: _NULL + _CLIENTS_KEY}
    id_heads: dict[tuple[int, ...], bytes | None] = {}
    crc32 = zlib.crc32
    crc = _CRC.pack
    join = b"".join
    out: list[bytes] = []
    for user, clients, update, restore_of in items:
        ids = id_heads.get(clients, _UNSET)
        if ids is _UNSET:
            ids = id_heads[clients] = _clients_head(clients)
        if ids is None or (restore_of is not None and not 0 <= restore_of < _BIG):
            out.append(pack(UpdateRecord(0, ts, user, clients, update, restore_of).to_map()))
            continue
        named = users.get(user)
        if named is None:
            assert user is not None
            text = user.encode("utf-8")
            named = users[user] = _head(0x60, len(text)) + text + _CLIENTS_KEY
        size = len(update)
        prefix = join(
            (
                heads[restore_of is not None],
                named,
                ids,
                _UPDATE_KEY,
                _BYTES_HEADS[size] if size < 256 else _head(0x40, size),
            )
        )
        check = crc32(update, crc32(prefix))
        if restore_of is None:
            out.append(join((crc(check), prefix, update)))
        else:
            suffix = _RESTORE_KEY + _head(0x00, restore_of)
            out.append(join((crc(crc32(suffix, check)), prefix, update, suffix)))
    return out


def _clients_head(clients: tuple[int, ...]) -> bytes | None:
    """The CBOR array of client ids (None: out of the fast path's range)."""
    if clients and (min(clients) < 0 or max(clients) >= _BIG):
        return None
    return _head(0x80, len(clients)) + b"".join([_head(0x00, c) for c in clients])


def pack(fields: dict[str, Any]) -> bytes:
    """Encode a record map, adding the schema version and the checksum."""
    body = cbor2.dumps({"v": SCHEMA_VERSION, **fields})
    return _CRC.pack(zlib.crc32(body)) + body


def unpack(value: bytes | memoryview) -> dict[str, Any]:
    """Check and decode a stored record.

    Raises:
        RecordError: torn, bit-flipped or undecodable bytes.
        SchemaVersionError: a version this code does not know.
    """
    if len(value) < _CRC.size:
        raise RecordError(f"record of {len(value)} bytes is truncated")
    (expected,) = _CRC.unpack_from(value)
    body = memoryview(value)[_CRC.size :]  # a view: a snapshot is the size of its room
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


@dataclass(frozen=True, slots=True)
class UpdateHead:
    """An update record's fields but the update itself, whose size stands in for it."""

    ts: float
    user: str | None
    clients: tuple[int, ...]
    size: int
    restore_of: int | None = None
    rejected: dict[str, Any] | None = None


class HeadReader:
    """Walks a record's CBOR map, skipping the update's bytes instead of copying them:
    the history lists sizes, and a page of megabyte updates should not cost megabytes
    of copies to say how big they were. Knows the item kinds records are written with;
    anything else raises ValueError (the caller then decodes the record in full)."""

    def __init__(self, body: memoryview) -> None:
        self.body = body
        self.at = 0
        self.update_end = -1  # where the update ended, once `read_head_fields` passed it

    def head(self) -> tuple[int, int]:
        """(major type, argument) of the next item, which must have a definite length."""
        first = self.body[self.at]
        major, info = first >> 5, first & 0x1F
        self.at += 1
        if info < 24:
            return major, info
        if info > 27 or (major == 7 and info < 25):
            raise ValueError(f"unexpected CBOR head {first:#x}")
        width = 1 << (info - 24)
        raw = bytes(self.body[self.at : self.at + width])
        self.at += width
        if major == 7:  # a float: hand back its bits' position, decoded by value()
            return major, info
        return major, int.from_bytes(raw, "big")

    def value(self) -> Any:
        """The next item, decoded (small items only: text, bytes, ints, arrays, maps,
        floats, booleans, null)."""
        start = self.at
        major, arg = self.head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 3:
            self.at += arg
            return bytes(self.body[self.at - arg : self.at]).decode("utf-8")
        if major == 2:
            self.at += arg
            return bytes(self.body[self.at - arg : self.at])
        if major == 4:
            return [self.value() for _ in range(arg)]
        if major == 5:  # a refusal's record: what a rule undid, and why
            return {self.value(): self.value() for _ in range(arg)}
        if major == 7:
            return self._simple(start, arg)
        raise ValueError(f"unexpected CBOR major type {major}")

    def _simple(self, start: int, info: int) -> Any:
        if info in (25, 26, 27):
            return cbor2.loads(bytes(self.body[start : self.at]))
        return {20: False, 21: True, 22: None}[info]

    def skip_bytes(self) -> int:
        """Step over a byte string; its length."""
        major, arg = self.head()
        if major != 2:
            raise ValueError("the update is not a byte string")
        self.at += arg
        return arg


def unpack_update_head(value: bytes | memoryview) -> UpdateHead:
    """An update record's fields without its update (checksum and version checked, as
    `unpack` does).

    Raises:
        RecordError, SchemaVersionError: as `unpack`.
    """
    if len(value) < _CRC.size:
        raise RecordError(f"record of {len(value)} bytes is truncated")
    (expected,) = _CRC.unpack_from(value)
    body = memoryview(value)[_CRC.size :]
    if zlib.crc32(body) != expected:
        raise RecordError("checksum mismatch (torn or corrupted write)")
    try:
        fields = read_head_fields(HeadReader(body))
    except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        data = unpack(value)  # a form this walker does not know: decode it all
        fields = {**data, "u": len(data["u"])}
    if fields.get("v") != SCHEMA_VERSION:
        unpack(value)  # raises the error a full decode gives
    return head_from_fields(fields)


def head_from_fields(fields: dict[str, Any]) -> UpdateHead:
    """The head of a record whose map `fields` holds (the update's size under "u")."""
    restore_of = fields.get("restore_of")
    return UpdateHead(
        float(fields["ts"]),
        fields["user"],
        tuple(fields["clients"]),
        int(fields["u"]),
        None if restore_of is None else int(restore_of),
        _rejected(fields.get("rejected")),
    )


def read_head_fields(
    reader: HeadReader, rest: Callable[[int], memoryview] | None = None
) -> dict[str, Any]:
    """The record map's fields, with the update's size under "u". With `rest`, the
    reader holds only the record's start: past the update it goes on in what
    `rest(offset of the update's end)` hands back (the record's end, read apart)."""
    major, count = reader.head()
    if major != 5:
        raise ValueError("the record is not a map")
    fields: dict[str, Any] = {}
    for _ in range(count):
        key = reader.value()
        if key != "u":
            fields[key] = reader.value()
            continue
        fields[key] = reader.skip_bytes()
        reader.update_end = reader.at
        if rest is not None:
            reader.body, reader.at = rest(reader.at), 0
    if "u" not in fields:
        raise ValueError("the record has no update")
    return fields
