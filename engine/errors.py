"""One exception tree for the whole product, and one table of what each error means on
every transport.

    EngineError
     ├── ProtocolError          malformed wire message or request (carries the byte offset)
 ├── UnsupportedMediaType   a request body of a content type the route does not take
     ├── UpdateRejected         a well-formed update that cannot be applied
     │    └── QuotaExceeded     update or document larger than the configured limit
     ├── RoomNameError          a room name that is not allowed
     ├── Unauthorized           no token, a bad one, an expired one
     ├── PermissionDenied       a valid caller who may not do this (other room, read-only)
     │    └── ClientIdTaken     structs under a Yjs client id bound to another user
     ├── RoomNotFound           the room has never been written
     ├── Conflict               the request contradicts what is stored (name taken, log trimmed)
     │    └── HistoryFolded     a past state before the history window (names the oldest)
     ├── RulesInvalid           a rules file that cannot be enforced as written (at start)
     ├── Unavailable            the room cannot be served now; retry later
     │    └── Busy              too much work queued (or too many streams); retry after N s
     └── StorageError           the store failed or holds something it cannot read
          ├── CorruptRecord     checksum or decoding failed (names room and seq)
          └── SchemaVersionError a record written by a newer, unknown schema

`ERROR_TABLE` maps each branch to (HTTP status, WebSocket close code, what a client should
do); the REST middleware, the WebSocket layer, the Python client and the browser client
all follow it (tests/server/test_error_table.py checks the browser client against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class EngineError(Exception):
    """Base of every error the product raises on purpose."""


class ProtocolError(EngineError):
    """A wire message or request that does not decode.

    Args:
        offset: byte offset in the message where decoding failed.
        reason: what was wrong, in words a client developer understands.
    """

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"malformed message at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason

    def __reduce__(self) -> tuple[type[ProtocolError], tuple[int, str]]:
        return (type(self), (self.offset, self.reason))  # crosses process boundaries


class UnsupportedMediaType(EngineError):
    """A request body whose Content-Type the route does not take."""


class UpdateRejected(EngineError):
    """A Yjs update that cannot be applied; the document is left unchanged."""


class QuotaExceeded(UpdateRejected):
    """An update or the document it would produce is larger than allowed."""


class RoomNameError(EngineError):
    """A room name outside the allowed alphabet or length."""


class Unauthorized(EngineError):
    """No token, a bad one, or an expired one."""


class PermissionDenied(EngineError):
    """The caller is known but may not do this (a token for another room, read-only)."""


class ClientIdTaken(PermissionDenied):
    """An update with structs under a Yjs client id that another user's edits
    introduced first; nothing of it is applied."""


class RoomNotFound(EngineError):
    """The room has no stored data."""


class Conflict(EngineError):
    """The request contradicts what is stored (a version name taken, a trimmed log)."""


class HistoryFolded(Conflict):
    """A past state the log no longer holds: retention folded (or --trim-log trimmed) the
    entries before `oldest`, the earliest position still available."""

    def __init__(self, room: str, seq: int, oldest: int) -> None:
        super().__init__(
            f"room {room!r}: seq {seq} is before the history window (the log before it was "
            f"trimmed or folded); the oldest position available is seq {oldest}"
        )
        self.room = room
        self.seq = seq
        self.oldest = oldest

    def __reduce__(self) -> tuple[type[HistoryFolded], tuple[str, int, int]]:
        return (type(self), (self.room, self.seq, self.oldest))


class RulesInvalid(EngineError):
    """A rules file that cannot be enforced as written; the message is one line naming
    the rule and what is wrong (the server refuses to start with it)."""


class Unavailable(EngineError):
    """The room cannot be served right now (failed to load, storage failed, shutting
    down); the same request later may succeed."""


class Busy(Unavailable):
    """The server refuses new work for now: its compute queue is full, or the caller
    (or room) already has as much work or as many streams as it may.

    Args:
        reason: which limit was reached.
        retry_after: whole seconds after which the same request may succeed (sent as
            the HTTP `Retry-After` header).
    """

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[Busy], tuple[str, int]]:
        return (type(self), (str(self), self.retry_after))


class StorageError(EngineError):
    """The store failed, or holds data it cannot interpret."""


class CorruptRecord(StorageError):
    """A stored record whose checksum or encoding is wrong."""

    def __init__(self, room: str, what: str, seq: int, reason: str) -> None:
        super().__init__(f"room {room!r}: corrupt {what} at seq {seq}: {reason}")
        self.room = room
        self.seq = seq
        self._args = (room, what, seq, reason)

    def __reduce__(self) -> tuple[type[CorruptRecord], tuple[str, str, int, str]]:
        return (type(self), self._args)


class SchemaVersionError(StorageError):
    """A record of a schema version this code does not know; never misread silently."""


class Close(IntEnum):
    """WebSocket close codes; 44xx/45xx mirror the HTTP status they mean."""

    GOING_AWAY = 1001  # server shutting down; reconnect
    FRAME_TOO_BIG = 1009  # a frame over the size limit (sent by the WebSocket layer)
    MALFORMED = 4400  # a message that does not decode, or a bad room name
    UNAUTHORIZED = 4401  # missing, invalid or expired token
    FORBIDDEN = 4403  # token for another room
    SLOW_CONSUMER = 4408  # the client stopped reading; its send buffer is full
    TOO_LARGE = 4413  # update or document over its size limit
    UNAVAILABLE = 4503  # room failed to load or its storage failed; reconnect later


class Retry(Enum):
    """What a client should do after an error."""

    NEVER = "never"  # retrying sends the same thing again: surface the error
    BACKOFF = "backoff"  # reconnect with backoff (reset once a connection syncs)
    SLOW_DOWN = "slow down"  # reconnect, and keep backing off even after a sync


@dataclass(frozen=True, slots=True)
class Meaning:
    http: int | None
    close: Close
    retry: Retry
    reason: str


# Most specific first: the first row whose class matches an error decides.
ERROR_TABLE: list[tuple[type[EngineError] | None, Meaning]] = [
    (QuotaExceeded, Meaning(413, Close.TOO_LARGE, Retry.NEVER, "update or document too large")),
    (ProtocolError, Meaning(400, Close.MALFORMED, Retry.NEVER, "malformed message")),
    (UnsupportedMediaType, Meaning(415, Close.MALFORMED, Retry.NEVER, "unsupported content type")),
    (UpdateRejected, Meaning(400, Close.MALFORMED, Retry.NEVER, "update does not apply")),
    (RoomNameError, Meaning(400, Close.MALFORMED, Retry.NEVER, "room name not allowed")),
    (Unauthorized, Meaning(401, Close.UNAUTHORIZED, Retry.NEVER, "invalid or expired token")),
    (PermissionDenied, Meaning(403, Close.FORBIDDEN, Retry.NEVER, "token does not grant this")),
    (RoomNotFound, Meaning(404, Close.MALFORMED, Retry.NEVER, "no such room")),
    (Conflict, Meaning(409, Close.MALFORMED, Retry.NEVER, "conflicts with what is stored")),
    (Busy, Meaning(503, Close.UNAVAILABLE, Retry.SLOW_DOWN, "server busy, retry after a while")),
    (Unavailable, Meaning(503, Close.UNAVAILABLE, Retry.SLOW_DOWN, "room unavailable, retry")),
    (StorageError, Meaning(503, Close.UNAVAILABLE, Retry.SLOW_DOWN, "storage failed, retry later")),
    # close codes no exception stands for
    (None, Meaning(None, Close.GOING_AWAY, Retry.BACKOFF, "server shutting down")),
    (None, Meaning(None, Close.FRAME_TOO_BIG, Retry.NEVER, "frame too big")),
    (None, Meaning(None, Close.SLOW_CONSUMER, Retry.SLOW_DOWN, "client is not reading")),
]  # fmt: skip

_UNKNOWN = Meaning(500, Close.UNAVAILABLE, Retry.SLOW_DOWN, "internal error")


def meaning_of(error: BaseException) -> Meaning:
    """The table's row for an error (500 for anything the table does not name)."""
    for kind, meaning in ERROR_TABLE:
        if kind is not None and isinstance(error, kind):
            return meaning
    return _UNKNOWN


