"""One exception tree for the whole engine.

    EngineError
     ├── ProtocolError          malformed wire message (carries the byte offset)
     ├── UpdateRejected         a well-formed message whose update cannot be applied
     │    └── QuotaExceeded     update or document larger than the configured limit
     ├── PermissionDenied       the caller may not do this (read-only token, other room)
     ├── RoomNameError          a room name that is not allowed
     └── StorageError           the store failed or holds something it cannot read
          ├── CorruptRecord     checksum or decoding failed (names room and seq)
          ├── SchemaVersionError a record written by a newer, unknown schema
          └── RoomNotFound      the room has never been written

The server maps these onto close codes and HTTP statuses in one place, so code that
raises them never needs to know about transports.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class ProtocolError(EngineError):
    """A wire message that does not decode.

    Args:
        offset: byte offset in the message where decoding failed.
        reason: what was wrong, in words a client developer understands.
    """

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"malformed message at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class UpdateRejected(EngineError):
    """A Yjs update that cannot be applied; the document is left unchanged."""


class QuotaExceeded(UpdateRejected):
    """An update or the document it would produce is larger than allowed."""


class PermissionDenied(EngineError):
    """The caller's token does not allow this action."""


class RoomNameError(EngineError):
    """A room name outside the allowed alphabet or length."""


class StorageError(EngineError):
    """The store failed, or holds data it cannot interpret."""


class CorruptRecord(StorageError):
    """A stored record whose checksum or encoding is wrong."""

    def __init__(self, room: str, what: str, seq: int, reason: str) -> None:
        super().__init__(f"room {room!r}: corrupt {what} at seq {seq}: {reason}")
        self.room = room
        self.seq = seq


class SchemaVersionError(StorageError):
    """A record of a schema version this code does not know; never misread silently."""


class RoomNotFound(StorageError):
    """The room has no stored data."""