def error_for_status(status: int, message: str, retry_after: str | None = None) -> EngineError:
    """The exception a client raises for an HTTP error status (the table read backwards;
    a 503 with `Retry-After` is `Busy`)."""
    if status == 400:
        return ProtocolError(0, message)
    if status == 503 and retry_after is not None and retry_after.isdigit():
        return Busy(message, int(retry_after))
    kinds = [k for k, meaning in ERROR_TABLE if k is not None and meaning.http == status]
    for kind in kinds:  # the most general of the status's errors
        if not any(kind is not other and issubclass(kind, other) for other in kinds):
            return kind(message)
    return Unavailable(message) if status >= 500 else EngineError(message)


def meaning_of_close(code: int | None) -> Meaning | None:
    """The table's row for a close code (None: not ours, e.g. 1006 dropped)."""
    for _, meaning in ERROR_TABLE:
        if meaning.close == code:
            return meaning
    return None


def close_reason(code: Close, detail: str | None = None) -> str:
    """A close reason: the table's words with detail, cut to WebSocket's 123 bytes."""
    meaning = meaning_of_close(code)
    base = meaning.reason if meaning else code.name.lower()
    text = base if not detail else f"{base}: {detail}"
    return text.encode("utf-8")[:123].decode("utf-8", "ignore")
